# Copyright 2023 The HuggingFace Inc. team; 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""TVLT processor: one call turns videos/images and audio (arrays or files) into the model's inputs."""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING

from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.utils import TensorType, logging

from .feature_extraction_tvlt import TvltFeatureExtractor
from .image_processing_tvlt import TvltImageProcessor
from .media_tvlt import MediaDecodingError, check_media_file, has_audio_track, is_path
from .processing_utils_tvlt import check_preprocessing_mode, loading_from
from .remote_code_tvlt import set_processor_remote_code_entries


logger = logging.get_logger(__name__)

# Keyword arguments of `from_pretrained` that locate files; both sub-processors need them.
_HUB_KWARGS = frozenset(
    {
        "cache_dir",
        "force_download",
        "local_files_only",
        "token",
        "revision",
        "subfolder",
        "proxies",
        "trust_remote_code",
        "code_revision",
        "repo_type",
        "user_agent",
        "_from_auto",
        "_from_pipeline",
    }
)
# Options the Auto classes and `pipeline()` pass along that mean nothing to TVLT (it has a single, PIL-based image
# processor, and processors have no dtype or device placement).
_IGNORED_AUTO_KWARGS = frozenset({"use_fast", "backend", "config", "dtype", "torch_dtype", "device_map"})


def _parameters(function, exclude=()) -> frozenset[str]:
    return frozenset(name for name in inspect.signature(function).parameters if name not in {"self", *exclude})


# Per-call options of each sub-processor that the processor forwards by name.
_IMAGE_CALL_KWARGS = _parameters(TvltImageProcessor.preprocess, exclude=("videos", "is_mixed", "return_tensors"))
_AUDIO_CALL_KWARGS = _parameters(
    TvltFeatureExtractor.__call__, exclude=("raw_speech", "return_tensors", "sampling_rate", "mask_audio")
)
# Settings of each sub-processor that `from_pretrained` overrides by name.
_IMAGE_INIT_KWARGS = _parameters(TvltImageProcessor.__init__, exclude=("kwargs",))
_AUDIO_INIT_KWARGS = _parameters(TvltFeatureExtractor.__init__, exclude=("kwargs",))


