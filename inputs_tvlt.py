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
window, so that frames and sound describe the same moment; only that window is decoded from the files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

from .media_tvlt import MediaDecodingError, is_path, load_audio, read_video


logger = logging.get_logger(__name__)

CLIP_KEYS = ("video", "audio", "sampling_rate", "start", "end")

# The processors' constants, restated so that this file needs nothing private from them: the original pipeline keeps
# at most 1024 spectrogram frames and pads (and masks) with -1.
_ORIGINAL_MAX_AUDIO_FRAMES = 1024
_ORIGINAL_AUDIO_PADDING_VALUE = -1.0

# Formats PIL opens that are videos rather than still images when they hold several frames.
_ANIMATED_IMAGE_FORMATS = {"GIF", "PNG", "WEBP", "MPO", "TIFF"}


class MissingAudioError(MediaDecodingError):
    """A clip has no audio: its video file has no audio track and no separate audio was given."""


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
    """`start`/`end`: non-negative seconds with `end > start`, or `None`."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
            raise ValueError(f"`{argument}`: `{name}` must be a non-negative number of seconds, got {value!r}.")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"`{argument}`: `end` ({end}) must be after `start` ({start}).")


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
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory; expected a video file (mp4, mkv, webm, avi, mov, ...).")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such video file.")
    image_format = _still_image_format(path)
    if image_format is not None:
        raise ValueError(
            f"{path} is a still image ({image_format}), not a video; TVLT needs a video file, or frames and an audio "
            "passed as {'video': frames, 'audio': ..., 'sampling_rate': ...}."
        )
    return path


def check_audio_file(path) -> str:
    """The path as a `str` if it names a file; raises `FileNotFoundError` or `IsADirectoryError` otherwise."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"{path} is a directory; expected an audio file (wav, flac, mp3, ...) or a video file."
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such audio file.")
    return path


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
        max_audio_frames = (
            _ORIGINAL_MAX_AUDIO_FRAMES if self.original_mode else int(feature_extractor.spectrogram_length)
        )
        if config is not None:
            self.num_frames = min(self.num_frames, int(config.num_frames))
            max_audio_frames = min(max_audio_frames, int(config.spectrogram_length))
        hop_length = int(feature_extractor.hop_length)
        # A centred STFT of n samples has 1 + n // hop frames, of which the "transformers" preprocessing drops the
        # last. Aim half a hop inside the frame count, so that resampling (a few samples more or less) keeps it.
        max_audio_samples = (max_audio_frames - (1 if self.original_mode else 0)) * hop_length + hop_length // 2
        self.max_audio_seconds = max_audio_samples / int(feature_extractor.sampling_rate)

    @property
    def audio_padding_value(self) -> float:
        """The value the feature extractor pads spectrograms with (the collator pads batches with it too)."""
        return (
            _ORIGINAL_AUDIO_PADDING_VALUE
            if self.original_mode
            else float(self.processor.feature_extractor.padding_value)
        )

    def window(self, start: float | None, end: float | None) -> tuple[float, float]:
        """The window read from files: `[start or 0, end)`, `end` defaulting to the audio span the model takes."""
        start = 0.0 if start is None else float(start)
        if end is None:
            end = start + self.max_audio_seconds
        elif end - start > self.max_audio_seconds + 1e-9:
            logger.warning_once(
                f"The time window [{_s(start)}, {_s(end)}) s is longer than the {_s(self.max_audio_seconds)} s of "
                f"audio this model takes: frames are sampled from the whole window, audio after "
                f"{_s(start + self.max_audio_seconds)} s is not used."
            )
        return start, float(end)

    def __call__(self, clip: AudioVisualClip) -> dict[str, torch.Tensor]:
        """
        Model inputs of one clip, each with a batch dimension of 1: `pixel_values` `(1, T, 3, H, W)`, `pixel_mask`
        `(1, T * patches_per_frame)`, `audio_values` `(1, 1, time, frequency)`, `audio_mask` `(1, audio_patches)`.

        Raises [`MissingAudioError`] when the video file has no audio track and no audio was given.
        """
        start, end = self.window(clip.start, clip.end)
        audio_end = min(end, start + self.max_audio_seconds)
        if is_path(clip.video):
            decoded = read_video(clip.video, self.num_frames, allow_repeats=self.original_mode, start=start, end=end)
            frames = decoded.frames
            _warn_if_cut(clip.video, decoded.total_num_frames / decoded.fps if decoded.fps else None, end, clip.end)
        else:
            frames = clip.video
        if clip.audio is None:
            try:
                waveform, sampling_rate = self._read_audio(clip.video, None, start, audio_end)
            except MediaDecodingError:
                if _has_audio_track(clip.video):
                    raise
                raise MissingAudioError(
                    f"{clip.video}: the video has no audio track; give the audio separately, e.g. "
                    "{'video': path, 'audio': 'speech.wav'}."
                ) from None
        else:
            waveform, sampling_rate = self._read_audio(clip.audio, clip.sampling_rate, start, audio_end)
        inputs = self._video_inputs(frames)
        inputs.update(self._audio_inputs(waveform, sampling_rate))
        return inputs

    def video_inputs(self, video, start: float | None = None, end: float | None = None) -> dict[str, torch.Tensor]:
        """`pixel_values` `(1, T, 3, H, W)` and `pixel_mask` of a video file (its window) or of frames."""
        if is_path(video):
            check_video_file(video)
            start, end = self.window(start, end)
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
        start, end = self.window(start, end)
        if is_path(audio):
            check_audio_file(audio)
        else:
            check_sampling_rate(sampling_rate)
        waveform, sampling_rate = self._read_audio(
            audio, sampling_rate, start, min(end, start + self.max_audio_seconds)
        )
        return self._audio_inputs(waveform, sampling_rate)

    # -- steps --------------------------------------------------------------------------------------------------------

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
            raise ValueError(f"`audio`: no samples in the time window [{start}, {end}) s.")
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
        padding = _ORIGINAL_AUDIO_PADDING_VALUE if original else processor.feature_extractor.padding_value
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


