"""The processor written into a converted repo."""

from pathlib import Path

from ..checkpoints.layout import PROCESSOR_CONFIG_FILES
from ..configuration_tvlt import TvltConfig
from .errors import ConversionError


def build_processor(config: TvltConfig, *, original: bool, source_folder: Path | None):
    """
    The `TvltProcessor` for a converted checkpoint: the one saved in a transformers-format `source_folder`, sized to
    the model where its settings contradict `config` or were never saved (4.40.2 did not save the image processor's;
    `TvltProcessor.from_pretrained` says what it changed), TVLT-base preprocessing sized to `config` if there is
    none, or the original-faithful preprocessing for an original checkpoint.
    """
    from ..feature_extraction_tvlt import ORIGINAL_MAX_FRAMES, TvltFeatureExtractor, fit_audio_settings
    from ..image_processing_tvlt import TvltImageProcessor, fit_image_settings
    from ..processing_tvlt import TvltProcessor

    if source_folder is not None and any((source_folder / name).is_file() for name in PROCESSOR_CONFIG_FILES):
        try:
            return TvltProcessor.from_pretrained(source_folder)
        except (OSError, ValueError, TypeError) as error:
            raise ConversionError(
                f"The processor config in {source_folder} is not a valid TVLT one: {error}"
            ) from error

    if original and config.spectrogram_length < ORIGINAL_MAX_FRAMES:
        raise ConversionError(
            f"`spectrogram_length` is {config.spectrogram_length}, but the original preprocessing keeps up to "
            f"{ORIGINAL_MAX_FRAMES} spectrogram frames; use at least {ORIGINAL_MAX_FRAMES}."
        )
    mode = "original" if original else "transformers"
    # nothing saved: every size is the model's (the same rule as for a saved processor)
    image_settings, audio_settings = {}, {}
    fit_image_settings(image_settings, config)
    fit_audio_settings(audio_settings, config)
    image_processor = TvltImageProcessor(**image_settings, preprocessing_mode=mode)
    feature_extractor = TvltFeatureExtractor(**audio_settings, preprocessing_mode=mode)
    return TvltProcessor(image_processor=image_processor, feature_extractor=feature_extractor)


__all__ = ["build_processor"]
