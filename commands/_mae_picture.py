"""The masked-autoencoding picture of `tvlt reconstruct`: what TVLT's MAE sees, hides and rebuilds, frames and audio.

Like the original `Demo_Video_Audio_MAE` notebook, per modality: the input, the input with the hidden patches greyed
out, the reconstruction (visible patches as given, hidden ones as predicted), and the model's prediction of every
patch. Drawn with PIL only (no plotting library needed).
"""

from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import torch


# matplotlib's viridis at 9 evenly spaced points: quiet (dark blue) to loud (yellow)
_VIRIDIS = np.array(
    [
        [68, 1, 84],
        [71, 44, 122],
        [59, 81, 139],
        [44, 113, 142],
        [33, 144, 141],
        [39, 173, 129],
        [92, 200, 99],
        [170, 220, 50],
        [253, 231, 37],
    ],
    dtype=np.float64,
)
HIDDEN_PATCH_RGB = (128, 128, 128)
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)
_MIN_TILE = 128  # smaller frames are scaled up by a whole factor, keeping patch edges sharp
_SPECTROGRAM_HEIGHT = 128
_LABEL_WIDTH = 250
_GAP = 6


@dataclass
class MaeReconstruction:
    """
    One clip through TVLT's masked autoencoder, in display-ready arrays.

    Attributes:
        frames, predicted_frames (`np.ndarray` of shape `(T, H, W, 3)`, floats in [0, 1]):
            The real input frames and the model's prediction of every patch.
        hidden_pixels (`np.ndarray` of shape `(T, H, W)`, bool): pixels of the patches hidden from the encoder.
        spectrogram, predicted_spectrogram (`np.ndarray` of shape `(frequency, time)`, floats in [-1, 1]):
            The real part of the input spectrogram (low frequencies in row 0) and the prediction of every patch.
        hidden_bins (`np.ndarray` of shape `(frequency, time)`, bool): bins of the hidden audio patches.
        pixel_error, audio_error (`float`): mean squared error on the hidden patches (normalised values).
        pixel_mask_ratio, audio_mask_ratio (`float`), audio_mask_type (`str`): the masking that was used.
    """

    frames: np.ndarray
    predicted_frames: np.ndarray
    hidden_pixels: np.ndarray
    spectrogram: np.ndarray
    predicted_spectrogram: np.ndarray
    hidden_bins: np.ndarray
    pixel_error: float
    audio_error: float
    pixel_mask_ratio: float
    audio_mask_ratio: float
    audio_mask_type: str


