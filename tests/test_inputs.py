"""`inputs_tvlt`: the padding collator and the per-clip time window (the pipeline, matcher, CLI and training share
them)."""

import logging
import re

import pytest
import torch
from _av_toys import moving_square_frames, save_tiny_checkpoint, tiny_processor, tone, write_clip
from conftest import tiny_config

from tvlt.inputs_tvlt import (
    AudioVisualClip,
    TvltClipPreparer,
    TvltDataCollator,
)


def example(num_frames: int, time: int, label=None, batch_dim: bool = True) -> dict:
    """A processor-like example: 32x32 frames in 8x8 patches (16 per frame), a 32-bin spectrogram in 8x8 patches."""
    values = {
        "pixel_values": torch.randn(num_frames, 3, 32, 32),
        "pixel_mask": torch.ones(num_frames * 16, dtype=torch.long),
        "audio_values": torch.rand(1, time, 32),
        "audio_mask": torch.ones(time // 8 * 4),
    }
    if batch_dim:
        values = {key: value[None] for key, value in values.items()}
    if label is not None:
        values["labels"] = label
    return values


def test_the_collator_pads_frames_and_time_and_masks_the_padding():
    short, long = example(2, 16, label=0), example(4, 40, label=1, batch_dim=False)
    batch = TvltDataCollator(audio_padding_value=-1.0)([short, long])
    assert batch["pixel_values"].shape == (2, 4, 3, 32, 32)
    assert batch["audio_values"].shape == (2, 1, 40, 32)
    torch.testing.assert_close(batch["pixel_values"][0, :2], short["pixel_values"][0])
    assert (batch["pixel_values"][0, 2:] == 0).all()
    assert (batch["audio_values"][0, :, 16:] == -1.0).all()
    assert batch["pixel_mask"].tolist() == [[1] * 32 + [0] * 32, [1] * 64]
    assert batch["audio_mask"].tolist() == [[1.0] * 8 + [0.0] * 12, [1.0] * 20]
    assert batch["pixel_mask"].dtype == torch.long and batch["audio_mask"].dtype == torch.float32
    assert batch["labels"].tolist() == [0, 1] and batch["labels"].dtype == torch.long


def test_the_collator_pads_exactly_like_a_plain_loop():
    """The batch `pad_sequence` builds is the one a `torch.full` + copy loop builds: values, dtype, layout."""

    def padded(tensors, axis, value):
        shape = [len(tensors), *tensors[0].shape]
        shape[axis + 1] = max(tensor.shape[axis] for tensor in tensors)
        batch = torch.full(shape, value, dtype=tensors[0].dtype)
        for row, tensor in zip(batch, tensors, strict=True):
            row.narrow(axis, 0, tensor.shape[axis]).copy_(tensor)
        return batch

    generator = torch.Generator().manual_seed(0)
    videos = [torch.randn(frames, 3, 8, 8, generator=generator) for frames in (3, 1, 2)]
    spectrograms = [torch.rand(2, time, 16, generator=generator).half() for time in (16, 40, 24)]  # two channels
    masks = [torch.ones(patches, dtype=torch.long) for patches in (12, 4, 8)]
    examples = [
        {"pixel_values": video, "pixel_mask": mask, "audio_values": spectrogram, "audio_mask": mask.bool()}
        for video, mask, spectrogram in zip(videos, masks, spectrograms, strict=True)
    ]
    examples[1]["audio_values"] = examples[1]["audio_values"].float()  # the first example's dtype wins
    batch = TvltDataCollator(audio_padding_value=-1.0)(examples)
    expected = {
        "pixel_values": padded(videos, 0, 0.0),
        "pixel_mask": padded(masks, 0, 0),
        "audio_values": padded([example["audio_values"] for example in examples], 1, -1.0),
        "audio_mask": padded([mask.bool() for mask in masks], 0, 0),
    }
    for key, value in expected.items():
        assert batch[key].dtype == value.dtype and batch[key].is_contiguous(), key
        assert torch.equal(batch[key], value), key


@pytest.mark.parametrize(
    "labels, shape, dtype",
    [
        ([0.5, -1.0], (2,), torch.float32),
        ([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], (2, 3), torch.float32),
        ([torch.tensor(2), torch.tensor(0)], (2,), torch.int64),
        ([torch.tensor([[0.1, 0.2]]), torch.tensor([[0.3, 0.4]])], (2, 2), torch.float32),
    ],
)
def test_the_collator_stacks_labels_of_every_head_type(labels, shape, dtype):
    batch = TvltDataCollator()([example(2, 16, label=label) for label in labels])
    assert batch["labels"].shape == shape and batch["labels"].dtype == dtype


def test_padding_leaves_the_model_output_unchanged():
    from tvlt import TvltForAudioVisualClassification

    torch.manual_seed(0)
    model = TvltForAudioVisualClassification(tiny_config(num_labels=3)).eval()
    short, long = example(2, 16), example(4, 40)
    batch = TvltDataCollator()([short, long])
    with torch.no_grad():
        alone = model(**short).logits
        padded = model(**batch).logits[:1]
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "examples, message",
    [
        ([], "got no examples"),
        ([example(2, 16), {"pixel_values": torch.zeros(1, 2, 3, 32, 32)}], "has keys"),
        ([example(2, 16), {**example(2, 16), "pixel_values": torch.zeros(1, 2, 3, 16, 16)}], "may differ only"),
        (
            [{"pixel_values": torch.zeros(2, 3, 32, 32)}, {"pixel_values": torch.zeros(3, 3, 32, 32)}],
            "need `pixel_mask`",
        ),
        ([{"pixel_values": torch.zeros(3, 32, 32)}], "must be 4-D"),
        ([example(2, 16, label="a"), example(2, 16, label=[1, 2])], "`labels` cannot be stacked"),
        ([{**example(2, 16), "flag": 1}, {**example(2, 16), "flag": 2}], "cannot batch `flag`"),
    ],
)
def test_the_collator_refuses_what_it_cannot_batch(examples, message):
    with pytest.raises(ValueError, match=message):
        TvltDataCollator()(examples)


