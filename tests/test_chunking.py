"""Long videos through the pipeline: `chunk_length_s`/`stride_length_s` windows, their results and aggregate, what is
decoded per window, and the stream lengths the windows are planned from (`media_tvlt.media_duration`).

Tiny random checkpoints and generated clips; the truncated HowTo100M sample runs in the `media` tests.
"""

import numpy as np
import pytest
import torch
from _av_toys import load_classifier as load
from _av_toys import (
    moving_square_frames,
    save_tiny_checkpoint,
    tiny_processor,
    tone,
    write_clip,
    write_edge_clips,
    write_long_clip,
)
from _preprocessing_utils import DecodeCounter, write_video
from conftest import SAMPLES, requires_path

from tvlt.inputs_tvlt import AudioVisualClip, check_chunking
from tvlt.media_tvlt import media_duration


av = pytest.importorskip("av")

HOWTO = SAMPLES / "howto100m" / "mg7Q4o9bNN0.mp4"
# a processor and model that take ~11.9 s of audio (1024 spectrogram frames), so that a 3-minute clip is 16 windows
LONG_SPECTROGRAM = 1024


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    return {
        # 3 s: 24 frames at 8 fps and 3 s of sound, four windows of the tiny model's 0.75 s
        "clip": write_clip(folder / "clip.mp4", moving_square_frames(24), waveform=tone(440.0, 3.0)),
        **write_edge_clips(folder, silent_frames=24),
        # 3 minutes, a keyframe every second (long keyframe intervals make the frame reader re-seek, see the report)
        "long": write_long_clip(folder / "long.mp4", 180.0),
    }


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    repos = {kind: save_tiny_checkpoint(root / kind, kind) for kind in ("classification", "multi_label", "regression")}
    long_span = save_tiny_checkpoint(root / "long_span", "classification", spectrogram_length=LONG_SPECTROGRAM)
    processor = tiny_processor()
    processor.feature_extractor.spectrogram_length = LONG_SPECTROGRAM
    processor.save_pretrained(long_span)
    repos["long_span"] = long_span
    return repos


@pytest.fixture(scope="module")
def classifier(checkpoints):
    return load(checkpoints["classification"])


def spans(result) -> list[tuple[float, float]]:
    return [(window["start"], window["end"]) for window in result["windows"]]


def scores_by_label(predictions) -> dict:
    return {item["label"]: item["score"] for item in predictions}


# -- windows ----------------------------------------------------------------------------------------------------------


def test_without_chunk_length_the_output_is_unchanged(checkpoints, classifier, media):
    clip = str(media["clip"])
    plain = classifier(clip, top_k=None)
    assert isinstance(plain, list) and plain == classifier(clip, top_k=None, chunk_length_s=None)
    assert classifier(clip, top_k=None, chunk_length_s=0) == plain
    chunking = load(checkpoints["classification"], chunk_length_s=0.7, stride_length_s=0.1)
    assert set(chunking(clip)) == {"windows", "aggregate"}
    assert chunking(clip, top_k=None, chunk_length_s=None) == plain  # a call switches off the pipeline's default


def test_one_clip_without_chunking_is_not_sent_through_data_loader_workers(classifier, media):
    # the plain single-input path: no worker process for one clip, and its errors as raised
    with pytest.raises(FileNotFoundError) as error:
        classifier(str(media["clip"].parent / "missing.mp4"), num_workers=2)
    assert str(error.value).endswith("missing.mp4: no such video file.")


def test_a_call_completes_the_chunking_given_to_pipeline(checkpoints, media):
    chunking = load(checkpoints["classification"], chunk_length_s=0.7, stride_length_s=0.1)
    assert spans(chunking(str(media["clip"])))[:2] == [(0.0, 0.7), (0.5, 1.2)]
    assert spans(chunking(str(media["clip"]), stride_length_s=0.0))[:2] == [(0.0, 0.7), (0.7, 1.4)]
    assert spans(chunking(str(media["clip"]), chunk_length_s=0.5))[:2] == [(0.0, 0.5), (0.3, 0.8)]
    with pytest.raises(ValueError, match=r"`stride_length_s` \(0.35 s left \+ 0.35 s right\) must be shorter"):
        chunking(str(media["clip"]), stride_length_s=0.35)
    with pytest.raises(ValueError, match="`stride_length_s` needs `chunk_length_s`"):
        load(checkpoints["classification"])(str(media["clip"]), stride_length_s=0.1)


