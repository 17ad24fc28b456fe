"""Checkpoints of the original research code (zinengtang/TVLT, `model/modules/tvlt.py`) to our TVLT classes.

The released `TVLT.ckpt`, `TVLT-MOSEI-SA.ckpt` and `TVLT-MOSEI-EA.ckpt` are plain `TVLT.state_dict()` dicts; a
Lightning checkpoint of the training code nests the same keys under `state_dict` with a `transformer.` prefix. The
weights fix every size except the attention head counts and the number of frames; the position tables are longer
than any input the original code feeds (64 frames, 1020 audio time patches) and are cut to the configured maxima.
"""

import logging
import math
import re
from dataclasses import dataclass

import torch

from ..configuration_tvlt import TvltConfig
from .errors import ConversionError
from .options import OriginalOptions


logger = logging.getLogger(__name__)

# CMU-MOSEI emotion order of the original `moseiemo` task (its 6-way multi-label head)
MOSEI_EMOTIONS = ("happy", "sad", "angry", "fear", "disgust", "surprise")
# The original Pooler-MLP classifier has a default nn.LayerNorm, unlike its encoder (1e-6)
ORIGINAL_CLASSIFIER_LAYER_NORM_EPS = 1e-5
ORIGINAL_LAYER_NORM_EPS = 1e-6

# Original parameter name -> ours, relative to the encoder (`tvlt.` inside a model with heads)
_ENCODER_RENAMES = {
    "cls_token": "cls_embedding",
    "patch_embed_v.proj.weight": "pixel_embeddings.patch_embeddings.projection.weight",
    "patch_embed_v.proj.bias": "pixel_embeddings.patch_embeddings.projection.bias",
    "pos_embed_v": "pixel_embeddings.pos_embed_v",
    "temporal_embed": "pixel_embeddings.temporal_embed",
    "type_embed_v": "pixel_embeddings.type_embed_v",
    "patch_embed_a.proj.weight": "audio_embeddings.patch_embeddings.projection.weight",
    "patch_embed_a.proj.bias": "audio_embeddings.patch_embeddings.projection.bias",
    "pos_embed_a": "audio_embeddings.pos_embed_a",
    "freq_embed": "audio_embeddings.freq_embed",
    "type_embed_a": "audio_embeddings.type_embed_a",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}