class TvltProcessor(ProcessorMixin):
    r"""
    Constructs a TVLT processor: a [`TvltImageProcessor`] for the frames and a [`TvltFeatureExtractor`] for the
    audio, behind one call whose output goes straight into `TvltModel`, `TvltForPreTraining` or
    `TvltForAudioVisualClassification`.

    `save_pretrained` writes both sub-processors' settings to one `processor_config.json`; `from_pretrained` reads
    that, or a flat `preprocessor_config.json` written by transformers 4.40.2 (as on `ZinengTang/tvlt-base`), giving
    each sub-processor only its own settings.

    Args:
        image_processor ([`TvltImageProcessor`]):
            The image processor.
        feature_extractor ([`TvltFeatureExtractor`]):
            The audio feature extractor.
    """

    def __init__(self, image_processor: TvltImageProcessor, feature_extractor: TvltFeatureExtractor):
        super().__init__(image_processor, feature_extractor)

    @property
    def preprocessing_mode(self) -> str | None:
        """`"transformers"` or `"original"` when both sub-processors use it, `None` when they differ.

        Setting it switches both: `processor.preprocessing_mode = "original"` gives the preprocessing the released
        TVLT weights were trained with (see [`TvltImageProcessor`] and [`TvltFeatureExtractor`]).
        """
        modes = {self.image_processor.preprocessing_mode, self.feature_extractor.preprocessing_mode}
        return modes.pop() if len(modes) == 1 else None

    @preprocessing_mode.setter
    def preprocessing_mode(self, preprocessing_mode: str) -> None:
        check_preprocessing_mode(preprocessing_mode)
        self.image_processor.preprocessing_mode = preprocessing_mode
        self.feature_extractor.preprocessing_mode = preprocessing_mode

    def __call__(
        self,
        images=None,
        audio=None,
        images_mixed=None,
        sampling_rate: int | None = None,
        mask_audio: bool = False,
        mask_pixel: bool = False,
        *,
        videos=None,
        videos_mixed=None,
        return_tensors: str | TensorType | None = None,
        images_kwargs: dict | None = None,
        audio_kwargs: dict | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Prepare videos (or images) and audio for the model.

        Args:
            images / videos (*optional*):
                The visual input, anything [`TvltImageProcessor.preprocess`] takes: images, videos as arrays or frame
                lists, video file paths, or batches of those. `videos` is another name for `images`.
            audio (*optional*):
                The audio input, anything [`TvltFeatureExtractor.__call__`] takes: waveforms, audio or video file
                paths (a video file gives its audio track), or batches of those. When it is not given, video files
                bring their own audio tracks (as in the pipeline and `tvlt predict`): `videos="clip.mp4"` is
                `videos="clip.mp4", audio="clip.mp4"`, and a file without sound is an error. `audio=False` asks for
                the video inputs only.
            images_mixed / videos_mixed (*optional*):
                Videos of the audio-visual matching task (`TvltForPreTraining`), returned as `pixel_values_mixed`.
            sampling_rate (`int`, *optional*):
                Sampling rate of the audio arrays (files carry their own); other rates are resampled.
            mask_audio (`bool`, *optional*, defaults to `False`):
                Add `mask_audio=True` to the outputs: `TvltModel(**inputs)` then masks audio patches (MAE).
            mask_pixel (`bool`, *optional*, defaults to `False`):
                Add `mask_pixel=True` to the outputs: `TvltModel(**inputs)` then masks video patches (MAE).
            return_tensors (`str` or [`~utils.TensorType`], *optional*):
                `"pt"` for PyTorch tensors, `"np"` for NumPy arrays; by default NumPy arrays.
            images_kwargs (`dict`, *optional*), audio_kwargs (`dict`, *optional*):
                Options for the image processor / the feature extractor. Their options may also be passed directly
                as keyword arguments (e.g. `num_frames=4`, `resample=False`).

        Returns:
            [`BatchFeature`] with `audio_values` and `audio_mask` when there is audio, `pixel_values` and `pixel_mask`
            when there are videos, `pixel_values_mixed` and `pixel_mask_mixed` for `images_mixed`; see the
            sub-processors for shapes.
        """
        images = _one_of("images", images, "videos", videos)
        images_mixed = _one_of("images_mixed", images_mixed, "videos_mixed", videos_mixed)
        if audio is False:  # video inputs only
            audio = None
        elif audio is None and images is not None:
            audio = _own_audio_tracks(images, "videos" if videos is not None else "images")
        if images is None and audio is None and images_mixed is None:
            raise ValueError("You need to specify `images` (or `videos`), `audio` or `images_mixed` to process.")

        images_kwargs = dict(images_kwargs or {})
        audio_kwargs = dict(audio_kwargs or {})
        for name, value in kwargs.items():
            if name in _IMAGE_CALL_KWARGS:
                images_kwargs[name] = value
            elif name in _AUDIO_CALL_KWARGS:
                audio_kwargs[name] = value
            else:
                raise TypeError(
                    f"TvltProcessor got an unexpected keyword argument {name!r}. Image processor options: "
                    f"{sorted(_IMAGE_CALL_KWARGS)}; feature extractor options: {sorted(_AUDIO_CALL_KWARGS)}."
                )
        _check_known("images_kwargs", images_kwargs, _IMAGE_CALL_KWARGS)
        _check_known("audio_kwargs", audio_kwargs, _AUDIO_CALL_KWARGS)

        outputs = {}
        if audio is not None:
            outputs.update(
                self.feature_extractor(
                    audio, sampling_rate=sampling_rate, return_tensors=return_tensors, **audio_kwargs
                )
            )
        if images is not None:
            outputs.update(self.image_processor(images, return_tensors=return_tensors, **images_kwargs))
        if images_mixed is not None:
            outputs.update(
                self.image_processor(images_mixed, is_mixed=True, return_tensors=return_tensors, **images_kwargs)
            )
        batch = BatchFeature(data=outputs)  # already converted by the sub-processors
        if mask_audio:
            batch["mask_audio"] = True
        if mask_pixel:
            batch["mask_pixel"] = True
        return batch

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """
        Save both sub-processors' settings to `processor_config.json` (transformers 5.x layout), as a Hub code repo:
        each level of the config names every TVLT processor Auto class (transformers writes only the saved class's
        entry) and all TVLT code files are copied next to it.
        """
        set_processor_remote_code_entries(self)  # and its image processor and feature extractor
        return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> TvltProcessor:
        r"""
        Load the processor from a folder or Hub repository: its `processor_config.json` (transformers 5.x layout), or
        else its flat `preprocessor_config.json` (transformers 4.x), each sub-processor taking its own settings.
        When the model's `config.json` sits beside it, saved settings that contradict the model (and the image
        settings transformers 4.40.2 never saved) are sized to the model, with one warning saying what changed.

        Args:
            pretrained_model_name_or_path (`str` or `os.PathLike`):
                Hub repository id or local folder.
            kwargs:
                File-locating options (`cache_dir`, `revision`, `subfolder`, `token`, `local_files_only`, ...) and
                settings that override the saved ones, routed to the sub-processor that has them (`num_frames=4`,
                `sampling_rate=16000`, ...); `preprocessing_mode` and `patch_size` go to both.
        """
        hub_kwargs = {name: kwargs.pop(name) for name in list(kwargs) if name in _HUB_KWARGS}
        image_settings = {name: kwargs[name] for name in kwargs if name in _IMAGE_INIT_KWARGS}
        audio_settings = {name: kwargs[name] for name in kwargs if name in _AUDIO_INIT_KWARGS}
        unknown = {
            name
            for name in set(kwargs) - set(image_settings) - set(audio_settings) - _IGNORED_AUTO_KWARGS
            if not name.startswith("_")
        }
        if unknown:
            # Like the other transformers processors, ignore them (the Auto classes may pass options of their own).
            logger.warning(
                f"TvltProcessor.from_pretrained ignores the unknown option(s) {sorted(unknown)}; its settings are "
                f"{sorted(_IMAGE_INIT_KWARGS | _AUDIO_INIT_KWARGS)}."
            )
        # both sub-processors are sized to the model beside them, read once; one warning says what changed in either
        with loading_from(pretrained_model_name_or_path, hub_kwargs):
            image_processor = TvltImageProcessor.from_pretrained(
                pretrained_model_name_or_path, **hub_kwargs, **image_settings
            )
            feature_extractor = TvltFeatureExtractor.from_pretrained(
                pretrained_model_name_or_path, **hub_kwargs, **audio_settings
            )
        return cls(image_processor=image_processor, feature_extractor=feature_extractor)


def _one_of(name: str, value, alias: str, alias_value):
    if value is not None and alias_value is not None:
        raise ValueError(f"Pass either `{name}` or `{alias}` (the same input under another name), not both.")
    return value if value is not None else alias_value


def _own_audio_tracks(videos, argument: str):
    """The audio of video files given without `audio=`: the files themselves (the feature extractor reads their
    tracks), shaped like `videos`; `None` when no video is a file (frames carry no sound)."""
    if is_path(videos):
        files = [videos]
    elif isinstance(videos, (list, tuple)) and any(is_path(video) for video in videos):
        files = list(videos)
    else:
        return None
    ways_out = (
        "give the audio with `audio=` (files, or waveforms with `sampling_rate`), or pass `audio=False` for video "
        "inputs only"
    )
    for index, video in enumerate(files):
        if not is_path(video):
            raise ValueError(
                f"`{argument}`: video {index} is frames, which have no sound, next to video files whose own audio "
                f"tracks would be used; {ways_out}."
            )
        if not has_audio_track(check_media_file(video, "video")):
            raise MediaDecodingError(f"{os.fspath(video)} has no audio track; {ways_out}.")
    return videos


def _check_known(name: str, options: dict, known: frozenset[str]) -> None:
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"`{name}` has unknown option(s) {sorted(unknown)}; valid ones are {sorted(known)}.")


TvltProcessor.register_for_auto_class("AutoProcessor")


# Remote-code fetch list, written by scripts/fetch_lists.py (see remote_code_tvlt.py): do not edit.
if TYPE_CHECKING:
    from .configuration_tvlt import TvltConfig  # noqa: F401
    from .embedding_tvlt import TvltAudioVisualEmbedder  # noqa: F401
    from .inputs_tvlt import TvltClipPreparer  # noqa: F401
    from .modeling_tvlt import TvltPreTrainedModel  # noqa: F401
    from .pipeline_tvlt import TvltAudioVisualClassificationPipeline  # noqa: F401
    from .retrieval_tvlt import TvltAudioVisualMatcher  # noqa: F401


__all__ = ["TvltProcessor"]
