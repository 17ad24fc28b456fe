# Copyright 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""Reading media files for TVLT: sampled RGB frames of a video and mono waveforms of audio tracks.

Video files (mp4, mkv, webm, avi, mov, ...) are decoded with PyAV, an optional dependency (`pip install tvlt[video]`).
Only the sampled frames are decoded: the reader seeks to the keyframe before each of them, so the frames of a long
video never sit in memory. Audio files (wav, flac, ogg, mp3, ...) are read with soundfile; audio tracks inside video
containers with PyAV.

Public API (used by `TvltImageProcessor`, `TvltFeatureExtractor` and the `tvlt` command line):

- `read_video(path, num_frames, ...) -> DecodedVideo`: sampled frames `(T, H, W, 3)` uint8 and, optionally, the audio
  track.
- `load_audio(path, ...) -> (waveform, sampling_rate)`: mono float32 waveform of an audio file or of a video's track.
- `media_duration(path, stream_type)`: seconds of data in a file's video or audio stream, without decoding it.
- `sample_frame_indices(total_num_frames, num_frames, allow_repeats)`: the frame sampling rule of both.
- `resample_audio(waveform, orig_sampling_rate, target_sampling_rate)`: the resampler of the feature extractor.
- `MediaDecodingError`: raised (a `ValueError`) for files that exist but cannot be decoded.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

import numpy as np
from transformers.utils import logging
from transformers.video_utils import VideoMetadata


logger = logging.get_logger(__name__)

PathLike = Union[str, os.PathLike]

# Until the keyframe interval is known, a target further ahead than this is reached by seeking to the keyframe before
# it rather than by decoding every frame in between (2 s is a common keyframe interval).
_SEEK_AHEAD_SECONDS = 2.0
# How far back to retry when a seek lands after its target (inaccurate container index), doubling each time.
_SEEK_BACKOFF_SECONDS = 1.0
_MAX_SEEK_RETRIES = 4
# Passes over a file whose data ends before its declared length (each pass narrows down where it really ends).
_MAX_DECODE_PASSES = 3

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
    def metadata(self) -> VideoMetadata:
        """The stream description in transformers' `VideoMetadata` form (for video processors and pipelines)."""
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
    path = _existing_file(path)
    start, end = _validate_window(start, end)
    av = _import_av()
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
        declared_num_frames = stream.frames or _count_packets(av, container, stream)
        if declared_num_frames < 1:
            raise MediaDecodingError(f"{path}: the video stream has no frames.")

        total_num_frames = declared_num_frames
        for _ in range(_MAX_DECODE_PASSES):
            first, stop = _window_frame_range(start, end, total_num_frames, timing.fps, path)
            indices = first + sample_frame_indices(stop - first, num_frames, allow_repeats)
            targets = np.unique(indices)
            decoded, data_end = _decode_frames_at(av, container, stream, timing, targets)
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
            logger.warning(
                f"{path}: the container declares {declared_num_frames} video frames "
                f"({declared_num_frames / float(timing.fps):.1f} s) but its data ends after about {total_num_frames} "
                f"({total_num_frames / float(timing.fps):.1f} s); the file is probably truncated. Frames were sampled "
                "from the decodable part only."
            )
        frames = np.stack([decoded[int(index)] for index in indices])

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
            Resample to this rate (soxr, as the feature extractor does); defaults to the file's own rate.
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
    path = _existing_file(path)
    start, end = _validate_window(start, end)
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
    path = _existing_file(path)
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
            near_end = max(start_pts, declared_pts - round(_SEEK_AHEAD_SECONDS / time_base))
            container.seek(near_end, stream=stream, backward=True, any_frame=False)
            end_pts = _last_packet_end(av, container, stream)
        if end_pts is None:  # no data where the header says it ends: read the packets from the start
            container.seek(start_pts, stream=stream, backward=True, any_frame=False)
            end_pts = _last_packet_end(av, container, stream)
        if end_pts is None:
            raise MediaDecodingError(f"{path}: the {stream_type} stream has no data.")
        return float((end_pts - start_pts) * time_base)


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


def _existing_file(path: PathLike) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"A media path must be a str or os.PathLike, got {type(path).__name__}.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(2, "No such media file", path)
    return path


def _validate_window(start, end) -> tuple[float | None, float | None]:
    for name, value in (("start", start), ("end", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"`{name}` must be a non-negative number of seconds, got {value!r}.")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"`end` ({end}) must be after `start` ({start}).")
    return start, end


def _import_optional(name: str, purpose: str):
    """Import a dependency only the audio paths need. transformers refuses to load remote code whose imports are
    not installed unless they sit in a `try` block, so a model-only user need not install them."""
    try:
        module = __import__(name)
    except ImportError:
        raise ImportError(f"{purpose} needs `{name}`: `pip install {name}` (a dependency of the tvlt package).") from None
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
            f"{path}: no video frame in the window [{start}, {end}) s; the video has {total_num_frames} frames "
            f"({total_num_frames / float(fps):.2f} s)."
        )
    return first, stop