@torch.no_grad()
def reconstruct(
    model, image_processor, inputs: dict, seed: int = 0, audio_padding_value: float | None = None
) -> MaeReconstruction:
    """
    Run the MAE pass of a [`TvltForPreTraining`] model (with `task_mae`) on one prepared clip.

    Args:
        model: the pre-training model, in eval mode.
        image_processor: the checkpoint's image processor (to undo the frame normalisation).
        inputs: `pixel_values` `(1, T, 3, H, W)`, `pixel_mask`, `audio_values` `(1, 1, time, frequency)`, `audio_mask`.
        seed: seeds the masking noise, so the same seed hides the same patches.
        audio_padding_value: what the feature extractor padded the spectrogram with; the padded frames of its last
            patch are left out of the picture.
    """
    config = model.config
    device, dtype = model.device, model.dtype
    inputs = {k: v.to(device, dtype) if v.is_floating_point() else v.to(device) for k, v in inputs.items()}
    pixel_values, audio_values = inputs["pixel_values"], inputs["audio_values"]
    num_frames = pixel_values.shape[1]
    (patch_h, patch_w), (patch_t, patch_f) = config.image_patch_size, config.audio_patch_size
    grid_h, grid_w = pixel_values.shape[3] // patch_h, pixel_values.shape[4] // patch_w
    grid_t, grid_f = audio_values.shape[2] // patch_t, audio_values.shape[3] // patch_f

    generator = torch.Generator().manual_seed(seed)
    pixel_noise = torch.rand(1, num_frames * grid_h * grid_w, generator=generator)
    frame_level = config.audio_mask_type == "frame-level"
    audio_noise = torch.rand(1, grid_t if frame_level else grid_t * grid_f, generator=generator)
    outputs = model(**inputs, reconstruct=True, pixel_noise=pixel_noise, audio_noise=audio_noise)

    pixel_hidden = outputs.pixel_label_masks[0].bool().cpu()  # [T * h * w]
    audio_hidden = outputs.audio_label_masks[0].bool().cpu()  # [t * f]
    pixel_targets = model.patchify_pixel(pixel_values)[0].float().cpu()
    audio_targets = model.patchify_audio(audio_values)[0].float().cpu()
    pixel_predictions = outputs.pixel_logits[0].float().cpu()
    audio_predictions = outputs.audio_logits[0].float().cpu()

    # frames: [T * h * w, ph * pw * 3] patches -> (T, H, W, 3), the inverse of patchify_pixel
    def frames_of(patches: torch.Tensor) -> np.ndarray:
        grid = patches.reshape(num_frames, grid_h, grid_w, patch_h, patch_w, -1)
        return grid.permute(0, 1, 3, 2, 4, 5).reshape(num_frames, grid_h * patch_h, grid_w * patch_w, -1).numpy()

    # spectrogram: [t * f, pt * pf] patches -> (frequency, time), the inverse of patchify_audio
    def spectrogram_of(patches: torch.Tensor) -> np.ndarray:
        grid = patches.reshape(grid_t, grid_f, patch_t, patch_f)
        return grid.permute(0, 2, 1, 3).reshape(grid_t * patch_t, grid_f * patch_f).T.numpy()

    hidden_pixels = frames_of(pixel_hidden[:, None].expand(-1, patch_h * patch_w).float())[..., 0] > 0
    hidden_bins = spectrogram_of(audio_hidden[:, None].expand(-1, patch_t * patch_f).float()) > 0

    real_frames = (
        int(inputs["pixel_mask"][0].view(num_frames, -1).any(-1).sum()) if "pixel_mask" in inputs else num_frames
    )
    real_frames = max(real_frames, 1)
    real_time = grid_t * patch_t
    if "audio_mask" in inputs:
        real_steps = inputs["audio_mask"][0].view(grid_t, grid_f).any(-1).nonzero()
        real_time = (int(real_steps.max()) + 1) * patch_t if len(real_steps) else patch_t
    if audio_padding_value is not None:
        # the mask is per patch: the last real patch may end in padded frames
        padded = (audio_values[0, 0, :real_time] == audio_padding_value).all(-1).cpu()
        last_patch_start = real_time - patch_t
        while real_time > last_patch_start + 1 and padded[real_time - 1]:
            real_time -= 1

    return MaeReconstruction(
        frames=_displayable(frames_of(pixel_targets), image_processor)[:real_frames],
        predicted_frames=_displayable(frames_of(pixel_predictions), image_processor)[:real_frames],
        hidden_pixels=hidden_pixels[:real_frames],
        spectrogram=spectrogram_of(audio_targets)[:, :real_time],
        predicted_spectrogram=np.clip(spectrogram_of(audio_predictions)[:, :real_time], -1.0, 1.0),
        hidden_bins=hidden_bins[:, :real_time],
        pixel_error=_masked_mse(pixel_predictions, pixel_targets, pixel_hidden),
        audio_error=_masked_mse(audio_predictions, audio_targets, audio_hidden),
        pixel_mask_ratio=float(config.pixel_mask_ratio),
        audio_mask_ratio=float(config.audio_mask_ratio),
        audio_mask_type=str(config.audio_mask_type),
    )


