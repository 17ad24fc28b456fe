"""Shared by the preprocessing tests and by `scripts/reference_4402/make_preprocessing_fixtures.py`.

The reference fixtures hold transformers 4.40.2's outputs, not its inputs: both sides rebuild the inputs from the
case specs below with seeded generators, so this module must stay importable under transformers 4.40.2 (it imports
numpy, PIL and torch only, never `tvlt`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures" / "preprocessing_4402"
SAMPLES_DIR = REPO_ROOT.parent / "shared" / "samples"
MOSEI_VIDEO = SAMPLES_DIR / "mosei" / "K0m1tO3Ybyc_2.mp4"
MOSEI_AUDIO = SAMPLES_DIR / "mosei" / "K0m1tO3Ybyc_2.wav"
HOWTO100M_VIDEO = SAMPLES_DIR / "howto100m" / "mg7Q4o9bNN0.mp4"

SMALL = {"size": {"shortest_edge": 40}, "crop_size": {"height": 32, "width": 32}}

# Image processor cases: `video` describes the input (see `make_video_input`), `kwargs` go to `preprocess`.
IMAGE_CASES = {
    "default_uint8_video": {"video": {"seed": 1, "shape": (2, 36, 48, 3), "smooth": True}, "kwargs": {}},
    "uint8_channels_last": {"video": {"seed": 2, "shape": (3, 30, 50, 3)}, "kwargs": SMALL},
    "uint8_channels_first": {"video": {"seed": 3, "shape": (3, 3, 50, 30)}, "kwargs": SMALL},
    "float_0_1": {"video": {"seed": 4, "shape": (2, 30, 44, 3), "dtype": "float32_unit"}, "kwargs": SMALL},
    "float_integral_0_255": {
        "video": {"seed": 5, "shape": (2, 30, 44, 3), "dtype": "float64_integral"},
        "kwargs": SMALL,
    },
    "int64_0_255": {"video": {"seed": 6, "shape": (2, 30, 44, 3), "dtype": "int64"}, "kwargs": SMALL},
    "pil_frames": {"video": {"seed": 7, "shape": (3, 37, 53, 3), "container": "pil_list"}, "kwargs": SMALL},
    "single_image": {"video": {"seed": 8, "shape": (1, 45, 45, 3), "container": "image"}, "kwargs": SMALL},
    "torch_batch_5d": {"video": {"seed": 9, "shape": (2, 2, 30, 40, 3), "container": "torch"}, "kwargs": SMALL},
    "list_of_videos": {
        "video": {"seed": 10, "shape": (2, 2, 34, 41, 3), "container": "list_of_arrays"},
        "kwargs": SMALL,
    },
    "list_of_frame_lists": {
        "video": {"seed": 11, "shape": (2, 3, 33, 35, 3), "container": "nested_lists"},
        "kwargs": SMALL,
    },
    "portrait": {"video": {"seed": 12, "shape": (2, 70, 41, 3)}, "kwargs": SMALL},
    "bicubic": {"video": {"seed": 13, "shape": (2, 36, 64, 3)}, "kwargs": {**SMALL, "resample": 3}},
    "nearest": {"video": {"seed": 14, "shape": (2, 36, 64, 3)}, "kwargs": {**SMALL, "resample": 0}},
    "lanczos_upscale": {"video": {"seed": 15, "shape": (2, 12, 20, 3)}, "kwargs": {**SMALL, "resample": 1}},
    "no_resize": {"video": {"seed": 16, "shape": (2, 40, 50, 3)}, "kwargs": {**SMALL, "do_resize": False}},
    "crop_pads_small_frames": {
        "video": {"seed": 17, "shape": (2, 20, 30, 3)},
        "kwargs": {"size": {"shortest_edge": 24}, "crop_size": {"height": 32, "width": 32}},
    },
    "no_center_crop": {"video": {"seed": 18, "shape": (2, 30, 50, 3)}, "kwargs": {**SMALL, "do_center_crop": False}},
    "no_rescale_no_normalize": {
        "video": {"seed": 19, "shape": (2, 30, 44, 3)},
        "kwargs": {**SMALL, "do_rescale": False, "do_normalize": False},
    },
    "custom_normalisation": {
        "video": {"seed": 20, "shape": (2, 30, 44, 3)},
        "kwargs": {**SMALL, "image_mean": [0.1, 0.2, 0.3], "image_std": [0.3, 0.2, 0.1], "rescale_factor": 0.005},
    },
    "channels_last_output": {
        "video": {"seed": 21, "shape": (2, 30, 44, 3)},
        "kwargs": {**SMALL, "data_format": "channels_last"},
    },
    "mixed": {"video": {"seed": 22, "shape": (2, 30, 44, 3)}, "kwargs": {**SMALL, "is_mixed": True}},
    "grayscale_scalar_mean": {
        "video": {"seed": 23, "shape": (2, 30, 44, 1)},
        "kwargs": {**SMALL, "image_mean": 0.5, "image_std": 0.5},
    },
}

# Feature extractor cases: `audio` describes the input (see `make_audio_input`), `kwargs` go to `__call__`
# (`init` to the constructor).
AUDIO_CASES = {
    "single_clip": {"audio": {"seed": 1, "lengths": [22050]}, "kwargs": {"sampling_rate": 44100}},
    "ragged_batch": {"audio": {"seed": 2, "lengths": [9000, 15435, 22050]}, "kwargs": {"sampling_rate": 44100}},
    "batched_2d_float64": {
        "audio": {"seed": 3, "lengths": [12000, 12000], "container": "array_2d", "dtype": "float64"},
        "kwargs": {"sampling_rate": 44100},
    },
    "list_of_float_lists": {
        "audio": {"seed": 4, "lengths": [9000, 11000], "container": "nested_lists"},
        "kwargs": {"sampling_rate": 44100},
    },
    "single_float_list": {
        "audio": {"seed": 5, "lengths": [10000], "container": "list"},
        "kwargs": {"sampling_rate": 44100},
    },
    "torch_1d": {"audio": {"seed": 6, "lengths": [13000], "container": "torch"}, "kwargs": {"sampling_rate": 44100}},
    "loud_chirp": {"audio": {"seed": 7, "lengths": [30000], "kind": "chirp"}, "kwargs": {"sampling_rate": 44100}},
    "truncated_to_spectrogram_length": {
        "audio": {"seed": 8, "lengths": [30000]},
        "kwargs": {"sampling_rate": 44100},
        "init": {"spectrogram_length": 32},
    },
    "padding_value": {
        "audio": {"seed": 9, "lengths": [9000, 20000]},
        "kwargs": {"sampling_rate": 44100},
        "init": {"padding_value": -1.0},
    },
    "no_attention_mask": {
        "audio": {"seed": 10, "lengths": [9000]},
        "kwargs": {"sampling_rate": 44100, "return_attention_mask": False},
    },
    "no_sampling_rate": {"audio": {"seed": 11, "lengths": [9000]}, "kwargs": {}},
    "other_rate_config": {
        "audio": {"seed": 12, "lengths": [12000]},
        "kwargs": {"sampling_rate": 22050},
        "init": {"sampling_rate": 22050, "hop_length_to_sampling_rate": 43},
    },
    "mosei_wav_as_is": {"audio": {"kind": "mosei"}, "kwargs": {"sampling_rate": 44100}},
}

# Clips shorter than one 16-frame audio patch (issue 9): 4.40.2 returned one patch of real and zero frames, masked as
# real, down to one hop (512 samples at 44.1 kHz), and an empty spectrogram below. Written by
# `scripts/reference_4402/make_short_audio_fixtures.py` to `short_audio.npz`; `kwargs` go to `__call__`.
SHORT_AUDIO_CASES = {
    **{
        f"short_{length}": {"audio": {"seed": 40 + index, "lengths": [length]}, "kwargs": {"sampling_rate": 44100}}
        for index, length in enumerate((512, 700, 1024, 1025, 2000, 4096, 8191))
    },
    "short_in_a_batch": {"audio": {"seed": 50, "lengths": [3000, 20000]}, "kwargs": {"sampling_rate": 44100}},
    "short_padding_value": {
        "audio": {"seed": 51, "lengths": [5000]},
        "kwargs": {"sampling_rate": 44100},
        "init": {"padding_value": -1.0},
    },
}
# What 4.40.2 made of clips without a single frame left (the last STFT frame is dropped): lengths 2 to 511.
EMPTY_AUDIO_LENGTHS = (2, 100, 511)

# Processor cases (4.40.2 forwards `images` and `audio` to the sub-processors).
PROCESSOR_CASES = {
    "video_and_audio": {
        "video": {"seed": 30, "shape": (1, 30, 44, 3), "smooth": True},
        "audio": {"seed": 31, "lengths": [12000]},
        "kwargs": {"sampling_rate": 44100},
    },
}


def make_video_input(spec: dict):
    """The visual input a case describes: uint8 (or other dtypes) frames, in the requested container."""
    rng = np.random.default_rng(spec.get("seed", 0))
    shape = tuple(spec["shape"])
    if spec.get("smooth"):
        # blocky noise: resized outputs compress well, which keeps the 224x224 fixture small
        coarse = rng.integers(0, 256, shape[:-3] + (shape[-3] // 6 + 1, shape[-2] // 6 + 1, shape[-1]), dtype=np.uint8)
        pixels = coarse.repeat(6, axis=-3).repeat(6, axis=-2)[..., : shape[-3], : shape[-2], :]
    else:
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)

    dtype = spec.get("dtype", "uint8")
    if dtype == "float32_unit":
        pixels = rng.random(shape, dtype=np.float32)
    elif dtype == "float64_integral":
        pixels = pixels.astype(np.float64)
    elif dtype == "int64":
        pixels = pixels.astype(np.int64)

    container = spec.get("container", "array")
    if container == "array":
        return pixels
    if container == "image":
        return pixels[0]
    if container == "pil_list":
        import PIL.Image

        return [PIL.Image.fromarray(frame) for frame in pixels]
    if container == "torch":
        import torch

        return torch.from_numpy(pixels)
    if container == "list_of_arrays":
        return list(pixels)
    if container == "nested_lists":
        return [list(video) for video in pixels]
    raise ValueError(f"unknown container {container!r}")


def make_audio_input(spec: dict):
    """The audio input a case describes: seeded noise (or a chirp, or the MOSEI wav) in the requested container."""
    if spec.get("kind") == "mosei":
        import soundfile

        waveform, _ = soundfile.read(str(MOSEI_AUDIO), dtype="float32")
        return waveform
    rng = np.random.default_rng(spec.get("seed", 0))
    clips = []
    for length in spec["lengths"]:
        if spec.get("kind") == "chirp":
            t = np.arange(length) / 44100
            clip = 0.9 * np.sin(2 * np.pi * (200 + 4000 * t) * t) + 0.01 * rng.standard_normal(length)
        else:
            clip = 0.1 * rng.standard_normal(length)
        clips.append(clip.astype(spec.get("dtype", "float32")))

    container = spec.get("container", "list_of_arrays")
    if container == "list_of_arrays":
        return clips[0] if len(clips) == 1 else clips
    if container == "array_2d":
        return np.stack(clips)
    if container == "nested_lists":
        return [clip.tolist() for clip in clips]
    if container == "list":
        return clips[0].tolist()
    if container == "torch":
        import torch

        return torch.from_numpy(clips[0])
    raise ValueError(f"unknown container {container!r}")


def mosei_frames(num_frames: int = 8) -> np.ndarray:
    """The MOSEI clip's frames at `np.linspace(0, n, num_frames, endpoint=False)`, decoded with plain PyAV."""
    import av

    with av.open(str(MOSEI_VIDEO)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    indices = np.linspace(0, len(frames), num_frames, endpoint=False).astype(int)
    return np.stack([frames[i] for i in indices])


def encode_pixels(pixel_values: np.ndarray, scale: np.ndarray, offset: np.ndarray, channel_axis: int):
    """The uint8 levels behind normalised pixels (`levels * scale + offset`), or None when they are not such.

    Resized frames are uint8 before they are rescaled and normalised, so the fixtures store the levels (4x smaller)
    with the per-channel scale and offset; `decode_pixels` gives the floats back within 1e-6.
    """
    levels = np.rint(
        (pixel_values - _along(offset, pixel_values.ndim, channel_axis))
        / _along(scale, pixel_values.ndim, channel_axis)
    )
    if levels.min() < 0 or levels.max() > 255:
        return None
    levels = levels.astype(np.uint8)
    if np.abs(decode_pixels(levels, scale, offset, channel_axis) - pixel_values).max() > 1e-6:
        return None
    return levels


def decode_pixels(levels: np.ndarray, scale: np.ndarray, offset: np.ndarray, channel_axis: int) -> np.ndarray:
    return levels.astype(np.float64) * _along(scale, levels.ndim, channel_axis) + _along(
        offset, levels.ndim, channel_axis
    )


def _along(values: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = -1
    return np.asarray(values, dtype=np.float64).reshape(shape)


# -- synthetic media files (tests only) -----------------------------------------------------------------------------

FRAME_INDEX_STEP = 8  # pixel levels per index step: survives lossy codecs


def frame_with_index(index: int, height: int = 64, width: int = 64) -> np.ndarray:
    """An RGB frame whose colour encodes `index` (red: index % 32, green: index // 32), readable after mpeg4."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[..., 0] = (index % 32) * FRAME_INDEX_STEP
    frame[..., 1] = (index // 32) * FRAME_INDEX_STEP
    frame[..., 2] = 128
    return frame


def index_of_frame(frame: np.ndarray) -> int:
    return int(round(frame[..., 0].mean() / FRAME_INDEX_STEP)) + 32 * int(
        round(frame[..., 1].mean() / FRAME_INDEX_STEP)
    )


def stereo_tone(num_samples: int, sampling_rate: int) -> np.ndarray:
    """(2, num_samples) float32: 440 Hz at 0.5 on the left, 880 Hz at 0.25 on the right."""
    t = np.arange(num_samples) / sampling_rate
    return np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 880 * t)]).astype(np.float32)


def write_video(
    path,
    num_frames: int = 90,
    fps: int = 30,
    codec: str = "mpeg4",
    gop_size: int = 15,
    audio_codec: str | None = None,
    sampling_rate: int = 44100,
    size: tuple[int, int] = (64, 64),
    frame_fn=frame_with_index,
):
    """Write a small test video (frame i shows `frame_fn(i)`) with an optional stereo tone track; returns the tone."""
    import av

    height, width = size
    tone = stereo_tone(int(sampling_rate * num_frames / fps), sampling_rate) if audio_codec else None
    # index at the start of mp4 files ("faststart"), as downloaded videos have it: a truncated copy still opens
    options = {"movflags": "faststart"} if str(path).endswith(".mp4") else {}
    with av.open(str(path), "w", options=options) as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "yuv444p" if codec == "ffv1" else "yuv420p"
        video.codec_context.gop_size = gop_size
        if codec == "mpeg4":
            video.codec_context.qscale = 1
        audio = None
        if audio_codec:
            audio = container.add_stream(audio_codec, rate=sampling_rate)
            audio.layout = "stereo"
        for index in range(num_frames):
            picture = av.VideoFrame.from_ndarray(frame_fn(index), format="rgb24")
            for packet in video.encode(picture):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            for start in range(0, tone.shape[1], 1024):
                chunk = tone[:, start : start + 1024]
                if audio_codec == "pcm_s16le":
                    samples = (chunk.T.reshape(1, -1) * 32767).astype(np.int16)
                    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
                else:
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
                frame.sample_rate = sampling_rate
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return tone


class DecodeCounter:
    """Wraps `av.open` so that a test can count what a reader decodes: `frames` (video frames by path), `timestamps`
    (their pts by path), `decoded` (`(path, "video" or "audio", seconds)` of every decoded frame, audio decoded packet
    by packet too) and the packets it reads itself (`audio_packets`, `video_packets` by path: decoding reads more).
    Past `budget` decoded video frames of one file it raises `DecodeBudgetExceeded`, so that a reader that decodes
    without end fails instead of hanging the test."""

    def __init__(self, av_module, budget: int | None = None):
        self._open = av_module.open
        self.budget = budget
        self.frames: dict[str, int] = {}
        self.timestamps: dict[str, list] = {}
        self.decoded: list[tuple[str, str, float]] = []
        self.audio_packets: dict[str, int] = {}
        self.video_packets: dict[str, int] = {}

    def __call__(self, path, *args, **kwargs):
        return _CountingContainer(self._open(path, *args, **kwargs), self, str(path))


class _CountingContainer:
    def __init__(self, container, counter: DecodeCounter, path: str):
        self._container, self._counter, self._path = container, counter, path

    def __getattr__(self, name):
        return getattr(self._container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return self._container.__exit__(*exc_info)

    def decode(self, *args, **kwargs):
        for frame in self._container.decode(*args, **kwargs):
            self.count(frame)
            yield frame

    def demux(self, *args, **kwargs):
        for packet in self._container.demux(*args, **kwargs):
            counts = {"audio": self._counter.audio_packets, "video": self._counter.video_packets}.get(
                packet.stream.type
            )
            if counts is not None:
                counts[self._path] = counts.get(self._path, 0) + 1
            yield _CountingPacket(packet, self)

    def count(self, frame) -> None:
        counter = self._counter
        video = frame.__class__.__name__ == "VideoFrame"
        if video:
            count = counter.frames[self._path] = counter.frames.get(self._path, 0) + 1
            counter.timestamps.setdefault(self._path, []).append(frame.pts)
            if counter.budget is not None and count > counter.budget:
                raise DecodeBudgetExceeded(f"{self._path}: more than {counter.budget} frames decoded")
        counter.decoded.append((self._path, "video" if video else "audio", frame.time))


class _CountingPacket:
    def __init__(self, packet, container: _CountingContainer):
        self._packet, self._container = packet, container

    def __getattr__(self, name):
        return getattr(self._packet, name)

    def decode(self):
        frames = self._packet.decode()
        for frame in frames:
            self._container.count(frame)
        return frames


class DecodeBudgetExceeded(Exception):
    pass
