# Copyright 2023 The HuggingFace Inc. team; 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""TVLT image processor: videos (frame lists, arrays, files) or images to normalised frame tensors and patch masks."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import PIL.Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor, get_size_dict
from transformers.image_utils import (
    IMAGENET_STANDARD_MEAN,
    IMAGENET_STANDARD_STD,
    ChannelDimension,
    PILImageResampling,
)
from transformers.processing_utils import ImagesKwargs
from transformers.utils import TensorType, logging

from .media_tvlt import is_path, read_video, sample_frame_indices
from .processing_utils_tvlt import (
    FOREIGN_CONFIG_KEYS,
    PREPROCESSING_MODES,
    SavesAsRemoteCode,
    cap_to_model,
    check_patch_size,
    check_positive_int,
    check_preprocessing_mode,
    is_tensor,
    loading_from,
    num_threads,
    size_saved_settings,
)


logger = logging.get_logger(__name__)

# Original pipeline: a pixel belongs to the picture (not to a black border) when all its channels exceed this, in
# every sampled frame.
ORIGINAL_BORDER_THRESHOLD = 30.0


class TvltImageProcessorKwargs(ImagesKwargs, total=False):
    """Keyword arguments of [`TvltImageProcessor`] beyond the common image ones (read by `from_pretrained`)."""

    patch_size: list[int]
    num_frames: int
    preprocessing_mode: str


