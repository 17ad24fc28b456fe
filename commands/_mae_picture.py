"""The masked-autoencoding picture of `tvlt reconstruct`: what TVLT's MAE sees, hides and rebuilds, frames and audio.

Like the original `Demo_Video_Audio_MAE` notebook, per modality: the input, the input with the hidden patches covered,
the reconstruction (visible patches as given, hidden ones as predicted), and the model's prediction of every patch.
Drawn with PIL only (no plotting library needed).

The notebook greyed the hidden patches out, which hides them in grey frames (title cards, grey backgrounds) and
blends them into dark spectrograms: here they are covered with magenta/black diagonal stripes, a pattern no video
frame or viridis spectrogram has, and the predicted patches of the reconstruction rows are outlined in magenta. The
header has a legend of both.
"""

from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch

from ._timeline_picture import load_font


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
# hidden patches: diagonal stripes of these two colours, _HATCH_PERIOD display pixels wide, both halves alike
HIDDEN_PATCH_COLOURS = ((230, 0, 230), (20, 20, 20))
_HATCH_PERIOD = 8
PREDICTED_OUTLINE_RGB = HIDDEN_PATCH_COLOURS[0]
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)
_MIN_TILE = 128  # smaller frames are scaled up by a whole factor, keeping patch edges sharp
_SPECTROGRAM_HEIGHT = 128
_LABEL_WIDTH = 250
_GAP = 6
_LEGEND_HEIGHT = 22


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
        audio_steps_partly_hidden (`int`): time steps of which some real patches are hidden and some not. With
            frame-level masking TVLT draws one noise value per time step but keeps `int(patches * (1 - ratio))`
            patches (4.40.2's and the original code's rule, kept for parity), so the cut can fall inside one time
            step, whose frequency patches are then split between hidden and visible.
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
    audio_steps_partly_hidden: int = 0


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
    step_hidden = audio_hidden.view(grid_t, grid_f)  # [t, f]
    # padding is never hidden (nor a target): a step is whole when each of its real patches is hidden
    step_padding = (inputs["audio_mask"][0].view(grid_t, grid_f) == 0).cpu() if "audio_mask" in inputs else False
    partly_hidden = int((step_hidden.any(-1) & ~(step_hidden | step_padding).all(-1)).sum())

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
        audio_steps_partly_hidden=partly_hidden,
    )


def audio_masking_caption(recon: MaeReconstruction) -> str:
    """What the masked-audio row hides, e.g. `16% hidden, frame-level`."""
    caption = f"{100 * recon.hidden_bins.mean():.0f}% hidden, {recon.audio_mask_type}"
    if recon.audio_mask_type == "frame-level" and recon.audio_steps_partly_hidden:
        # said, or a split time step reads as a drawing error
        steps = recon.audio_steps_partly_hidden
        caption += f";\n{steps} time step{'s' * (steps > 1)} partly hidden:\nTVLT's cut counts patches"
    return caption


