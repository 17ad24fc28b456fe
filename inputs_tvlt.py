# Copyright 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""Audio-visual clips as people give them, turned into TVLT model inputs and padded batches.

Hub code file (one of `remote_code_tvlt.CODE_FILES`; relative imports only), shared by the
`audio-visual-classification` pipeline (`pipeline_tvlt.py`), the matching/retrieval helpers (`retrieval_tvlt.py`), the
`tvlt` command line and the fine-tuning example.

A clip is a video and an audio:

- a video file path alone: the frames and the file's own audio track;
- `{"video": path_or_frames, "audio": path_or_waveform, "sampling_rate": sr}`: frames from a file or given as an
  array `(T, H, W, 3)` / a list of images, audio from a file (an audio file or another video's track) or a waveform
  at `sampling_rate` Hz; optional `"start"`/`"end"` (seconds) pick a time window of the files and waveforms.

TVLT takes a bounded stretch of audio (`spectrogram_length` spectrogram frames of the model and the feature
extractor: about 24 s for TVLT-base, 12 s in the original preprocessing). [`TvltClipPreparer`] therefore reads one
window per clip, `[start, start + that span)` unless `end` says otherwise, and samples the video frames from the same
window, so that frames and sound describe the same moment; only that window is decoded from the files. A longer
clip is read as a series of such windows with [`TvltClipPreparer.chunk_windows`] (the pipeline's `chunk_length_s`).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from transformers.utils import logging

from .feature_extraction_tvlt import ORIGINAL_MAX_FRAMES, ORIGINAL_PADDING_VALUE, ORIGINAL_TIME_PADDING
from .media_tvlt import (
    MediaDecodingError,
    check_media_file,
    describe_window,
    format_seconds,
    has_audio_track,
    is_path,
    load_audio,
    media_duration,
    read_video,
    say_once,
)
from .media_tvlt import check_window as _check_window


logger = logging.get_logger(__name__)

CLIP_KEYS = ("video", "audio", "sampling_rate", "start", "end")
# `chunk_length_s="auto"`: windows as long as the audio the model takes
CHUNK_LENGTH_AUTO = "auto"

# Formats PIL opens that are videos rather than still images when they hold several frames.
_ANIMATED_IMAGE_FORMATS = {"GIF", "PNG", "WEBP", "MPO", "TIFF"}


class MissingAudioError(MediaDecodingError):
    """A clip has no audio: its video file has no audio track and no separate audio was given."""


class ClipAudioError(MediaDecodingError):
    """
    A clip's audio cannot be used: its file cannot be decoded, or the audio of the clip's window is empty or too short
    for TVLT. The message names the audio's source; `path` is the audio (or video) file, `None` for a waveform.
    """

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class AudioVisualClip:
    """
    One clip: a video and its audio, with an optional time window.

    Attributes:
        video (`str`, `np.ndarray`, `torch.Tensor` or list of frames):
            A video file path, or frames: `(T, H, W, 3)` / `(T, 3, H, W)` array or tensor, or a list of images.
        audio (`str`, `np.ndarray`, `torch.Tensor`, list of floats or `None`):
            An audio (or video) file path, a waveform (1-D mono or 2-D multi-channel), or `None` for the video file's
            own audio track.
        sampling_rate (`int`, *optional*):
            Sampling rate of a waveform `audio` in Hz (required for waveforms, ignored for files).
        start (`float`, *optional*), end (`float`, *optional*):
            Time window in seconds of the files and waveforms (frames given as arrays are used as they are).
    """

    video: Any
    audio: Any = None
    sampling_rate: int | None = None
    start: float | None = None
    end: float | None = None

    @classmethod
    def from_input(cls, item, *, start: float | None = None, end: float | None = None, argument: str = "inputs"):
        """
        Read one clip given as a video path or a `{"video", "audio", "sampling_rate", "start", "end"}` dict;
        `start`/`end` are defaults for a dict without them. Raises `ValueError`/`TypeError` naming `argument`.
        """
        if isinstance(item, (str, os.PathLike)):
            clip = cls(video=os.fspath(item), start=start, end=end)
        elif isinstance(item, Mapping):
            unknown = sorted(set(item) - set(CLIP_KEYS), key=str)
            if unknown:
                raise ValueError(
                    f"`{argument}`: unknown key(s) {unknown} in a clip dict; the keys are {list(CLIP_KEYS)}."
                )
            if item.get("video") is None:
                raise ValueError(
                    f"`{argument}`: a clip dict needs a `video` (a file path or frames); got keys "
                    f"{sorted(item, key=str)}."
                )
            video = item["video"]
            clip = cls(
                video=os.fspath(video) if isinstance(video, os.PathLike) else video,
                audio=os.fspath(item["audio"]) if isinstance(item.get("audio"), os.PathLike) else item.get("audio"),
                sampling_rate=item.get("sampling_rate"),
                start=item.get("start", start),
                end=item.get("end", end),
            )
        else:
            raise TypeError(
                f"`{argument}` must be a video file path or a dict {{'video': path_or_frames, 'audio': "
                f"path_or_waveform, 'sampling_rate': int}} (or a list of those); got {type(item).__name__}."
            )
        clip.validate(argument)
        return clip

    def validate(self, argument: str = "inputs") -> None:
        """Check types and the window; file paths must name existing files (raises `FileNotFoundError` etc.)."""
        check_window(self.start, self.end, argument)
        if is_path(self.video):
            check_video_file(self.video)
        else:
            _check_frames(self.video, argument)
        if self.audio is None:
            if not is_path(self.video):
                raise MissingAudioError(
                    f"`{argument}`: a clip given as frames needs its audio: add 'audio' (a file path, or a waveform "
                    "with 'sampling_rate')."
                )
        elif is_path(self.audio):
            check_audio_file(self.audio)
        else:
            check_sampling_rate(self.sampling_rate, f"{argument}: 'sampling_rate' of the waveform")


def check_window(start, end, argument: str = "window") -> None:
    """`start`/`end`: seconds from 0 to `media_tvlt.MAX_WINDOW_SECONDS` with `end > start`, or `None`."""
    _check_window(start, end, argument)


def check_chunking(chunk_length_s, stride_length_s=None) -> tuple[float | str | None, tuple[float, float]]:
    """
    Validate the chunking arguments of the pipeline (the names and meaning of transformers' speech-recognition
    pipeline): `chunk_length_s`, seconds per window, `"auto"` (what the model takes), or `None`/`0` (no chunking);
    `stride_length_s`, seconds each window shares with each neighbour, one number or a `(left, right)` pair
    (default 0). Windows start every `chunk_length_s - left - right` seconds.

    Returns:
        `(chunk_length_s or None, (left, right))`. Raises `ValueError` naming the argument.
    """
    if chunk_length_s is None or (_is_number(chunk_length_s) and chunk_length_s == 0):
        if stride_length_s is not None:
            raise ValueError(
                "`stride_length_s` needs `chunk_length_s` (seconds per window, or 'auto'); without it the clip is "
                "read as one window."
            )
        return None, (0.0, 0.0)
    if chunk_length_s != CHUNK_LENGTH_AUTO and not (
        _is_number(chunk_length_s) and math.isfinite(chunk_length_s) and chunk_length_s > 0
    ):
        raise ValueError(
            f"`chunk_length_s` must be a positive finite number of seconds, {CHUNK_LENGTH_AUTO!r} (as long as the "
            f"audio the model takes) or None (no chunking), got {chunk_length_s!r}."
        )
    if stride_length_s is None:
        stride = (0.0, 0.0)
    elif _is_number(stride_length_s):
        stride = (stride_length_s, stride_length_s)
    elif isinstance(stride_length_s, (tuple, list)) and len(stride_length_s) == 2:
        stride = tuple(stride_length_s)
    else:
        stride = None
    if stride is None or not all(_is_number(side) and math.isfinite(side) and side >= 0 for side in stride):
        raise ValueError(
            "`stride_length_s` must be a non-negative finite number of seconds or a (left, right) pair of them, got "
            f"{stride_length_s!r}."
        )
    stride = (float(stride[0]), float(stride[1]))
    if chunk_length_s != CHUNK_LENGTH_AUTO:
        _check_step(float(chunk_length_s), stride)
        chunk_length_s = float(chunk_length_s)
    return chunk_length_s, stride


def check_sampling_rate(sampling_rate, what: str = "sampling_rate") -> None:
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)) or sampling_rate <= 0:
        raise ValueError(
            f"`{what}` must be the waveform's sampling rate in Hz (a positive int), got {sampling_rate!r}; a waveform "
            "at the wrong rate gives silently wrong spectrograms."
        )