def _count_packets(av, container, stream, timing: _StreamTiming | None = None) -> int:
    """Frames in the stream's data, from its packets (demuxing reads the file but decodes nothing).

    Without `timing`, the number of packets (for containers whose header carries no frame count); with it, one past
    the index of the last packet, which is where a truncated file's data ends.
    """
    container.seek(0, stream=stream)
    count, last_index = 0, -1
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


def _decode_frames_at(av, container, stream, timing: _StreamTiming, targets: np.ndarray):
    """Decode the frames at the sorted unique `targets`.

    A target is reached by decoding forward from the previous one when no keyframe is likely in between (the
    keyframe interval is learnt while decoding), else by seeking to the keyframe before it. A target whose exact
    frame is missing (variable frame rate, dropped frame) gets the next frame. Decoding stops at the end of the data
    or at the first undecodable packet.

    Returns:
        `({index: (H, W, 3) uint8 array}, data_end)`: `data_end` is `None` when every target was found or when a seek
        found no frame at all, else one past the last frame that decoded (the data ends there).
    """
    frames: dict[int, np.ndarray] = {}
    keyframe_interval = None  # longest gap seen between consecutive keyframes
    position, decoder, last_decoded, last_keyframe, decoded_since_seek = 0, None, -1, None, False
    backoff, retries = _SEEK_BACKOFF_SECONDS, 0
    while position < len(targets):
        target = int(targets[position])
        seek_ahead = keyframe_interval or int(_SEEK_AHEAD_SECONDS * float(timing.fps))
        if decoder is None or target - last_decoded > seek_ahead:
            container.seek(timing.pts_of(target), stream=stream, backward=True, any_frame=False)
            decoder, decoded_since_seek, last_keyframe = container.decode(stream), False, None
        try:
            frame = next(decoder, None)
        except av.error.FFmpegError:
            frame = None  # damaged data ends the stream like EOF does
        if frame is None:
            return frames, (last_decoded + 1 if decoded_since_seek else None)
        if frame.pts is None:
            continue
        index = timing.index_of(frame.pts)
        if not decoded_since_seek and index > target > 0 and retries < _MAX_SEEK_RETRIES:
            # The container index put us after the target: seek again from further back.
            retries += 1
            fallback = max(0, target - int(backoff * float(timing.fps)))
            container.seek(timing.pts_of(fallback), stream=stream, backward=True, any_frame=False)
            decoder, backoff = container.decode(stream), backoff * 2
            continue
        decoded_since_seek, backoff, retries = True, _SEEK_BACKOFF_SECONDS, 0
        if frame.key_frame:
            if last_keyframe is not None:
                keyframe_interval = max(keyframe_interval or 0, index - last_keyframe)
            last_keyframe = index
        last_decoded = max(last_decoded, index)
        if index < target:
            continue
        image = frame.to_ndarray(format="rgb24")
        while position < len(targets) and targets[position] <= index:
            frames[int(targets[position])] = image
            position += 1
    return frames, None


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
        raise MediaDecodingError(f"{path}: no audio samples in the window [{start}, {end}) s.")
    waveform = data.T  # (channels, samples)
    return (waveform.mean(axis=0) if mono else np.ascontiguousarray(waveform)), int(sampling_rate)


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
        if start is not None and start > _AUDIO_PREROLL_SECONDS:
            preroll_start = start - _AUDIO_PREROLL_SECONDS
            container.seek(int(preroll_start / stream.time_base), stream=stream, backward=True, any_frame=False)
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
            logger.warning(f"{path}: the audio track is damaged or truncated; using the part that decodes.")
    if not chunks:
        raise MediaDecodingError(f"{path}: the audio track has no decodable samples.")
    offset = chunks[0][0]
    waveform = np.concatenate([chunk for _, chunk in chunks], axis=1).astype(np.float32, copy=False)
    lo = 0 if first_sample is None else max(first_sample - offset, 0)
    hi = waveform.shape[1] if stop_sample is None else max(min(stop_sample - offset, waveform.shape[1]), lo)
    waveform = waveform[:, lo:hi]
    if waveform.shape[1] == 0:
        raise MediaDecodingError(f"{path}: no audio samples in the window [{start}, {end}) s.")
    return (waveform[0] if mono else np.ascontiguousarray(waveform)), int(sampling_rate)


__all__ = [
    "DecodedVideo",
    "MediaDecodingError",
    "is_path",
    "load_audio",
    "media_duration",
    "read_video",
    "resample_audio",
    "sample_frame_indices",
]