def render(reconstruction: MaeReconstruction, title: str, notes: tuple[str, ...] = ()) -> PIL.Image.Image:
    """The picture: a title (and `notes` under it), a legend, then four rows of frames and four of spectrograms."""
    recon = reconstruction
    num_frames, height, width = recon.frames.shape[:3]
    scale = 1 if height >= _MIN_TILE else -(-_MIN_TILE // height)
    tile_w, tile_h = width * scale, height * scale
    row_width = num_frames * tile_w + (num_frames - 1) * _GAP

    def tiles(images: np.ndarray) -> np.ndarray:
        # every tile at display size (whole-factor nearest-neighbour scaling keeps the patch edges sharp)
        return images.repeat(scale, axis=1).repeat(scale, axis=2)

    frames = _to_uint8(recon.frames)
    pasted = _to_uint8(np.where(recon.hidden_pixels[..., None], recon.predicted_frames, recon.frames))
    hidden = tiles(recon.hidden_pixels)
    frame_tiles = tiles(frames)
    hidden_percent = 100 * recon.hidden_pixels.mean()
    video_rows = [
        ("Video: input frames", frame_tiles),
        (f"Video: masked input\n({hidden_percent:.0f}% of patches hidden)", _hatched(frame_tiles, hidden)),
        (
            "Video: reconstruction\n(visible patches + predicted\nhidden ones, outlined)",
            _outlined(tiles(pasted), hidden),
        ),
        ("Video: model output,\nevery patch", tiles(_to_uint8(recon.predicted_frames))),
    ]

    spectrogram_height = max(_SPECTROGRAM_HEIGHT, recon.spectrogram.shape[0])

    def spectrogram_picture(image: np.ndarray) -> np.ndarray:
        # row 0 holds the lowest frequency: flip so that it is drawn at the bottom
        picture = PIL.Image.fromarray(np.round(image[::-1]).clip(0, 255).astype(np.uint8))
        resample = PIL.Image.NEAREST if picture.width <= row_width else PIL.Image.BOX
        return np.asarray(picture.resize((row_width, spectrogram_height), resample))

    # the hidden bins at display size, by the nearest source bin (BOX would blur the mask's edges)
    hidden_bins = PIL.Image.fromarray(np.ascontiguousarray(recon.hidden_bins[::-1], dtype=np.uint8))
    hidden_bins = np.asarray(hidden_bins.resize((row_width, spectrogram_height), PIL.Image.NEAREST)) > 0
    spectrogram_rgb = spectrogram_picture(_viridis(recon.spectrogram))
    pasted_spectrogram = spectrogram_picture(
        _viridis(np.where(recon.hidden_bins, recon.predicted_spectrogram, recon.spectrogram))
    )
    audio_rows = [
        ("Audio: input log-mel\nspectrogram (time ->,\nlow frequencies at bottom)", spectrogram_rgb),
        (
            f"Audio: masked input\n({audio_masking_caption(recon)})",
            _hatched(spectrogram_rgb, hidden_bins),
        ),
        (
            "Audio: reconstruction\n(visible + predicted\nhidden patches, outlined)",
            _outlined(pasted_spectrogram, hidden_bins),
        ),
        ("Audio: model output,\nevery patch", spectrogram_picture(_viridis(recon.predicted_spectrogram))),
    ]

    font, small_font = load_font(18), load_font(14)
    header = [
        title,
        f"hidden-patch MSE (normalised values): video {recon.pixel_error:.4f}, audio {recon.audio_error:.4f}",
        *notes,
    ]
    legend_top = _GAP + 28 + 22 * (len(header) - 1)
    header_height = legend_top + _LEGEND_HEIGHT + _GAP
    total_height = header_height + 4 * (tile_h + _GAP) + 4 * (spectrogram_height + _GAP) + _GAP
    canvas = PIL.Image.new("RGB", (_LABEL_WIDTH + row_width + 2 * _GAP, total_height), _BACKGROUND)
    draw = PIL.ImageDraw.Draw(canvas)
    draw.text((_GAP, _GAP), header[0], fill=_TEXT, font=font)
    for line_number, line in enumerate(header[1:]):
        draw.text((_GAP, _GAP + 28 + 22 * line_number), line, fill=_TEXT, font=small_font)
    _draw_legend(canvas, draw, (_GAP, legend_top), small_font)

    top = header_height
    for label, images in video_rows:
        draw.multiline_text((_GAP, top + 4), label, fill=_TEXT, font=small_font)
        for index, image in enumerate(images):
            canvas.paste(PIL.Image.fromarray(image), (_LABEL_WIDTH + index * (tile_w + _GAP), top))
        top += tile_h + _GAP
    for label, image in audio_rows:
        draw.multiline_text((_GAP, top + 4), label, fill=_TEXT, font=small_font)
        canvas.paste(PIL.Image.fromarray(image), (_LABEL_WIDTH, top))
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


def _hatch(shape: tuple[int, ...]) -> np.ndarray:
    """Diagonal stripes of `HIDDEN_PATCH_COLOURS` covering an image of `shape[-3:-1]` (rows, columns)."""
    rows, columns = np.indices(shape[-3:-1])
    stripe = ((rows + columns) // (_HATCH_PERIOD // 2)) % 2
    return np.asarray(HIDDEN_PATCH_COLOURS, dtype=np.uint8)[stripe]


def _hatched(images: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """`images` (`(..., H, W, 3)` uint8) with the `hidden` pixels (`(..., H, W)`) covered by the stripes."""
    return np.where(hidden[..., None], _hatch(images.shape), images)


def _outlined(images: np.ndarray, hidden: np.ndarray, width: int = 2) -> np.ndarray:
    """`images` with a `width`-pixel line just inside the border of each hidden region."""
    inside = hidden.copy()
    for axis in (-2, -1):
        for shift in range(1, width + 1):
            for direction in (shift, -shift):
                shifted = np.roll(hidden, direction, axis=axis)
                edge = [slice(None)] * hidden.ndim  # np.roll wraps around: the image border counts as outside
                edge[axis] = slice(0, shift) if direction > 0 else slice(-shift, None)
                shifted[tuple(edge)] = False
                inside &= shifted
    border = hidden & ~inside
    return np.where(border[..., None], np.asarray(PREDICTED_OUTLINE_RGB, dtype=np.uint8), images)


def _draw_legend(canvas: PIL.Image.Image, draw: PIL.ImageDraw.ImageDraw, origin: tuple[int, int], font) -> None:
    left, top = origin
    size = _LEGEND_HEIGHT - 4
    canvas.paste(PIL.Image.fromarray(_hatch((size, size, 3))), (left, top + 2))
    text = "hidden patch (the encoder does not see it)"
    draw.text((left + size + 6, top + 2), text, fill=_TEXT, font=font)
    left += size + 6 + int(draw.textlength(text, font=font)) + 24
    swatch = np.full((size, size, 3), _BACKGROUND, dtype=np.uint8)
    canvas.paste(PIL.Image.fromarray(_outlined(swatch, np.ones((size, size), dtype=bool))), (left, top + 2))
    draw.text((left + size + 6, top + 2), "predicted patch (by the MAE decoder)", fill=_TEXT, font=font)


def _masked_mse(predictions: torch.Tensor, targets: torch.Tensor, hidden: torch.Tensor) -> float:
    if not hidden.any():
        return float("nan")
    return float(((predictions - targets) ** 2).mean(-1)[hidden].mean())


__all__ = [
    "HIDDEN_PATCH_COLOURS",
    "PREDICTED_OUTLINE_RGB",
    "MaeReconstruction",
    "audio_masking_caption",
    "reconstruct",
    "render",
]