def check_video_file(path) -> str:
    """
    The path as a `str` if it names a video file; raises `FileNotFoundError`, `IsADirectoryError` or `ValueError` (a
    still image) with a one-line message otherwise.
    """
    path = check_media_file(path, "video")
    image_format = _still_image_format(path)
    if image_format is not None:
        raise ValueError(
            f"{path} is a still image ({image_format}), not a video; TVLT needs a video file, or frames and an audio "
            "passed as {'video': frames, 'audio': ..., 'sampling_rate': ...}."
        )
    return path


def check_audio_file(path) -> str:
    """The path as a `str` if it names a file; raises `FileNotFoundError` or `IsADirectoryError` otherwise."""
    return check_media_file(path, "audio")


class TvltClipPreparer:
    """
    Turns [`AudioVisualClip`]s into model inputs with a TVLT processor, reading only each clip's time window.

    Args:
        processor ([`TvltProcessor`]):
            The checkpoint's processor (its image processor and feature extractor settings are used).
        config ([`TvltConfig`], *optional*):
            The model's config: frames and audio are also capped to what the model takes (`num_frames`,
            `spectrogram_length`), in case the processor allows more.
    """

    def __init__(self, processor, config=None):
        self.processor = processor
        image_processor, feature_extractor = processor.image_processor, processor.feature_extractor
        self.original_mode = feature_extractor.preprocessing_mode == "original"
        self.num_frames = int(image_processor.num_frames)
        max_audio_frames = ORIGINAL_MAX_FRAMES if self.original_mode else int(feature_extractor.spectrogram_length)
        if config is not None:
            self.num_frames = min(self.num_frames, int(config.num_frames))
            model_frames = int(config.spectrogram_length)
            if self.original_mode:  # real frames plus the original's padding must fit
                model_frames = model_frames // ORIGINAL_TIME_PADDING * ORIGINAL_TIME_PADDING - 1
            max_audio_frames = min(max_audio_frames, model_frames)
        hop_length = int(feature_extractor.hop_length)
        # A centred STFT of n samples has 1 + n // hop frames, of which the "transformers" preprocessing drops the
        # last. Aim half a hop inside the frame count, so that resampling (a few samples more or less) keeps it.
        max_audio_samples = (max_audio_frames - (1 if self.original_mode else 0)) * hop_length + hop_length // 2
        self.max_audio_seconds = max_audio_samples / int(feature_extractor.sampling_rate)
        # Less audio than one patch of the model beyond that span changes nothing worth a word: the window warnings
        # leave such overshoots (e.g. a dataset's windows rounded up by a few milliseconds) unsaid.
        self.audio_patch_seconds = (
            int(feature_extractor.patch_size[0]) * hop_length / int(feature_extractor.sampling_rate)
        )

    @property
    def audio_padding_value(self) -> float:
        """The value the feature extractor pads spectrograms with (the collator pads batches with it too)."""
        return ORIGINAL_PADDING_VALUE if self.original_mode else float(self.processor.feature_extractor.padding_value)

    def window(self, start: float | None, end: float | None, source=None) -> tuple[float, float]:
        """
        The window read from files: `[start or 0, end)`, `end` defaulting to the audio span the model takes. A window
        longer than that span by more than one audio patch is said once per process (naming `source`, its file).
        """
        start = 0.0 if start is None else float(start)
        if end is None:
            end = start + self.max_audio_seconds
        elif end - start > self.max_audio_seconds + self.audio_patch_seconds:
            of = "" if not is_path(source) else f" of {os.fspath(source)}"
            say_once(
                logger,
                "window longer than the model's audio",
                f"The time window {describe_window(start, end)}{of} is longer than the "
                f"{format_seconds(self.max_audio_seconds)} s of audio this model takes: frames are sampled from the "
                f"whole window, audio after {format_seconds(start + self.max_audio_seconds)} s is not used (said once "
                "for all such windows).",
            )
        return start, float(end)

    def chunk_windows(self, clip: AudioVisualClip, chunk_length_s, stride_length_s=None) -> list[tuple[float, float]]:
        """
        The `[start, end)` windows (seconds) that cover a clip (its `start`/`end`, by default the whole files).

        Windows are `chunk_length_s` long (`"auto"`: the audio span the model takes; never more than that) and start
        every `chunk_length_s - left - right` seconds, `stride_length_s` being `(left, right)` or one number for both
        (see [`check_chunking`]). The tail is covered, not dropped: the last window is moved back to end where the
        clip ends, so that every window has the same length (a clip shorter than one window is one window). The clip
        ends where the shorter of its video and audio ends; their length is read from the containers, not decoded
        (see `media_tvlt.media_duration`).

        Raises `ValueError` naming the argument (`chunk_length_s`, `stride_length_s`, the clip's window), or for a
        video given as frames (they have no timestamps).
        """
        chunk, stride = check_chunking(chunk_length_s, stride_length_s)
        if chunk is None:
            raise ValueError("`chunk_length_s` is needed to cut a clip into windows.")
        # whole microseconds: window bounds that print as given, and "auto" never longer than the model's span
        model_us = math.floor(self.max_audio_seconds * _MICROSECONDS)
        if chunk == CHUNK_LENGTH_AUTO:
            chunk_us = model_us
        else:
            chunk_us = round(chunk * _MICROSECONDS)
            if chunk_us > model_us + 1:
                raise ValueError(
                    f"`chunk_length_s` ({chunk}) is longer than the {format_seconds(self.max_audio_seconds)} s of "
                    f"audio this model takes; use at most that, or {CHUNK_LENGTH_AUTO!r}."
                )
            chunk_us = min(chunk_us, model_us)
            if chunk < self.audio_patch_seconds:
                raise ValueError(
                    f"`chunk_length_s` ({chunk}) is shorter than the {self.audio_patch_seconds:.3f} s of audio "
                    "that make one audio patch, the least a window holds."
                )
        _check_step(chunk_us / _MICROSECONDS, stride)
        step_us = chunk_us - round(stride[0] * _MICROSECONDS) - round(stride[1] * _MICROSECONDS)
        begin = 0.0 if clip.start is None else float(clip.start)
        duration = _clip_duration(clip)
        end = duration if clip.end is None else min(float(clip.end), duration)
        if end <= begin:
            raise ValueError(
                f"`start` ({begin}) is at or after the end of the clip ({format_seconds(duration)} s): no window to "
                "read."
            )
        return _plan_windows(round(begin * _MICROSECONDS), math.floor(end * _MICROSECONDS), chunk_us, max(step_us, 1))

    def __call__(self, clip: AudioVisualClip) -> dict[str, torch.Tensor]:
        """
        Model inputs of one clip, each with a batch dimension of 1: `pixel_values` `(1, T, 3, H, W)`, `pixel_mask`
        `(1, T * patches_per_frame)`, `audio_values` `(1, 1, time, frequency)`, `audio_mask` `(1, audio_patches)`.

        Raises [`MissingAudioError`] when the video file has no audio track and no audio was given.
        """
        start, end = self.window(clip.start, clip.end, clip.video)
        audio_end = min(end, start + self.max_audio_seconds)
        duration = None
        if is_path(clip.video):
            decoded = read_video(clip.video, self.num_frames, allow_repeats=self.original_mode, start=start, end=end)
            frames = decoded.frames
            duration = decoded.total_num_frames / decoded.fps if decoded.fps else None
        else:
            frames = clip.video
        if clip.audio is None:
            audio, sampling_rate, source = clip.video, None, f"the audio track of {clip.video}"
        else:
            audio, sampling_rate = clip.audio, clip.sampling_rate
            source = os.fspath(audio) if is_path(audio) else "the audio waveform"
        inputs = self._video_inputs(frames)
        try:
            inputs.update(self._window_audio_inputs(audio, sampling_rate, start, audio_end, source))
        except ClipAudioError:
            if clip.audio is None and not has_audio_track(clip.video):
                raise MissingAudioError(
                    f"{clip.video}: the video has no audio track; give the audio separately, e.g. "
                    "{'video': path, 'audio': 'speech.wav'}."
                ) from None
            raise
        if clip.end is None and duration is not None:
            self._say_if_cut(clip.video, duration, start, end)
        return inputs

    def video_inputs(self, video, start: float | None = None, end: float | None = None) -> dict[str, torch.Tensor]:
        """`pixel_values` `(1, T, 3, H, W)` and `pixel_mask` of a video file (its window) or of frames."""
        if is_path(video):
            check_video_file(video)
            start, end = self.window(start, end, video)
            frames = read_video(video, self.num_frames, allow_repeats=self.original_mode, start=start, end=end).frames
        else:
            _check_frames(video, "video")
            frames = video
        return self._video_inputs(frames)

    def audio_inputs(
        self, audio, sampling_rate: int | None = None, start: float | None = None, end: float | None = None
    ) -> dict[str, torch.Tensor]:
        """`audio_values` `(1, 1, time, frequency)` and `audio_mask` of an audio/video file or a waveform (its
        window)."""
        start, end = self.window(start, end, audio)
        if is_path(audio):
            check_audio_file(audio)
            source = os.fspath(audio)
        else:
            check_sampling_rate(sampling_rate)
            source = "the audio waveform"
        return self._window_audio_inputs(audio, sampling_rate, start, min(end, start + self.max_audio_seconds), source)

    # -- steps --------------------------------------------------------------------------------------------------------

    def _window_audio_inputs(self, audio, sampling_rate, start: float, end: float, source: str) -> dict:
        """The audio inputs of `[start, end)` of a file or waveform; what goes wrong is a `ClipAudioError` naming
        `source` and the window, never the feature extractor's argument."""
        path = os.fspath(audio) if is_path(audio) else None
        try:
            waveform, sampling_rate = self._read_audio(audio, sampling_rate, start, end)
        except MediaDecodingError as error:
            if isinstance(error, ClipAudioError):
                raise
            raise ClipAudioError(str(error), path) from None
        try:
            return self._audio_inputs(waveform, sampling_rate)
        except ValueError as error:
            # "`raw_speech`: the clip is too short: ..." -> "speech.wav: the audio in [0 s, 23.22 s) is too short: ..."
            message = str(error).removeprefix("`raw_speech`: ").removeprefix("the clip ")
            raise ClipAudioError(
                f"{source}: the audio in {describe_window(start, end)} {message}"
                if message != str(error)
                else f"{source}, {describe_window(start, end)}: {message}",
                path,
            ) from None

    def _say_if_cut(self, path, duration: float, start: float, end: float) -> None:
        """Say (once per process) that a clip lasts longer than the window read by default."""
        if duration > end + self.audio_patch_seconds:
            say_once(
                logger,
                "clip longer than the model's audio",
                f"{path} lasts {format_seconds(duration)} s; TVLT read {describe_window(start, end)} of it, as much "
                "audio as this model takes. Pick the part with `start`/`end` (said once for all longer clips).",
            )

    def _read_audio(self, audio, sampling_rate, start: float, end: float) -> tuple[np.ndarray, int]:
        if is_path(audio):
            # load_audio seeks a pre-roll before `start`, so the window equals the same samples of a whole decode
            return load_audio(audio, start=start, end=end)
        if isinstance(audio, torch.Tensor):
            audio = audio.detach().cpu().numpy()
        waveform = np.asarray(audio)
        if waveform.ndim not in (1, 2) or waveform.size == 0:
            raise ValueError(
                f"`audio` must be a non-empty waveform, 1-D (mono) or 2-D (multi-channel), got shape {waveform.shape}."
            )
        first = round(start * sampling_rate)
        stop = round(end * sampling_rate)
        # the time axis of a 2-D clip is its long one, as the feature extractor reads it
        if waveform.ndim == 1:
            waveform = waveform[first:stop]
        elif waveform.shape[0] < waveform.shape[1]:
            waveform = waveform[:, first:stop]
        else:
            waveform = waveform[first:stop]
        if waveform.size == 0:
            raise ClipAudioError(f"the audio waveform has no samples in the window {describe_window(start, end)}.")
        return waveform, int(sampling_rate)

    def _video_inputs(self, frames) -> dict[str, torch.Tensor]:
        return dict(self.processor(videos=[frames], num_frames=self.num_frames, return_tensors="pt"))

    def _audio_inputs(self, waveform: np.ndarray, sampling_rate: int) -> dict[str, torch.Tensor]:
        return dict(self.processor(audio=[waveform], sampling_rate=sampling_rate, return_tensors="pt"))


