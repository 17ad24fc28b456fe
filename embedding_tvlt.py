# Copyright 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""Clip embeddings with any TVLT checkpoint: one vector per clip, audio-visual, video-only or audio-only.

Hub code file (one of `remote_code_tvlt.CODE_FILES`; relative imports only). [`TvltAudioVisualEmbedder`] reads clips
as the pipeline does (`inputs_tvlt.py`), batches them with padding and pools the encoder's output with
[`TvltModel.get_audio_visual_features`] / [`~TvltModel.get_video_features`] / [`~TvltModel.get_audio_features`].
It loads the encoder of any TVLT checkpoint: pre-training (e.g. a converted `ZinengTang/tvlt-base`) or fine-tuned.

```python
>>> from tvlt.embedding_tvlt import TvltAudioVisualEmbedder  # or: get_class_from_dynamic_module (see below)

>>> embedder = TvltAudioVisualEmbedder.from_pretrained("path/to/tvlt-base")
>>> embedder("clip.mp4").shape  # the frames and the file's own audio track, CLS pooling
torch.Size([768])
>>> embedder(["a.mp4", {"video": "face.mp4", "audio": "speech.wav"}], pooling="mean").shape
torch.Size([2, 768])
>>> embedder(["a.mp4", "b.mp4"], modality="video")  # video-only embeddings (the frames alone)
>>> embedder(["speech.wav", "c.mp4"], modality="audio")  # audio-only: audio files or the track of video files
>>> embedder(many_paths, batch_size=16, num_workers=4)  # decoding in DataLoader workers
```

Without the `tvlt` package (a TVLT repo folder or Hub id, its own code): `TvltAudioVisualEmbedder =
transformers.dynamic_module_utils.get_class_from_dynamic_module("embedding_tvlt.TvltAudioVisualEmbedder", repo)`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from transformers.utils import logging

from .inputs_tvlt import CLIP_KEYS, AudioVisualClip, TvltClipPreparer, TvltDataCollator, batch_on_model, check_window
from .modeling_tvlt import FEATURE_POOLINGS, TvltModel
from .processing_tvlt import TvltProcessor


logger = logging.get_logger(__name__)

# What an embedding is computed from: both modalities (the joint embedding), or one of them alone
MODALITIES = ("audio-visual", "video", "audio")


def prepare_inputs(
    clip_preparer: TvltClipPreparer,
    item,
    modality: str = "audio-visual",
    start: float | None = None,
    end: float | None = None,
) -> dict[str, torch.Tensor]:
    """
    Model inputs (batch dimension of 1) of one clip for `modality`; only what that modality needs is decoded.

    `item` is what the pipeline takes: a file path or a `{"video", "audio", "sampling_rate", "start", "end"}` dict.
    For `"video"` it may also be frames (a `(T, H, W, 3)` array or a list of images); for `"audio"` a path is an audio
    file or a video file (its track), and a dict needs only `"audio"` (a path, or a waveform with `"sampling_rate"`).
    `start`/`end` are defaults for clips that do not give their own window.
    """
    _check_modality(modality)
    if modality == "audio-visual":
        return clip_preparer(AudioVisualClip.from_input(item, start=start, end=end))
    if isinstance(item, (str, os.PathLike)):
        fields = {"audio" if modality == "audio" else "video": os.fspath(item)}
    elif isinstance(item, Mapping):
        unknown = sorted(set(item) - set(CLIP_KEYS), key=str)
        if unknown:
            raise ValueError(f"`inputs`: unknown key(s) {unknown} in a clip dict; the keys are {list(CLIP_KEYS)}.")
        fields = {key: os.fspath(value) if isinstance(value, os.PathLike) else value for key, value in item.items()}
    elif modality == "video" and isinstance(item, (np.ndarray, torch.Tensor, list, tuple)):
        fields = {"video": item}
    else:
        raise TypeError(
            f"`inputs` for modality={modality!r} must be a file path or a clip dict"
            + (" (or frames)" if modality == "video" else " ({'audio': waveform, 'sampling_rate': sr} for a waveform)")
            + f"; got {type(item).__name__}."
        )
    start, end = fields.get("start", start), fields.get("end", end)
    check_window(start, end, "inputs")
    if modality == "video":
        if fields.get("video") is None:
            raise ValueError(f"`inputs`: modality='video' needs a `video`; got keys {sorted(fields)}.")
        return clip_preparer.video_inputs(fields["video"], start, end)
    source = fields.get("audio") if fields.get("audio") is not None else fields.get("video")
    if source is None:
        raise ValueError(f"`inputs`: modality='audio' needs an `audio` (or a video file); got keys {sorted(fields)}.")
    if fields.get("audio") is None and not isinstance(source, str):
        raise ValueError("`inputs`: modality='audio' of frames needs the clip's `audio`.")
    return clip_preparer.audio_inputs(source, fields.get("sampling_rate"), start, end)


