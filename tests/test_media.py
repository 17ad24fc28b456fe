"""Reading video and audio files: frame sampling, seeking, audio tracks, windows, damaged and missing files."""

import builtins
import collections
import logging
import time
from fractions import Fraction

import numpy as np
import pytest
import soundfile
from _av_toys import moving_square_frames, tone, write_clip, write_long_clip
from _preprocessing_utils import (
    HOWTO100M_VIDEO,
    MOSEI_AUDIO,
    MOSEI_VIDEO,
    DecodeCounter,
    index_of_frame,
    mosei_frames,
    stereo_tone,
    write_video,
)

from tvlt.media_tvlt import (
    DecodedVideo,
    MediaDecodingError,
    load_audio,
    read_video,
    resample_audio,
    sample_frame_indices,
)


av = pytest.importorskip("av")

needs_samples = pytest.mark.skipif(not MOSEI_VIDEO.is_file(), reason="../shared/samples is not available")


@pytest.fixture(scope="module")
def mp4_with_audio(tmp_path_factory):
    """300 frames at 30 fps (10 s), a keyframe every 15 frames, AAC stereo tone."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    tone = write_video(path, num_frames=300, gop_size=15, audio_codec="aac")
    return path, tone


@pytest.fixture(scope="module")
def mkv_lossless(tmp_path_factory):
    """Lossless video and PCM audio in Matroska, whose header carries no frame count."""
    path = tmp_path_factory.mktemp("media") / "clip.mkv"
    tone = write_video(path, num_frames=60, codec="ffv1", audio_codec="pcm_s16le")
    return path, tone


@pytest.fixture(scope="module")
def mp4_without_audio(tmp_path_factory):
    path = tmp_path_factory.mktemp("media") / "silent.mp4"
    write_video(path, num_frames=20)
    return path


@pytest.fixture
def decode_counter(monkeypatch):
    counter = DecodeCounter(av)
    monkeypatch.setattr(av, "open", counter)
    return counter


class TestSampleFrameIndices:
    def test_long_video_is_sampled_uniformly_over_its_whole_length(self):
        assert sample_frame_indices(149, 8).tolist() == np.linspace(0, 149, 8, endpoint=False).astype(int).tolist()
        assert sample_frame_indices(149, 8).tolist() == [0, 18, 37, 55, 74, 93, 111, 130]

    def test_short_video_keeps_its_frames_unless_repeats_are_allowed(self):
        assert sample_frame_indices(3, 8).tolist() == [0, 1, 2]
        assert sample_frame_indices(3, 8, allow_repeats=True).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
        assert sample_frame_indices(8, 8).tolist() == list(range(8))
        assert sample_frame_indices(5, None).tolist() == list(range(5))

    @pytest.mark.parametrize("total, num_frames", [(0, 8), (-1, 8), (2.5, 8), (True, 8), (10, 0), (10, -3), (10, 1.5)])
    def test_invalid_counts_raise(self, total, num_frames):
        with pytest.raises(ValueError, match="total_num_frames|num_frames"):
            sample_frame_indices(total, num_frames)


class TestReadVideo:
    def test_returns_the_sampled_frames_in_rgb(self, mp4_with_audio):
        path, _ = mp4_with_audio
        decoded = read_video(path, 8)
        assert isinstance(decoded, DecodedVideo)
        assert decoded.frames.shape == (8, 64, 64, 3) and decoded.frames.dtype == np.uint8
        expected = np.linspace(0, 300, 8, endpoint=False).astype(int)
        assert decoded.frame_indices.tolist() == expected.tolist()
        assert [index_of_frame(frame) for frame in decoded.frames] == expected.tolist()
        assert decoded.total_num_frames == 300 and decoded.fps == 30.0 and decoded.audio is None
        metadata = decoded.metadata
        assert (metadata.total_num_frames, metadata.fps, metadata.height, metadata.width) == (300, 30.0, 64, 64)
        assert metadata.frames_indices == expected.tolist()

    def test_decodes_only_the_groups_of_pictures_of_the_sampled_frames(self, mp4_with_audio, decode_counter):
        path, _ = mp4_with_audio
        read_video(path, 8)
        # 8 targets, each reached from its keyframe (every 15 frames): at most 15 frames each, not the 300 frames
        assert decode_counter.frames[str(path)] <= 8 * 15

    def test_short_video_keeps_all_frames_or_repeats_them(self, mp4_without_audio):
        assert [index_of_frame(f) for f in read_video(mp4_without_audio, 32).frames] == list(range(20))
        repeated = read_video(mp4_without_audio, 32, allow_repeats=True)
        expected = np.linspace(0, 20, 32, endpoint=False).astype(int).tolist()
        assert [index_of_frame(f) for f in repeated.frames] == expected == repeated.frame_indices.tolist()
        assert len(read_video(mp4_without_audio, None).frames) == 20

    def test_matroska_without_frame_count_and_its_pcm_track(self, mkv_lossless):
        path, tone = mkv_lossless
        decoded = read_video(path, 6, with_audio=True, mono=False)
        assert decoded.total_num_frames == 60
        assert [index_of_frame(f) for f in decoded.frames] == [0, 10, 20, 30, 40, 50]
        assert decoded.audio_sampling_rate == 44100 and decoded.audio.shape == tone.shape
        np.testing.assert_allclose(decoded.audio, tone, atol=1e-4)  # 16-bit PCM

    @pytest.mark.parametrize(
        "name, codec, audio_codec, sampling_rate",
        [
            ("clip.webm", "libvpx-vp9", "libopus", 48000),
            ("clip.avi", "mpeg4", "mp3", 44100),
            ("clip.mov", "mpeg4", "aac", 44100),
        ],
    )
    def test_other_containers_and_codecs(self, tmp_path, name, codec, audio_codec, sampling_rate):
        path = tmp_path / name
        tone = write_video(path, num_frames=45, codec=codec, audio_codec=audio_codec, sampling_rate=sampling_rate)
        decoded = read_video(path, 5, with_audio=True)
        assert [index_of_frame(f) for f in decoded.frames] == [0, 9, 18, 27, 36] == decoded.frame_indices.tolist()
        assert decoded.total_num_frames == 45 and decoded.audio_sampling_rate == sampling_rate
        # lossy codecs pad and filter: compare the level of the track
        assert abs(np.sqrt(np.mean(decoded.audio**2)) - np.sqrt(np.mean(tone.mean(0) ** 2))) < 0.02

    def test_audio_track_is_mixed_down_to_mono_by_channel_mean(self, mkv_lossless):
        path, tone = mkv_lossless
        decoded = read_video(path, 2, with_audio=True)
        np.testing.assert_allclose(decoded.audio, tone.mean(axis=0), atol=1e-4)

    def test_time_window(self, mp4_with_audio):
        path, tone = mp4_with_audio
        decoded = read_video(path, 4, start=2.0, end=4.0, with_audio=True)
        assert decoded.frame_indices.tolist() == [60, 75, 90, 105]
        assert [index_of_frame(f) for f in decoded.frames] == [60, 75, 90, 105]
        assert decoded.audio.shape == (2 * 44100,)
        # AAC is lossy and delays by its priming samples: compare the level, not the samples
        assert abs(np.sqrt(np.mean(decoded.audio**2)) - np.sqrt(np.mean(tone.mean(0)[88200:176400] ** 2))) < 0.02

    def test_with_audio_none_returns_the_track_only_when_present(self, mp4_with_audio, mp4_without_audio):
        assert read_video(mp4_with_audio[0], 2, with_audio=None).audio is not None
        assert read_video(mp4_without_audio, 2, with_audio=None).audio is None

    def test_required_audio_track_missing_names_the_file(self, mp4_without_audio):
        with pytest.raises(MediaDecodingError, match=f"{mp4_without_audio}.*no audio track"):
            read_video(mp4_without_audio, 2, with_audio=True)

    def test_truncated_file_is_read_up_to_where_its_data_ends(self, mp4_with_audio, tmp_path, caplog):
        path, _ = mp4_with_audio
        truncated = tmp_path / "truncated.mp4"
        data = path.read_bytes()
        truncated.write_bytes(data[: len(data) // 2])  # the header (at the start) still declares 300 frames
        with caplog.at_level(logging.WARNING):
            decoded = read_video(truncated, 8)
        assert "probably truncated" in caplog.text and str(truncated) in caplog.text
        assert decoded.total_num_frames < 300
        indices = np.linspace(0, decoded.total_num_frames, 8, endpoint=False).astype(int).tolist()
        assert [index_of_frame(f) for f in decoded.frames] == indices == decoded.frame_indices.tolist()

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope.mp4"):
            read_video(tmp_path / "nope.mp4")

    def test_corrupt_file_names_the_file(self, tmp_path):
        corrupt = tmp_path / "corrupt.mp4"
        corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        with pytest.raises(MediaDecodingError, match="corrupt.mp4"):
            read_video(corrupt)

    def test_audio_file_has_no_video_stream(self, tmp_path):
        wav = tmp_path / "tone.wav"
        soundfile.write(wav, stereo_tone(4410, 44100).T, 44100)
        with pytest.raises(MediaDecodingError, match="tone.wav.*no video stream"):
            read_video(wav)

    @pytest.mark.parametrize(
        "window",
        [
            {"start": -1.0},
            {"end": "3"},
            {"start": 3.0, "end": 2.0},
            {"start": 2.0, "end": 2.0},
            {"start": float("inf")},
            {"end": float("inf")},
            {"end": float("nan")},
        ],
    )
    def test_invalid_window(self, mp4_without_audio, window):
        """inf and nan once escaped as `OverflowError`/`ValueError` from `Fraction`."""
        with pytest.raises(ValueError, match="`start`|`end`"):
            read_video(mp4_without_audio, **window)

    @pytest.mark.parametrize("start, said", [(5.0, r"\[5 s, the end\)"), (1e7, r"\[10000000 s, the end\)")])
    def test_empty_window(self, mp4_without_audio, start, said):
        with pytest.raises(MediaDecodingError, match=rf"no video frame in the window {said}; .* \(0.667 s\)"):
            read_video(mp4_without_audio, start=start)

    def test_directory_and_dangling_link_say_what_they_are(self, tmp_path):
        """A directory was reported as "No such media file"."""
        (tmp_path / "clips.mp4").mkdir()
        with pytest.raises(IsADirectoryError, match=r"clips.mp4 is a directory; expected a video file"):
            read_video(tmp_path / "clips.mp4")
        with pytest.raises(IsADirectoryError, match=r"clips.mp4 is a directory; expected an audio file"):
            load_audio(tmp_path / "clips.mp4")
        (tmp_path / "gone.mp4").symlink_to(tmp_path / "moved.mp4")
        with pytest.raises(FileNotFoundError, match=r"gone.mp4 is a symbolic link to .*moved.mp4, which does not"):
            read_video(tmp_path / "gone.mp4")

    def test_empty_file(self, tmp_path):
        (tmp_path / "empty.mp4").write_bytes(b"")
        with pytest.raises(MediaDecodingError, match=r"empty.mp4: the file is empty \(0 bytes\); expected a video"):
            read_video(tmp_path / "empty.mp4")
        with pytest.raises(MediaDecodingError, match=r"empty.mp4: the file is empty \(0 bytes\); expected an audio"):
            load_audio(tmp_path / "empty.mp4")

    def test_a_truncated_file_is_said_once_for_all_its_windows(self, mp4_with_audio, tmp_path, caplog):
        """Each window of a long truncated video (`chunk_length_s`) repeated the warning."""
        path, _ = mp4_with_audio
        truncated = tmp_path / "truncated.mp4"
        data = path.read_bytes()
        truncated.write_bytes(data[: len(data) // 2])
        with caplog.at_level(logging.WARNING):
            for start in (0.0, 1.0, 2.0):
                read_video(truncated, 2, start=start, end=start + 1.0)
        assert caplog.text.count("probably truncated") == 1

    def test_a_truncated_file_reports_its_decodable_length_for_any_window(self, mp4_with_audio, tmp_path, caplog):
        """The length of a truncated file was the header's unless a sampled frame lay past the data."""
        path, _ = mp4_with_audio
        truncated = tmp_path / "truncated.mp4"
        data = path.read_bytes()
        truncated.write_bytes(data[: len(data) // 2])
        whole = read_video(truncated, 8)
        with caplog.at_level(logging.WARNING):
            window = read_video(truncated, 4, start=1.0, end=2.0)
        assert "probably truncated" in caplog.text
        assert window.total_num_frames == whole.total_num_frames < 300
        assert [index_of_frame(f) for f in window.frames] == [30, 37, 45, 52]

    def test_path_must_be_a_path(self):
        with pytest.raises(TypeError, match="str or os.PathLike"):
            read_video(b"clip.mp4")

    def test_missing_pyav_explains_how_to_install_it(self, mp4_without_audio, monkeypatch):
        real_import = builtins.__import__

        def without_av(name, *args, **kwargs):
            if name == "av":
                raise ImportError("No module named 'av'")
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", without_av)
        with pytest.raises(ImportError, match=r"pip install 'tvlt\[video\]'"):
            read_video(mp4_without_audio)


# -- clips encoded like real ones: long GOPs, B-frames, open GOPs, variable frame rate -------------------------------


def slowly_changing_frame(index: int, size: int = 64) -> np.ndarray:
    """A frame that differs little from its neighbours (so encoders see no scene cut and keep their long GOPs), with
    `index` spelt in binary along its bottom edge (see `index_in_frame`)."""
    frame = np.full((size, size, 3), 90, dtype=np.uint8)
    frame[..., 2] = np.arange(size, dtype=np.uint8)[None, :] * 3
    top = index % (size - 24)
    frame[top : top + 8, 6:14] = (230, 40, 40)
    gray = index ^ (index >> 1)  # one cell changes from a frame to the next
    for bit in range(10):
        frame[-6:, 6 * bit : 6 * bit + 6] = 180 if (gray >> bit) & 1 else 80
    return frame


def index_in_frame(frame: np.ndarray) -> int:
    cells = [frame[-5:-1, 6 * bit + 1 : 6 * bit + 5].mean() for bit in range(10)]
    index = gray = sum(1 << bit for bit, level in enumerate(cells) if level > 130)
    while gray:
        gray >>= 1
        index ^= gray
    return index


_VFR_DURATIONS_MS = np.random.default_rng(0).choice([20, 33, 50, 100], 299)
LONG_GOP_CLIPS = {
    # x264's defaults: keyframes up to 250 frames (8 s) apart, where it sees no scene cut, 3 B-frames
    "x264_defaults.mp4": {"codec": "libx264"},
    "x264_one_keyframe.mp4": {"codec": "libx264", "options": {"x264-params": "keyint=infinite:scenecut=0"}},
    # open GOP: B-frames after each keyframe (in decoding order) refer to the previous GOP; Matroska declares no
    # frame count
    "x264_open_gop.mkv": {
        "codec": "libx264",
        "options": {"x264-params": "keyint=100:min-keyint=100:scenecut=0:open-gop=1"},
    },
    "mpeg4_b_frames.mp4": {"codec": "mpeg4", "gop_size": 300, "max_b_frames": 2},
    "vp9_long_gop.webm": {"codec": "libvpx-vp9", "gop_size": 300},
    # variable frame rate: frames 20 to 100 ms apart
    "x264_vfr.mp4": {"codec": "libx264", "timestamps_ms": np.cumsum([0, *_VFR_DURATIONS_MS]).tolist()},
}


def write_long_gop_clip(path, codec, options=None, gop_size=None, max_b_frames=None, timestamps_ms=None):
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30, options=options or {})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        if gop_size is not None:
            stream.codec_context.gop_size = gop_size
        if max_b_frames is not None:
            stream.codec_context.max_b_frames = max_b_frames
        if timestamps_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        # 15 s at 30 fps, or 300 frames (about 15 s) at the variable rate
        for index in range(450 if timestamps_ms is None else len(timestamps_ms)):
            picture = av.VideoFrame.from_ndarray(slowly_changing_frame(index), format="rgb24")
            if timestamps_ms is not None:
                picture.pts, picture.time_base = timestamps_ms[index], Fraction(1, 1000)
            container.mux(stream.encode(picture))
        container.mux(stream.encode())


def decode_everything(path):
    """Every frame of the file with plain PyAV, in presentation order, and the index `read_video` gives each (its
    time in frames of the average rate: the frame's position in a constant-frame-rate file)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = sorted(
            ((frame.pts, frame.to_ndarray(format="rgb24")) for frame in container.decode(stream)),
            key=lambda item: item[0],
        )
        start, time_base, fps = stream.start_time or 0, stream.time_base, stream.average_rate
    return [image for _, image in decoded], [round((pts - start) * time_base * fps) for pts, _ in decoded]


@pytest.fixture(scope="module")
def long_gop_clip(tmp_path_factory):
    """`long_gop_clip(name)`: the clip written once per module, with its full decode (`decode_everything`)."""
    folder, cache = tmp_path_factory.mktemp("long_gop"), {}

    def get(name):
        if name not in cache:
            write_long_gop_clip(folder / name, **LONG_GOP_CLIPS[name])
            cache[name] = (folder / name, *decode_everything(folder / name))
        return cache[name]

    return get


class TestLongGroupsOfPictures:
    """Decoding must end and stay within one pass over the file whatever the keyframe spacing: the reader once seeked
    forever when the first frame it needed lay more than 2 s after the keyframe before it."""

    @pytest.mark.parametrize("name", sorted(LONG_GOP_CLIPS))
    @pytest.mark.parametrize(
        "num_frames, window",
        [
            (8, {}),
            (8, {"start": 10, "end": 13}),
            (8, {"start": 3, "end": 5}),
            (None, {"start": 3, "end": 5}),
            (4, {"start": 9.5}),
        ],
    )
    def test_frames_equal_a_full_decode_and_each_is_decoded_at_most_twice(
        self, long_gop_clip, monkeypatch, name, num_frames, window
    ):
        path, images, indices = long_gop_clip(name)
        counter = DecodeCounter(av, budget=2 * len(images))
        monkeypatch.setattr(av, "open", counter)
        decoded = read_video(path, num_frames, **window)
        monkeypatch.undo()

        for index, frame in zip(decoded.frame_indices.tolist(), decoded.frames, strict=True):
            # the frame at that index, or the next one when a variable frame rate leaves a gap there
            expected = next(position for position, other in enumerate(indices) if other >= index)
            np.testing.assert_array_equal(frame, images[expected])
        if "vfr" not in name:
            assert [index_in_frame(frame) for frame in decoded.frames] == decoded.frame_indices.tolist()
        timestamps = counter.timestamps[str(path)]
        assert len(timestamps) <= len(images)
        assert max(collections.Counter(timestamps).values()) <= 2

    def test_one_keyframe_per_file_is_decoded_in_one_pass(self, long_gop_clip, monkeypatch):
        path, images, _ = long_gop_clip("x264_one_keyframe.mp4")
        counter = DecodeCounter(av, budget=2 * len(images))
        monkeypatch.setattr(av, "open", counter)
        decoded = read_video(path, 8, start=10, end=13)
        assert decoded.frame_indices.tolist() == [300, 311, 322, 333, 345, 356, 367, 378]
        # from the one keyframe up to the last target (and the B-frames the decoder holds back), each frame once
        assert counter.frames[str(path)] <= 379 + 3
        assert max(collections.Counter(counter.timestamps[str(path)]).values()) == 1


# 30 fps, a keyframe every 2 s, AAC at 44.1 kHz; 10 s encoded, then repeated
LONG_CLIP = dict(fps=30, sampling_rate=44100, keyframe_interval_s=2.0, repeat_s=10.0)


@pytest.fixture(scope="module")
def minute(tmp_path_factory):
    return write_long_clip(tmp_path_factory.mktemp("long") / "minute.mp4", 60, **LONG_CLIP)


@pytest.fixture(scope="module")
def minute_mkv(tmp_path_factory):
    return write_long_clip(tmp_path_factory.mktemp("long") / "minute.mkv", 60, **LONG_CLIP)


class TestWindowsOfLongFiles:
    """Only the window is decoded: `tvlt predict --start 3500 --end 3501` on a one-hour video once decoded its audio
    from 0 (1.2 GB, 11.6 s). benchmarks/bench_long_window.py measures the hour; here a minute, counting packets."""

    def test_the_audio_of_a_window_decodes_only_the_window_and_its_pre_roll(self, minute, decode_counter):
        waveform, rate = load_audio(minute, start=50.0, end=51.0)
        assert waveform.shape == (44100,) and rate == 44100
        # AAC packets hold 1024 samples: the window (43 packets) and the 0.5 s pre-roll, not the 2584 of the track
        assert decode_counter.audio_packets[str(minute)] < 2 * 44100 / 1024

    def test_the_frames_of_a_window_decode_only_from_the_keyframe_before_it(self, minute, decode_counter):
        decoded = read_video(minute, 8, start=50.0, end=51.0)
        assert decoded.frame_indices.tolist() == [1500, 1503, 1507, 1511, 1515, 1518, 1522, 1526]
        assert decode_counter.frames[str(minute)] <= 1526 - 1500 + 1  # keyframes every 2 s: 1500 is one

    def test_a_window_of_a_file_without_a_frame_count_reads_only_the_window(self, minute_mkv, monkeypatch):
        """Matroska declares no frame count: counting the packets read the whole file for any window."""
        images, _ = decode_everything(minute_mkv)
        decode_counter = DecodeCounter(av)
        monkeypatch.setattr(av, "open", decode_counter)
        decoded = read_video(minute_mkv, 8, start=50.0, end=51.0)
        np.testing.assert_array_equal(decoded.frames, np.stack([images[index] for index in decoded.frame_indices]))
        assert decoded.total_num_frames == len(images) == 1800
        assert decode_counter.video_packets[str(minute_mkv)] < 2 * 60  # a group of pictures, not the 1800 packets
        read_video(minute_mkv, 8)  # the whole file is sampled over its exact frame count
        assert decode_counter.video_packets[str(minute_mkv)] > 1800

    def test_the_clip_preparer_reads_only_the_window(self, minute, decode_counter):
        from _av_toys import tiny_processor
        from conftest import tiny_config

        from tvlt.inputs_tvlt import AudioVisualClip, TvltClipPreparer

        TvltClipPreparer(tiny_processor(), tiny_config())(AudioVisualClip(video=str(minute), start=50.0))
        assert decode_counter.audio_packets[str(minute)] < 2 * 44100 / 1024
        assert decode_counter.frames[str(minute)] <= 30


class TestLoadAudio:
    @pytest.mark.parametrize("suffix", [".wav", ".flac"])
    def test_audio_files(self, tmp_path, suffix):
        tone = stereo_tone(22050, 22050)
        path = tmp_path / f"tone{suffix}"
        soundfile.write(path, tone.T, 22050, subtype="FLOAT" if suffix == ".wav" else "PCM_24")
        waveform, rate = load_audio(path)
        assert rate == 22050 and waveform.dtype == np.float32
        np.testing.assert_allclose(waveform, tone.mean(axis=0), atol=1e-6 if suffix == ".wav" else 1e-5)
        stereo, _ = load_audio(path, mono=False)
        assert stereo.shape == (2, 22050)

    def test_mp3_file(self, tmp_path):
        path = tmp_path / "tone.mp3"
        tone = stereo_tone(44100, 44100)
        soundfile.write(path, tone.T, 44100, format="MP3")
        waveform, rate = load_audio(path)
        assert rate == 44100 and abs(len(waveform) - 44100) < 2048
        assert abs(np.sqrt(np.mean(waveform**2)) - np.sqrt(np.mean(tone.mean(0) ** 2))) < 0.02

    def test_int16_wav_is_scaled_to_unit_range(self, tmp_path):
        path = tmp_path / "pcm.wav"
        soundfile.write(path, (stereo_tone(1000, 16000)[0] * 32767).astype(np.int16), 16000, subtype="PCM_16")
        waveform, _ = load_audio(path)
        np.testing.assert_allclose(waveform, stereo_tone(1000, 16000)[0], atol=1e-4)

    def test_resampling_and_window(self, tmp_path):
        tone = stereo_tone(32000, 16000)
        path = tmp_path / "tone.wav"
        soundfile.write(path, tone.T, 16000, subtype="FLOAT")
        waveform, rate = load_audio(path, sampling_rate=44100)
        assert rate == 44100 and waveform.shape == (88200,)
        np.testing.assert_allclose(waveform, resample_audio(tone.mean(0), 16000, 44100), atol=1e-6)
        window, _ = load_audio(path, start=0.5, end=1.5)
        np.testing.assert_array_equal(window, load_audio(path)[0][8000:24000])

    def test_audio_track_of_a_video_file(self, mkv_lossless):
        path, tone = mkv_lossless
        waveform, rate = load_audio(path)
        assert rate == 44100
        np.testing.assert_allclose(waveform, tone.mean(0), atol=1e-4)

    def test_window_of_a_track_is_placed_within_the_container_timestamp_precision(self, mkv_lossless):
        path, tone = mkv_lossless
        waveform, _ = load_audio(path, start=0.5, end=1.0)
        assert waveform.shape == (22050,)
        # Matroska stamps audio blocks to the millisecond: the window may start up to half a millisecond off
        errors = {
            shift: np.abs(waveform - tone.mean(0)[22050 + shift : 44100 + shift]).max() for shift in range(-23, 24)
        }
        assert min(errors.values()) < 1e-4

    @pytest.mark.parametrize("start", [0.0, 0.3, 2.1, 6.05])
    def test_window_of_a_lapped_codec_equals_the_same_samples_of_a_full_decode(self, mp4_with_audio, start):
        """AAC frames overlap their neighbours: decoding right after a seek gets the first frame wrong unless the
        reader starts a pre-roll earlier."""
        path, _ = mp4_with_audio
        full, rate = load_audio(path)
        window, _ = load_audio(path, start=start, end=start + 1.0)
        first = round(start * rate)
        np.testing.assert_allclose(window, full[first : first + window.size], atol=1e-4)

    def test_video_without_audio_track_names_the_file(self, mp4_without_audio):
        with pytest.raises(MediaDecodingError, match=f"{mp4_without_audio}.*no audio track"):
            load_audio(mp4_without_audio)

    @pytest.mark.parametrize("start", [1e7, 50.0])
    def test_a_window_past_the_end_of_a_track_says_how_long_it_is(self, mp4_with_audio, tmp_path, start):
        """A huge start made the seek raise `OverflowError` in video containers (past the bound: refused)."""
        path, tone = mp4_with_audio
        wav = tmp_path / "tone.wav"
        soundfile.write(wav, tone.T, 44100)
        for media in (path, wav):
            with pytest.raises(MediaDecodingError, match=rf"{media.name}: no audio samples .* the audio lasts 10"):
                load_audio(media, start=start)
            with pytest.raises(ValueError, match="`start` must be a finite number of seconds from 0 to 10,000,000"):
                load_audio(media, start=1e20)

    def test_missing_and_corrupt_files(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="absent.wav"):
            load_audio(tmp_path / "absent.wav")
        corrupt = tmp_path / "corrupt.wav"
        corrupt.write_bytes(b"RIFF" + bytes(200))
        with pytest.raises(MediaDecodingError, match="corrupt.wav"):
            load_audio(corrupt)

    @pytest.mark.parametrize("missing", ["soundfile", "soxr"])
    def test_missing_audio_library_explains_how_to_install_it(self, tmp_path, monkeypatch, missing):
        path = tmp_path / "tone.wav"
        soundfile.write(path, stereo_tone(8000, 8000)[0], 8000)
        real_import = builtins.__import__

        def without(name, *args, **kwargs):
            if name == missing:
                raise ImportError(f"No module named '{missing}'")
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", without)
        with pytest.raises(ImportError, match=rf"needs `{missing}`: `pip install {missing}`"):
            load_audio(path, sampling_rate=16000)

    def test_resample_audio_validates_rates(self):
        with pytest.raises(ValueError, match="orig_sampling_rate"):
            resample_audio(np.zeros(10, np.float32), 0, 16000)


@pytest.mark.media
@needs_samples
class TestRealClips:
    def test_mosei_video_frames_match_a_full_decode(self):
        decoded = read_video(MOSEI_VIDEO, 8)
        assert decoded.total_num_frames == 149 and decoded.frames.shape == (8, 126, 126, 3)
        np.testing.assert_array_equal(decoded.frames, mosei_frames(8))

    def test_mosei_video_has_no_audio_track_but_its_wav_loads(self):
        with pytest.raises(MediaDecodingError, match="K0m1tO3Ybyc_2.mp4.*no audio track"):
            read_video(MOSEI_VIDEO, with_audio=True)
        waveform, rate = load_audio(MOSEI_AUDIO)
        assert rate == 16000 and waveform.shape == (78895,)

    def test_howto100m_decodes_only_what_it_needs(self, decode_counter, caplog):
        # The sample is cut after 58 s although its header declares 421 s: the reader finds where the data ends
        # and samples the decodable part, seeking instead of decoding the ~1750 frames it holds.
        started = time.perf_counter()
        with caplog.at_level(logging.WARNING):
            decoded = read_video(HOWTO100M_VIDEO, 8)
        elapsed = time.perf_counter() - started
        assert "probably truncated" in caplog.text
        assert decoded.frames.shape == (8, 360, 480, 3)
        assert decoded.total_num_frames == 1753
        assert decoded.frame_indices.tolist() == np.linspace(0, 1753, 8, endpoint=False).astype(int).tolist()
        assert decode_counter.frames[str(HOWTO100M_VIDEO)] < 1753 // 3
        print(f"HowTo100M: 8 frames in {elapsed:.2f} s, {decode_counter.frames[str(HOWTO100M_VIDEO)]} frames decoded")

    def test_howto100m_audio_track_and_window(self):
        decoded = read_video(HOWTO100M_VIDEO, 4, start=42.0, end=48.0, with_audio=True)
        assert decoded.frame_indices.tolist() == [1260, 1305, 1350, 1395]  # 4 of the window's 180 frames
        assert decoded.audio_sampling_rate == 44100 and decoded.audio.shape == (6 * 44100,)
        full, _ = load_audio(HOWTO100M_VIDEO)
        np.testing.assert_array_equal(decoded.audio, full[42 * 44100 : 48 * 44100])


def test_header_lengths_count_from_each_streams_own_start(tmp_path):
    """The one reader of header lengths (`header_seconds`), on a file whose streams do not start at 0 (MPEG-TS: video
    at 0.25 s, audio at 0.23 s here): what the header says agrees with the data `media_duration` finds, and the
    fallback to the file's length takes off where the stream starts after the file does."""
    import av

    from tvlt.media_tvlt import header_seconds, media_duration

    path = write_clip(tmp_path / "late.ts", moving_square_frames(30, seed=0), waveform=tone(300.0, 2.0, seed=0))
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.start_time > 0 and audio.start_time > 0  # the case under test
        assert header_seconds(container, video) == pytest.approx(media_duration(path, "video"), abs=1 / 8)
        assert header_seconds(container, audio) == pytest.approx(media_duration(path, "audio"), abs=0.05)
        whole = container.duration / 1_000_000
        assert header_seconds(container) == whole

    class Header:  # a stream whose header gives no length of its own: the file's is used
        duration, start_time, time_base = None, 22_500, Fraction(1, 90_000)

    class File:
        duration, start_time = 3_773_222, 226_778

    assert header_seconds(File(), Header()) == pytest.approx(3.773222 - (0.25 - 0.226778))
    File.duration = 0
    assert header_seconds(File(), Header()) is None
