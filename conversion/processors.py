"""The processor written into a converted repo."""

import logging
from pathlib import Path

from ..configuration_tvlt import TvltConfig
from .errors import ConversionError


logger = logging.getLogger(__name__)

# 4.40.2 wrote one flat preprocessor_config.json with the image-processor and feature-extractor keys; 5.x writes
# processor_config.json
_PROCESSOR_CONFIG_FILES = ("processor_config.json", "preprocessor_config.json")


def build_processor(config: TvltConfig, *, original: bool, source_folder: Path | None):
    """
    The `TvltProcessor` for a converted checkpoint: the one saved in a transformers-format `source_folder` (TVLT-base
    preprocessing sized to `config` if it has none), or the original-faithful preprocessing for an original checkpoint.
    """
    from ..feature_extraction_tvlt import ORIGINAL_MAX_FRAMES, TvltFeatureExtractor
    from ..image_processing_tvlt import TvltImageProcessor
    from ..processing_tvlt import TvltProcessor

    if source_folder is not None and any((source_folder / name).is_file() for name in _PROCESSOR_CONFIG_FILES):
        try:
            processor = TvltProcessor.from_pretrained(source_folder)
        except (OSError, ValueError, TypeError) as error:
            raise ConversionError(
                f"The processor config in {source_folder} is not a valid TVLT one: {error}"
            ) from error
        _warn_on_mismatch(processor, config, source_folder)
        return processor

    if original and config.spectrogram_length < ORIGINAL_MAX_FRAMES:
        raise ConversionError(
            f"`spectrogram_length` is {config.spectrogram_length}, but the original preprocessing keeps up to "
            f"{ORIGINAL_MAX_FRAMES} spectrogram frames; use at least {ORIGINAL_MAX_FRAMES}."
        )
    mode = "original" if original else "transformers"
    height, width = config.frame_size
    image_processor = TvltImageProcessor(
        # square frames keep 4.40.2's shortest-edge resize before the centre crop
        size={"shortest_edge": height} if height == width else {"height": height, "width": width},
        crop_size={"height": height, "width": width},
        patch_size=list(config.image_patch_size),
        num_frames=config.num_frames,
        preprocessing_mode=mode,
    )
    feature_extractor = TvltFeatureExtractor(
        spectrogram_length=config.spectrogram_length,
        num_channels=config.num_audio_channels,
        patch_size=list(config.audio_patch_size),
        feature_size=config.frequency_length,
        preprocessing_mode=mode,
    )
    return TvltProcessor(image_processor=image_processor, feature_extractor=feature_extractor)


def _warn_on_mismatch(processor, config: TvltConfig, source_folder: Path) -> None:
    # A source whose processor does not fit its own model was broken before conversion: keep it as it is, but say so
    image, audio = processor.image_processor, processor.feature_extractor
    problems = []
    crop = getattr(image, "crop_size", None) or {}
    height, width = config.frame_size
    if crop and (crop.get("height"), crop.get("width")) != (height, width):
        problems.append(f"frames are cropped to {crop}, the model takes {height}x{width}")
    if list(image.patch_size) != list(config.image_patch_size):
        problems.append(f"image patch size {list(image.patch_size)} != the model's {config.image_patch_size}")
    if image.num_frames > config.num_frames:
        problems.append(f"{image.num_frames} frames per video, the model takes at most {config.num_frames}")
    if list(audio.patch_size) != list(config.audio_patch_size):
        problems.append(f"audio patch size {list(audio.patch_size)} != the model's {config.audio_patch_size}")
    if audio.feature_size != config.frequency_length:
        problems.append(f"{audio.feature_size} mel bins, the model takes {config.frequency_length}")
    if problems:
        logger.warning("The processor saved in %s does not fit its model: %s.", source_folder, "; ".join(problems))


__all__ = ["build_processor"]