@pytest.mark.parametrize(
    "chunk_length_s, stride_length_s, expected",
    [
        (0.5, None, [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, 2.0), (2.0, 2.5), (2.5, 3.0)]),
        # the tail is covered by a last window of full length, moved back to end where the clip ends
        (0.7, None, [(0.0, 0.7), (0.7, 1.4), (1.4, 2.1), (2.1, 2.8), (2.3, 3.0)]),
        # as in speech recognition: the stride is shared with each neighbour, windows start every 0.7 - 2 * 0.1 s
        (0.7, 0.1, [(0.0, 0.7), (0.5, 1.2), (1.0, 1.7), (1.5, 2.2), (2.0, 2.7), (2.3, 3.0)]),
        (0.7, (0.1, 0.2), [(0.0, 0.7), (0.4, 1.1), (0.8, 1.5), (1.2, 1.9), (1.6, 2.3), (2.0, 2.7), (2.3, 3.0)]),
    ],
)
def test_windows_cover_the_clip_and_the_last_one_ends_at_its_end(
    classifier, media, chunk_length_s, stride_length_s, expected
):
    clip = AudioVisualClip(video=str(media["clip"]))
    assert classifier.clip_preparer.chunk_windows(clip, chunk_length_s, stride_length_s) == expected


def test_the_results_carry_their_windows(classifier, media):
    result = classifier(str(media["clip"]), chunk_length_s=0.7, stride_length_s=0.1)
    assert spans(result) == [(0.0, 0.7), (0.5, 1.2), (1.0, 1.7), (1.5, 2.2), (2.0, 2.7), (2.3, 3.0)]


def test_auto_windows_are_as_long_as_the_audio_the_model_takes(classifier, media):
    span = classifier.clip_preparer.max_audio_seconds
    assert span == pytest.approx(0.7488, abs=1e-4)  # 64 spectrogram frames of the tiny model, hop 512 at 44.1 kHz
    windows = spans(classifier(str(media["clip"]), chunk_length_s="auto"))
    assert [end - start for start, end in windows] == pytest.approx([int(span * 1e6) / 1e6] * 5, abs=1e-9)
    assert windows[0][0] == 0.0 and windows[-1][1] == 3.0 and len(windows) == 5
    # a clip shorter than one window is one window: the whole clip
    assert spans(classifier(str(media["short"]), chunk_length_s="auto")) == [(0.0, 0.25)]


def test_the_clip_window_and_the_shorter_of_video_and_audio_bound_the_windows(classifier, media):
    def windows(**clip):
        return classifier.clip_preparer.chunk_windows(AudioVisualClip(**clip), 0.5)

    assert windows(video=str(media["clip"]), start=1.0, end=2.2) == [(1.0, 1.5), (1.5, 2.0), (1.7, 2.2)]
    # a 0.6 s audio file with a 3 s video, and a 1.3 s waveform
    assert windows(video=str(media["silent"]), audio=str(media["speech"])) == [(0.0, 0.5), (0.1, 0.6)]
    waveform = tone(300.0, 1.3, sampling_rate=16000)
    assert windows(video=str(media["silent"]), audio=waveform, sampling_rate=16000) == [
        (0.0, 0.5),
        (0.5, 1.0),
        (0.8, 1.3),
    ]
    # the same through the pipeline, with the windows' own audio
    with_speech = classifier({"video": str(media["silent"]), "audio": str(media["speech"])}, chunk_length_s=0.5)
    assert spans(with_speech) == [(0.0, 0.5), (0.1, 0.6)]


# -- results ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["classification", "multi_label", "regression"])
def test_each_window_is_the_pipeline_on_that_window_and_the_aggregate_their_mean(checkpoints, media, kind):
    classifier = load(checkpoints[kind])
    clip = str(media["clip"])
    result = classifier(clip, chunk_length_s=0.7, top_k=None)
    for window in result["windows"]:
        assert window["predictions"] == classifier(clip, start=window["start"], end=window["end"], top_k=None)
    per_window = [scores_by_label(window["predictions"]) for window in result["windows"]]
    expected = {label: np.mean([scores[label] for scores in per_window]) for label in per_window[0]}
    assert scores_by_label(result["aggregate"]) == pytest.approx(expected, abs=1e-6)
    ranked = [item["score"] for item in result["aggregate"]]
    if kind == "regression":
        assert [item["label"] for item in result["aggregate"]] == ["sentiment"]
    else:
        assert ranked == sorted(ranked, reverse=True)
        assert len({tuple(scores.values()) for scores in per_window}) > 1  # the windows really differ
    if kind == "classification":
        assert sum(ranked) == pytest.approx(1.0, abs=1e-5)  # a mean of distributions is one


