"""Where `tvlt reconstruct` looks in a clip longer than the model's audio span when no `--start`/`--end` is given.

The first seconds of a real video are often a silent title card: nothing for the masked autoencoder to show. Instead
of `[0, span)`, the command draws the busiest of `CANDIDATES` evenly spaced windows of the span: the one ranking best
on loudness (median RMS of 0.1 s chunks of its audio, so that a click does not count as sound) plus motion (bytes of
the video's non-key frames per second: an encoder spends them on what changes between frames; keyframes are left out
because their size reflects detail, not motion). Reading them costs `CANDIDATES` window decodes of the audio and a
demux (no decoding) of the video packets: well under the model's own time, whatever the clip's length.
"""

from fractions import Fraction

import numpy as np

from ..media_tvlt import header_seconds


CANDIDATES = 16
_CHUNK_SECONDS = 0.1
_SILENCE_DB = -200.0


def busiest_window(video: str, audio: str | None, span: float) -> tuple[float, float] | None:
    """`(start, end)` of the busiest `span`-second window of `video` (and of `audio`, the sound to use instead of the
    video's track); `None` when the clip is not longer than 1.5 spans or its length cannot be read."""
    import av

    try:
        with av.open(video) as container:
            duration = header_seconds(container, container.streams.video[0] if container.streams.video else None)
            for _ in range(2):
                if duration is None or duration <= 1.5 * span:
                    return None
                starts = np.linspace(0.0, duration - span, CANDIDATES)
                motion = [_motion(container, start, start + span) for start in starts]
                # a cut-off file declares more than it holds: spread the windows again over what it holds
                holding = [index for index, value in enumerate(motion) if value is not None]
                if not holding or holding[-1] == CANDIDATES - 1:
                    break
                duration = float(starts[holding[-1] + 1])
    except (av.error.FFmpegError, OSError):
        return None
    motion = [value or 0.0 for value in motion]
    loudness = [_loudness(audio or video, start, start + span) for start in starts]
    # ranks make bytes and decibels comparable; the earliest of equally busy windows wins
    score = _ranks(np.asarray(motion)) + _ranks(np.asarray(loudness))
    start = float(starts[int(np.argmax(score))])
    return start, start + span


def _motion(container, start: float, end: float) -> float | None:
    """Bytes per second of the non-key video packets presented in `[start, end)`; `None` when the file holds no
    video packet from `start` on."""
    if not container.streams.video:
        return 0.0
    stream = container.streams.video[0]
    time_base = Fraction(stream.time_base)
    # seconds count from the stream's first timestamp, as the clip's frames are read (media_tvlt)
    first = stream.start_time or 0
    container.seek(first + int(start / time_base), stream=stream, backward=True, any_frame=False)
    total, reached = 0, False
    for packet in container.demux(stream):
        timestamp = packet.pts if packet.pts is not None else packet.dts
        if timestamp is None or packet.size == 0:
            continue
        seconds = float((timestamp - first) * time_base)
        if seconds >= end:
            reached = True
            break
        if seconds >= start:
            reached = True
            if not packet.is_keyframe:
                total += packet.size
    return total / (end - start) if reached else None


def _loudness(path: str, start: float, end: float) -> float:
    """Median RMS level (dB) of the 0.1 s chunks of the audio in `[start, end)`; very low when there is none."""
    from ..media_tvlt import load_audio

    try:
        waveform, sampling_rate = load_audio(path, start=start, end=end)
    except (ValueError, OSError, ImportError):  # no audio there (a cut-off file), or no audio track
        return _SILENCE_DB
    chunk = max(1, round(_CHUNK_SECONDS * sampling_rate))
    usable = len(waveform) // chunk * chunk
    if usable == 0:
        return _SILENCE_DB
    power = np.square(waveform[:usable].astype(np.float64)).reshape(-1, chunk).mean(axis=1)
    return float(np.median(10 * np.log10(np.maximum(power, 1e-20))))


def _ranks(values: np.ndarray) -> np.ndarray:
    """0 for the smallest value, ties sharing the mean of their ranks."""
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


__all__ = ["CANDIDATES", "busiest_window"]