def render(reconstruction: MaeReconstruction, title: str, notes: tuple[str, ...] = ()) -> PIL.Image.Image:
    """The picture: a title (and `notes` under it), then four rows of frames and four of spectrograms, labelled."""
    recon = reconstruction
    num_frames, height, width = recon.frames.shape[:3]
    scale = 1 if height >= _MIN_TILE else -(-_MIN_TILE // height)
    tile_w, tile_h = width * scale, height * scale
    row_width = num_frames * tile_w + (num_frames - 1) * _GAP

    grey = np.array(HIDDEN_PATCH_RGB, dtype=np.float64) / 255
    frames = recon.frames
    masked = np.where(recon.hidden_pixels[..., None], grey, frames)
    pasted = np.where(recon.hidden_pixels[..., None], recon.predicted_frames, frames)
    hidden_percent = 100 * recon.hidden_pixels.mean()
    video_rows = [
        ("Video: input frames", frames),
        (f"Video: masked input\n({hidden_percent:.0f}% of patches hidden)", masked),
        ("Video: reconstruction\n(visible patches + predicted\nhidden ones)", pasted),
        ("Video: model output,\nevery patch", recon.predicted_frames),
    ]
    spectrogram_rgb = _viridis(recon.spectrogram)
    masked_spectrogram = np.where(recon.hidden_bins[..., None], grey * 255, spectrogram_rgb)
    pasted_spectrogram = _viridis(np.where(recon.hidden_bins, recon.predicted_spectrogram, recon.spectrogram))
    audio_percent = 100 * recon.hidden_bins.mean()
    audio_rows = [
        ("Audio: input log-mel\nspectrogram (time ->,\nlow frequencies at bottom)", spectrogram_rgb),
        (f"Audio: masked input\n({audio_percent:.0f}% hidden, {recon.audio_mask_type})", masked_spectrogram),
        ("Audio: reconstruction\n(visible + predicted\nhidden patches)", pasted_spectrogram),
        ("Audio: model output,\nevery patch", _viridis(recon.predicted_spectrogram)),
    ]

    font, small_font = _font(18), _font(14)
    header = [
        title,
        f"hidden-patch MSE (normalised values): video {recon.pixel_error:.4f}, audio {recon.audio_error:.4f}; "
        "hidden patches are grey",
        *notes,
    ]
    header_height = 30 + 22 * (len(header) - 1) + _GAP
    spectrogram_height = max(_SPECTROGRAM_HEIGHT, recon.spectrogram.shape[0])
    total_height = header_height + 4 * (tile_h + _GAP) + 4 * (spectrogram_height + _GAP) + _GAP
    canvas = PIL.Image.new("RGB", (_LABEL_WIDTH + row_width + 2 * _GAP, total_height), _BACKGROUND)
    draw = PIL.ImageDraw.Draw(canvas)
    draw.text((_GAP, _GAP), header[0], fill=_TEXT, font=font)
    for line_number, line in enumerate(header[1:]):
        draw.text((_GAP, _GAP + 28 + 22 * line_number), line, fill=_TEXT, font=small_font)

    top = header_height
    for label, images in video_rows:
        draw.multiline_text((_GAP, top + 4), label, fill=_TEXT, font=small_font)
        for index, image in enumerate(images):
            tile = PIL.Image.fromarray(_to_uint8(image)).resize((tile_w, tile_h), PIL.Image.NEAREST)
            canvas.paste(tile, (_LABEL_WIDTH + index * (tile_w + _GAP), top))
        top += tile_h + _GAP
    for label, image in audio_rows:
        draw.multiline_text((_GAP, top + 4), label, fill=_TEXT, font=small_font)
        # row 0 holds the lowest frequency: flip so that it is drawn at the bottom
        picture = PIL.Image.fromarray(_to_uint8(image[::-1] / 255))
        resample = PIL.Image.NEAREST if picture.width <= row_width else PIL.Image.BOX
        canvas.paste(picture.resize((row_width, spectrogram_height), resample), (_LABEL_WIDTH, top))
        top += spectrogram_height + _GAP
    return canvas


# -- helpers ----------------------------------------------------------------------------------------------------------


def _displayable(frames: np.ndarray, image_processor) -> np.ndarray:
    """Normalised frames `(T, H, W, 3)` back to [0, 1] RGB."""
    if getattr(image_processor, "do_normalize", True):
        mean = np.asarray(image_processor.image_mean, dtype=np.float64)
        std = np.asarray(image_processor.image_std, dtype=np.float64)
        frames = frames * std + mean
    if not getattr(image_processor, "do_rescale", True):
        frames = frames / 255
    return np.clip(frames, 0.0, 1.0)


def _viridis(spectrogram: np.ndarray) -> np.ndarray:
    """`(frequency, time)` values in [-1, 1] to `(frequency, time, 3)` RGB in [0, 255]."""
    position = np.clip((spectrogram + 1) / 2, 0, 1) * (len(_VIRIDIS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_VIRIDIS) - 2)
    fraction = (position - low)[..., None]
    return _VIRIDIS[low] * (1 - fraction) + _VIRIDIS[low + 1] * fraction


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def _masked_mse(predictions: torch.Tensor, targets: torch.Tensor, hidden: torch.Tensor) -> float:
    if not hidden.any():
        return float("nan")
    return float(((predictions - targets) ** 2).mean(-1)[hidden].mean())


def _font(size: int):
    try:
        return PIL.ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return PIL.ImageFont.load_default()


__all__ = ["HIDDEN_PATCH_RGB", "MaeReconstruction", "reconstruct", "render"]