class TvltImageProcessor(SavesAsRemoteCode, BaseImageProcessor):
    r"""
    Constructs a TVLT image processor: videos become `(num_frames, 3, height, width)` normalised frame tensors, batched
    and padded to the longest video, with a mask of the real frames' patches. An image is a 1-frame video.

    Two pipelines, picked by `preprocessing_mode` (saved with the processor):

    - `"transformers"` (default): transformers 4.40.2's `TvltImageProcessor`, output for output (PIL resize of the
      shortest edge to `size`, centre crop to `crop_size`, rescale, normalise), with its bugs fixed: `num_frames` is
      honoured, a video with more frames than `num_frames` is sampled uniformly over its whole length instead of
      refused, videos of different lengths are padded with zeros and masked, `size` may be `{"height", "width"}`,
      and the mask counts patches of the final (cropped) frame size.
    - `"original"`: the pipeline the released TVLT weights were trained with (zinengtang/TVLT): exactly `num_frames`
      frames at `np.linspace(0, n, num_frames, endpoint=False)` (repeating frames of shorter videos), black borders
      cropped (pixels > 30 in every channel of every frame), centre square crop, bicubic resize to `crop_size` as
      torchvision did (no antialiasing, rounded to integers), then rescale and normalise. Its mask, like the original
      model, drops every patch that is all black (-1 after normalisation). `do_resize`, `size`, `resample` and
      `do_center_crop` are not used in this mode; inputs are expected in [0, 255].

    Videos may be given as file paths: they are decoded with [`~media_tvlt.read_video`], which decodes only the
    sampled frames.

    Args:
        do_resize (`bool`, *optional*, defaults to `True`):
            Whether to resize the frames to `size`.
        size (`dict[str, int]`, *optional*, defaults to `{"shortest_edge": 224}`):
            `{"shortest_edge": s}` resizes the shortest edge to `s` keeping the aspect ratio; `{"height": h, "width":
            w}` resizes to exactly `(h, w)`.
        patch_size (`list[int]`, *optional*, defaults to `[16, 16]`):
            Size (height, width) of the model's image patches; sets the mask's patches per frame.
        num_frames (`int`, *optional*, defaults to 8):
            Maximum number of frames per video (exact number in the `"original"` mode).
        resample (`PILImageResampling`, *optional*, defaults to `PILImageResampling.BILINEAR`):
            PIL filter of the resize.
        do_center_crop (`bool`, *optional*, defaults to `True`):
            Whether to centre-crop the frames to `crop_size` (zero-padding frames smaller than it).
        crop_size (`dict[str, int]`, *optional*, defaults to `{"height": 224, "width": 224}`):
            Size of the frames after the centre crop (the output size of the `"original"` mode).
        do_rescale (`bool`, *optional*, defaults to `True`):
            Whether to multiply pixel values by `rescale_factor`.
        rescale_factor (`float`, *optional*, defaults to `1/255`):
            Scale factor of the rescale.
        do_normalize (`bool`, *optional*, defaults to `True`):
            Whether to normalise with `image_mean` and `image_std`.
        image_mean (`float` or `list[float]`, *optional*, defaults to `[0.5, 0.5, 0.5]`):
            Per-channel mean of the normalisation.
        image_std (`float` or `list[float]`, *optional*, defaults to `[0.5, 0.5, 0.5]`):
            Per-channel standard deviation of the normalisation.
        preprocessing_mode (`str`, *optional*, defaults to `"transformers"`):
            `"transformers"` (4.40.2's pipeline) or `"original"` (the pipeline the released weights were trained with).
    """

    model_input_names = ["pixel_values", "pixel_mask", "pixel_values_mixed", "pixel_mask_mixed"]
    valid_kwargs = TvltImageProcessorKwargs

    def __init__(
        self,
        do_resize: bool = True,
        size: dict[str, int] | None = None,
        patch_size: Sequence[int] = (16, 16),
        num_frames: int = 8,
        resample: PILImageResampling = PILImageResampling.BILINEAR,
        do_center_crop: bool = True,
        crop_size: dict[str, int] | None = None,
        do_rescale: bool = True,
        rescale_factor: float = 1 / 255,
        do_normalize: bool = True,
        image_mean: float | Sequence[float] = IMAGENET_STANDARD_MEAN,
        image_std: float | Sequence[float] = IMAGENET_STANDARD_STD,
        preprocessing_mode: str = "transformers",
        **kwargs,
    ) -> None:
        for key in FOREIGN_CONFIG_KEYS["image_processor"].intersection(kwargs):
            del kwargs[key]
        super().__init__(**kwargs)
        self.do_resize = do_resize
        self.size = _check_size(size if size is not None else {"shortest_edge": 224})
        self.patch_size = check_patch_size(patch_size, "height, width")
        self.num_frames = check_positive_int("num_frames", num_frames)
        self.resample = resample
        self.do_center_crop = do_center_crop
        self.crop_size = _check_crop_size(crop_size if crop_size is not None else {"height": 224, "width": 224})
        self.do_rescale = do_rescale
        self.rescale_factor = rescale_factor
        self.do_normalize = do_normalize
        self.image_mean = list(image_mean) if isinstance(image_mean, (list, tuple)) else image_mean
        self.image_std = list(image_std) if isinstance(image_std, (list, tuple)) else image_std
        self.preprocessing_mode = check_preprocessing_mode(preprocessing_mode)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        for key in ("_valid_processor_keys", "_valid_kwargs_names"):
            output.pop(key, None)
        return output

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """
        Load the saved settings like the base class, sized to the model when a TVLT `config.json` sits beside them:
        settings that contradict the model, and `num_frames` when it was not saved, are the model's (see
        `fit_image_settings`; transformers 4.40.2's `save_pretrained` dropped every image setting). One warning says
        what changed. Settings passed here are kept as given.
        """
        with loading_from(pretrained_model_name_or_path, kwargs):
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def from_dict(cls, image_processor_dict: dict, **kwargs):
        """Like the base class; inside a `from_pretrained` (this class's, `TvltProcessor`'s or an Auto class's) the
        saved settings are first sized to the model beside them (`size_saved_settings`)."""
        image_processor_dict = size_saved_settings("image_processor", image_processor_dict, kwargs, fit_image_settings)
        return super().from_dict(image_processor_dict, **kwargs)

    def preprocess(
        self,
        videos,
        do_resize: bool | None = None,
        size: dict[str, int] | None = None,
        patch_size: Sequence[int] | None = None,
        num_frames: int | None = None,
        resample: PILImageResampling | None = None,
        do_center_crop: bool | None = None,
        crop_size: dict[str, int] | None = None,
        do_rescale: bool | None = None,
        rescale_factor: float | None = None,
        do_normalize: bool | None = None,
        image_mean: float | Sequence[float] | None = None,
        image_std: float | Sequence[float] | None = None,
        is_mixed: bool = False,
        return_tensors: str | TensorType | None = None,
        data_format: str | ChannelDimension | None = ChannelDimension.FIRST,
        input_data_format: str | ChannelDimension | None = None,
    ) -> BatchFeature:
        """
        Preprocess one video or image, or a batch of them. Every argument but `videos` defaults to the processor's
        setting of the same name.

        Args:
            videos (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`, `os.PathLike`, or (nested) lists of those):
                One image (3-D, a 1-frame video), one video (4-D array `(T, H, W, C)` / `(T, C, H, W)`, a list of
                frames, or a file path), or a batch (5-D array, list of videos). Pixel values in [0, 255] (uint8 or
                float); floats in [0, 1] are taken for already-rescaled frames, as in transformers 4.40.2.
            num_frames (`int`, *optional*):
                Maximum frames per video; longer videos are sampled uniformly over their whole length.
            is_mixed (`bool`, *optional*, defaults to `False`):
                Name the outputs `pixel_values_mixed`/`pixel_mask_mixed` (videos of the audio-visual matching task).
            return_tensors (`str` or [`~utils.TensorType`], *optional*):
                `"pt"` for PyTorch tensors, `"np"` for NumPy arrays; by default NumPy arrays.
            data_format (`ChannelDimension` or `str`, *optional*, defaults to `"channels_first"`):
                Channel layout of the output frames; `None` keeps the input's.
            input_data_format (`ChannelDimension` or `str`, *optional*):
                Channel layout of the input frames; inferred per video when unset.

        Returns:
            [`BatchFeature`] with:

            - **pixel_values** -- `(batch_size, frames, 3, height, width)` float32 (channels last with
              `data_format="channels_last"`), videos shorter than the longest padded with zeros.
            - **pixel_mask** -- `(batch_size, frames * patches_per_frame)` int64, 1 for patches of real frames, 0 for
              padding (and, in the `"original"` mode, for all-black patches).

            (`pixel_values_mixed` and `pixel_mask_mixed` instead with `is_mixed=True`.)
        """
        settings = _Settings(
            do_resize=self.do_resize if do_resize is None else do_resize,
            size=self.size if size is None else _check_size(size),
            patch_size=self.patch_size if patch_size is None else check_patch_size(patch_size, "height, width"),
            num_frames=self.num_frames if num_frames is None else check_positive_int("num_frames", num_frames),
            resample=self.resample if resample is None else resample,
            do_center_crop=self.do_center_crop if do_center_crop is None else do_center_crop,
            crop_size=self.crop_size if crop_size is None else _check_crop_size(crop_size),
            do_rescale=self.do_rescale if do_rescale is None else do_rescale,
            rescale_factor=self.rescale_factor if rescale_factor is None else rescale_factor,
            do_normalize=self.do_normalize if do_normalize is None else do_normalize,
            image_mean=self.image_mean if image_mean is None else image_mean,
            image_std=self.image_std if image_std is None else image_std,
            preprocessing_mode=check_preprocessing_mode(self.preprocessing_mode),
            input_data_format=_check_channel_format("input_data_format", input_data_format),
        )
        data_format = _check_channel_format("data_format", data_format)
        original = settings.preprocessing_mode == "original"

        videos = [self._load_video(video, settings) for video in _make_batched(videos)]
        process = _preprocess_video_original if original else _preprocess_video_transformers
        workers = 1 if original else num_threads()  # the original mode resizes with torch, threaded already
        if workers > 1 and len(videos) > 1:
            # PIL resamples with the GIL released, so videos can be resized side by side.
            with ThreadPoolExecutor(min(workers, len(videos))) as pool:
                processed = list(pool.map(lambda video: process(video, settings), videos))
        else:
            processed = [process(video, settings) for video in videos]

        frame_shapes = {video.shape[1:] for video, _ in processed}
        if len(frame_shapes) > 1:
            raise ValueError(
                f"`videos`: the frames come out with different shapes {sorted(frame_shapes)}; use a centre crop or a "
                "`size` with height and width to batch frames of different sizes."
            )
        channels, height, width = frame_shapes.pop()
        max_frames = max(video.shape[0] for video, _ in processed)
        pixel_values = np.zeros((len(processed), max_frames, channels, height, width), dtype=np.float32)
        for row, (video, _) in zip(pixel_values, processed, strict=True):
            row[: video.shape[0]] = video

        patch_height, patch_width = settings.patch_size
        patches_per_frame = (height // patch_height) * (width // patch_width)
        if original:
            pixel_mask = _all_black_patch_mask(pixel_values, settings.patch_size)
        else:
            real_frames = np.array([video.shape[0] for video, _ in processed])
            frame_mask = np.arange(max_frames)[None, :] < real_frames[:, None]
            pixel_mask = np.repeat(frame_mask, patches_per_frame, axis=1).astype(np.int64)

        if data_format is None:  # keep the input's layout
            layouts = {layout for _, layout in processed}
            if len(layouts) > 1:
                raise ValueError("`data_format=None` keeps the input's channel layout, but the videos mix layouts.")
            data_format = layouts.pop()
        if data_format == ChannelDimension.LAST:
            pixel_values = np.ascontiguousarray(pixel_values.transpose(0, 1, 3, 4, 2))
        values_key, mask_key = (
            ("pixel_values_mixed", "pixel_mask_mixed") if is_mixed else ("pixel_values", "pixel_mask")
        )
        return BatchFeature(data={values_key: pixel_values, mask_key: pixel_mask}, tensor_type=return_tensors)

    @staticmethod
    def _load_video(video, settings: _Settings) -> list | np.ndarray:
        """Frames of one video: decoded (only the sampled ones) when it is a file, else the frames as given."""
        # not transformers.video_utils.load_video: it decodes from frame 0 and raised on the truncated HowTo100M sample
        if is_path(video):
            return read_video(
                video, settings.num_frames, allow_repeats=settings.preprocessing_mode == "original"
            ).frames
        return video


# -- settings and validation ----------------------------------------------------------------------------------------


def fit_image_settings(settings: dict, config, keep=()) -> list[str]:
    """
    Size saved image-processor `settings` (changed in place) to a TVLT model `config`; return what changed, as text.

    A setting is the model's when it contradicts the model: frames cropped to another size (the resize then follows:
    shortest edge to the frame size, or exactly the frame size for oblong frames), other patches, more frames than
    the model has temporal positions. `num_frames` is also the model's when it was not saved. Settings named in
    `keep` stay. For TVLT-base (224x224 frames, 16x16 patches, 8 frames) the defaults fit, so nothing changes.
    """
    saved = {name: settings[name] for name in ("crop_size", "size", "patch_size", "num_frames") if name in settings}
    try:
        current = TvltImageProcessor(**saved)
    except (ValueError, TypeError):  # invalid saved values: the processor itself refuses them, naming them
        return []
    changes = []
    height, width = config.frame_size
    crop_size = {"height": height, "width": width}
    if "crop_size" not in keep and current.crop_size != crop_size:
        changes.append(f"crop_size {current.crop_size['height']}x{current.crop_size['width']} -> {height}x{width}")
        settings["crop_size"] = crop_size
        size = {"shortest_edge": height} if height == width else dict(crop_size)
        if "size" not in keep and current.size != size:
            changes.append(f"size {current.size} -> {size}")
            settings["size"] = size
    patch_size = list(config.image_patch_size)
    if "patch_size" not in keep and current.patch_size != patch_size:
        changes.append(f"image patch_size {current.patch_size} -> {patch_size}")
        settings["patch_size"] = patch_size
    cap_to_model(settings, changes, keep, saved, "num_frames", current.num_frames, config.num_frames)
    return changes


@dataclass(frozen=True)
class _Settings:
    """The resolved options of one `preprocess` call."""

    do_resize: bool
    size: dict[str, int]
    patch_size: list[int]
    num_frames: int
    resample: PILImageResampling | int
    do_center_crop: bool
    crop_size: dict[str, int]
    do_rescale: bool
    rescale_factor: float
    do_normalize: bool
    image_mean: float | Sequence[float]
    image_std: float | Sequence[float]
    preprocessing_mode: str
    input_data_format: ChannelDimension | None


def _check_size(size) -> dict[str, int]:
    size = get_size_dict(size, default_to_square=False)
    if set(size) not in ({"shortest_edge"}, {"height", "width"}) or not all(
        isinstance(v, (int, np.integer)) and v > 0 for v in size.values()
    ):
        raise ValueError(
            f'`size` must be {{"shortest_edge": int}} or {{"height": int, "width": int}} with positive values, '
            f"got {size}."
        )
    return {key: int(value) for key, value in size.items()}


def _check_crop_size(crop_size) -> dict[str, int]:
    crop_size = get_size_dict(crop_size, param_name="crop_size")
    if set(crop_size) != {"height", "width"} or not all(
        isinstance(v, (int, np.integer)) and v > 0 for v in crop_size.values()
    ):
        raise ValueError(f'`crop_size` must be {{"height": int, "width": int}} with positive values, got {crop_size}.')
    return {key: int(value) for key, value in crop_size.items()}


def _check_channel_format(name: str, value) -> ChannelDimension | None:
    if value is None:
        return None
    try:
        return ChannelDimension(value)
    except ValueError:
        raise ValueError(f'`{name}` must be "channels_first", "channels_last" or None, got {value!r}.') from None


# -- input structure ------------------------------------------------------------------------------------------------


def _is_frame_like(value) -> bool:
    return isinstance(value, (PIL.Image.Image, np.ndarray)) or is_tensor(value)


def _ndim(value) -> int:
    """Number of dimensions of an image-like value, a PIL image counting as one 3-D frame."""
    return 3 if isinstance(value, PIL.Image.Image) else value.ndim


def _make_batched(videos) -> list:
    """A list of videos, each a file path, a list of frames or a 4-D array (transformers 4.40.2's batching rules)."""
    if is_path(videos):
        return [videos]
    if _is_frame_like(videos):
        ndim = _ndim(videos)
        if ndim == 3:
            return [[videos]]
        if ndim == 4:
            return [videos]
        if ndim == 5:
            return list(videos)
        raise ValueError(f"`videos` as an array must be 3-D (an image), 4-D (a video) or 5-D (a batch), got {ndim}-D.")
    if isinstance(videos, (list, tuple)) and len(videos) > 0:
        if all(isinstance(video, (list, tuple)) for video in videos):
            for index, video in enumerate(videos):
                if not video or not all(_is_frame_like(frame) and _ndim(frame) == 3 for frame in video):
                    raise ValueError(
                        f"`videos`: video {index} must be a non-empty list of 3-D frames (images or arrays)."
                    )
            return list(videos)
        if all(_is_frame_like(frame) and _ndim(frame) == 3 for frame in videos):
            return [list(videos)]  # the frames of one video
        if all(is_path(video) or (_is_frame_like(video) and _ndim(video) == 4) for video in videos):
            return list(videos)
    raise ValueError(
        "`videos` must be an image, a video (4-D array, list of frames, or file path), or a batch of those (5-D "
        f"array, list of videos); got {_describe(videos)}."
    )


def _describe(value) -> str:
    if isinstance(value, (list, tuple)):
        kinds = sorted({_describe(item) for item in value[:4]})
        return f"a {type(value).__name__} of {len(value)} items ({', '.join(kinds)})"
    if _is_frame_like(value) and not isinstance(value, PIL.Image.Image):
        return f"{type(value).__name__} of shape {tuple(value.shape)}"
    return type(value).__name__


def _frames_as_arrays(video) -> list[np.ndarray] | np.ndarray:
    """The frames of a video as numpy arrays of pixel values: a 4-D array when given as one, else a list of 3-D
    arrays (see `_pixel_values` for the dtypes)."""
    if is_tensor(video) or isinstance(video, np.ndarray):
        return _pixel_values(video)
    frames = []
    for frame in video:
        if isinstance(frame, PIL.Image.Image):
            # 4.40.2 read PIL images as they are (RGB); other modes would not have passed its channel checks
            frame = np.array(frame if frame.mode == "RGB" else frame.convert("RGB"))
        else:
            frame = _pixel_values(frame)
        if frame.ndim != 3:
            raise ValueError(f"`videos`: a frame must be 3-D (height, width and channels), got shape {frame.shape}.")
        frames.append(frame)
    return frames


def _pixel_values(frames) -> np.ndarray:
    """A numpy array or torch tensor of frames as a numpy array of real pixel values.

    4.40.2 read booleans as the levels 0 and 1 of 255 (all but black frames) and dropped imaginary parts silently;
    those are refused, as are dtypes that are not numbers (strings, dates, durations), on which it failed inside
    numpy. What it read right stays: any int or float dtype, complex with no imaginary part, object arrays of
    numbers; bfloat16 tensors (which it could not convert) are read as float32.
    """
    if is_tensor(frames):
        frames = frames.detach().cpu()
        if frames.dtype.is_floating_point and frames.dtype.itemsize < 4 and str(frames.dtype) != "torch.float16":
            frames = frames.float()  # bfloat16 and the like: numpy has no such dtype
        frames = frames.numpy()
    dtype = frames.dtype
    refused = None
    if dtype == np.bool_:
        refused = "booleans are not pixel values (4.40.2 read them as the levels 0 and 1 of 255, nearly black)"
    elif dtype.kind == "c":
        if np.any(frames.imag):
            refused = "the imaginary parts are not zero"
        else:
            frames = frames.real
    elif dtype.kind == "O":
        kinds = {type(value) for value in frames.flat}
        if all(issubclass(kind, numbers.Real) and not issubclass(kind, (bool, np.bool_)) for kind in kinds):
            frames = frames.astype(np.float64)
        else:
            refused = "an object array must hold numbers"
    elif dtype.kind not in "iuf":
        refused = "the values are not numbers"
    if refused is not None:
        raise ValueError(
            f"`videos`/`images`: frames of dtype {dtype} cannot be read as pixels: {refused}. Pass uint8 (0-255) or "
            "float (0-1, or whole numbers in 0-255) frames, e.g. `mask.astype(np.uint8) * 255` for a boolean mask."
        )
    return frames


def _channel_format(frame_shape: tuple, given: ChannelDimension | None) -> ChannelDimension:
    """4.40.2's inference: channels first when the first axis has 1 or 3 entries, else last when the last has."""
    if given is not None:
        return given
    if frame_shape[0] in (1, 3):
        return ChannelDimension.FIRST
    if frame_shape[-1] in (1, 3):
        return ChannelDimension.LAST
    raise ValueError(
        f"`videos`: cannot tell the channel axis of frames of shape {frame_shape} (1 or 3 channels, first or last); "
        "pass `input_data_format`."
    )


def _sample_frames(frames, num_frames: int, allow_repeats: bool):
    indices = sample_frame_indices(len(frames), num_frames, allow_repeats)
    if len(indices) == len(frames) and (indices == np.arange(len(frames))).all():
        return frames
    return frames[indices] if isinstance(frames, np.ndarray) else [frames[i] for i in indices]


def _channel_affine(settings: _Settings, channels: int, pil_rescaled: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel float32 (scale, offset) with `pixels * scale + offset` = rescaled, then normalised pixels."""
    scale = np.full(channels, 1 / 255 if pil_rescaled else 1.0, dtype=np.float64)
    if settings.do_rescale:
        scale *= settings.rescale_factor
    offset = np.zeros(channels, dtype=np.float64)
    if settings.do_normalize:
        mean = np.asarray(settings.image_mean, dtype=np.float64)
        std = np.asarray(settings.image_std, dtype=np.float64)
        if mean.ndim == 0:
            mean = np.full(channels, mean)
        if std.ndim == 0:
            std = np.full(channels, std)
        if mean.shape != (channels,) or std.shape != (channels,):
            raise ValueError(
                f"`image_mean` and `image_std` must hold one value per channel ({channels}), got "
                f"{settings.image_mean} and {settings.image_std}."
            )
        scale, offset = scale / std, -mean / std
    return scale.astype(np.float32), offset.astype(np.float32)


def _warn_if_already_rescaled(frames, settings: _Settings) -> None:
    if not settings.do_rescale:
        return
    for frame in frames if isinstance(frames, list) else [frames]:
        if frame.dtype != np.uint8 and frame.size and frame.min() >= 0 and frame.max() <= 1:
            logger.warning_once(
                "It looks like you are trying to rescale already rescaled images. If the input"
                " images have pixel values between 0 and 1, set `do_rescale=False` to avoid rescaling them again."
            )
            return


# -- "transformers" mode (4.40.2) -----------------------------------------------------------------------------------


def _preprocess_video_transformers(video, settings: _Settings) -> tuple[np.ndarray, ChannelDimension]:
    """One video through 4.40.2's pipeline: `(T, C, H, W)` float32 and the input's channel layout."""
    frames = _frames_as_arrays(video)
    if len(frames) == 0:
        raise ValueError("`videos`: a video has no frames.")
    frames = _sample_frames(frames, settings.num_frames, allow_repeats=False)
    layout = _channel_format(
        frames[0].shape if isinstance(frames, list) else frames.shape[1:], settings.input_data_format
    )
    if isinstance(frames, np.ndarray):
        frames = frames if layout == ChannelDimension.LAST else frames.transpose(0, 2, 3, 1)
    else:
        frames = [frame if layout == ChannelDimension.LAST else frame.transpose(1, 2, 0) for frame in frames]
    _warn_if_already_rescaled(frames, settings)

    if (
        isinstance(frames, np.ndarray)
        and frames.dtype == np.uint8
        and settings.do_resize
        and PILImageResampling(settings.resample) != PILImageResampling.NEAREST
    ):
        resized = _resize_uint8_video(frames, settings)
        if resized is not None:
            return _rescale_and_normalize(resized, settings, pil_rescaled=False), layout

    # Any other input: frame by frame, as 4.40.2 did.
    outputs = []
    for frame in frames:
        pil_rescaled = False
        if settings.do_resize:
            frame, pil_rescaled = _as_pil_ready_uint8(frame)
            frame = _pil_resize(frame, _resized_shape(frame.shape[:2], settings), settings.resample)
        if settings.do_center_crop:
            frame = _center_crop(frame, settings.crop_size)
        outputs.append(_rescale_and_normalize(frame[None], settings, pil_rescaled)[0])
    shapes = {output.shape for output in outputs}
    if len(shapes) > 1:
        raise ValueError(f"`videos`: the frames of a video come out with different shapes {sorted(shapes)}.")
    return np.stack(outputs), layout


def _resized_shape(shape: tuple[int, int], settings: _Settings) -> tuple[int, int]:
    """4.40.2's output size: `size["shortest_edge"]` keeps the aspect ratio (longer edge truncated)."""
    if "shortest_edge" in settings.size:
        height, width = shape
        target = settings.size["shortest_edge"]
        short, long = (height, width) if height <= width else (width, height)
        new_short, new_long = target, int(target * long / short)
        return (new_short, new_long) if height <= width else (new_long, new_short)
    return settings.size["height"], settings.size["width"]


def _as_pil_ready_uint8(frame: np.ndarray) -> tuple[np.ndarray, bool]:
    """The uint8 frame 4.40.2 hands to PIL, and whether it multiplied it by 255 on the way (float frames in [0, 1])."""
    if frame.dtype == np.uint8:
        return frame, False
    if np.allclose(frame, frame.astype(int)):
        if frame.min() < 0 or frame.max() > 255:
            raise ValueError(
                "`videos`: integer pixel values must lie in [0, 255] to be resized, got "
                f"[{frame.min()}, {frame.max()}]."
            )
        return frame.astype(np.uint8), False
    if frame.min() >= 0 and frame.max() <= 1:
        # 4.40.2 scales to [0, 255] in float32 and truncates to uint8
        return (frame * 255).astype(np.float32).astype(np.uint8), True
    raise ValueError(
        f"`videos`: float pixel values must lie in [0, 1] (or be whole numbers in [0, 255]) to be resized, got "
        f"[{frame.min()}, {frame.max()}]."
    )


def _pil_resize(frame: np.ndarray, shape: tuple[int, int], resample) -> np.ndarray:
    """(H, W, C) uint8 frame resized by PIL to `shape`, as transformers' `resize` does."""
    single_channel = frame.shape[-1] == 1
    image = PIL.Image.fromarray(frame[..., 0] if single_channel else frame)
    resized = np.asarray(image.resize((shape[1], shape[0]), resample=resample))
    return resized[..., None] if single_channel else resized


def _resize_uint8_video(frames: np.ndarray, settings: _Settings) -> np.ndarray | None:
    """Resize (and centre-crop) a `(T, H, W, C)` uint8 video exactly as per-frame PIL resizing would, faster.

    PIL resamples in two passes, horizontal then vertical, each on uint8. Stacking the frames into one tall image
    makes the horizontal pass a single call; cropping its output to the centre-crop columns before the vertical pass
    skips the columns the crop would discard. Both passes keep the coefficients of a plain per-frame resize, so the
    pixels are identical. Returns `None` when the crop would need padding (the per-frame path handles that).
    """
    num_frames, height, width, channels = frames.shape
    if channels not in (1, 3):
        return None
    new_height, new_width = _resized_shape((height, width), settings)
    top, left, crop_height, crop_width = 0, 0, new_height, new_width
    if settings.do_center_crop:
        crop_height, crop_width = settings.crop_size["height"], settings.crop_size["width"]
        top, left = (new_height - crop_height) // 2, (new_width - crop_width) // 2
        if top < 0 or left < 0:
            return None
    tall = np.ascontiguousarray(frames.reshape(num_frames * height, width, channels))
    tall = PIL.Image.fromarray(tall[..., 0] if channels == 1 else tall)
    if new_width != width:
        tall = tall.resize((new_width, num_frames * height), resample=settings.resample)
    out = np.empty((num_frames, crop_height, crop_width, channels), dtype=np.uint8)
    for index in range(num_frames):
        frame = tall.crop((left, index * height, left + crop_width, (index + 1) * height))
        if new_height != height:
            frame = frame.resize((crop_width, new_height), resample=settings.resample)
        pixels = np.asarray(frame)
        out[index] = (pixels[..., None] if channels == 1 else pixels)[top : top + crop_height]
    return out


def _center_crop(frame: np.ndarray, crop_size: dict[str, int]) -> np.ndarray:
    """transformers' `center_crop` on an (H, W, C) frame: zero-pads frames smaller than the crop first."""
    height, width = frame.shape[:2]
    crop_height, crop_width = crop_size["height"], crop_size["width"]
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    if top >= 0 and left >= 0:
        return frame[top : top + crop_height, left : left + crop_width]
    padded_height, padded_width = max(crop_height, height), max(crop_width, width)
    padded = np.zeros((padded_height, padded_width) + frame.shape[2:], dtype=frame.dtype)
    pad_top, pad_left = (padded_height - height) // 2, (padded_width - width) // 2
    padded[pad_top : pad_top + height, pad_left : pad_left + width] = frame
    top, left = top + pad_top, left + pad_left
    return padded[top : top + crop_height, left : left + crop_width]


def _rescale_and_normalize(frames: np.ndarray, settings: _Settings, pil_rescaled: bool) -> np.ndarray:
    """`(T, H, W, C)` pixels to `(T, C, H, W)` float32, rescaled and normalised in one pass."""
    scale, offset = _channel_affine(settings, frames.shape[-1], pil_rescaled)
    out = np.empty((frames.shape[0], frames.shape[-1]) + frames.shape[1:3], dtype=np.float32)
    channels_first = frames.transpose(0, 3, 1, 2)
    np.multiply(channels_first, scale[:, None, None], out=out, casting="unsafe")
    out += offset[:, None, None]
    return out


# -- "original" mode (zinengtang/TVLT) ------------------------------------------------------------------------------


def _preprocess_video_original(video, settings: _Settings) -> tuple[np.ndarray, ChannelDimension]:
    """One video through the original TVLT pipeline: `(num_frames, 3, h, w)` float32 and the input's layout."""
    import torch

    frames = _frames_as_arrays(video)
    if len(frames) == 0:
        raise ValueError("`videos`: a video has no frames.")
    layout = _channel_format(
        frames[0].shape if isinstance(frames, list) else frames.shape[1:], settings.input_data_format
    )
    if isinstance(frames, list):
        shapes = {frame.shape for frame in frames}
        if len(shapes) > 1:
            raise ValueError(f"`videos`: the frames of a video have different shapes {sorted(shapes)}.")
        frames = np.stack(frames)
    if layout == ChannelDimension.FIRST:
        frames = frames.transpose(0, 2, 3, 1)
    if frames.shape[-1] != 3:
        raise ValueError(f"`videos`: the original TVLT pipeline takes RGB frames, got {frames.shape[-1]} channel(s).")
    _warn_if_already_rescaled(frames, settings)
    frames = _sample_frames(frames, settings.num_frames, allow_repeats=True)
    frames = _crop_black_borders(frames)
    frames = _center_square(frames)

    pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).to(torch.float32)
    size = (settings.crop_size["height"], settings.crop_size["width"])
    # torchvision's Resize on uint8 tensors, as the original used it: bicubic without antialiasing, then clamped and
    # rounded back to integers
    pixels = torch.nn.functional.interpolate(pixels, size=size, mode="bicubic", align_corners=False, antialias=False)
    pixels = pixels.clamp_(0, 255).round_().numpy()
    scale, offset = _channel_affine(settings, 3, pil_rescaled=False)
    return pixels * scale[:, None, None] + offset[:, None, None], layout


def _crop_black_borders(frames: np.ndarray) -> np.ndarray:
    """Crop the rows and columns outside the bounding box of the pixels above the threshold in all frames/channels."""
    inside = (frames > ORIGINAL_BORDER_THRESHOLD).all(axis=0).all(axis=-1)
    columns, rows = inside.any(axis=0), inside.any(axis=1)
    # like the original, a video with no such pixel is kept whole (argmax of all-False is 0)
    left, right = int(columns.argmax()), columns.size - int(columns[::-1].argmax())
    top, bottom = int(rows.argmax()), rows.size - int(rows[::-1].argmax())
    return frames[:, top:bottom, left:right]


def _center_square(frames: np.ndarray) -> np.ndarray:
    """The original's centre crop to a square of the shorter side (an odd margin leaves the extra pixel top/left)."""
    height, width = frames.shape[1:3]
    side = min(height, width)
    top, left = -(-(height - side) // 2), -(-(width - side) // 2)
    return frames[:, top : top + side, left : left + side]


def _all_black_patch_mask(pixel_values: np.ndarray, patch_size: list[int]) -> np.ndarray:
    """The original model's mask: a patch whose values are all -1 (black after normalisation) is padding."""
    batch, frames, channels, height, width = pixel_values.shape
    patch_height, patch_width = patch_size
    rows, columns = height // patch_height, width // patch_width
    patches = pixel_values[..., : rows * patch_height, : columns * patch_width].reshape(
        batch, frames, channels, rows, patch_height, columns, patch_width
    )
    mask = (patches != -1.0).any(axis=(2, 4, 6))
    return mask.reshape(batch, -1).astype(np.int64)


TvltImageProcessor.register_for_auto_class("AutoImageProcessor")


# Remote-code fetch list, written by scripts/fetch_lists.py (see remote_code_tvlt.py): do not edit.
if TYPE_CHECKING:
    from .configuration_tvlt import TvltConfig  # noqa: F401
    from .embedding_tvlt import TvltAudioVisualEmbedder  # noqa: F401
    from .feature_extraction_tvlt import TvltFeatureExtractor  # noqa: F401
    from .inputs_tvlt import TvltClipPreparer  # noqa: F401
    from .modeling_tvlt import TvltPreTrainedModel  # noqa: F401
    from .pipeline_tvlt import TvltAudioVisualClassificationPipeline  # noqa: F401
    from .processing_tvlt import TvltProcessor  # noqa: F401
    from .remote_code_tvlt import CODE_FILES  # noqa: F401
    from .retrieval_tvlt import TvltAudioVisualMatcher  # noqa: F401


__all__ = ["ORIGINAL_BORDER_THRESHOLD", "PREPROCESSING_MODES", "TvltImageProcessor", "fit_image_settings"]