def test_top_k_and_function_to_apply_hold_for_windows_and_aggregate(classifier, media):
    clip = {"video": str(media["clip"]), "end": 1.5}
    everything = classifier(clip, chunk_length_s=0.5, top_k=None)
    top = classifier(clip, chunk_length_s=0.5, top_k=1)
    assert top["aggregate"] == everything["aggregate"][:1]
    assert [w["predictions"] for w in top["windows"]] == [w["predictions"][:1] for w in everything["windows"]]
    logits = classifier(clip, chunk_length_s=0.5, top_k=None, function_to_apply="none")
    window_logits = [scores_by_label(w["predictions"]) for w in logits["windows"]]
    mean = {label: np.mean([scores[label] for scores in window_logits]) for label in window_logits[0]}
    assert scores_by_label(logits["aggregate"]) == pytest.approx(mean, abs=1e-6)


def test_batched_windows_and_lists_of_clips_match_one_by_one(classifier, media):
    clips = [str(media["clip"]), {"video": str(media["clip"]), "start": 1.0, "end": 2.2}, str(media["short"])]
    one_by_one = [classifier(clip, chunk_length_s=0.7, top_k=None) for clip in clips]
    # 5 + 2 + 1 windows in batches of 3: batches mix the windows of consecutive clips
    batched = classifier(clips, chunk_length_s=0.7, top_k=None, batch_size=3)
    assert len(batched) == len(clips)
    for got, expected in zip(batched, one_by_one, strict=True):
        assert spans(got) == spans(expected)
        for got_window, expected_window in zip(got["windows"], expected["windows"], strict=True):
            assert scores_by_label(got_window["predictions"]) == pytest.approx(
                scores_by_label(expected_window["predictions"]), abs=1e-5
            )
        assert scores_by_label(got["aggregate"]) == pytest.approx(scores_by_label(expected["aggregate"]), abs=1e-5)


# -- bad arguments ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(chunk_length_s=-1), "`chunk_length_s` must be a positive finite number of seconds"),
        (dict(chunk_length_s=float("inf")), "`chunk_length_s` must be a positive finite"),
        (dict(chunk_length_s=float("nan")), "`chunk_length_s` must be a positive finite"),
        (dict(chunk_length_s=True), "`chunk_length_s` must be a positive finite"),
        (dict(chunk_length_s="long"), "`chunk_length_s` must be a positive finite"),
        (dict(chunk_length_s=0.5, stride_length_s=-0.1), "`stride_length_s` must be a non-negative finite"),
        (dict(chunk_length_s=0.5, stride_length_s=(0.1,)), "`stride_length_s` must be a non-negative finite"),
        (dict(chunk_length_s=0.5, stride_length_s=float("inf")), "`stride_length_s` must be a non-negative finite"),
        (dict(stride_length_s=0.1), "`stride_length_s` needs `chunk_length_s`"),
        (dict(chunk_length_s=0.5, stride_length_s=0.25), r"`stride_length_s` \(0.25 s left \+ 0.25 s right\) must be"),
        (dict(chunk_length_s="auto", stride_length_s=0.4), "must be shorter than `chunk_length_s` \\(0.749 s\\)"),
        (dict(chunk_length_s=1.0), r"`chunk_length_s` \(1.0\) is longer than the 0.749 s of audio this model takes"),
        (dict(chunk_length_s=0.05), r"`chunk_length_s` \(0.05\) is shorter than the 0.093 s of audio that make one"),
    ],
)
def test_bad_chunking_arguments_raise_a_clear_error(classifier, media, kwargs, message):
    with pytest.raises(ValueError, match=message):
        classifier(str(media["clip"]), **kwargs)


def test_bad_chunking_is_refused_when_the_pipeline_is_made(checkpoints):
    with pytest.raises(ValueError, match="`chunk_length_s` must be a positive finite"):
        load(checkpoints["classification"], chunk_length_s=-2)


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda m: {"video": moving_square_frames(8), "audio": str(m["speech"])}, "needs the video as a file"),
        (lambda m: {"video": str(m["clip"]), "start": 5.0}, r"`start` \(5.0\) is at or after the end of the clip"),
    ],
)
def test_clips_that_cannot_be_windowed_raise_a_clear_error(classifier, media, make_input, message):
    with pytest.raises(ValueError, match=message):
        classifier(make_input(media), chunk_length_s=0.5)


def test_check_chunking_returns_the_stride_pair():
    assert check_chunking(None) == (None, (0.0, 0.0))
    assert check_chunking(24, 2) == (24.0, (2.0, 2.0))
    assert check_chunking("auto", (1, 3)) == ("auto", (1.0, 3.0))