class TvltDataCollator:
    """
    Pads and stacks TVLT examples into one batch (for `Trainer`, a `DataLoader` or the pipeline).

    Each example is a dict with any of `pixel_values` `([1,] T, 3, H, W)`, `pixel_mask` `([1,] T * patches_per_frame)`,
    `audio_values` `([1,] 1, time, frequency)`, `audio_mask` `([1,] audio_patches)` (with or without the leading batch
    dimension of 1 that the processor gives) and `labels` (an int class, a float target, or a vector for multi-label
    or multi-output regression). Videos are padded with zero frames up to the longest one and spectrograms along time
    with `audio_padding_value`; the padded frames and patches get 0 in their masks, so the model ignores them.

    Args:
        audio_padding_value (`float`, *optional*, defaults to 0.0):
            Spectrogram padding: the feature extractor's `padding_value` (0.0), or -1.0 in the `"original"`
            preprocessing mode. [`TvltDataCollator.from_processor`] picks it.

    Returns (from `__call__`):
        `dict[str, torch.Tensor]`: `pixel_values` `(B, T_max, 3, H, W)`, `pixel_mask` `(B, T_max * patches_per_frame)`,
        `audio_values` `(B, 1, time_max, frequency)`, `audio_mask` `(B, audio_patches_max)`, `labels` `(B,)` or
        `(B, num_labels)`; only the keys the examples have.
    """

    def __init__(self, audio_padding_value: float = 0.0):
        self.audio_padding_value = float(audio_padding_value)

    @classmethod
    def from_processor(cls, processor) -> TvltDataCollator:
        """A collator that pads spectrograms like `processor`'s feature extractor does."""
        original = processor.feature_extractor.preprocessing_mode == "original"
        padding = ORIGINAL_PADDING_VALUE if original else processor.feature_extractor.padding_value
        return cls(audio_padding_value=padding)

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("TvltDataCollator got no examples.")
        keys = set(examples[0])
        for index, example in enumerate(examples):
            if set(example) != keys:
                raise ValueError(
                    f"TvltDataCollator: example {index} has keys {sorted(example)} but example 0 has {sorted(keys)}; "
                    "all examples of a batch need the same inputs."
                )
        batch = {}
        if "pixel_values" in keys:
            videos = [_unbatched(example["pixel_values"], 4, "pixel_values") for example in examples]
            batch["pixel_values"] = _pad_stack(videos, axis=0, value=0.0)  # [B, T, C, H, W]
            if "pixel_mask" in keys:
                masks = [_unbatched(example["pixel_mask"], 1, "pixel_mask") for example in examples]
                batch["pixel_mask"] = _pad_stack(masks, axis=0, value=0)
            else:
                _require_equal_lengths(videos, 0, "pixel_values", "pixel_mask")
        if "audio_values" in keys:
            spectrograms = [_unbatched(example["audio_values"], 3, "audio_values") for example in examples]
            batch["audio_values"] = _pad_stack(spectrograms, axis=1, value=self.audio_padding_value)  # [B, 1, T, F]
            if "audio_mask" in keys:
                masks = [_unbatched(example["audio_mask"], 1, "audio_mask") for example in examples]
                batch["audio_mask"] = _pad_stack(masks, axis=0, value=0)
            else:
                _require_equal_lengths(spectrograms, 1, "audio_values", "audio_mask")
        for key in ("pixel_mask", "audio_mask"):
            if key in keys and key not in batch:
                raise ValueError(f"TvltDataCollator: `{key}` without its values.")
        if "labels" in keys:
            batch["labels"] = _stack_labels([example["labels"] for example in examples])
        for key in sorted(keys - set(batch)):
            batch[key] = _stack_other(key, [example[key] for example in examples])
        return batch


