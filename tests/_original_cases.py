"""Inputs of the fixtures made with the original TVLT code and with torchaudio (tests/fixtures/original_tvlt).

Shared by the tests and by `scripts/reference_original/*.py`, which run in a separate environment (torchaudio, the
original code's dependencies) without `tvlt`: this module imports numpy only, and soundfile where it is handed in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures" / "original_tvlt"
SAMPLES_DIR = REPO_ROOT.parent / "shared" / "samples"
MOSEI_AUDIO = SAMPLES_DIR / "mosei" / "K0m1tO3Ybyc_2.wav"
MOSEI_VIDEO = SAMPLES_DIR / "mosei" / "K0m1tO3Ybyc_2.mp4"
ORIGINAL_CHECKPOINTS = REPO_ROOT.parent / "shared" / "fixtures" / "original-tvlt"

# torchaudio.functional.resample cases: `(channels, samples)` float signals and the rate to resample them to.
RESAMPLE_CASES = {
    "mosei_16k": {"kind": "mosei", "target": 44100},
    "stereo_48k": {
        "kind": "tones_and_noise",
        "seed": 1,
        "rate": 48000,
        "seconds": 1.0,
        "channels": 2,
        "target": 44100,
    },
    "mono_8k": {"kind": "tones_and_noise", "seed": 2, "rate": 8000, "seconds": 0.5, "channels": 1, "target": 44100},
    "float64_22k": {
        "kind": "tones_and_noise",
        "seed": 3,
        "rate": 22050,
        "seconds": 0.5,
        "channels": 1,
        "target": 44100,
        "dtype": "float64",
    },
    # longer than one chunk of our resampler's output (about a million samples)
    "long_48k": {"kind": "tones_and_noise", "seed": 4, "rate": 48000, "seconds": 30.0, "channels": 1, "target": 44100},
}


def tones_and_noise(seed: int, rate: int, seconds: float, channels: int, dtype: str = "float32") -> np.ndarray:
    """`(channels, samples)`: a few tones up to near the Nyquist frequency, plus quiet noise, within [-1, 1]."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(rate * seconds)) / rate
    signal = np.zeros((channels, time.size))
    for channel in range(channels):
        for frequency in (220.0, 1000.0 * (channel + 1), 0.45 * rate):
            signal[channel] += 0.2 * np.sin(2 * np.pi * frequency * time + rng.uniform(0, 2 * np.pi))
        signal[channel] += 0.05 * rng.standard_normal(time.size)
    return signal.astype(dtype)


def make_resample_input(case: dict, soundfile) -> tuple[np.ndarray, int]:
    """The `(channels, samples)` signal of a resampling case and its rate (`soundfile` reads the MOSEI wav)."""
    if case["kind"] == "mosei":
        data, rate = soundfile.read(MOSEI_AUDIO, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), int(rate)
    keys = ("seed", "rate", "seconds", "channels", "dtype")
    return tones_and_noise(**{key: case[key] for key in keys if key in case}), case["rate"]


# Audio files through the original pipeline (`rawvideo_utils.load_audio`: torchaudio.load, resample to 44.1 kHz,
# channel mean, `preprocess_audio`, at most 1024 frames). `make_audio_file` writes each one; the MOSEI-based ones
# need ../shared/samples.
HOP = 512
AUDIO_FILE_CASES = {
    "mosei": {"kind": "mosei"},
    # 0.5 s of digital silence, then the speech 20 dB quieter and without its mean. The original normalises to at
    # most 80 dB below the clip's peak and maps everything under -60 dB to -1: only for a clip peaking under +20 dB
    # (this one: +13 dB; the MOSEI clip: +33 dB) is silence all -1, its first audio patch padding, and CLS hidden.
    "mosei_silent_start": {"kind": "mosei", "silence": 0.5, "gain": 0.1},
    "stereo_48k": {"kind": "tones_and_noise", "seed": 1, "rate": 48000, "seconds": 1.0, "channels": 2},
    "pcm16_22k": {"kind": "tones_and_noise", "seed": 5, "rate": 22050, "seconds": 0.7, "channels": 1, "pcm16": True},
    # 1 + samples // 512 STFT frames: 32 (a multiple of 16, padded to 48 by the original), 1023, 1100 (cut at 1024)
    "frames_32": {"kind": "tones_and_noise", "seed": 6, "rate": 44100, "samples": 31 * HOP, "channels": 1},
    "frames_32_silent_start": {
        "kind": "tones_and_noise",
        "seed": 7,
        "rate": 44100,
        "samples": 31 * HOP,
        "channels": 1,
        "silence": 0.25,
        "gain": 0.1,
    },
    "frames_1023": {"kind": "tones_and_noise", "seed": 8, "rate": 44100, "samples": 1022 * HOP, "channels": 1},
    "frames_1100": {"kind": "tones_and_noise", "seed": 9, "rate": 44100, "samples": 1099 * HOP, "channels": 1},
    # shorter than one 16-frame patch
    "short_300": {"kind": "tones_and_noise", "seed": 10, "rate": 44100, "samples": 300, "channels": 1},
    "short_2000": {"kind": "tones_and_noise", "seed": 11, "rate": 44100, "samples": 2000, "channels": 1},
}
# Spectrograms stored whole in the fixture (the others as their first and last frames and their sums over each frame
# and each mel bin, which keeps the file small)
WHOLE_SPECTROGRAMS = ("mosei", "stereo_48k", "pcm16_22k", "frames_32", "frames_32_silent_start", "short_300")
EDGE_FRAMES = 32


def make_audio_file(case: dict, path: Path, soundfile) -> Path:
    """Write the WAV of an `AUDIO_FILE_CASES` entry to `path` (32-bit float, or 16-bit PCM with `pcm16`)."""
    if case["kind"] == "mosei":
        data, rate = soundfile.read(MOSEI_AUDIO, dtype="float32", always_2d=True)
        signal = data.T
    else:
        rate = case["rate"]
        seconds = case.get("seconds", case.get("samples", 0) / rate)
        signal = tones_and_noise(case["seed"], rate, seconds, case["channels"])
        if "samples" in case:
            signal = signal[:, : case["samples"]]
            signal = np.pad(signal, ((0, 0), (0, case["samples"] - signal.shape[1])))
    if "silence" in case:
        quiet = int(case["silence"] * rate)
        speech = signal[:, : case["samples"] - quiet] if "samples" in case else signal
        speech = case.get("gain", 1.0) * (
            speech.astype(np.float64) - speech.astype(np.float64).mean(axis=1, keepdims=True)
        )
        signal = np.concatenate([np.zeros((signal.shape[0], quiet)), speech], axis=1).astype(np.float32)
    subtype = "PCM_16" if case.get("pcm16") else "FLOAT"
    soundfile.write(path, np.ascontiguousarray(signal.T), rate, subtype=subtype)
    return path