# -- what is decoded --------------------------------------------------------------------------------------------------


class WindowLog:
    """Wraps the pipeline's clip preparer, so that each decoded frame can be traced to the window being read."""

    def __init__(self, preparer, counter: DecodeCounter):
        self._preparer, self._counter = preparer, counter
        self.windows: list[tuple[float, float, int]] = []  # start, end, index of its first decoded frame

    def __getattr__(self, name):
        return getattr(self._preparer, name)

    def __call__(self, clip: AudioVisualClip):
        self.windows.append((clip.start, clip.end, len(self._counter.decoded)))
        return self._preparer(clip)

    def decoded_per_window(self):
        bounds = [first for _, _, first in self.windows] + [len(self._counter.decoded)]
        for (start, end, _), first, stop in zip(self.windows, bounds, bounds[1:]):
            yield start, end, self._counter.decoded[first:stop]


def test_only_each_windows_frames_and_audio_are_decoded(checkpoints, media, monkeypatch):
    classifier = load(checkpoints["long_span"])
    counter = DecodeCounter(av)
    monkeypatch.setattr(av, "open", counter)
    log = WindowLog(classifier.clip_preparer, counter)
    monkeypatch.setattr(classifier, "clip_preparer", log)

    result = classifier(str(media["long"]), chunk_length_s="auto", batch_size=4)

    assert len(result["windows"]) == len(log.windows) == 16  # 180 s in windows of ~11.9 s
    assert counter.decoded[: log.windows[0][2]] == []  # planning the windows decodes nothing
    fps, num_frames, keyframe_interval = 4, 4, 1.0
    total_video = 0
    for start, end, decoded in log.decoded_per_window():
        video = [seconds for _, kind, seconds in decoded if kind == "video"]
        audio = [seconds for _, kind, seconds in decoded if kind == "audio"]
        # each sampled frame is reached from the keyframe before it, at most a second earlier
        assert len(video) <= num_frames * (keyframe_interval * fps + 1), (start, len(video))
        assert start - keyframe_interval - 1 / fps <= min(video) and max(video) < end, (start, end)
        # the audio of the window, from half a second of pre-roll on (AAC frames of 64 ms at 16 kHz)
        assert start - 0.5 - 0.07 <= min(audio) and max(audio) < end, (start, end)
        assert len(audio) <= (end - start + 0.5 + 2 * 0.07) * 16000 / 1024, (start, len(audio))
        total_video += len(video)
    # a whole decode would be 720 frames: each window decodes at most 20
    assert total_video <= 16 * num_frames * 5 < 720


# -- stream lengths ---------------------------------------------------------------------------------------------------


def test_media_duration_reads_the_stream_lengths_without_decoding(media, tmp_path, monkeypatch):
    counter = DecodeCounter(av)
    monkeypatch.setattr(av, "open", counter)
    assert media_duration(media["long"]) == pytest.approx(180.0)
    assert media_duration(media["long"], "audio") == pytest.approx(180.0, abs=0.07)
    assert media_duration(media["speech"], "audio") == pytest.approx(0.6)  # soundfile: exact
    assert media_duration(media["silent"], "audio") is None
    assert media_duration(media["speech"], "video") is None
    assert counter.decoded == []
    with pytest.raises(ValueError, match="`stream_type` must be 'video' or 'audio'"):
        media_duration(media["long"], "subtitles")


def test_media_duration_of_a_truncated_file_is_where_its_data_ends(tmp_path):
    whole = tmp_path / "whole.mp4"
    write_video(whole, num_frames=300, fps=30, gop_size=15, audio_codec="aac")  # 10 s, index at the start
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert media_duration(whole) == pytest.approx(10.0)
    assert 2.0 < media_duration(cut) < 9.0  # the header still declares 10 s
    assert 2.0 < media_duration(cut, "audio") < 9.0


@pytest.mark.media
@requires_path(SAMPLES, "the real sample clips")
def test_the_truncated_howto100m_clip_is_windowed_up_to_where_its_data_ends(classifier):
    # the header declares 421 s; video data ends at 58.43 s, audio at 58.31 s
    assert media_duration(HOWTO) == pytest.approx(58.433, abs=1e-3)
    result = classifier(str(HOWTO), start=55.5, chunk_length_s=0.7)
    windows = spans(result)
    assert windows[0] == (55.5, 56.2) and windows[-1][1] == pytest.approx(58.305, abs=1e-3)
    assert all(end - start == pytest.approx(0.7) for start, end in windows) and len(windows) == 5
    assert torch.isfinite(torch.tensor([item["score"] for item in result["aggregate"]])).all()
