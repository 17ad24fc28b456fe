"""Make the small demo clip that ships with the project: `examples/assets/talking_face.mp4` (about 20 KB).

A synthetic "talking face": a cartoon face whose mouth opens with the loudness of a vowel-like voice (a 140 Hz
glottal pulse train shaped by two formants, four syllables a second). Made from code, so it carries no third-party
rights and is the same on every machine; H.264 video (128x128, 15 fps) and AAC audio (mono, 44.1 kHz, TVLT's rate),
3 seconds. Needs PyAV (`pip install av`):

    python examples/make_demo_clip.py [OUT.mp4]
"""

import argparse
from fractions import Fraction
from pathlib import Path

import numpy as np


DEFAULT_OUT = Path(__file__).resolve().parent / "assets" / "talking_face.mp4"
SECONDS = 3.0
FPS = 15
SIZE = 128
SAMPLING_RATE = 44100
PITCH_HZ = 140.0
FORMANTS_HZ = ((700.0, 110.0), (1200.0, 130.0))  # an open "a" vowel: (centre, bandwidth)
SYLLABLES_PER_SECOND = 4.0


def voice(seconds: float = SECONDS, sampling_rate: int = SAMPLING_RATE) -> tuple[np.ndarray, np.ndarray]:
    """
    The voice and its loudness envelope.

    Returns:
        `(waveform, envelope)`: float32 `(samples,)` in [-1, 1], and the envelope in [0, 1] of the same length.
    """
    time = np.arange(int(seconds * sampling_rate)) / sampling_rate
    # glottal pulses with a slight vibrato, then two formant resonators (second-order IIR filters)
    phase = 2 * np.pi * np.cumsum(PITCH_HZ * (1 + 0.02 * np.sin(2 * np.pi * 5 * time))) / sampling_rate
    source = np.maximum(np.sin(phase), 0) ** 8
    signal = source - source.mean()
    for centre, bandwidth in FORMANTS_HZ:
        radius = np.exp(-np.pi * bandwidth / sampling_rate)
        a1, a2 = -2 * radius * np.cos(2 * np.pi * centre / sampling_rate), radius**2
        filtered = np.zeros_like(signal)
        for index in range(len(signal)):
            filtered[index] = signal[index] - a1 * filtered[index - 1] - a2 * filtered[index - 2]
        signal = filtered
    envelope = np.clip(np.sin(np.pi * SYLLABLES_PER_SECOND * time), 0, None) ** 0.7
    envelope[time > seconds - 0.5] = 0  # a short silence at the end
    waveform = signal * envelope
    waveform = 0.7 * waveform / np.abs(waveform).max()
    return waveform.astype(np.float32), envelope


def face(mouth_opening: float, frame_index: int) -> np.ndarray:
    """One `(SIZE, SIZE, 3)` uint8 frame; `mouth_opening` in [0, 1]."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    frame = np.empty((SIZE, SIZE, 3))
    frame[:] = (40, 70, 110)  # background
    frame[y > SIZE * 0.8] = (60, 95, 140)  # a "table" edge, so frames are not all symmetric
    centre_x = SIZE / 2 + 3 * np.sin(2 * np.pi * frame_index / 30)  # the head sways a little
    head = ((x - centre_x) / (SIZE * 0.36)) ** 2 + ((y - SIZE * 0.5) / (SIZE * 0.42)) ** 2 <= 1
    frame[head] = (245, 200, 80)
    for side in (-1, 1):
        eye = (x - centre_x - side * SIZE * 0.14) ** 2 + (y - SIZE * 0.38) ** 2 <= (SIZE * 0.045) ** 2
        frame[eye] = (30, 30, 30)
    mouth_height = SIZE * (0.015 + 0.11 * mouth_opening)
    mouth = ((x - centre_x) / (SIZE * 0.15)) ** 2 + ((y - SIZE * 0.66) / mouth_height) ** 2 <= 1
    frame[mouth] = (140, 30, 40)
    return frame.round().astype(np.uint8)


def write_clip(out: Path) -> Path:
    import av

    waveform, envelope = voice()
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), mode="w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width = video.height = SIZE
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "28", "preset": "veryslow", "tune": "animation"}
        audio = container.add_stream("aac", rate=SAMPLING_RATE)
        audio.layout = "mono"
        audio.bit_rate = 48_000

        for index in range(int(SECONDS * FPS)):
            sample = min(int((index + 0.5) / FPS * SAMPLING_RATE), len(envelope) - 1)
            frame = av.VideoFrame.from_ndarray(face(float(envelope[sample]), index), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode())

        chunk = 1024  # AAC frame size
        for first in range(0, len(waveform), chunk):
            samples = waveform[None, first : first + chunk]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLING_RATE, first, Fraction(1, SAMPLING_RATE)
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"where to write it (default: {DEFAULT_OUT})"
    )
    out = write_clip(parser.parse_args().out)
    print(f"{out} ({out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