_DECODER_RENAMES = {
    "decoder_embed.weight": "encoder_to_decoder.weight",
    "decoder_embed.bias": "encoder_to_decoder.bias",
    "decoder_norm.weight": "decoder.layernorm.weight",
    "decoder_norm.bias": "decoder.layernorm.bias",
    "mask_token_v": "pixel_mask_token",
    "mask_token_a": "audio_mask_token",
    "decoder_pos_embed_v": "decoder_pixel_pos_embed",
    "decoder_temporal_embed": "decoder_temporal_embed",
    "decoder_type_embed_v": "decoder_pixel_type_embed",
    "decoder_pos_embed_a": "decoder_audio_pos_embed",
    "decoder_freq_embed": "decoder_freq_embed",
    "decoder_type_embed_a": "decoder_audio_type_embed",
    "mae_score_video.decoder.weight": "pixel_mae_head.decoder.weight",
    "mae_score_video.decoder.bias": "pixel_mae_head.decoder.bias",
    "mae_score_audio.decoder.weight": "audio_mae_head.decoder.weight",
    "mae_score_audio.decoder.bias": "audio_mae_head.decoder.bias",
}
_MATCHING_RENAMES = {
    "matching_score.pooler.dense.weight": "matching_head.pooler.dense.weight",
    "matching_score.pooler.dense.bias": "matching_head.pooler.dense.bias",
    "matching_score.fc.weight": "matching_head.fc.weight",
    "matching_score.fc.bias": "matching_head.fc.bias",
}
# Sequential(Pooler, Linear, LayerNorm, GELU, Linear): our `use_classifier_pooler` head has the same indices
_CLASSIFIER_SUFFIXES = (
    "0.dense.weight",
    "0.dense.bias",
    "1.weight",
    "1.bias",
    "2.weight",
    "2.bias",
    "4.weight",
    "4.bias",
)
# `classifier` is the MOSEI head; `vqa_classifier` the same MLP over the answer vocabulary (spoken VQA)
_CLASSIFIER_PREFIXES = ("classifier.", "vqa_classifier.")
_LAYER_PARTS = {
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
    "attn.proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
_BLOCK_KEY = re.compile(
    r"^(blocks|decoder_blocks)\.(\d+)\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)$"
)

# Heads of other original variants that have no counterpart here
_UNSUPPORTED_PREFIXES = {
    "text_embeddings.": "the text (BERT-embedding) variant of TVLT",
    "mlm_score.": "the text (masked language modelling) variant of TVLT",
}
# Trained alongside a kept head and not needed to run the model: dropped with a note
_IGNORED_PREFIXES = {
    "rank_output.": (
        "`rank_output` (the MSR-VTT retrieval training head; the original code ranks with `matching_score`, which "
        "is kept)"
    ),
}


@dataclass(frozen=True)
class OriginalLayout:
    """Which parts an original checkpoint holds."""

    has_decoder: bool
    has_matching_head: bool
    classifier_prefix: str | None
    num_labels: int | None
    ignored_keys: tuple[str, ...]

    @property
    def architecture(self) -> str:
        if self.classifier_prefix is not None:
            return "TvltForAudioVisualClassification"
        if self.has_decoder or self.has_matching_head:
            return "TvltForPreTraining"
        return "TvltModel"

    def describe(self) -> str:
        if self.classifier_prefix == "classifier.":
            task = {1: "sentiment", len(MOSEI_EMOTIONS): "emotion"}.get(self.num_labels, f"{self.num_labels}-output")
            return f"original TVLT checkpoint with the CMU-MOSEI {task} head"
        if self.classifier_prefix is not None:
            return f"original TVLT checkpoint with the VQA head ({self.num_labels} answers)"
        parts = [
            name
            for name, present in (("MAE decoder", self.has_decoder), ("matching head", self.has_matching_head))
            if present
        ]
        if parts:
            return f"original TVLT pre-training checkpoint (encoder, {', '.join(parts)})"
        return "original TVLT encoder checkpoint"


def looks_like_original(state_dict: dict) -> bool:
    """Whether keys of the original research code are there (after `unwrap_original_checkpoint`)."""
    return "patch_embed_v.proj.weight" in state_dict and any(key.startswith("blocks.") for key in state_dict)


def unwrap_original_checkpoint(checkpoint, source: str) -> dict[str, torch.Tensor]:
    """
    The flat state dict of an original checkpoint: a plain `TVLT.state_dict()`, the `{"model": ...}` form the
    original loader accepts, or a Lightning checkpoint `{"state_dict": {"transformer.<key>": ...}}`.
    """
    if not isinstance(checkpoint, dict):
        raise ConversionError(f"{source} holds a {type(checkpoint).__name__}, not a state dict of tensors.")
    for wrapper in ("state_dict", "model"):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
            break
    not_tensors = sorted(key for key, value in checkpoint.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise ConversionError(
            f"{source} is not a state dict: entries {_some(not_tensors)} are not tensors (expected a plain "
            "`state_dict()` of the original TVLT model or a Lightning checkpoint with a `state_dict`)."
        )
    for prefix in ("module.", "transformer."):
        # DDP wraps keys in `module.`; the Lightning module holds the TVLT model as `transformer`
        prefixed = [key for key in checkpoint if key.startswith(prefix)]
        if prefixed and not looks_like_original(checkpoint):
            others = sorted(set(checkpoint) - set(prefixed))
            if others:
                logger.warning("Ignoring %d entries outside `%s`: %s", len(others), prefix, _some(others))
            checkpoint = {key[len(prefix) :]: checkpoint[key] for key in prefixed}
    return dict(checkpoint)


def original_layout(state_dict: dict) -> OriginalLayout:
    """Find the parts of an original checkpoint; refuse keys this converter does not know."""
    for prefix, what in _UNSUPPORTED_PREFIXES.items():
        if any(key.startswith(prefix) for key in state_dict):
            raise ConversionError(f"The checkpoint is {what} (keys `{prefix}*`), which TVLT here does not support.")
    classifier_prefixes = [p for p in _CLASSIFIER_PREFIXES if any(key.startswith(p) for key in state_dict)]
    if len(classifier_prefixes) > 1:
        raise ConversionError("The checkpoint has both a `classifier` and a `vqa_classifier` head; expected one.")
    ignored = tuple(sorted(k for k in state_dict if any(k.startswith(p) for p in _IGNORED_PREFIXES)))
    layout = OriginalLayout(
        has_decoder=any(key.startswith("decoder_") or key.startswith("mae_score_") for key in state_dict),
        has_matching_head=any(key.startswith("matching_score.") for key in state_dict),
        classifier_prefix=classifier_prefixes[0] if classifier_prefixes else None,
        num_labels=_num_outputs(state_dict, classifier_prefixes[0]) if classifier_prefixes else None,
        ignored_keys=ignored,
    )
    known = set(_ENCODER_RENAMES) | set(ignored)
    if layout.has_decoder:
        known |= set(_DECODER_RENAMES)
    if layout.has_matching_head:
        known |= set(_MATCHING_RENAMES)
    if layout.classifier_prefix:
        known |= {layout.classifier_prefix + suffix for suffix in _CLASSIFIER_SUFFIXES}
    unknown = sorted(key for key in state_dict if key not in known and not _BLOCK_KEY.match(key))
    if unknown:
        raise ConversionError(f"Unexpected keys for an original TVLT checkpoint: {_some(unknown)}.")
    return layout


def _num_outputs(state_dict: dict, prefix: str) -> int | None:
    last = state_dict.get(prefix + "4.weight")
    return int(last.shape[0]) if last is not None else None


def _require(state_dict: dict, keys, what: str) -> None:
    missing = [key for key in keys if key not in state_dict]
    if missing:
        raise ConversionError(f"The original checkpoint's {what} is incomplete: missing {_some(missing)}.")


def _block_indices(state_dict: dict, prefix: str) -> list[int]:
    indices = sorted({int(m.group(2)) for key in state_dict if (m := _BLOCK_KEY.match(key)) and m.group(1) == prefix})
    if indices != list(range(len(indices))):
        raise ConversionError(f"The original checkpoint's `{prefix}` are not numbered 0..n-1: found {indices}.")
    return indices


def _check_option(name: str, value: int, limit: int, why: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConversionError(f"`{name}` must be a positive int, got {value!r}.")
    if value > limit:
        raise ConversionError(f"`{name}` is {value}, but {why} ({limit}).")


def original_config(state_dict: dict, layout: OriginalLayout, options: OriginalOptions) -> TvltConfig:
    """The `TvltConfig` of an original checkpoint: sizes from the tensor shapes, the rest from `options`."""
    _require(state_dict, _ENCODER_RENAMES, "encoder")
    layers = _block_indices(state_dict, "blocks")
    if not layers:
        raise ConversionError("The original checkpoint has no encoder layers (`blocks.N.*`).")
    hidden_size = state_dict["cls_token"].shape[-1]
    video_projection = state_dict["patch_embed_v.proj.weight"]  # [D, C, ph, pw]
    audio_projection = state_dict["patch_embed_a.proj.weight"]  # [D, 1, pt, pf]
    image_patch_size = [int(s) for s in video_projection.shape[2:]]
    audio_patch_size = [int(s) for s in audio_projection.shape[2:]]

    patches_per_frame = state_dict["pos_embed_v"].shape[1]
    image_size = math.isqrt(patches_per_frame * image_patch_size[0] * image_patch_size[1])
    if (image_size // image_patch_size[0]) * (image_size // image_patch_size[1]) != patches_per_frame:
        raise ConversionError(
            f"`pos_embed_v` has {patches_per_frame} positions, not a square frame of {image_patch_size} patches."
        )
    frame_positions = state_dict["temporal_embed"].shape[1]
    audio_time_positions = state_dict["pos_embed_a"].shape[1]
    _check_option(
        "num_frames", options.num_frames, frame_positions, "the checkpoint's `temporal_embed` has fewer frames"
    )
    _check_option(
        "spectrogram_length",
        options.spectrogram_length,
        audio_time_positions * audio_patch_size[0],
        f"the checkpoint's `pos_embed_a` ({audio_time_positions} time patches of {audio_patch_size[0]}) covers fewer "
        "spectrogram frames",
    )
    for name in ("num_attention_heads", "decoder_num_attention_heads"):
        value = getattr(options, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConversionError(f"`{name}` must be a positive int, got {value!r}.")

    kwargs = dict(
        image_size=image_size,
        image_patch_size=image_patch_size,
        num_image_channels=int(video_projection.shape[1]),
        audio_patch_size=audio_patch_size,
        num_audio_channels=int(audio_projection.shape[1]),
        frequency_length=int(state_dict["freq_embed"].shape[1]) * audio_patch_size[1],
        spectrogram_length=options.spectrogram_length,
        num_frames=options.num_frames,
        hidden_size=int(hidden_size),
        num_hidden_layers=len(layers),
        num_attention_heads=options.num_attention_heads,
        intermediate_size=int(state_dict["blocks.0.mlp.fc1.weight"].shape[0]),
        hidden_act="gelu",
        layer_norm_eps=ORIGINAL_LAYER_NORM_EPS,
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
        # the original MAE pass has no CLS token
        mae_use_cls_token=False,
        # the original's joint pass gives CLS the first audio patch's padding flag
        cls_mask_from_first_audio_patch=True,
        task_matching=layout.has_matching_head,
        task_mae=layout.has_decoder,
        architectures=[layout.architecture],
    )
    if layout.has_decoder:
        _require(state_dict, _DECODER_RENAMES, "MAE decoder")
        decoder_layers = _block_indices(state_dict, "decoder_blocks")
        if not decoder_layers:
            raise ConversionError("The original checkpoint has an MAE decoder but no `decoder_blocks.N.*`.")
        decoder_frames = state_dict["decoder_temporal_embed"].shape[1]
        decoder_time_positions = state_dict["decoder_pos_embed_a"].shape[1]
        _check_option("num_frames", options.num_frames, decoder_frames, "`decoder_temporal_embed` has fewer frames")
        _check_option(
            "spectrogram_length",
            options.spectrogram_length,
            decoder_time_positions * audio_patch_size[0],
            "`decoder_pos_embed_a` covers fewer spectrogram frames",
        )
        kwargs.update(
            decoder_hidden_size=int(state_dict["decoder_embed.weight"].shape[0]),
            decoder_num_hidden_layers=len(decoder_layers),
            decoder_num_attention_heads=options.decoder_num_attention_heads,
            decoder_intermediate_size=int(state_dict["decoder_blocks.0.mlp.fc1.weight"].shape[0]),
        )
    if layout.has_matching_head:
        _require(state_dict, _MATCHING_RENAMES, "matching head")
    if layout.classifier_prefix is not None:
        _require(state_dict, [layout.classifier_prefix + s for s in _CLASSIFIER_SUFFIXES], "classifier head")
        kwargs.update(use_classifier_pooler=True, classifier_layer_norm_eps=ORIGINAL_CLASSIFIER_LAYER_NORM_EPS)
        kwargs.update(_classifier_labels(state_dict, layout.classifier_prefix))
    try:
        return TvltConfig(**kwargs)
    except ValueError as error:
        raise ConversionError(f"The original checkpoint gives an invalid TVLT config: {error}") from error


def _classifier_labels(state_dict: dict, prefix: str) -> dict:
    num_labels = int(state_dict[prefix + "4.weight"].shape[0])
    if prefix == "classifier.":
        if num_labels == 1:
            # MOSEI sentiment: one score in [-3, 3], trained with MSE
            return dict(problem_type="regression", loss_type="regression", id2label={0: "sentiment"})
        if num_labels == len(MOSEI_EMOTIONS):
            # trained with BCE-with-logits on 0/1 presence of each emotion
            return dict(problem_type="multi_label_classification", id2label=dict(enumerate(MOSEI_EMOTIONS)))
        raise ConversionError(
            f"The `classifier` head has {num_labels} outputs; the original MOSEI heads have 1 (sentiment) or 6 "
            "(emotions)."
        )
    # VQA answers are scored with a soft multi-label target; the answer vocabulary is not in the checkpoint
    return dict(problem_type="multi_label_classification", id2label={i: f"LABEL_{i}" for i in range(num_labels)})


def _split_qkv(weight: torch.Tensor, hidden_size: int, key: str) -> tuple[torch.Tensor, ...]:
    # the original reshapes the fused output as (3, heads, head_dim): query rows first, then key, then value
    if weight.shape[0] != 3 * hidden_size:
        raise ConversionError(f"`{key}` has {weight.shape[0]} rows, expected 3 x {hidden_size}.")
    return tuple(part.clone() for part in weight.split(hidden_size, dim=0))


def _convert_blocks(state_dict: dict, prefix: str, target: str, hidden_size: int, out: dict) -> None:
    for key, value in state_dict.items():
        match = _BLOCK_KEY.match(key)
        if not match or match.group(1) != prefix:
            continue
        _, index, part, kind = match.groups()
        layer = f"{target}.{index}"
        if part == "attn.qkv":
            for name, piece in zip(("query", "key", "value"), _split_qkv(value, hidden_size, key), strict=True):
                out[f"{layer}.attention.attention.{name}.{kind}"] = piece
        else:
            out[f"{layer}.{_LAYER_PARTS[part]}.{kind}"] = value


def convert_original_state_dict(state_dict: dict, layout: OriginalLayout, config: TvltConfig) -> dict:
    """Our state dict (keys of `config.architectures[0]`) from an original one, position tables cut to `config`."""
    encoder_prefix = "" if layout.architecture == "TvltModel" else "tvlt."
    time_positions = config.max_audio_time_patches
    cuts = {
        "temporal_embed": config.num_frames,
        "pos_embed_a": time_positions,
        "decoder_temporal_embed": config.num_frames,
        "decoder_pos_embed_a": time_positions,
    }
    out = {}
    for original, ours in _ENCODER_RENAMES.items():
        out[encoder_prefix + ours] = state_dict[original]
    _convert_blocks(state_dict, "blocks", encoder_prefix + "encoder.layer", config.hidden_size, out)
    if layout.architecture == "TvltForPreTraining":
        if layout.has_decoder:
            for original, ours in _DECODER_RENAMES.items():
                out[ours] = state_dict[original]
            _convert_blocks(state_dict, "decoder_blocks", "decoder.decoder_layers", config.decoder_hidden_size, out)
        if layout.has_matching_head:
            for original, ours in _MATCHING_RENAMES.items():
                out[ours] = state_dict[original]
    elif layout.architecture == "TvltForAudioVisualClassification":
        for suffix in _CLASSIFIER_SUFFIXES:
            out["classifier." + suffix] = state_dict[layout.classifier_prefix + suffix]
        dropped = [
            name
            for name, present in (("MAE decoder", layout.has_decoder), ("matching head", layout.has_matching_head))
            if present
        ]
        if dropped:
            logger.warning("The checkpoint has a classifier: dropping its %s.", " and ".join(dropped))
    for original, length in cuts.items():
        ours = (encoder_prefix if original in _ENCODER_RENAMES else "") + (
            _ENCODER_RENAMES.get(original) or _DECODER_RENAMES.get(original)
        )
        if ours in out:
            out[ours] = out[ours][:, :length]
    if layout.ignored_keys:
        for prefix, what in _IGNORED_PREFIXES.items():
            if any(key.startswith(prefix) for key in layout.ignored_keys):
                logger.warning("Dropping %s.", what)
    # slices and splits are views of the loaded tensors: give safetensors contiguous storage of their own
    return {key: value.detach().clone().contiguous() for key, value in out.items()}


def _some(keys, limit: int = 8) -> str:
    keys = list(keys)
    shown = ", ".join(f"`{key}`" for key in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


__all__ = [
    "MOSEI_EMOTIONS",
    "OriginalOptions",
    "OriginalLayout",
    "looks_like_original",
    "unwrap_original_checkpoint",
    "original_layout",
    "original_config",
    "convert_original_state_dict",
]
