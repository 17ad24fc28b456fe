"""Inputs of the 4.40.2 model fixtures, shared by `make_model_fixtures.py` (under 4.40.2) and the parity tests (5.x).

Seeded, so both sides build the same tensors; the fixtures store a checksum of each to catch drift.
"""

import torch


def make_inputs(config, seed: int) -> dict:
    """A batch of 2: sample 0 full length, sample 1 with a padded last frame and padded trailing audio patches."""
    g = torch.Generator().manual_seed(seed)
    batch, frames = 2, config.num_frames
    per_frame = (config.image_size // config.image_patch_size[0]) * (config.image_size // config.image_patch_size[1])
    time = config.spectrogram_length
    freq_patches = config.frequency_length // config.audio_patch_size[1]
    audio_patches = (time // config.audio_patch_size[0]) * freq_patches
    pixel_values = torch.randn(batch, frames, 3, config.image_size, config.image_size, generator=g)
    audio_values = torch.rand(batch, 1, time, config.frequency_length, generator=g) * 2 - 1
    pixel_mask = torch.ones(batch, frames * per_frame)
    pixel_mask[1, (frames - 1) * per_frame :] = 0
    audio_mask = torch.ones(batch, audio_patches)
    audio_mask[1, audio_patches // 2 :] = 0
    pixel_values[1, frames - 1] = 0
    audio_values[1, :, time // 2 :] = -1
    return {
        "pixel_values": pixel_values,
        "audio_values": audio_values,
        "pixel_mask": pixel_mask,
        "audio_mask": audio_mask,
        "pixel_values_mixed": torch.flip(pixel_values, dims=[0]).contiguous(),
        "pixel_mask_mixed": torch.flip(pixel_mask, dims=[0]).contiguous(),
        "labels": torch.tensor([[0.0], [1.0]]),
    }


def make_clip_arrays(num_frames: int, seed: int) -> tuple:
    """A video of `num_frames` uint8 RGB frames (36x44, not the model's size) and 0.5 s of audio at 44.1 kHz, for the
    sized-processor fixtures (numpy's seeded generator: the same on both sides)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    video = rng.integers(0, 256, size=(num_frames, 36, 44, 3), dtype=np.uint8)
    audio = (rng.standard_normal(22050) * 0.1).astype(np.float32)
    return video, audio