@torch.no_grad()
def embed_batch(model, batch: Mapping[str, torch.Tensor], modality: str, pooling: str) -> torch.Tensor:
    """
    `(B, hidden_size)` float32 CPU embeddings of a collated batch (from [`TvltDataCollator`]) with `model` (a
    [`TvltModel`] or any TVLT head: its encoder is used); inputs are moved to the model's device and dtype.
    """
    _check_modality(modality)
    encoder = model.base_model
    inputs = batch_on_model(batch, encoder)
    if modality == "video":
        features = encoder.get_video_features(inputs["pixel_values"], inputs.get("pixel_mask"), pooling=pooling)
    elif modality == "audio":
        features = encoder.get_audio_features(inputs["audio_values"], inputs.get("audio_mask"), pooling=pooling)
    else:
        features = encoder.get_audio_visual_features(
            inputs["pixel_values"],
            inputs["audio_values"],
            pixel_mask=inputs.get("pixel_mask"),
            audio_mask=inputs.get("audio_mask"),
            pooling=pooling,
        )
    return features.float().cpu()


class TvltAudioVisualEmbedder:
    """
    One embedding per clip from the encoder of a TVLT checkpoint.

    Args:
        model ([`TvltModel`], or a TVLT head whose encoder is used):
            In eval mode (`from_pretrained` does).
        processor ([`TvltProcessor`]):
            The checkpoint's processor.
        modality (`str`, *optional*, defaults to `"audio-visual"`):
            `"audio-visual"` (video and audio together: the joint embedding), `"video"` or `"audio"` (the encoder run
            on one modality alone); the default of every call.
        pooling (`str`, *optional*, defaults to `"cls"`):
            `"cls"` (the CLS token, what the classification and matching heads read) or `"mean"` (the mean of the
            real, non-padding tokens); the default of every call.
        batch_size (`int`, *optional*, defaults to 8):
            Clips per forward pass.
    """

    def __init__(self, model, processor, *, modality: str = "audio-visual", pooling: str = "cls", batch_size: int = 8):
        if not isinstance(getattr(model, "base_model", None), TvltModel):
            raise TypeError(f"`model` must be a TVLT model (TvltModel or a TVLT head), got {type(model).__name__}.")
        _check_modality(modality)
        _check_pooling(pooling)
        _check_positive(batch_size, "batch_size")
        self.model = model
        self.processor = processor
        self.modality = modality
        self.pooling = pooling
        self.batch_size = batch_size
        self.clip_preparer = TvltClipPreparer(processor, model.config)
        self.data_collator = TvltDataCollator(self.clip_preparer.audio_padding_value)

    @property
    def embedding_size(self) -> int:
        """Length of each embedding (the encoder's `hidden_size`)."""
        return int(self.model.config.hidden_size)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        modality: str = "audio-visual",
        pooling: str = "cls",
        batch_size: int = 8,
        device=None,
        **kwargs,
    ) -> TvltAudioVisualEmbedder:
        """
        Load the encoder ([`TvltModel`]) and the processor of any TVLT checkpoint (folder or Hub id), in eval mode.
        The heads' weights of a pre-training or fine-tuned checkpoint are left out on purpose (not reported).

        Args:
            device (`str` or `torch.device`, *optional*):
                Where to run the model (default: CPU).
            kwargs:
                Passed to both `from_pretrained` calls (`revision`, `cache_dir`, `local_files_only`, `dtype`, ...).
        """
        model = load_encoder(pretrained_model_name_or_path, **kwargs)
        if device is not None:
            model = model.to(device)
        processor = TvltProcessor.from_pretrained(pretrained_model_name_or_path, **kwargs)  # it ignores `dtype`
        return cls(model, processor, modality=modality, pooling=pooling, batch_size=batch_size)

    def __call__(
        self,
        inputs,
        *,
        modality: str | None = None,
        pooling: str | None = None,
        start: float | None = None,
        end: float | None = None,
        batch_size: int | None = None,
        num_workers: int = 0,
    ) -> torch.Tensor:
        """
        Embed one clip or a list of clips.

        Args:
            inputs: a clip (a file path, a `{"video", "audio", "sampling_rate", "start", "end"}` dict; frames for
                `modality="video"`, audio files for `"audio"`) or a list of clips.
            modality, pooling: override the embedder's defaults for this call.
            start, end (`float`, *optional*): default time window (seconds) for clips that do not give their own.
            batch_size (`int`, *optional*): clips per forward pass (default: the embedder's).
            num_workers (`int`, *optional*, defaults to 0): DataLoader worker processes that decode and preprocess
                the next clips while the model runs (0: in this process).

        Returns:
            `torch.FloatTensor` (float32, CPU) of shape `(hidden_size,)` for one clip, `(len(inputs), hidden_size)`
            for a list. A clip gets the same vector whatever the batch it is in.
        """
        modality = self.modality if modality is None else modality
        pooling = self.pooling if pooling is None else pooling
        batch_size = self.batch_size if batch_size is None else batch_size
        _check_modality(modality)
        _check_pooling(pooling)
        _check_positive(batch_size, "batch_size")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"`num_workers` must be a non-negative int, got {num_workers!r}.")
        check_window(start, end, "start/end")
        single = not isinstance(inputs, list)
        items = [inputs] if single else inputs
        if not items:
            return torch.empty(0, self.embedding_size)
        dataset = _PreparedClips(items, self.clip_preparer, modality, start, end)
        loader = DataLoader(
            dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=self.data_collator, shuffle=False
        )
        embeddings = torch.cat([embed_batch(self.model, batch, modality, pooling) for batch in loader])
        return embeddings[0] if single else embeddings