def _has_audio_track(path: str) -> bool:
    """Whether the container has an audio stream; `True` when that cannot be told (the decoder's error says more)."""
    try:  # PyAV is optional: transformers refuses remote code whose imports outside `try` are not installed
        import av
    except ImportError:
        return True
    try:
        with av.open(path) as container:
            return bool(container.streams.audio)
    except av.error.FFmpegError:
        return True


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


def _warn_if_cut(path: str, duration: float | None, end: float, given_end: float | None) -> None:
    if given_end is None and duration is not None and duration > end + 0.5:
        logger.warning_once(
            f"{path} lasts {_s(duration)} s, longer than the {_s(end)} s of audio the model takes: using "
            f"[0, {_s(end)}) s. Pick another part with `start`/`end`."
        )


def _s(seconds: float) -> str:
    return f"{seconds:.2f}".rstrip("0").rstrip(".")


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
    longest = max(tensor.shape[axis] for tensor in tensors)
    shape = [len(tensors)] + reference
    shape[axis + 1] = longest
    batch = torch.full(shape, value, dtype=tensors[0].dtype)
    for row, tensor in zip(batch, tensors, strict=True):
        row.narrow(axis, 0, tensor.shape[axis]).copy_(tensor)
    return batch


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


def _name_every_code_file():
    """Never called: these lines make transformers fetch and save every TVLT code file with this one."""
    from .configuration_tvlt import TvltConfig  # noqa: F401
    from .embedding_tvlt import TvltAudioVisualEmbedder  # noqa: F401
    from .feature_extraction_tvlt import TvltFeatureExtractor  # noqa: F401
    from .image_processing_tvlt import TvltImageProcessor  # noqa: F401
    from .media_tvlt import load_audio  # noqa: F401
    from .modeling_tvlt import TvltModel  # noqa: F401
    from .pipeline_tvlt import TvltAudioVisualClassificationPipeline  # noqa: F401
    from .processing_tvlt import TvltProcessor  # noqa: F401
    from .remote_code_tvlt import CODE_FILES  # noqa: F401
    from .retrieval_tvlt import TvltAudioVisualMatcher  # noqa: F401


__all__ = [
    "AudioVisualClip",
    "MissingAudioError",
    "TvltClipPreparer",
    "TvltDataCollator",
    "check_audio_file",
    "check_sampling_rate",
    "check_video_file",
    "check_window",
]