def test_flags_shared_by_the_batch_pass_through():
    batch = TvltDataCollator()([{**example(2, 16), "mask_audio": True}, {**example(3, 24), "mask_audio": True}])
    assert batch["mask_audio"] is True


def test_from_processor_pads_like_the_feature_extractor():
    processor = tiny_processor()
    assert TvltDataCollator.from_processor(processor).audio_padding_value == processor.feature_extractor.padding_value
    processor.preprocessing_mode = "original"
    assert TvltDataCollator.from_processor(processor).audio_padding_value == -1.0


@pytest.mark.parametrize("mode", ["transformers", "original"])
def test_the_window_gives_at_most_the_audio_the_model_takes(tmp_path, mode):
    processor = tiny_processor()
    processor.preprocessing_mode = mode
    config = tiny_config()
    preparer = TvltClipPreparer(processor, config)
    clip = write_clip(tmp_path / "long.mp4", moving_square_frames(24), waveform=tone(500.0, 3.0))
    for start in (None, 0.5, 1.25):
        inputs = preparer(AudioVisualClip(video=str(clip), start=start))
        assert inputs["audio_values"].shape[2] == config.spectrogram_length  # filled, not more
        assert inputs["pixel_values"].shape[1] == config.num_frames
    # a waveform at another rate is cut to the same span, then resampled by the feature extractor
    waveform = tone(500.0, 3.0, sampling_rate=16000)
    from_array = preparer(AudioVisualClip(video=str(clip), audio=waveform, sampling_rate=16000))
    assert from_array["audio_values"].shape[2] == config.spectrogram_length


def test_a_longer_explicit_window_samples_frames_over_all_of_it(tmp_path):
    from tvlt.media_tvlt import read_video

    processor = tiny_processor()
    preparer = TvltClipPreparer(processor, tiny_config())
    clip = write_clip(tmp_path / "long.mp4", moving_square_frames(24), waveform=tone(500.0, 3.0))
    inputs = preparer(AudioVisualClip(video=str(clip), start=0.0, end=2.9))
    assert inputs["audio_values"].shape[2] == tiny_config().spectrogram_length  # the audio is still capped
    frames = read_video(str(clip), 4, end=2.9).frames  # frames 0, 5, 11, 17 of 24 (8 fps)
    expected = processor(videos=[frames], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(inputs["pixel_values"], expected)
    default_window = preparer(AudioVisualClip(video=str(clip)))["pixel_values"]
    assert not torch.equal(default_window, expected)


# -- what the clip preparer says: window notices and audio errors ----------------------------------------------------


@pytest.fixture
def notices(caplog):
    """The preparer's notices of this test alone (each kind is said once per process; conftest forgets them)."""
    caplog.set_level(logging.WARNING, logger="tvlt.inputs_tvlt")
    return caplog


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """3 s at 8 fps with a tone: longer than the tiny model's 0.75 s of audio."""
    folder = tmp_path_factory.mktemp("clips")
    return write_clip(folder / "long.mp4", moving_square_frames(24), waveform=tone(500.0, 3.0))


def test_the_default_window_notice_names_the_window_used_from_start(long_clip, notices):
    """It said `[0, end)` whatever the start, and printed the window's end as the model's audio span."""
    preparer = TvltClipPreparer(tiny_processor(), tiny_config())
    preparer(AudioVisualClip(video=str(long_clip), start=1.25))
    preparer(AudioVisualClip(video=str(long_clip), start=0.5))  # said once
    assert len(notices.records) == 1, notices.text
    assert f"{long_clip} lasts 3 s; TVLT read [1.25 s, 1.999 s) of it" in notices.text
    assert not re.search(r"\d\.\d{4,}", notices.text)  # to the millisecond


def test_the_notice_quotes_a_truncated_files_decodable_length(long_clip, tmp_path, notices):
    """It quoted the length the header declares."""
    import av

    truncated = tmp_path / "truncated.mp4"
    with av.open(str(long_clip)) as source, av.open(str(truncated), "w", options={"movflags": "faststart"}) as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.7)])
    preparer = TvltClipPreparer(tiny_processor(), tiny_config())
    preparer(AudioVisualClip(video=str(truncated)))
    lasts = float(re.search(r"lasts ([\d.]+) s", notices.text).group(1))
    assert 1.0 < lasts < 2.9, notices.text