def load_encoder(pretrained_model_name_or_path, **kwargs) -> TvltModel:
    """
    The [`TvltModel`] encoder of any TVLT checkpoint, in eval mode. The head weights that a pre-training or fine-tuned
    checkpoint also holds are not loaded and not reported; missing encoder weights are (they would be random).
    """
    with _quiet_load_report():
        model, info = TvltModel.from_pretrained(pretrained_model_name_or_path, output_loading_info=True, **kwargs)
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        logger.warning(
            f"{pretrained_model_name_or_path}: the checkpoint has no weights for {len(missing)} encoder tensor(s) "
            f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); they are randomly initialised, so the "
            "embeddings are not meaningful."
        )
    return model.eval()


class _PreparedClips(Dataset):
    """The model inputs of each clip, prepared where the DataLoader asks (this process or a worker)."""

    def __init__(self, items: list, clip_preparer: TvltClipPreparer, modality: str, start, end):
        self.items, self.clip_preparer, self.modality = items, clip_preparer, modality
        self.start, self.end = start, end

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return prepare_inputs(self.clip_preparer, self.items[index], self.modality, self.start, self.end)


@contextlib.contextmanager
def _quiet_load_report():
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def _check_modality(modality) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"`modality` must be one of {MODALITIES}, got {modality!r}.")


def _check_pooling(pooling) -> None:
    if pooling not in FEATURE_POOLINGS:
        raise ValueError(f"`pooling` must be one of {FEATURE_POOLINGS}, got {pooling!r}.")


def _check_positive(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")


# Remote-code fetch list, written by scripts/fetch_lists.py (see remote_code_tvlt.py): do not edit.
if TYPE_CHECKING:
    from .configuration_tvlt import TvltConfig  # noqa: F401
    from .feature_extraction_tvlt import TvltFeatureExtractor  # noqa: F401
    from .image_processing_tvlt import TvltImageProcessor  # noqa: F401
    from .media_tvlt import DecodedVideo  # noqa: F401
    from .pipeline_tvlt import TvltAudioVisualClassificationPipeline  # noqa: F401
    from .processing_utils_tvlt import PREPROCESSING_MODES  # noqa: F401
    from .remote_code_tvlt import CODE_FILES  # noqa: F401
    from .retrieval_tvlt import TvltAudioVisualMatcher  # noqa: F401


__all__ = ["MODALITIES", "TvltAudioVisualEmbedder", "embed_batch", "load_encoder", "prepare_inputs"]
