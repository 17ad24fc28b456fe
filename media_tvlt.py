# Copyright 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""Reading media files for TVLT: sampled RGB frames of a video and mono waveforms of audio tracks.

Video files (mp4, mkv, webm, avi, mov, ...) are decoded with PyAV, an optional dependency (`pip install tvlt[video]`).
Only the sampled frames are kept, and decoding moves forward only: it seeks to the keyframe before a sampled frame
when that skips frames, else decodes on, so that each frame is decoded at most once (a few B-frames around a keyframe
twice) whatever the keyframe spacing, and the frames of a long video never sit in memory. Audio files (wav, flac, ogg,
mp3, ...) are read with soundfile; audio tracks inside video containers with PyAV.

Public API (used by `TvltImageProcessor`, `TvltFeatureExtractor` and the `tvlt` command line):

- `read_video(path, num_frames, ...) -> DecodedVideo`: sampled frames `(T, H, W, 3)` uint8 and, optionally, the audio
  track.
- `load_audio(path, ...) -> (waveform, sampling_rate)`: mono float32 waveform of an audio file or of a video's track.
- `media_duration(path, stream_type)`: seconds of data in a file's video or audio stream, without decoding it.
- `sample_frame_indices(total_num_frames, num_frames, allow_repeats)`: the frame sampling rule of both.
- `has_audio_track(path)`: whether a file has sound (a video file given alone brings its own audio track).
- `check_media_file(path, kind)`, `check_window(start, end)`: the checks of both, as one-line errors;
  `describe_window`/`format_seconds` write windows and times in messages (to the millisecond).