# -- helpers ----------------------------------------------------------------------------------------------------------


def batch_on_model(batch: Mapping[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """A collated batch on `model`'s device, its float tensors in `model`'s dtype. The copies are non-blocking: from a
    DataLoader's pinned memory, the copy to a GPU overlaps with what runs there."""
    return {
        key: value.to(model.device, model.dtype, non_blocking=True)
        if value.is_floating_point()
        else value.to(model.device)
        for key, value in batch.items()
    }


_MICROSECONDS = 1_000_000


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_step(chunk_length_s: float, stride: tuple[float, float]) -> None:
    if stride[0] + stride[1] >= chunk_length_s:
        raise ValueError(
            f"`stride_length_s` ({format_seconds(stride[0])} s left + {format_seconds(stride[1])} s right) must be "
            f"shorter than `chunk_length_s` ({format_seconds(chunk_length_s)} s): windows start every chunk - left - "
            "right seconds."
        )


def _clip_duration(clip: AudioVisualClip) -> float:
    """Where the shorter of the clip's video and audio ends (seconds), from the containers' headers and packets."""
    if not is_path(clip.video):
        raise ValueError(
            "`chunk_length_s` needs the video as a file: frames given as an array have no timestamps to cut windows "
            "from (cut the frames yourself, or save them as a video)."
        )
    durations = [media_duration(clip.video, "video")]
    if clip.audio is None:
        # no track: the first window says so (MissingAudioError)
        durations.append(media_duration(clip.video, "audio"))
    elif is_path(clip.audio):
        durations.append(media_duration(clip.audio, "audio"))
    else:
        waveform = np.asarray(clip.audio.detach().cpu() if isinstance(clip.audio, torch.Tensor) else clip.audio)
        # the time axis of a 2-D waveform is its long one, as `_read_audio` cuts it
        durations.append(max(waveform.shape) / clip.sampling_rate if waveform.size else 0.0)
    return min(duration for duration in durations if duration is not None)


def _plan_windows(begin_us: int, end_us: int, chunk_us: int, step_us: int) -> list[tuple[float, float]]:
    """`[start, end)` windows in seconds over `[begin, end)` microseconds (see `TvltClipPreparer.chunk_windows`)."""
    if end_us - begin_us <= chunk_us:
        return [(begin_us / _MICROSECONDS, end_us / _MICROSECONDS)]
    starts = list(range(begin_us, end_us - chunk_us, step_us))
    starts.append(end_us - chunk_us)  # the last window ends at the end of the clip
    return [(start / _MICROSECONDS, (start + chunk_us) / _MICROSECONDS) for start in starts]


def _still_image_format(path: str) -> str | None:
    """PIL's format name when `path` is a still image (PIL reads only the header), else `None`."""
    import PIL.Image

    try:
        with PIL.Image.open(path) as image:
            animated = getattr(image, "n_frames", 1) > 1 and image.format in _ANIMATED_IMAGE_FORMATS
            return None if animated else (image.format or "image")
    except Exception:  # noqa: BLE001 - anything PIL cannot open is left to the video decoder
        return None


def _check_frames(frames, argument: str) -> None:
    if isinstance(frames, (np.ndarray, torch.Tensor)):
        if frames.ndim != 4:
            raise ValueError(
                f"`{argument}`: video frames as an array must be 4-D (frames, height, width, 3) or (frames, 3, "
                f"height, width), got shape {tuple(frames.shape)}."
            )
        return
    if isinstance(frames, (list, tuple)) and frames:
        return  # a list of images: the image processor checks each frame
    raise TypeError(
        f"`{argument}`: `video` must be a video file path, a 4-D array of frames or a list of images; got "
        f"{type(frames).__name__}."
    )


def _unbatched(value, ndim: int, key: str) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
    if tensor.ndim == ndim + 1 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != ndim:
        raise ValueError(
            f"TvltDataCollator: `{key}` of an example must be {ndim}-D (or {ndim + 1}-D with a batch dimension of 1), "
            f"got shape {tuple(tensor.shape)}."
        )
    return tensor


def _pad_stack(tensors: list[torch.Tensor], axis: int, value) -> torch.Tensor:
    """Stack tensors that differ only along `axis`, padding them at the end of `axis` with `value`."""
    reference = list(tensors[0].shape)
    for index, tensor in enumerate(tensors):
        other = [size for dim, size in enumerate(tensor.shape) if dim != axis]
        expected = [size for dim, size in enumerate(reference) if dim != axis]
        if other != expected:
            raise ValueError(
                f"TvltDataCollator: example {index} has shape {tuple(tensor.shape)}, example 0 {tuple(reference)}; "
                f"they may differ only along axis {axis} (frames or time)."
            )
    # pad_sequence pads the first dimension (at the end, in the first tensor's dtype): move `axis` there and back
    batch = pad_sequence([tensor.movedim(axis, 0) for tensor in tensors], batch_first=True, padding_value=value)
    return batch.movedim(1, axis + 1).contiguous()


def _require_equal_lengths(tensors: list[torch.Tensor], axis: int, key: str, mask_key: str) -> None:
    if len({tensor.shape[axis] for tensor in tensors}) > 1:
        raise ValueError(f"TvltDataCollator: `{key}` of different lengths need `{mask_key}` to mark the padding.")


def _stack_labels(labels: list) -> torch.Tensor:
    if all(isinstance(label, torch.Tensor) for label in labels):
        return torch.stack(
            [label.reshape(label.shape[1:]) if label.ndim > 1 and label.shape[0] == 1 else label for label in labels]
        )
    values = [
        label.tolist() if isinstance(label, (np.ndarray, np.generic, torch.Tensor)) else label for label in labels
    ]
    try:
        return torch.tensor(values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"TvltDataCollator: `labels` cannot be stacked ({error}); got {values[:4]!r}...") from None


def _stack_other(key: str, values: list):
    if all(isinstance(value, torch.Tensor) for value in values):
        try:
            return torch.cat([value if value.ndim > 0 else value[None] for value in values])
        except RuntimeError as error:
            raise ValueError(f"TvltDataCollator: cannot batch `{key}` ({error}).") from None
    first = values[0]
    if all(_same(value, first) for value in values):
        return first  # a flag such as `mask_audio=True` that holds for the whole batch
    raise ValueError(
        f"TvltDataCollator: cannot batch `{key}`: its values differ between examples and are not tensors."
    )


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


__all__ = [
    "CHUNK_LENGTH_AUTO",
    "AudioVisualClip",
    "ClipAudioError",
    "MissingAudioError",
    "TvltClipPreparer",
    "TvltDataCollator",
    "batch_on_model",
    "check_audio_file",
    "check_chunking",
    "check_sampling_rate",
    "check_video_file",
    "check_window",
]