def test_windows_longer_than_the_models_audio_are_said_once_and_sub_patch_overshoots_never(long_clip, notices):
    """Fine-tuning warned once per CSV window that overshot the model's audio by 0.02 s."""
    preparer = TvltClipPreparer(tiny_processor(), tiny_config())
    span, patch = preparer.max_audio_seconds, preparer.audio_patch_seconds
    for start in (0.0, 0.1, 0.2):
        preparer(AudioVisualClip(video=str(long_clip), start=start, end=start + span + 0.02))
    assert notices.text == ""
    for start in (0.0, 0.1, 0.2):
        preparer(AudioVisualClip(video=str(long_clip), start=start, end=start + span + 2 * patch))
    assert len(notices.records) == 1
    assert "The time window [0 s, 0.935 s) of" in notices.text and "audio after 0.749 s is not used" in notices.text


@pytest.mark.parametrize("where", ["file", "own track", "waveform"])
def test_too_short_audio_names_its_source_not_the_feature_extractors_argument(tmp_path, where):
    """`--audio short.wav` said "`raw_speech`: the clip is too short"."""
    import soundfile

    from tvlt.inputs_tvlt import ClipAudioError

    short = tone(500.0, 0.005)  # under the 512 samples 4.40.2 needed for one STFT frame
    preparer = TvltClipPreparer(tiny_processor(), tiny_config())
    video = write_clip(tmp_path / "video.mp4", moving_square_frames(8))
    if where == "file":
        soundfile.write(tmp_path / "short.wav", short, 44100)
        clip, source, path = AudioVisualClip(video=str(video), audio=str(tmp_path / "short.wav")), "short.wav", True
    elif where == "own track":
        # AAC decodes whole 1024-sample frames: a 5 ms window keeps the track under 512 samples
        own = write_clip(tmp_path / "own.mp4", moving_square_frames(8), waveform=short)
        clip, source, path = AudioVisualClip(video=str(own), end=0.005), "the audio track of .*own.mp4", True
    else:
        clip, source, path = (
            AudioVisualClip(video=str(video), audio=short, sampling_rate=44100),
            "the audio wave",
            False,
        )
    window = r"\[0 s, 0.005 s\)" if where == "own track" else r"\[0 s, 0.749 s\)"
    with pytest.raises(ClipAudioError, match=rf"{source}.*: the audio in {window} is too short") as error:
        preparer(clip)
    assert "raw_speech" not in str(error.value)
    assert (error.value.path is not None) == path


def test_the_command_line_names_the_audio_option_and_file(tmp_path, capsys):
    import soundfile

    from tvlt.cli import main

    repo = save_tiny_checkpoint(tmp_path / "repo")
    clip = write_clip(tmp_path / "clip.mp4", moving_square_frames(8), waveform=tone(440.0, 1.0))
    soundfile.write(tmp_path / "short.wav", tone(500.0, 0.005), 44100)
    (tmp_path / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    capsys.readouterr()
    cases = {
        "short.wav": r"--audio \S*short.wav: the audio in \[0 s, 0.749 s\) is too short",
        "gone.wav": r"--audio \S*gone.wav is a symbolic link to \S*nowhere.wav, which does not exist",
        "absent.wav": r"--audio \S*absent.wav: no such audio file",
    }
    for name, message in cases.items():
        assert main(["predict", str(clip), "--audio", str(tmp_path / name), "--model", str(repo)]) == 2
        error = capsys.readouterr().err.strip()
        assert re.fullmatch(rf"tvlt predict: error: {message}.*", error), error
        assert "raw_speech" not in error


@pytest.mark.parametrize("start", [1e20, 1e300])
def test_a_start_past_the_bound_is_refused_naming_it(long_clip, start):
    """Past 2**53 s adding the model's span left `end == start`: "`end` must be after `start`"."""
    preparer = TvltClipPreparer(tiny_processor(), tiny_config())
    with pytest.raises(ValueError, match=r"`start` must be a finite number of seconds from 0 to 10,000,000"):
        preparer(AudioVisualClip(video=str(long_clip), start=start))


@pytest.mark.parametrize("window", [{"start": float("inf")}, {"end": float("inf")}, {"start": float("nan")}])
def test_non_finite_windows_are_refused_naming_the_bound(window):
    """inf went through and failed later with `OverflowError`."""
    name = next(iter(window))
    with pytest.raises(ValueError, match=rf"`{name}` must be a finite number of seconds from 0 to 10,000,000"):
        AudioVisualClip.from_input("clip.mp4", **window)