- `resample_audio(waveform, orig_sampling_rate, target_sampling_rate)`: the resampler of the feature extractor's
  "transformers" mode (its "original" mode uses torchaudio's, `feature_extraction_tvlt.sinc_resample`).
- `MediaDecodingError`: raised (a `ValueError`) for files that exist but cannot be decoded.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


# The standard library's logger (transformers' get_logger returns this same one): the command line checks paths and
# windows with this file before it imports transformers and torch.
logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

# Notices already given in this process, by kind: a dataset of clips, or the windows of one long video, would repeat
# each for every read.
_SAID: set[str] = set()

# How far back to retry when a seek lands after its target (inaccurate container index), doubling each time, before
# seeking to the start.
_SEEK_BACKOFF_SECONDS = 1.0
_MAX_SEEK_RETRIES = 4
# Packets a seek probe reads looking for the keyframe decoding would start from (formats without an index may land on
# other frames); past that the seek counts as useless.
_MAX_PROBE_PACKETS = 256
# Passes over a file whose data ends before its declared length (each pass narrows down where it really ends).
_MAX_DECODE_PASSES = 3

# What a path of each kind should name, for messages.
_EXPECTED_FILES = {
    "video": "a video file (mp4, mkv, webm, avi, mov, ...)",
    "audio": "an audio file (wav, flac, mp3, ...) or a video file with sound",
}

_PYAV_INSTALL_HINT = "install it with `pip install 'tvlt[video]'` (or `pip install av`)"


class MediaDecodingError(ValueError):
    """A media file exists but cannot be decoded (corrupt, unsupported, or lacking the requested stream)."""


@dataclass(frozen=True)
class DecodedVideo:
    """Frames sampled from a video file and, when requested, its audio track.

    Attributes:
        frames (`np.ndarray` of shape `(num_sampled_frames, height, width, 3)`, uint8):
            The sampled frames in RGB, in the order of `frame_indices`.
        frame_indices (`np.ndarray` of shape `(num_sampled_frames,)`, int64):
            Index in the video stream of each returned frame (repeated when the sampling repeats frames).
        total_num_frames (`int`):
            Number of decodable frames in the video stream (less than the container declares when it is truncated).
            For a window well inside a file whose header gives no frame count (Matroska, WebM), the count its declared
            duration implies, rather than reading the whole file to count them.
        fps (`float`):
            Average frame rate of the video stream.
        audio (`np.ndarray` of shape `(num_samples,)` or `(num_channels, num_samples)`, float32, *optional*):
            The audio track (mono unless `mono=False` was asked), or `None` when it was not requested or is absent.
        audio_sampling_rate (`int`, *optional*):
            Sampling rate of `audio` in Hz.
        path (`str`):
            The file the frames come from.
    """

    frames: np.ndarray
    frame_indices: np.ndarray
    total_num_frames: int
    fps: float
    audio: np.ndarray | None = None
    audio_sampling_rate: int | None = None
    path: str = ""

    @property
    def metadata(self):
        """The stream description in transformers' `VideoMetadata` form (for video processors and pipelines)."""
        from transformers.video_utils import VideoMetadata

        height, width = self.frames.shape[1:3]
        return VideoMetadata(
            total_num_frames=self.total_num_frames,
            fps=self.fps,
            width=int(width),
            height=int(height),
            duration=self.total_num_frames / self.fps if self.fps else None,
            video_backend="pyav",
            frames_indices=self.frame_indices.tolist(),
        )


def is_path(value) -> bool:
    """Whether an input names a file (decoded here) rather than holding frames or samples."""
    return isinstance(value, (str, os.PathLike))


# The latest time a window may name, in seconds (about 116 days: longer than any recording). Seconds become int64
# timestamps of a stream's time base (nanosecond time bases exist) and sample indices; far beyond this (1e20) they
# overflow, and `start + span` rounds back to `start`. The command line restates it (commands/_argtypes.py).
MAX_WINDOW_SECONDS = 10_000_000


def check_window(start, end, argument: str | None = None) -> tuple[float | None, float | None]:
    """Check a time window: `start`/`end` are seconds from 0 to `MAX_WINDOW_SECONDS` with `end > start`, or `None`
    (the start, the end of the file). Raises a one-line `ValueError`, prefixed with `` `argument`: `` when given."""
    prefix = f"`{argument}`: " if argument else ""
    for name, value in (("start", start), ("end", end)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_WINDOW_SECONDS
        ):
            raise ValueError(
                f"{prefix}`{name}` must be a finite number of seconds from 0 to {MAX_WINDOW_SECONDS:,} (116 days), "
                f"got {value!r}."
            )
    if start is not None and end is not None and end <= start:
        raise ValueError(f"{prefix}`end` ({end}) must be after `start` ({start}).")
    return start, end


def say_once(logger, kind: str, message: str) -> None:
    """Warn `message` with `logger` the first time this process meets `kind` of notice."""
    if kind not in _SAID:
        _SAID.add(kind)
        logger.warning(message)


def format_seconds(seconds: float) -> str:
    """Seconds for messages: rounded to the millisecond, without trailing zeros (`23.22`, `3`, `0.02`)."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") if abs(seconds) < 1e9 else f"{seconds:.6g}"


def describe_window(start: float | None, end: float | None) -> str:
    """`[start s, end s)` for messages, `end` being the end of the file when `None`."""
    last = "the end" if end is None else f"{format_seconds(end)} s"
    return f"[{format_seconds(start or 0)} s, {last})"


def has_audio_track(path: PathLike) -> bool:
    """Whether a media file has an audio stream; `True` when that cannot be told (no PyAV, a file it cannot open:
    the decoder's own error says more then)."""
    try:  # PyAV is optional: transformers refuses remote code whose imports outside `try` are not installed
        import av
    except ImportError:
        return True
    try:
        with av.open(os.fspath(path)) as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, OSError):
        return True


def sample_frame_indices(total_num_frames: int, num_frames: int | None, allow_repeats: bool = False) -> np.ndarray:
    """Indices of the frames TVLT samples from a video of `total_num_frames` frames.

    A video longer than `num_frames` is sampled uniformly over its whole length with the original TVLT rule
    `np.linspace(0, total_num_frames, num_frames, endpoint=False).astype(int)`. A shorter one keeps all its frames,
    unless `allow_repeats` (the original-faithful mode), where the same rule repeats frames to reach `num_frames`.

    Returns:
        `np.ndarray` of shape `(min(total_num_frames, num_frames),)` (or `(num_frames,)` with `allow_repeats`), int64.
    """
    if (
        isinstance(total_num_frames, bool)
        or not isinstance(total_num_frames, (int, np.integer))
        or total_num_frames < 1
    ):
        raise ValueError(f"`total_num_frames` must be a positive integer, got {total_num_frames!r}.")
    if num_frames is not None and (
        isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1
    ):
        raise ValueError(f"`num_frames` must be a positive integer or None, got {num_frames!r}.")
    if num_frames is None or (total_num_frames <= num_frames and not allow_repeats):
        return np.arange(total_num_frames, dtype=np.int64)
    return np.linspace(0, total_num_frames, num_frames, endpoint=False).astype(np.int64)


def resample_audio(waveform: np.ndarray, orig_sampling_rate: int, target_sampling_rate: int) -> np.ndarray:
    """Resample `waveform` (`(num_samples,)` or `(num_channels, num_samples)`) with soxr's high-quality filter.

    This is librosa's default resampler (`res_type="soxr_hq"`), called directly.
    """
    soxr = _import_optional("soxr", "Resampling audio")
    for name, rate in (("orig_sampling_rate", orig_sampling_rate), ("target_sampling_rate", target_sampling_rate)):
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise ValueError(f"`{name}` must be a positive integer (Hz), got {rate!r}.")
    if orig_sampling_rate == target_sampling_rate:
        return waveform
    dtype = waveform.dtype if waveform.dtype in (np.float32, np.float64) else np.float32
    # soxr wants (samples, channels)
    resampled = soxr.resample(
        np.ascontiguousarray(waveform.T, dtype=dtype), orig_sampling_rate, target_sampling_rate, "HQ"
    )
    return np.ascontiguousarray(resampled.T)


def read_video(
    path: PathLike,
    num_frames: int | None = 8,
    *,
    allow_repeats: bool = False,
    start: float | None = None,
    end: float | None = None,
    with_audio: bool | None = False,
    mono: bool = True,
) -> DecodedVideo:
    """Decode the frames TVLT samples from a video file, and optionally its audio track.

    Frames are chosen with [`sample_frame_indices`] over the whole stream (or over `[start, end)`), and only those are
    decoded. A file whose data ends before the length its header declares (an interrupted download, for example) is
    read up to where its data ends, with a warning.

    Args:
        path (`str` or `os.PathLike`):
            A video file PyAV can decode (mp4, mkv, webm, avi, mov, ...).
        num_frames (`int`, *optional*, defaults to 8):
            How many frames to sample; `None` decodes every frame (of the window).
        allow_repeats (`bool`, *optional*, defaults to `False`):
            Sample exactly `num_frames` frames even from a shorter video, repeating frames (original TVLT behaviour).
        start (`float`, *optional*), end (`float`, *optional*):
            Time window in seconds; frames and audio outside it are ignored. Defaults to the whole file.
        with_audio (`bool`, *optional*, defaults to `False`):
            `True` also returns the audio track and raises `MediaDecodingError` when there is none; `None` returns it
            when present; `False` skips it.
        mono (`bool`, *optional*, defaults to `True`):
            Mix the audio channels down to mono by their mean.

    Returns:
        [`DecodedVideo`]: frames of shape `(T, H, W, 3)` uint8 with `T = min(num_frames, frames in the window)` (or
        `num_frames` with `allow_repeats`), and the audio when asked for.

    Raises:
        `FileNotFoundError`: `path` does not exist. `MediaDecodingError`: the file cannot be decoded, has no video
        stream, or has no audio track although `with_audio=True`. `ImportError`: PyAV is not installed.
    """
    path = check_media_file(path, "video")
    start, end = check_window(start, end)
    av = _import_av()
    try:
        return _read_video(av, path, num_frames, allow_repeats, start, end, with_audio, mono)
    except av.error.FFmpegError as error:  # whatever the checks below did not foresee, in one line naming the file
        raise MediaDecodingError(f"{path}: cannot decode the file ({error}).") from None


def _read_video(av, path: str, num_frames, allow_repeats: bool, start, end, with_audio, mono: bool) -> DecodedVideo:
    with _open_container(av, path) as container:
        if not container.streams.video:
            raise MediaDecodingError(f"{path}: the file has no video stream.")
        stream = container.streams.video[0]
        # Decoding with threads makes every frame cost less; the codec picks the thread count.
        stream.thread_type = "AUTO"
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not fps:
            raise MediaDecodingError(f"{path}: cannot determine the frame rate of the video stream.")
        timing = _StreamTiming(stream, Fraction(fps))
        with _SeekProbe(av, path, stream, timing) as probe:
            frames, indices, total_num_frames = _decode_window(
                av, path, container, stream, timing, probe, num_frames, allow_repeats, start, end
            )

    audio, audio_sampling_rate = None, None
    if with_audio is not False:
        try:
            audio, audio_sampling_rate = _load_audio_with_pyav(path, start, end, mono)
        except _NoAudioTrack:
            if with_audio:
                raise MediaDecodingError(
                    f"{path}: the file has no audio track; pass the audio separately (e.g. `audio=` a .wav file)."
                ) from None
    return DecodedVideo(
        frames=frames,
        frame_indices=indices.astype(np.int64),
        total_num_frames=int(total_num_frames),
        fps=float(timing.fps),
        audio=audio,
        audio_sampling_rate=audio_sampling_rate,
        path=path,
    )


def _decode_window(av, path, container, stream, timing, probe, num_frames, allow_repeats, start, end):
    """`(frames (T, H, W, 3) uint8, their indices, the decodable frame count)` of the window `[start, end)`."""
    declared_num_frames = stream.frames  # 0 when the header gives none (Matroska, WebM)
    if declared_num_frames:
        total_num_frames = declared_num_frames
        if not probe.reaches(declared_num_frames - 1, slack=None):
            # The header's length runs past the data (an interrupted download): its last packet says where the
            # data ends, so that a window's frames and the reported length are those of the decodable part.
            total_num_frames = max(1, min(declared_num_frames, _count_packets(av, container, stream, timing)))
    else:
        estimate = _frames_from_duration(container, stream, timing.fps)
        if (
            estimate
            and end is not None
            and end * timing.fps < estimate - timing.fps
            and probe.reaches(estimate - 1, slack=math.ceil(timing.fps))
        ):
            # a window well inside the declared duration needs no exact count, which reads the whole file
            declared_num_frames = estimate
        else:
            declared_num_frames = _count_packets(av, container, stream)
        total_num_frames = declared_num_frames
    if declared_num_frames < 1:
        raise MediaDecodingError(f"{path}: the video stream has no frames.")

    for _ in range(_MAX_DECODE_PASSES):
        first, stop = _window_frame_range(start, end, total_num_frames, timing.fps, path)
        indices = first + sample_frame_indices(stop - first, num_frames, allow_repeats)
        targets = np.unique(indices)
        decoded, data_end = _decode_frames_at(av, container, stream, timing, targets, probe)
        if len(decoded) == len(targets):
            break
        # The data ends before the declared length. Where decoding broke off tells where it really ends; when a
        # seek found nothing at all, the last packet in the file does. Then sample again within that.
        if data_end is None:
            data_end = _count_packets(av, container, stream, timing)
        total_num_frames = min(total_num_frames - 1, data_end)
        if total_num_frames < 1:
            raise MediaDecodingError(f"{path}: no video frame can be decoded.")
    else:
        missing = sorted(set(targets.tolist()) - set(decoded))
        raise MediaDecodingError(f"{path}: the video frames {missing} cannot be decoded.")
    if total_num_frames < declared_num_frames:
        say_once(
            logger,
            f"truncated video {path}",
            f"{path}: the container declares {declared_num_frames} video frames "
            f"({declared_num_frames / float(timing.fps):.1f} s) but its data ends after about {total_num_frames} "
            f"({total_num_frames / float(timing.fps):.1f} s); the file is probably truncated. Frames were sampled "
            "from the decodable part only.",
        )
    return np.stack([decoded[int(index)] for index in indices]), indices, total_num_frames


def load_audio(
    path: PathLike,
    *,
    sampling_rate: int | None = None,
    mono: bool = True,
    start: float | None = None,
    end: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read an audio file, or the audio track of a video file.

    Audio files are read with soundfile (wav, flac, ogg, mp3, ...); anything soundfile does not know (mp4, mkv, webm,
    avi, m4a, ...) with PyAV.

    Args:
        path (`str` or `os.PathLike`):
            The audio or video file.
        sampling_rate (`int`, *optional*):
            Resample to this rate (soxr, as the feature extractor's default mode does); default: the file's own rate.
        mono (`bool`, *optional*, defaults to `True`):
            Mix the channels down to mono by their mean.
        start (`float`, *optional*), end (`float`, *optional*):
            Time window in seconds. Defaults to the whole file. In video containers the window is placed by the
            audio packets' timestamps, so it is exact to the sample in mp4 and to the millisecond in Matroska.

    Returns:
        `tuple[np.ndarray, int]`: the float32 waveform in [-1, 1], of shape `(num_samples,)` (mono) or
        `(num_channels, num_samples)`, and its sampling rate.

    Raises:
        `FileNotFoundError`: `path` does not exist. `MediaDecodingError`: the file cannot be decoded or has no audio
        track. `ImportError`: the file needs PyAV, which is not installed.
    """
    path = check_media_file(path, "audio")
    start, end = check_window(start, end)
    waveform, file_sampling_rate = _load_audio_with_soundfile(path, start, end, mono)
    if waveform is None:
        soundfile_error = file_sampling_rate
        try:
            import av  # noqa: F401
        except ImportError:
            raise MediaDecodingError(
                f"{path}: soundfile cannot read it ({soundfile_error}); audio tracks of video files and formats "
                f"beyond libsndfile's need PyAV: {_PYAV_INSTALL_HINT}."
            ) from None
        try:
            waveform, file_sampling_rate = _load_audio_with_pyav(path, start, end, mono)
        except _NoAudioTrack:
            raise MediaDecodingError(f"{path}: the file has no audio track.") from None
    if sampling_rate is not None:
        waveform = resample_audio(waveform, file_sampling_rate, sampling_rate)
        file_sampling_rate = sampling_rate
    return waveform, int(file_sampling_rate)


# media_duration checks the declared length by reading the packets from a keyframe this long before it ends (2 s is a
# common keyframe interval; a longer one only means reading more packets)
_DURATION_CHECK_SECONDS = 2.0


def media_duration(path: PathLike, stream_type: str = "video") -> float | None:
    """Seconds of data in the first video (or audio) stream of a file, without decoding it.

    The length the container declares is checked by demuxing from a keyframe shortly before its end; when that finds
    nothing (a file truncated after its header, like an interrupted download), the stream's packets are read from
    the start to find where its data really ends. Audio files that soundfile reads give their exact length.

    Args:
        path (`str` or `os.PathLike`): a video or audio file.
        stream_type (`str`, *optional*, defaults to `"video"`): `"video"` or `"audio"`.

    Returns:
        `float` seconds from the start of the stream, or `None` when the file has no such stream.

    Raises:
        `FileNotFoundError`: `path` does not exist. `MediaDecodingError`: the file cannot be opened or the stream has
        no data. `ImportError`: the file needs PyAV, which is not installed.
    """
    if stream_type not in ("video", "audio"):
        raise ValueError(f"`stream_type` must be 'video' or 'audio', got {stream_type!r}.")
    path = check_media_file(path, stream_type)
    if stream_type == "audio":
        soundfile = _import_optional("soundfile", "Reading audio files")
        try:
            info = soundfile.info(path)
        except RuntimeError:
            pass  # not a format libsndfile reads: a container, PyAV's job
        else:
            return info.frames / info.samplerate
    av = _import_av()
    with _open_container(av, path) as container:
        streams = container.streams.video if stream_type == "video" else container.streams.audio
        if not streams:
            return None
        stream = streams[0]
        time_base = Fraction(stream.time_base)
        start_pts = stream.start_time or 0
        declared_pts = None
        if stream.duration:
            declared_pts = start_pts + stream.duration
        elif container.duration:
            declared_pts = round(Fraction(container.duration, av.time_base) / time_base)
        end_pts = None
        if declared_pts is not None:
            near_end = max(start_pts, declared_pts - round(_DURATION_CHECK_SECONDS / time_base))
            container.seek(near_end, stream=stream, backward=True, any_frame=False)
            end_pts = _last_packet_end(av, container, stream)
        if end_pts is None:  # no data where the header says it ends: read the packets from the start
            container.seek(start_pts, stream=stream, backward=True, any_frame=False)
            end_pts = _last_packet_end(av, container, stream)
        if end_pts is None:
            raise MediaDecodingError(f"{path}: the {stream_type} stream has no data.")
        return float((end_pts - start_pts) * time_base)


def header_seconds(container, stream=None) -> float | None:
    """Seconds of `stream` (a PyAV stream of `container`) from its own first timestamp, as the header declares them
    (nothing is read; `media_duration` checks them against the data): the stream's duration, else the file's, less
    where the stream starts after the file does (MPEG-TS files start at 1.4 s, their audio and video apart). The whole
    file's when `stream` is None; `None` when the header gives no length. Every window in this module is counted
    from the stream's first timestamp, so all durations are too: the one reader of header lengths."""
    if stream is not None and stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if not container.duration:
        return None
    seconds = container.duration / 1_000_000  # av.time_base units, from the file's start
    if stream is not None and stream.start_time is not None and stream.time_base:
        file_start = (container.start_time or 0) / 1_000_000
        seconds -= max(0.0, float(stream.start_time * stream.time_base) - file_start)
    return max(0.0, seconds)


# -- helpers ------------------------------------------------------------------------------------------------------


class _NoAudioTrack(Exception):
    pass


class _StreamTiming:
    """Converts between frame indices and presentation timestamps, assuming a constant frame rate."""

    def __init__(self, stream, fps: Fraction):
        self.fps = fps
        self.time_base = Fraction(stream.time_base)
        self.start_pts = stream.start_time or 0

    def pts_of(self, index: int) -> int:
        return self.start_pts + round(Fraction(index) / self.fps / self.time_base)

    def index_of(self, pts: int) -> int:
        return round((pts - self.start_pts) * self.time_base * self.fps)


def check_media_file(path: PathLike, kind: str) -> str:
    """`path` as a `str` when it names a file this process can read; otherwise a one-line `FileNotFoundError`,
    `IsADirectoryError`, `PermissionError` or (an empty file) `MediaDecodingError` naming it and what a `kind` file,
    "video" or "audio", should be; a `TypeError` when it is not a path."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"A media path must be a str or os.PathLike, got {type(path).__name__}.")
    path = os.fspath(path)
    if not path:
        raise FileNotFoundError(f"The {kind} path is empty; expected {_EXPECTED_FILES[kind]}.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory; expected {_EXPECTED_FILES[kind]}.")
    if not os.path.isfile(path):
        if os.path.islink(path):
            raise FileNotFoundError(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist.")
        raise FileNotFoundError(f"{path}: no such {kind} file.")
    # said here because FFmpeg calls both "cannot be opened as a media file (Invalid data ...)", like a corrupt one
    try:
        with open(path, "rb") as handle:
            empty = not handle.read(1)
    except PermissionError:
        raise PermissionError(
            f"{path}: permission denied; expected {_EXPECTED_FILES[kind]} this user can read."
        ) from None
    if empty:
        raise MediaDecodingError(f"{path}: the file is empty (0 bytes); expected {_EXPECTED_FILES[kind]}.")
    return path


def _import_optional(name: str, purpose: str):
    """Import a dependency only the audio paths need. transformers refuses to load remote code whose imports are
    not installed unless they sit in a `try` block, so a model-only user need not install them."""
    try:
        module = __import__(name)
    except ImportError:
        raise ImportError(
            f"{purpose} needs `{name}`: `pip install {name}` (a dependency of the tvlt package)."
        ) from None
    return module


def _import_av():
    try:
        import av
    except ImportError:
        raise ImportError(
            f"Decoding video files needs PyAV, an optional dependency of tvlt: {_PYAV_INSTALL_HINT}."
        ) from None
    return av


def _open_container(av, path: str):
    try:
        return av.open(path)
    except av.error.FFmpegError as error:
        raise MediaDecodingError(f"{path}: cannot be opened as a media file ({error}).") from None


def _window_frame_range(start, end, total_num_frames: int, fps: Fraction, path: str) -> tuple[int, int]:
    first = 0 if start is None else min(math.ceil(Fraction(start) * fps), total_num_frames)
    stop = total_num_frames if end is None else min(math.ceil(Fraction(end) * fps), total_num_frames)
    if stop <= first:
        raise MediaDecodingError(
            f"{path}: no video frame in the window {describe_window(start, end)}; the video has {total_num_frames} "
            f"frames ({format_seconds(total_num_frames / float(fps))} s)."
        )
    return first, stop


def _count_packets(av, container, stream, timing: _StreamTiming | None = None) -> int:
    """Frames in the stream's data, from its packets (demuxing reads the file but decodes nothing).

    Without `timing`, the number of packets (for containers whose header carries no frame count); with it, one past
    the index of the last packet, which is where a truncated file's data ends.
    """
    count, last_index = 0, -1
    try:
        container.seek(0, stream=stream)  # a fresh container is at the start already when a format refuses seeks
    except av.error.FFmpegError:
        pass
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            count += 1
            if timing is not None and packet.pts is not None:
                last_index = max(last_index, timing.index_of(packet.pts))
    except av.error.FFmpegError:
        pass  # a damaged tail ends the data just like the end of the file does
    return count if timing is None else last_index + 1


def _frames_from_duration(container, stream, fps: Fraction) -> int | None:
    """Frames the header's duration of the video stream (or of the whole file) holds at `fps`; `None` if unknown."""
    seconds = header_seconds(container, stream)
    return None if seconds is None else max(0, math.floor(seconds * fps))


def _last_packet_end(av, container, stream) -> int | None:
    """The largest `pts + duration` of the stream's packets from the current position on (demuxed, not decoded), or
    `None` when there are none; a damaged tail ends the data like the end of the file does."""
    end = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            packet_end = packet.pts + (packet.duration or 0)
            end = packet_end if end is None else max(end, packet_end)
    except av.error.FFmpegError:
        pass
    return end


class _SeekProbe:
    """What lies where a seek of the video stream lands, found on a second demuxer of the same file (reading packets
    only, no decoding): where decoding would start (so that the decoder seeks only when that skips frames it has not
    decoded yet), and whether the data reaches the end the header declares. Opened at first use."""

    def __init__(self, av, path: str, stream, timing: _StreamTiming):
        self._av, self._path, self._stream_index, self._timing = av, path, stream.index, timing
        self._container = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._container is not None:
            self._container.close()

    def _seek(self, pts: int, any_frame: bool):
        if self._container is None:
            self._container = self._av.open(self._path)
        stream = self._container.streams[self._stream_index]
        self._container.seek(pts, stream=stream, backward=True, any_frame=any_frame)
        return self._container.demux(stream)

    def reaches(self, index: int, slack: int | None) -> bool:
        """Whether the file's data reaches frame `index`, where a truncated file's header says it ends: after a seek
        there, a packet of the video stream exists (`slack=None`: for sample-exact indexes, mp4 and the like, whose
        seek lands on that very frame however long the last frames last) or one at most `slack` frames before it
        (indexes of keyframes only, Matroska: the packets up to it are read)."""
        try:
            for packet in self._seek(self._timing.pts_of(index), any_frame=True):
                timestamp = packet.pts if packet.pts is not None else packet.dts
                if (packet.size > 0 and timestamp is not None) and (
                    slack is None or self._timing.index_of(timestamp) >= index - slack
                ):
                    return True
        except (self._av.error.FFmpegError, OSError):
            pass
        return False

    def landing(self, pts: int, target: int) -> int | None:
        """Index of the keyframe from which decoding starts after `seek(pts)`, or `None` when that seek reaches no
        keyframe at or before `target` (the index put it after the target, the data ends, or the format cannot
        seek)."""
        av = self._av
        try:
            packets = self._seek(pts, any_frame=False)
            for count, packet in enumerate(packets):
                timestamp = packet.pts if packet.pts is not None else packet.dts
                if timestamp is None or packet.size == 0:
                    continue
                index = self._timing.index_of(timestamp)
                # anchor frames come in presentation order, so once one lies past the target no keyframe before it
                # follows; a seek that lands on a non-keyframe (formats without an index) decodes from the next one
                if index > target or count >= _MAX_PROBE_PACKETS:
                    return None
                if packet.is_keyframe:
                    return index
        except (av.error.FFmpegError, OSError):
            pass
        return None


def _decode_frames_at(av, container, stream, timing: _StreamTiming, targets: np.ndarray, probe: _SeekProbe):
    """Decode the frames at the sorted unique `targets`, each frame of the file at most once (but a few B-frames
    around a keyframe the decoder jumps to), in one forward pass with jumps.

    The decoder moves only forward. Before each target it asks a `_SeekProbe` where a seek for it would land (the
    keyframe before it, backing off when the container index puts the seek after it); it seeks only when that keyframe
    lies past the last decoded frame, and otherwise decodes on up to the target. So whatever the keyframe spacing (one
    keyframe per file included), the work is bounded by one decode of the file plus a probe per target. A target whose
    exact frame is missing (variable frame rate, dropped frame) gets the next frame. Decoding stops at the end of the
    data or at the first undecodable packet.

    Returns:
        `({index: (H, W, 3) uint8 array}, data_end)`: `data_end` is `None` when every target was found or when a seek
        found no frame at all, else one past the last frame that decoded (the data ends there).
    """
    frames: dict[int, np.ndarray] = {}
    position, decoder, last_decoded, decoded_since_seek, probed = 0, None, -1, False, -1
    while position < len(targets):
        target = int(targets[position])
        if probed < target and (decoder is None or target > last_decoded + 1):
            probed = target
            seek_pts, landing = _seek_point(probe, timing, target)
            if decoder is None or (landing is not None and landing > last_decoded + 1):
                try:  # without a useful seek point, from the start (where a container that cannot seek still is)
                    container.seek(timing.start_pts if seek_pts is None else seek_pts, stream=stream)
                except av.error.FFmpegError:
                    if seek_pts is not None:
                        raise
                decoder, decoded_since_seek = container.decode(stream), False
        try:
            frame = next(decoder, None)
        except av.error.FFmpegError:
            frame = None  # damaged data ends the stream like EOF does
        if frame is None:
            return frames, (last_decoded + 1 if decoded_since_seek else None)
        if frame.pts is None:
            continue
        index = timing.index_of(frame.pts)
        decoded_since_seek = True
        last_decoded = max(last_decoded, index)
        if index < target:
            continue
        image = frame.to_ndarray(format="rgb24")
        while position < len(targets) and targets[position] <= index:
            frames[int(targets[position])] = image
            position += 1
    return frames, None


def _seek_point(probe: _SeekProbe, timing: _StreamTiming, target: int) -> tuple[int | None, int | None]:
    """`(pts to seek to, index of the keyframe decoding starts from)` for `target`: a seek right at it, or from
    further back (doubling) when the container index lands after it; `(None, None)` when no seek reaches a keyframe
    at or before it (decode on, or from the start)."""
    fps = float(timing.fps)
    backoffs = [_SEEK_BACKOFF_SECONDS * 2**retry for retry in range(_MAX_SEEK_RETRIES)]
    starts = [target] + [max(0, target - int(seconds * fps)) for seconds in backoffs] + [0]
    for start in dict.fromkeys(starts):  # unique, in order
        pts = timing.pts_of(start)
        landing = probe.landing(pts, target)
        if landing is not None:
            return pts, landing
    return None, None


def _load_audio_with_soundfile(path: str, start, end, mono: bool):
    """(waveform, sampling_rate), or (None, soundfile's error) when soundfile does not know the format."""
    soundfile = _import_optional("soundfile", "Reading audio files")

    try:
        info = soundfile.info(path)
    except RuntimeError as error:  # not a format libsndfile reads (mp4, webm, ...): PyAV's job
        return None, error
    first = 0 if start is None else round(start * info.samplerate)
    stop = None if end is None else round(end * info.samplerate)
    try:
        data, sampling_rate = soundfile.read(path, start=first, stop=stop, dtype="float32", always_2d=True)
    except RuntimeError as error:
        raise MediaDecodingError(f"{path}: cannot decode the audio ({error}).") from None
    if data.shape[0] == 0:
        raise MediaDecodingError(_no_samples_message(path, start, end, info.frames / info.samplerate))
    waveform = data.T  # (channels, samples)
    if mono:  # one channel is already mono: no copy (an hour of audio is 635 MB)
        return (waveform[0] if waveform.shape[0] == 1 else waveform.mean(axis=0)), int(sampling_rate)
    return np.ascontiguousarray(waveform), int(sampling_rate)


# covers the decoder delay of AAC (2048 samples), MP3 (bit reservoir, a few frames) and Opus (80 ms) with margin
_AUDIO_PREROLL_SECONDS = 0.5


def _load_audio_with_pyav(path: str, start, end, mono: bool):
    av = _import_av()
    with _open_container(av, path) as container:
        if not container.streams.audio:
            raise _NoAudioTrack()
        stream = container.streams.audio[0]
        sampling_rate = stream.rate or stream.codec_context.sample_rate
        if not sampling_rate:
            raise MediaDecodingError(f"{path}: cannot determine the sampling rate of the audio track.")
        # Whatever the codec's sample format, get float32 planar (channels, samples); layout and rate are kept.
        resampler = av.AudioResampler(format="fltp")
        # Lapped codecs (AAC, MP3, Opus) decode the first frame after a seek without its overlap, so wrong: seek a
        # pre-roll earlier and cut to `start` below; near the beginning, decode from the start instead.
        duration = header_seconds(container, stream)
        if start is not None and duration is not None and start >= duration:
            raise MediaDecodingError(_no_samples_message(path, start, end, duration))
        if start is not None and start > _AUDIO_PREROLL_SECONDS:
            preroll_start = start - _AUDIO_PREROLL_SECONDS
            try:
                container.seek(int(preroll_start / stream.time_base), stream=stream, backward=True, any_frame=False)
            except (av.error.FFmpegError, OverflowError):
                pass  # a container that cannot seek is still at its start: decode from there and cut below
        first_sample = None if start is None else round(start * sampling_rate)
        stop_sample = None if end is None else round(end * sampling_rate)
        chunks, position = [], None
        damaged = False
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    if position is None:
                        position = (
                            round(frame.time * sampling_rate) if (start is not None and frame.time is not None) else 0
                        )
                    for converted in resampler.resample(frame):
                        chunk = converted.to_ndarray()
                        if mono:  # mix down as it comes: a long track then takes half the memory
                            chunk = chunk.mean(axis=0, keepdims=True)
                        chunks.append((position, chunk))
                        position += chunk.shape[1]
                if stop_sample is not None and position is not None and position >= stop_sample:
                    break
        except av.error.FFmpegError:
            damaged = True
        if damaged:
            say_once(
                logger,
                f"damaged audio {path}",
                f"{path}: the audio track is damaged or truncated; using the part that decodes.",
            )
    if not chunks:
        if start is not None:  # e.g. a window past the end of a truncated file's data
            raise MediaDecodingError(_no_samples_message(path, start, end, None))
        raise MediaDecodingError(f"{path}: the audio track has no decodable samples.")
    offset = chunks[0][0]
    waveform = np.concatenate([chunk for _, chunk in chunks], axis=1).astype(np.float32, copy=False)
    lo = 0 if first_sample is None else max(first_sample - offset, 0)
    hi = waveform.shape[1] if stop_sample is None else max(min(stop_sample - offset, waveform.shape[1]), lo)
    waveform = waveform[:, lo:hi]
    if waveform.shape[1] == 0:
        raise MediaDecodingError(_no_samples_message(path, start, end, duration))
    return (waveform[0] if mono else np.ascontiguousarray(waveform)), int(sampling_rate)


def _no_samples_message(path: str, start, end, duration: float | None) -> str:
    lasts = "" if duration is None else f"; the audio lasts {format_seconds(duration)} s"
    return f"{path}: no audio samples in the window {describe_window(start, end)}{lasts}."


__all__ = [
    "DecodedVideo",
    "MAX_WINDOW_SECONDS",
    "header_seconds",
    "MediaDecodingError",
    "check_media_file",
    "check_window",
    "describe_window",
    "format_seconds",
    "has_audio_track",
    "is_path",
    "load_audio",
    "media_duration",
    "read_video",
    "resample_audio",
    "sample_frame_indices",
    "say_once",
]
