# Copyright 2023 MURGe-Lab and The HuggingFace Inc. team; 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""PyTorch TVLT model (Textless Vision-Language Transformer, Tang et al., NeurIPS 2022) for transformers 5.x.

One transformer over video patches and audio-spectrogram patches. Parameter names, shapes and outputs are those of
transformers 4.40.2's TVLT, so its checkpoints load unchanged; the differences (bug fixes and options) are listed in
the project's docs/differences-from-4.40.2.md.

Token order inside the encoder is `[CLS, video patches, audio patches]`. Video patches are frame-major, row-major
inside a frame; audio patches are time-major with `frequency_length // audio_patch_size[1]` frequency patches per
time step.
"""

import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, logging

from .configuration_tvlt import TvltConfig


logger = logging.get_logger(__name__)

# `pooling` of TvltModel.get_*_features: the CLS token (what the heads read) or the mean of the real tokens
FEATURE_POOLINGS = ("cls", "mean")


@dataclasses.dataclass
class TvltModelOutput(ModelOutput):
    """
    Output of [`TvltModel`]. `B` is the batch size, `Lv`/`La` the numbers of video/audio tokens the encoder saw
    (after MAE masking when it is on), `Nv`/`Na` the numbers of video/audio patches before masking.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(B, 1 + Lv + La, hidden_size)`):
            Final (layer-normed) hidden states: `[CLS, video tokens, audio tokens]`. The CLS token is absent in a
            masked pass with `config.mae_use_cls_token=False`.
        last_pixel_hidden_state (`torch.FloatTensor` of shape `(B, Lv, hidden_size)`):
            The video part of `last_hidden_state`; `None` without `pixel_values`.
        last_audio_hidden_state (`torch.FloatTensor` of shape `(B, La, hidden_size)`):
            The audio part of `last_hidden_state`; `None` without `audio_values`.
        pixel_label_masks (`torch.FloatTensor` of shape `(B, Nv)`):
            1 for video patches hidden by MAE masking (and not padding), 0 otherwise; only with `mask_pixel=True`.
        audio_label_masks (`torch.FloatTensor` of shape `(B, Na)`):
            Likewise for audio patches; only with `mask_audio=True`.
        pixel_ids_restore (`torch.LongTensor` of shape `(B, Nv)`):
            Permutation that puts the shuffled video patches back in order; only with `mask_pixel=True`.
        audio_ids_restore (`torch.LongTensor` of shape `(B, Na)`):
            Likewise for audio patches; only with `mask_audio=True`.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            With `output_hidden_states=True`: the embeddings and the output of every layer (before the final layer
            norm), each of shape `(B, sequence_length, hidden_size)`.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            With `output_attentions=True`: the attention probabilities of every layer, each of shape
            `(B, num_attention_heads, sequence_length, sequence_length)`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    last_pixel_hidden_state: torch.FloatTensor | None = None
    last_audio_hidden_state: torch.FloatTensor | None = None
    pixel_label_masks: torch.FloatTensor | None = None
    audio_label_masks: torch.FloatTensor | None = None
    pixel_ids_restore: torch.LongTensor | None = None
    audio_ids_restore: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclasses.dataclass
class TvltDecoderOutput(ModelOutput):
    """
    Output of [`TvltDecoder`].

    Args:
        logits (`torch.FloatTensor` of shape `(B, num_patches, decoder_hidden_size)`):
            Layer-normed decoder states (the MAE heads turn them into patch values; the name is 4.40.2's).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            With `output_hidden_states=True`: the decoder input and the output of every decoder layer.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            With `output_attentions=True`: the attention probabilities of every decoder layer.
    """

    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclasses.dataclass
class TvltForPreTrainingOutput(ModelOutput):
    """
    Output of [`TvltForPreTraining`]. `Nv`/`Na` are the numbers of video/audio patches, `(ph, pw)` is
    `image_patch_size` and `(pt, pf)` is `audio_patch_size`.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Sum of the computed objectives: matching loss (when `labels` are given) and the video and audio MAE
            losses (when the MAE pass ran). `None` when no objective was computed.
        matching_logits (`torch.FloatTensor` of shape `(B, 1)`):
            Vision-audio matching logits (apply a sigmoid for a match probability); `None` without the matching
            head or without both modalities.
        pixel_logits (`torch.FloatTensor` of shape `(B, Nv, ph * pw * num_image_channels)`):
            MAE reconstruction of every video patch (pixel values, laid out as by
            [`TvltForPreTraining.patchify_pixel`]).
        audio_logits (`torch.FloatTensor` of shape `(B, Na, pt * pf * num_audio_channels)`):
            MAE reconstruction of every audio patch.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Encoder hidden states of the last encoder pass (the MAE pass when it ran, else the matching pass).
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Encoder attentions of the last encoder pass.
        pixel_label_masks (`torch.FloatTensor` of shape `(B, Nv)`, *optional*):
            1 for the video patches the MAE pass hid from the encoder (the ones the loss is computed on).
        audio_label_masks (`torch.FloatTensor` of shape `(B, Na)`, *optional*):
            1 for the audio patches the MAE pass hid from the encoder.
    """

    loss: torch.FloatTensor | None = None
    matching_logits: torch.FloatTensor | None = None
    pixel_logits: torch.FloatTensor | None = None
    audio_logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    pixel_label_masks: torch.FloatTensor | None = None
    audio_label_masks: torch.FloatTensor | None = None


def random_masking(
    sequence: torch.Tensor,
    noise: torch.Tensor,
    len_keep: int,
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """
    Keep the `len_keep` tokens of each sample with the smallest `noise` (MAE's per-sample shuffle).

    Args:
        sequence: `[B, L, D]` tokens.
        noise: `[B, L]`; smaller is kept first.
        len_keep: number of tokens kept per sample.
        attention_mask: optional `[B, L]` padding mask (1 = real token).

    Returns:
        `(kept [B, len_keep, D], kept attention mask [B, len_keep] or None, label mask [B, L] with 1 = hidden and
        real, ids_restore [B, L])`.
    """
    batch_size, seq_len, hidden_dim = sequence.shape
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small is keep, large is remove
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    kept = torch.gather(sequence, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, hidden_dim))  # [B, len_keep, D]

    label_masks = torch.ones([batch_size, seq_len], device=sequence.device)
    label_masks[:, :len_keep] = 0
    label_masks = torch.gather(label_masks, dim=1, index=ids_restore)  # [B, L], back in patch order
    if attention_mask is not None:
        # padding is never a reconstruction target
        label_masks = label_masks * attention_mask
        attention_mask = torch.gather(attention_mask, dim=1, index=ids_keep)
    return kept, attention_mask, label_masks, ids_restore


def add_position_embeddings(
    tokens: torch.Tensor, within_step: torch.Tensor, per_step: torch.Tensor, type_embedding: torch.Tensor
) -> torch.Tensor:
    """
    Add a modality's position and type embeddings to its step-major tokens `[B, steps * n, D]`: `within_step`
    `[1, n, D]` is repeated over the steps, the first `steps` rows of `per_step` `[1, >= steps, D]` each over the `n`
    tokens of their step. Video: steps are frames, `within_step` the spatial table, `per_step` the temporal one.
    Audio: steps are time patches, `within_step` the frequency table, `per_step` the time one. Used by the encoder's
    embeddings and by the MAE decoder with its own tables.
    """
    tokens_per_step = within_step.shape[1]
    num_steps = tokens.shape[1] // tokens_per_step
    tokens = tokens + within_step.repeat(1, num_steps, 1)
    tokens = tokens + torch.repeat_interleave(per_step[:, :num_steps], tokens_per_step, dim=1)
    return tokens + type_embedding


class TvltPixelPatchEmbeddings(nn.Module):
    """Turns `pixel_values` `[B, T, C, H, W]` into patch tokens `[B, T * patches_per_frame, hidden_size]`."""

    def __init__(self, config: TvltConfig):
        super().__init__()
        self.image_size = config.frame_size
        self.patch_size = tuple(config.image_patch_size)
        self.num_channels = config.num_image_channels
        self.num_patches_per_image = config.num_patches_per_image
        self.hidden_size = config.hidden_size
        self.projection = nn.Conv2d(
            config.num_image_channels, config.hidden_size, kernel_size=self.patch_size, stride=self.patch_size
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        batch_size, num_frames, num_channels, height, width = pixel_values.shape
        frames = pixel_values.reshape(batch_size * num_frames, num_channels, height, width)
        frames = frames.to(self.projection.weight.dtype)
        embeddings = self.projection(frames).flatten(2).transpose(1, 2)  # [B*T, P, D]
        return embeddings.reshape(batch_size, num_frames * self.num_patches_per_image, self.hidden_size)


class TvltAudioPatchEmbeddings(nn.Module):
    """Turns `audio_values` `[B, C, time, frequency]` into patch tokens `[B, time_patches * freq_patches, D]`."""

    def __init__(self, config: TvltConfig):
        super().__init__()
        self.spectrogram_size = (config.spectrogram_length, config.frequency_length)
        self.patch_size = tuple(config.audio_patch_size)
        self.num_channels = config.num_audio_channels
        self.patch_shape = (
            config.spectrogram_length // self.patch_size[0],
            config.frequency_length // self.patch_size[1],
        )
        self.num_patches = self.patch_shape[0] * self.patch_shape[1]
        self.projection = nn.Conv2d(
            config.num_audio_channels, config.hidden_size, kernel_size=self.patch_size, stride=self.patch_size
        )

    def forward(self, audio_values: torch.Tensor) -> torch.Tensor:
        audio_values = audio_values.to(self.projection.weight.dtype)
        return self.projection(audio_values).flatten(2).transpose(1, 2)  # [B, Na, D], time-major


class TvltPixelEmbeddings(nn.Module):
    """Video patch tokens plus the spatial (`pos_embed_v`), temporal (`temporal_embed`) and type tables."""

    def __init__(self, config: TvltConfig):
        super().__init__()
        self.patch_embeddings = TvltPixelPatchEmbeddings(config)
        self.num_patches_per_image = self.patch_embeddings.num_patches_per_image
        self.type_embed_v = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.temporal_embed = nn.Parameter(torch.zeros(1, config.num_frames, config.hidden_size))
        self.pos_embed_v = nn.Parameter(torch.zeros(1, self.num_patches_per_image, config.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        embeddings = self.patch_embeddings(pixel_values)  # [B, T*P, D]
        return add_position_embeddings(embeddings, self.pos_embed_v, self.temporal_embed, self.type_embed_v)


class TvltAudioEmbeddings(nn.Module):
    """Audio patch tokens plus the frequency (`freq_embed`), time (`pos_embed_a`) and type tables."""

    def __init__(self, config: TvltConfig):
        super().__init__()
        self.patch_embeddings = TvltAudioPatchEmbeddings(config)
        self.num_patches = self.patch_embeddings.num_patches
        self.num_freq_patches = config.num_freq_patches
        self.type_embed_a = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.pos_embed_a = nn.Parameter(torch.zeros(1, config.max_audio_time_patches, config.hidden_size))
        self.freq_embed = nn.Parameter(torch.zeros(1, self.num_freq_patches, config.hidden_size))

    def forward(self, audio_values: torch.Tensor) -> torch.Tensor:
        embeddings = self.patch_embeddings(audio_values)  # [B, Na, D]
        return add_position_embeddings(embeddings, self.freq_embed, self.pos_embed_a, self.type_embed_a)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention; `query/key/value` `[B, heads, L, head_dim]` give `[B, L, heads, head_dim]`."""
    # in place: the [B, H, L, L] scores are the largest tensors of the forward (320 MB per layer at TVLT-base size)
    attn_weights = torch.matmul(query, key.transpose(2, 3)).mul_(scaling)  # [B, H, L, L]
    if attention_mask is not None:
        attn_weights.add_(attention_mask)
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()  # [B, L, H, hd]
    return attn_output, attn_weights


class TvltSelfAttention(nn.Module):
    """Multi-head self-attention, dispatched through the transformers attention interface."""

    def __init__(self, config: TvltConfig, hidden_size: int, num_attention_heads: int):
        super().__init__()
        self.config = config
        self.num_attention_heads = num_attention_heads
        self.attention_head_size = hidden_size // num_attention_heads
        self.all_head_size = hidden_size
        self.scaling = self.attention_head_size**-0.5
        self.dropout_prob = config.attention_probs_dropout_prob
        self.is_causal = False  # read by the flash-attention integration
        self.query = nn.Linear(hidden_size, hidden_size, bias=config.qkv_bias)
        self.key = nn.Linear(hidden_size, hidden_size, bias=config.qkv_bias)
        self.value = nn.Linear(hidden_size, hidden_size, bias=config.qkv_bias)

    def _attention_interface(self, implementation: str | None) -> Callable:
        if implementation in (None, "eager"):
            return eager_attention_forward
        # Shim: 5.x releases later than 5.0 validate the name through `get_interface`; 5.0 only has the mapping.
        # (`set_attn_implementation` also greps the modeling source for one of these two call forms before it agrees
        # to switch a model's attention: keep them spelled out.)
        if hasattr(ALL_ATTENTION_FUNCTIONS, "get_interface"):
            return ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        if implementation == self.config._attn_implementation:
            return ALL_ATTENTION_FUNCTIONS[self.config._attn_implementation]
        return ALL_ATTENTION_FUNCTIONS[implementation]

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        attn_implementation: str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        head_shape = (*input_shape, self.num_attention_heads, self.attention_head_size)
        query = self.query(hidden_states).view(head_shape).transpose(1, 2)  # [B, H, L, hd]
        key = self.key(hidden_states).view(head_shape).transpose(1, 2)
        value = self.value(hidden_states).view(head_shape).transpose(1, 2)

        attention_interface = self._attention_interface(attn_implementation or self.config._attn_implementation)
        context, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.dropout_prob if self.training else 0.0,
            scaling=self.scaling,
            is_causal=False,
        )
        context = context.reshape(*input_shape, self.all_head_size)  # [B, L, D]
        return context, attn_weights


class TvltSelfOutput(nn.Module):
    """Attention output projection (the residual is added in [`TvltLayer`], pre-norm style)."""

    def __init__(self, config: TvltConfig, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense(hidden_states))


class TvltAttention(nn.Module):
    def __init__(self, config: TvltConfig, hidden_size: int, num_attention_heads: int):
        super().__init__()
        self.attention = TvltSelfAttention(config, hidden_size, num_attention_heads)
        self.output = TvltSelfOutput(config, hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        attn_implementation: str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        context, attn_weights = self.attention(hidden_states, attention_mask, attn_implementation)
        return self.output(context), attn_weights


class TvltIntermediate(nn.Module):
    """First half of the MLP (the names `intermediate`/`output` are 4.40.2's parameter names)."""

    def __init__(self, config: TvltConfig, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)
        act = config.hidden_act
        self.intermediate_act_fn = ACT2FN[act] if isinstance(act, str) else act

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class TvltOutput(nn.Module):
    """Second half of the MLP, with the residual connection."""

    def __init__(self, config: TvltConfig, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.dense = nn.Linear(intermediate_size, hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense(hidden_states)) + input_tensor


class TvltLayer(GradientCheckpointingLayer):
    """
    Pre-norm transformer block (timm's `Block`): `x + attn(ln(x))`, then `x + mlp(ln(x))`. The sizes are the
    encoder's or the MAE decoder's (`config.decoder_*`), passed as timm and MAE do; every other setting, the attention
    implementation included, is read from the model's `config`, so `set_attn_implementation` reaches both.
    """

    def __init__(self, config: TvltConfig, hidden_size: int, num_attention_heads: int, intermediate_size: int):
        super().__init__()
        self.attention = TvltAttention(config, hidden_size, num_attention_heads)
        self.intermediate = TvltIntermediate(config, hidden_size, intermediate_size)
        self.output = TvltOutput(config, hidden_size, intermediate_size)
        self.layernorm_before = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        attn_implementation: str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attention_output, attn_weights = self.attention(
            self.layernorm_before(hidden_states), attention_mask, attn_implementation
        )
        hidden_states = attention_output + hidden_states
        layer_output = self.output(self.intermediate(self.layernorm_after(hidden_states)), hidden_states)
        return layer_output, attn_weights


def _run_layers(
    layers: nn.ModuleList,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None,
    attn_implementation: str | None,
    output_attentions: bool,
    output_hidden_states: bool,
) -> tuple[torch.Tensor, tuple | None, tuple | None]:
    all_hidden_states = () if output_hidden_states else None
    all_attentions = () if output_attentions else None
    for layer in layers:
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        # hidden_states goes positionally: reentrant gradient checkpointing only tracks positional tensors
        hidden_states, attn_weights = layer(hidden_states, attention_mask, attn_implementation)
        if output_attentions:
            all_attentions += (attn_weights,)
    if output_hidden_states:
        all_hidden_states += (hidden_states,)
    return hidden_states, all_hidden_states, all_attentions


class TvltEncoder(nn.Module):
    def __init__(self, config: TvltConfig):
        super().__init__()
        self.config = config
        sizes = (config.hidden_size, config.num_attention_heads, config.intermediate_size)
        self.layer = nn.ModuleList([TvltLayer(config, *sizes) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        attn_implementation: str | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, tuple | None, tuple | None]:
        return _run_layers(
            self.layer, hidden_states, attention_mask, attn_implementation, output_attentions, output_hidden_states
        )


class TvltDecoder(nn.Module):
    """MAE decoder: `decoder_num_hidden_layers` blocks of width `decoder_hidden_size`, then a layer norm."""

    def __init__(self, config: TvltConfig):
        super().__init__()
        sizes = (config.decoder_hidden_size, config.decoder_num_attention_heads, config.decoder_intermediate_size)
        self.decoder_layers = nn.ModuleList(
            [TvltLayer(config, *sizes) for _ in range(config.decoder_num_hidden_layers)]
        )
        self.layernorm = nn.LayerNorm(config.decoder_hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False
        self.config = config

    def forward(
        self,
        hidden_states: torch.Tensor,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ) -> TvltDecoderOutput | tuple:
        # The decoder sees every patch (mask tokens included) and, as in 4.40.2 and the original, no padding mask.
        implementation = "eager" if output_attentions else None
        hidden_states, all_hidden_states, all_attentions = _run_layers(
            self.decoder_layers, hidden_states, None, implementation, output_attentions, output_hidden_states
        )
        logits = self.layernorm(hidden_states)
        if not return_dict:
            return tuple(v for v in (logits, all_hidden_states, all_attentions) if v is not None)
        return TvltDecoderOutput(logits=logits, hidden_states=all_hidden_states, attentions=all_attentions)


class TvltPooler(nn.Module):
    """The original TVLT Pooler: dense + tanh on the first (CLS) token."""

    def __init__(self, config: TvltConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))  # [B, D]


class TvltMatchingHead(nn.Module):
    """Vision-audio matching: one logit per sample from the pooled CLS token."""

    def __init__(self, config: TvltConfig):
        super().__init__()
        self.pooler = TvltPooler(config)
        self.fc = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pooler(hidden_states))  # [B, 1]


class TvltMAEHead(nn.Module):
    """Projects decoder states to patch values; `modality` picks the video or the audio patch size."""

    def __init__(self, config: TvltConfig, modality: str):
        super().__init__()
        if modality == "pixel":
            output_dim = config.image_patch_size[0] * config.image_patch_size[1] * config.num_image_channels
        elif modality == "audio":
            output_dim = config.audio_patch_size[0] * config.audio_patch_size[1] * config.num_audio_channels
        else:
            raise ValueError(f"`modality` must be 'pixel' or 'audio', got {modality!r}.")
        self.decoder = nn.Linear(config.decoder_hidden_size, output_dim)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(hidden_states)


class TvltClassifier(nn.Sequential):
    """
    Classification MLP on the CLS token. 4.40.2's head is `Linear(D, 2D) -> LayerNorm -> GELU -> Linear(2D, n)`;
    with `config.use_classifier_pooler` the original TVLT Pooler comes first (keys `classifier.0.dense`,
    `classifier.1`, `classifier.2`, `classifier.4`, as in the released MOSEI checkpoints). Takes the whole sequence.
    """

    def __init__(self, config: TvltConfig):
        hidden_size = config.hidden_size
        eps = config.layer_norm_eps if config.classifier_layer_norm_eps is None else config.classifier_layer_norm_eps
        layers = [
            nn.Linear(hidden_size, hidden_size * 2),
            nn.LayerNorm(hidden_size * 2, eps=eps),
            nn.GELU(),
            nn.Linear(hidden_size * 2, config.num_labels),
        ]
        if config.use_classifier_pooler:
            layers.insert(0, TvltPooler(config))
        super().__init__(*layers)
        self.uses_pooler = config.use_classifier_pooler

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        hidden = sequence_output if self.uses_pooler else sequence_output[:, 0]
        return super().forward(hidden)  # [B, num_labels]


def _check_input(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_video(config: TvltConfig, values, mask, values_name="pixel_values", mask_name="pixel_mask") -> None:
    """`values_name`/`mask_name`: what the caller calls them (e.g. `pixel_values_mixed`), for the errors."""
    height, width = config.frame_size
    expected = f"(batch_size, num_frames <= {config.num_frames}, {config.num_image_channels}, {height}, {width})"
    _check_input(values.dim() == 5, f"`{values_name}` must have shape {expected}, got {tuple(values.shape)}.")
    _, num_frames, channels, frame_height, frame_width = values.shape
    _check_input(
        (channels, frame_height, frame_width) == (config.num_image_channels, height, width),
        f"`{values_name}` must have shape {expected}, got {tuple(values.shape)} (channels and frame size must match "
        "the config).",
    )
    _check_input(
        1 <= num_frames <= config.num_frames,
        f"`{values_name}` has {num_frames} frames but the model takes at most `num_frames`={config.num_frames} "
        f"(expected shape {expected}); sample frames with the image processor.",
    )
    if mask is not None:
        expected_mask = (values.shape[0], num_frames * config.num_patches_per_image)
        _check_input(
            tuple(mask.shape) == expected_mask,
            f"`{mask_name}` must have shape (batch_size, num_frames * patches_per_frame) = {expected_mask} for "
            f"`{values_name}` of shape {tuple(values.shape)}, got {tuple(mask.shape)}.",
        )


def _check_audio(config: TvltConfig, audio_values: torch.Tensor, audio_mask: torch.Tensor | None) -> None:
    time_patch, freq_patch = config.audio_patch_size
    expected = (
        f"(batch_size, {config.num_audio_channels}, time <= {config.spectrogram_length} (a multiple of "
        f"{time_patch}), {config.frequency_length})"
    )
    got = tuple(audio_values.shape)
    _check_input(audio_values.dim() == 4, f"`audio_values` must have shape {expected}, got {got}.")
    _, channels, time, frequency = audio_values.shape
    _check_input(
        channels == config.num_audio_channels,
        f"`audio_values` must have shape {expected}, got {got} ({channels} channels).",
    )
    _check_input(
        frequency == config.frequency_length,
        f"`audio_values` has {frequency} frequency bins but `frequency_length` is {config.frequency_length} "
        f"(expected shape {expected}, got {got}).",
    )
    _check_input(
        time_patch <= time <= config.spectrogram_length,
        f"`audio_values` has {time} time steps but the model takes {time_patch} to `spectrogram_length`="
        f"{config.spectrogram_length} (expected shape {expected}, got {got}).",
    )
    _check_input(
        time % time_patch == 0,
        f"`audio_values` has {time} time steps, not a multiple of the audio patch height {time_patch}; pad the "
        f"spectrogram (the feature extractor does) (expected shape {expected}).",
    )
    if audio_mask is not None:
        expected_mask = (audio_values.shape[0], (time // time_patch) * (frequency // freq_patch))
        _check_input(
            tuple(audio_mask.shape) == expected_mask,
            f"`audio_mask` must have shape (batch_size, time_patches * frequency_patches) = {expected_mask} for "
            f"`audio_values` of shape {got}, got {tuple(audio_mask.shape)}.",
        )


def _check_noise(noise: torch.Tensor | None, name: str, shapes: list[tuple[int, int]]) -> None:
    if noise is not None and tuple(noise.shape) not in shapes:
        raise ValueError(f"`{name}` must have shape {' or '.join(str(s) for s in shapes)}, got {tuple(noise.shape)}.")


def _check_encoder_inputs(
    config: TvltConfig, pixel_values, audio_values, pixel_mask, audio_mask, pixel_noise=None, audio_noise=None
) -> None:
    """The inputs of [`TvltModel.forward`]; a noise is checked only when it is used (its modality is masked)."""
    if pixel_values is None and audio_values is None:
        raise ValueError("TvltModel needs `pixel_values`, `audio_values` or both; got neither.")
    if pixel_values is None and pixel_mask is not None:
        raise ValueError("`pixel_mask` was given without `pixel_values`.")
    if audio_values is None and audio_mask is not None:
        raise ValueError("`audio_mask` was given without `audio_values`.")
    if pixel_values is not None:
        _check_video(config, pixel_values, pixel_mask)
    if audio_values is not None:
        _check_audio(config, audio_values, audio_mask)
    if pixel_values is not None and audio_values is not None and pixel_values.shape[0] != audio_values.shape[0]:
        raise ValueError(
            f"`pixel_values` (batch {pixel_values.shape[0]}) and `audio_values` (batch {audio_values.shape[0]}) "
            "must have the same batch size."
        )
    if pixel_values is not None:
        batch_size, num_frames = pixel_values.shape[:2]
        _check_noise(pixel_noise, "pixel_noise", [(batch_size, num_frames * config.num_patches_per_image)])
    if audio_values is not None:
        batch_size, num_time = audio_values.shape[0], audio_values.shape[2] // config.audio_patch_size[0]
        shapes = [(batch_size, num_time * config.num_freq_patches)]
        if config.audio_mask_type == "frame-level":
            shapes.append((batch_size, num_time))
        _check_noise(audio_noise, "audio_noise", shapes)


def _check_pretraining_inputs(
    config: TvltConfig, pixel_values, audio_values, labels, pixel_values_mixed, pixel_mask_mixed, reconstruct: bool
) -> None:
    """
    What [`TvltForPreTraining.forward`] adds to the encoder's checks: the matching video and `labels` (errors that
    name the argument), and that at least one objective can run.
    """
    if config.task_matching:
        if pixel_values_mixed is None:
            _check_input(pixel_mask_mixed is None, "`pixel_mask_mixed` was given without `pixel_values_mixed`.")
            video_name, video = "pixel_values", pixel_values
        else:
            _check_video(config, pixel_values_mixed, pixel_mask_mixed, "pixel_values_mixed", "pixel_mask_mixed")
            video_name, video = "pixel_values_mixed", pixel_values_mixed
        if video is not None and audio_values is not None:
            _check_input(
                video.shape[0] == audio_values.shape[0],
                f"`{video_name}` (batch {video.shape[0]}) and `audio_values` (batch {audio_values.shape[0]}) must "
                "have the same batch size: matching scores each video against the audio at the same index.",
            )
        if labels is not None and audio_values is not None:
            batch_size = audio_values.shape[0]
            _check_input(
                labels.numel() == batch_size,
                f"Matching `labels` must hold one 0/1 target per pair, shape ({batch_size},) or ({batch_size}, 1) for "
                f"the batch of {batch_size} in `{video_name}` and `audio_values`; got shape {tuple(labels.shape)}.",
            )
        if labels is not None and (video is None or audio_values is None):
            raise ValueError("Matching `labels` need both video (`pixel_values`) and `audio_values`.")
    runs_mae = config.task_mae and reconstruct
    if runs_mae and pixel_values is None and audio_values is None:
        raise ValueError("The MAE pass needs `pixel_values`, `audio_values` or both.")
    matching_video = pixel_values_mixed if pixel_values_mixed is not None else pixel_values
    if not runs_mae and not (config.task_matching and matching_video is not None and audio_values is not None):
        raise ValueError(
            "Nothing to compute: matching needs both `pixel_values` (or `pixel_values_mixed`) and `audio_values`, "
            "and the MAE pass runs only in training mode or with `reconstruct=True`."
        )


def _check_classification_labels(problem_type: str, labels: torch.Tensor, batch_size: int, num_labels: int) -> None:
    shape = tuple(labels.shape)
    if problem_type == "regression":
        expected = [(batch_size, num_labels)] + ([(batch_size,)] if num_labels == 1 else [])
        _check_input(
            shape in expected, f"Regression `labels` must have shape {' or '.join(map(str, expected))}, got {shape}."
        )
    elif problem_type == "multi_label_classification":
        _check_input(
            shape == (batch_size, num_labels),
            f"Multi-label `labels` must have shape {(batch_size, num_labels)} (0/1 per label), got {shape}.",
        )
    elif problem_type == "single_label_classification":
        _check_input(
            labels.numel() == batch_size,
            f"Single-label `labels` must hold one class index per sample (shape ({batch_size},)), got {shape}.",
        )


# The top-level parameters of TvltForPreTraining besides the encoder (`tvlt`): what a classifier or a bare encoder
# started from a pre-training checkpoint leaves behind
_PRETRAINING_HEADS = {
    "matching_head": "matching head",
    **dict.fromkeys(
        (
            "decoder",
            "encoder_to_decoder",
            "pixel_mae_head",
            "audio_mae_head",
            "pixel_mask_token",
            "audio_mask_token",
            "decoder_pixel_pos_embed",
            "decoder_temporal_embed",
            "decoder_pixel_type_embed",
            "decoder_audio_pos_embed",
            "decoder_freq_embed",
            "decoder_audio_type_embed",
        ),
        "MAE decoder",
    ),
}


def _is_main_process() -> bool:
    """Rank 0 of a distributed run (torchrun and accelerate set RANK before the process group exists), or no run."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"


class TvltPreTrainedModel(PreTrainedModel):
    config_class = TvltConfig
    config: TvltConfig
    base_model_prefix = "tvlt"
    main_input_name = "pixel_values"
    input_modalities = ("video", "audio")
    supports_gradient_checkpointing = True
    _no_split_modules = ["TvltPixelEmbeddings", "TvltAudioEmbeddings", "TvltLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """
        Linear/conv weights ~ N(0, initializer_range) with zero biases and unit layer norms (the base class's rules).
        The learned tables follow the original TVLT recipe: CLS, type, temporal and frequency embeddings and mask
        tokens ~ N(0, initializer_range), spatial and time position tables zero. Every tensor gets its value here:
        5.x builds models on the meta device, where `torch.zeros` in `__init__` leaves nothing behind, and the
        `transformers.initialization` functions skip tensors loaded from a checkpoint.
        """
        super()._init_weights(module)
        std = self.config.initializer_range
        if not std and isinstance(module, (nn.Linear, nn.Conv2d)):
            init.zeros_(module.weight)  # N(0, 0), as 4.40.2; the base class reads initializer_range=0 as 0.02
        elif isinstance(module, TvltPixelEmbeddings):
            init.normal_(module.type_embed_v, std=std)
            init.normal_(module.temporal_embed, std=std)
            init.zeros_(module.pos_embed_v)
        elif isinstance(module, TvltAudioEmbeddings):
            init.normal_(module.type_embed_a, std=std)
            init.normal_(module.freq_embed, std=std)
            init.zeros_(module.pos_embed_a)
        elif isinstance(module, TvltModel):
            init.normal_(module.cls_embedding, std=std)
        elif isinstance(module, TvltForPreTraining) and module.task_mae:
            init.normal_(module.pixel_mask_token, std=std)
            init.normal_(module.audio_mask_token, std=std)
            init.normal_(module.decoder_pixel_type_embed, std=std)
            init.normal_(module.decoder_audio_type_embed, std=std)
            init.normal_(module.decoder_temporal_embed, std=std)
            init.normal_(module.decoder_freq_embed, std=std)
            init.zeros_(module.decoder_pixel_pos_embed)
            init.zeros_(module.decoder_audio_pos_embed)

    def enable_input_require_grads(self):
        """
        Make the outputs of both patch embeddings (video and audio) require gradients, so that adapters (e.g. LoRA)
        on a frozen model train under reentrant gradient checkpointing. (transformers' version hooks
        `get_input_embeddings()`, which is the (video, audio) pair here.)
        """

        def make_output_require_grads(module, inputs, output):
            output.requires_grad_(True)

        self.disable_input_require_grads()
        self._require_grads_hooks = [
            embeddings.register_forward_hook(make_output_require_grads)
            for embeddings in self.base_model.get_input_embeddings()
        ]
        self._require_grads_hook = self._require_grads_hooks[0]  # the attribute older transformers code reads

    def disable_input_require_grads(self):
        """Remove the hooks of [`~TvltPreTrainedModel.enable_input_require_grads`]."""
        for hook in getattr(self, "_require_grads_hooks", None) or []:
            hook.remove()
        self._require_grads_hooks = []
        if hasattr(self, "_require_grads_hook"):
            del self._require_grads_hook

    def _adjust_missing_and_unexpected_keys(self, *args, **kwargs):
        """
        Starting a classifier (or a bare encoder) from a pre-training checkpoint, the recommended way to fine-tune,
        drops the MAE decoder and the matching head and initialises a new classifier: say so in one line (rank 0 only)
        instead of transformers' load report listing every one of those tensors (37 lines at TVLT-base size, once per
        process under torchrun). Anything else missing or unexpected is still reported by transformers.
        """
        # Shim: 5.0 passes (missing_keys, unexpected_keys) and returns them; later 5.x pass the loading info and
        # adjust it in place. An override that stops being called only brings the full report back.
        adjusted = super()._adjust_missing_and_unexpected_keys(*args, **kwargs)
        if adjusted is not None:
            return self._summarise_pretraining_heads(*adjusted)
        info = args[0] if args else next(iter(kwargs.values()))
        info.missing_keys, info.unexpected_keys = self._summarise_pretraining_heads(
            info.missing_keys, info.unexpected_keys
        )
        return None

    def _summarise_pretraining_heads(self, missing_keys: set[str], unexpected_keys: set[str]) -> tuple[set, set]:
        dropped = {key for key in unexpected_keys if key.split(".")[0] in _PRETRAINING_HEADS}
        if not dropped:
            return missing_keys, unexpected_keys
        heads = " and the ".join(sorted({_PRETRAINING_HEADS[key.split(".")[0]] for key in dropped}))
        new_classifier = {key for key in missing_keys if key.split(".")[0] == "classifier"}
        message = (
            f"{type(self).__name__} from {self.config.name_or_path or 'a pre-training checkpoint'}: dropped the "
            f"pre-training checkpoint's {heads} ({len(dropped)} tensors)"
        )
        if _is_main_process():
            if new_classifier:
                logger.warning(
                    f"{message}; initialised a new classifier ({len(new_classifier)} tensors): fine-tune it before "
                    "use."
                )
            else:
                logger.info(f"{message}.")
        return set(missing_keys) - new_classifier, set(unexpected_keys) - dropped

    def _encode(
        self, pixel_values, audio_values, pixel_mask, audio_mask, output_attentions, output_hidden_states, **masking
    ) -> "TvltModelOutput":
        """A head's encoder pass, as a [`TvltModelOutput`]."""
        return self.tvlt(
            pixel_values,
            audio_values,
            pixel_mask=pixel_mask,
            audio_mask=audio_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **masking,
        )

    def _as_requested(self, output: ModelOutput, return_dict: bool | None):
        """
        `output`, or with `return_dict=False` (or `config.return_dict=False`) 4.40.2's tuple: the output's fields
        before `hidden_states` (a `None` loss left out, other `None`s kept: positions are fixed), then hidden states
        and attentions when they were asked for.
        """
        if return_dict if return_dict is not None else self.config.return_dict:
            return output
        names = [field.name for field in dataclasses.fields(output)]
        values = tuple(getattr(output, name) for name in names[: names.index("hidden_states")])
        if names[0] == "loss" and output.loss is None:
            values = values[1:]
        return values + tuple(v for v in (output.hidden_states, output.attentions) if v is not None)


class TvltModel(TvltPreTrainedModel):
    """The bare TVLT encoder: video and/or audio in, hidden states out."""

    def __init__(self, config: TvltConfig):
        super().__init__(config)
        self.config = config
        self.pixel_embeddings = TvltPixelEmbeddings(config)
        self.audio_embeddings = TvltAudioEmbeddings(config)
        self.encoder = TvltEncoder(config)
        self.cls_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.layernorm = (
            None if config.use_mean_pooling else nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        )
        self.post_init()

    def get_input_embeddings(self):
        # 4.40.2 API: the two patch embeddings (video, audio)
        return self.pixel_embeddings.patch_embeddings, self.audio_embeddings.patch_embeddings

    def _embed_pixels(self, pixel_values, pixel_mask, masked: bool, noise) -> tuple:
        """Video tokens `[B, Lv, D]`, MAE-masked when `masked`: `(tokens, padding mask, label masks, ids_restore)`."""
        embeddings = self.pixel_embeddings(pixel_values)  # [B, Nv, D]
        if not masked:
            return embeddings, pixel_mask, None, None
        batch_size, seq_len, _ = embeddings.shape
        if noise is None:
            noise = torch.rand((batch_size, seq_len), device=embeddings.device)  # 4.40.2's draw: video first
        len_keep = int(seq_len * (1 - self.config.pixel_mask_ratio))
        return random_masking(embeddings, noise.to(embeddings.device), len_keep, pixel_mask)

    def _embed_audio(self, audio_values, audio_mask, masked: bool, noise) -> tuple:
        """Audio tokens `[B, La, D]`, likewise."""
        embeddings = self.audio_embeddings(audio_values)  # [B, Na, D]
        if not masked:
            return embeddings, audio_mask, None, None
        batch_size, seq_len, _ = embeddings.shape
        num_freq = self.config.num_freq_patches
        if noise is None:
            # frame-level: one draw per time step, shared by its frequency patches (whole spectrogram frames hidden)
            frame_level = self.config.audio_mask_type == "frame-level"
            noise = torch.rand(batch_size, seq_len // num_freq if frame_level else seq_len, device=embeddings.device)
        noise = noise.to(embeddings.device)
        if noise.shape[1] != seq_len:
            noise = noise.unsqueeze(-1).repeat(1, 1, num_freq).view(batch_size, seq_len)
        len_keep = int(seq_len * (1 - self.config.audio_mask_ratio))
        return random_masking(embeddings, noise, len_keep, audio_mask)

    def _cls_mask(self, pixel_values, audio_mask) -> torch.Tensor | None:
        """`[B, 1]` padding flag of the CLS token under `config.cls_mask_from_first_audio_patch`, else `None`.

        The original code builds its attention mask as `[first audio patch's flag, audio flags, video flags]` in the
        one pass that has both modalities and a CLS token; its audio-only pass has no CLS token (and pools the first
        audio patch) and it cannot run video alone, so there CLS stays attendable. The flag is the first patch's
        before any MAE masking.
        """
        if not self.config.cls_mask_from_first_audio_patch or pixel_values is None or audio_mask is None:
            return None
        return audio_mask[:, :1].to(torch.float32)

    def _encoder_attention_mask(
        self, attention_mask: torch.Tensor | None, embeddings: torch.Tensor, implementation: str
    ) -> torch.Tensor | None:
        """Turn the `[B, L]` padding mask into what the attention implementation takes."""
        if attention_mask is None:
            return None
        if implementation == "eager":
            # 4.40.2's additive mask
            mask = attention_mask[:, None, None, :].to(embeddings.dtype)
            return (1.0 - mask) * torch.finfo(embeddings.dtype).min
        if implementation == "sdpa":
            return attention_mask[:, None, None, :].bool()  # [B, 1, 1, L], broadcast over queries
        return create_bidirectional_mask(self.config, embeddings, attention_mask)

    def forward(
        self,
        pixel_values: torch.FloatTensor | None = None,
        audio_values: torch.FloatTensor | None = None,
        pixel_mask: torch.FloatTensor | None = None,
        audio_mask: torch.FloatTensor | None = None,
        mask_pixel: bool = False,
        mask_audio: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        pixel_noise: torch.FloatTensor | None = None,
        audio_noise: torch.FloatTensor | None = None,
    ) -> TvltModelOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(B, T, num_image_channels, height, width)`, *optional*):
                Video frames (`T <= config.num_frames`), from [`TvltImageProcessor`].
            audio_values (`torch.FloatTensor` of shape `(B, num_audio_channels, time, frequency_length)`, *optional*):
                Log-mel spectrograms (`time <= spectrogram_length`, a multiple of `audio_patch_size[0]`), from
                [`TvltFeatureExtractor`]. At least one of `pixel_values` and `audio_values` is needed.
            pixel_mask (`torch.FloatTensor` of shape `(B, T * patches_per_frame)`, *optional*):
                1 for patches of real frames, 0 for padding frames.
            audio_mask (`torch.FloatTensor` of shape `(B, time_patches * frequency_patches)`, *optional*):
                1 for real audio patches, 0 for padding. A mask given for one modality alone is honoured.
            mask_pixel (`bool`, *optional*, defaults to `False`):
                Hide `config.pixel_mask_ratio` of the video patches from the encoder (MAE).
            mask_audio (`bool`, *optional*, defaults to `False`):
                Hide `config.audio_mask_ratio` of the audio patches from the encoder (MAE).
            pixel_noise (`torch.FloatTensor` of shape `(B, num_video_patches)`, *optional*):
                Noise that decides which video patches are hidden (smallest kept); drawn with `torch.rand` if absent.
            audio_noise (`torch.FloatTensor` of shape `(B, num_audio_patches)` or `(B, time_patches)`, *optional*):
                Likewise for audio; the per-time-step shape is for `audio_mask_type="frame-level"`.
            output_attentions (`bool`, *optional*):
                Return the attention probabilities of every layer (computed with eager attention for that call).
            output_hidden_states (`bool`, *optional*):
                Return the hidden states of every layer.
            return_dict (`bool`, *optional*):
                Return a [`TvltModelOutput`] instead of 4.40.2's plain tuple.
        """
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        )
        _check_encoder_inputs(
            config,
            pixel_values,
            audio_values,
            pixel_mask,
            audio_mask,
            pixel_noise if mask_pixel else None,
            audio_noise if mask_audio else None,
        )

        cls_mask = self._cls_mask(pixel_values, audio_mask)
        none = (None, None, None, None)
        pixel_embeddings, pixel_mask, pixel_label_masks, pixel_ids_restore = (
            none if pixel_values is None else self._embed_pixels(pixel_values, pixel_mask, mask_pixel, pixel_noise)
        )
        audio_embeddings, audio_mask, audio_label_masks, audio_ids_restore = (
            none if audio_values is None else self._embed_audio(audio_values, audio_mask, mask_audio, audio_noise)
        )
        # (tokens [B, L, D], padding mask [B, L] or None) in sequence order: video, audio
        modalities = [
            (e, m) for e, m in ((pixel_embeddings, pixel_mask), (audio_embeddings, audio_mask)) if e is not None
        ]

        first = modalities[0][0]
        batch_size = first.shape[0]
        use_cls = not ((mask_pixel or mask_audio) and not config.mae_use_cls_token)
        tokens = [embeddings for embeddings, _ in modalities]
        if use_cls:
            tokens.insert(0, self.cls_embedding.to(first.dtype).expand(batch_size, -1, -1))
        embedding_output = torch.cat(tokens, dim=1)  # [B, 1 + Lv + La, D]

        attention_mask = None
        if any(mask is not None for _, mask in modalities):
            # CLS is always attendable, unless `cls_mask_from_first_audio_patch` asks for the original's rule
            masks = [
                first.new_ones(first.shape[:1] + e.shape[1:2], dtype=torch.float32)
                if mask is None
                else mask.to(first.device, torch.float32)
                for e, mask in modalities
            ]
            if use_cls:
                cls_flag = first.new_ones((batch_size, 1), dtype=torch.float32) if cls_mask is None else cls_mask
                masks.insert(0, cls_flag.to(first.device))
            attention_mask = torch.cat(masks, dim=1)  # [B, L]

        implementation = "eager" if output_attentions else config._attn_implementation
        encoder_mask = self._encoder_attention_mask(attention_mask, embedding_output, implementation)
        sequence_output, all_hidden_states, all_attentions = self.encoder(
            embedding_output,
            attention_mask=encoder_mask,
            attn_implementation=implementation,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        if self.layernorm is not None:
            sequence_output = self.layernorm(sequence_output)

        offset = 1 if use_cls else 0
        pixel_sequence_output = audio_sequence_output = None
        if pixel_values is not None:
            pixel_len = pixel_embeddings.shape[1]
            pixel_sequence_output = sequence_output[:, offset : offset + pixel_len]
            offset += pixel_len
        if audio_values is not None:
            audio_sequence_output = sequence_output[:, offset:]

        output = TvltModelOutput(
            last_hidden_state=sequence_output,
            last_pixel_hidden_state=pixel_sequence_output,
            last_audio_hidden_state=audio_sequence_output,
            pixel_label_masks=pixel_label_masks,
            audio_label_masks=audio_label_masks,
            pixel_ids_restore=pixel_ids_restore,
            audio_ids_restore=audio_ids_restore,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )
        return self._as_requested(output, return_dict)

    def get_audio_visual_features(
        self,
        pixel_values: torch.FloatTensor,
        audio_values: torch.FloatTensor,
        pixel_mask: torch.FloatTensor | None = None,
        audio_mask: torch.FloatTensor | None = None,
        pooling: str = "cls",
    ) -> torch.FloatTensor:
        r"""
        The joint audio-visual embedding: one vector per clip from its video and its audio together.

        ```python
        >>> inputs = processor(videos=[frames], audio=[waveform], sampling_rate=44100, return_tensors="pt")
        >>> with torch.inference_mode():
        ...     embeddings = model.get_audio_visual_features(**inputs)  # (1, hidden_size)
        ```

        Args:
            pixel_values, audio_values, pixel_mask, audio_mask:
                As for [`TvltModel.forward`]; both modalities are needed (see [`~TvltModel.get_video_features`] and
                [`~TvltModel.get_audio_features`] for one of them).
            pooling (`str`, *optional*, defaults to `"cls"`):
                How the tokens become one vector. `"cls"`: the CLS token of the last hidden state (after the final
                layer norm, or before it with `config.use_mean_pooling=True`, which has none), i.e. what the
                classification and matching heads read (the original checkpoints' heads then apply their own
                dense + tanh `Pooler`, which belongs to the head). `"mean"`: the mean of the video and audio tokens
                that are not padding (`pixel_mask`/`audio_mask` 1), the CLS token excluded.

        Returns:
            `torch.FloatTensor` of shape `(B, hidden_size)`, in the model's dtype. A clip gives the same vector alone
            and in a padded batch (up to float rounding).
        """
        if pixel_values is None or audio_values is None:
            raise ValueError(
                "get_audio_visual_features needs both `pixel_values` and `audio_values`; for one modality use "
                "get_video_features or get_audio_features."
            )
        return self._pooled_features(pixel_values, audio_values, pixel_mask, audio_mask, pooling)

    def get_video_features(
        self, pixel_values: torch.FloatTensor, pixel_mask: torch.FloatTensor | None = None, pooling: str = "cls"
    ) -> torch.FloatTensor:
        r"""The video-only embedding `(B, hidden_size)`: the encoder run on the frames alone (no audio tokens), pooled
        as in [`~TvltModel.get_audio_visual_features`] (`"mean"`: over the real video tokens)."""
        if pixel_values is None:
            raise ValueError("get_video_features needs `pixel_values`.")
        return self._pooled_features(pixel_values, None, pixel_mask, None, pooling)

    def get_audio_features(
        self, audio_values: torch.FloatTensor, audio_mask: torch.FloatTensor | None = None, pooling: str = "cls"
    ) -> torch.FloatTensor:
        r"""The audio-only embedding `(B, hidden_size)`: the encoder run on the spectrogram alone (no video tokens),
        pooled as in [`~TvltModel.get_audio_visual_features`] (`"mean"`: over the real audio tokens)."""
        if audio_values is None:
            raise ValueError("get_audio_features needs `audio_values`.")
        return self._pooled_features(None, audio_values, None, audio_mask, pooling)

    def _pooled_features(self, pixel_values, audio_values, pixel_mask, audio_mask, pooling: str) -> torch.Tensor:
        if pooling not in FEATURE_POOLINGS:
            raise ValueError(f"`pooling` must be one of {FEATURE_POOLINGS}, got {pooling!r}.")
        outputs = self(
            pixel_values,
            audio_values,
            pixel_mask=pixel_mask,
            audio_mask=audio_mask,
            output_attentions=False,
            output_hidden_states=False,
            return_dict=True,
        )
        hidden = outputs.last_hidden_state  # [B, 1 + Lv + La, D], CLS first
        if pooling == "cls":
            return hidden[:, 0]
        weights = []  # 1 for real tokens, 0 for padding, in sequence order (video, audio)
        for tokens, mask in (
            (outputs.last_pixel_hidden_state, pixel_mask),
            (outputs.last_audio_hidden_state, audio_mask),
        ):
            if tokens is not None:
                weights.append(tokens.new_ones(tokens.shape[:2], dtype=torch.float32) if mask is None else mask)
        weights = torch.cat([w.to(hidden.device, torch.float32) for w in weights], dim=1)  # [B, Lv + La]
        # padding tokens are multiplied by 0, never averaged in; float32 sums also for half-precision models
        summed = torch.einsum("bld,bl->bd", hidden[:, 1:].float(), weights)
        return (summed / weights.sum(dim=1, keepdim=True).clamp_min(1.0)).to(hidden.dtype)


class TvltForPreTraining(TvltPreTrainedModel):
    """TVLT with its pre-training heads: vision-audio matching and the masked autoencoder (MAE) decoder."""

    def __init__(self, config: TvltConfig):
        super().__init__(config)
        self.config = config
        self.task_matching = config.task_matching
        self.task_mae = config.task_mae
        if not (self.task_matching or self.task_mae):
            raise ValueError("TvltForPreTraining needs `task_matching` or `task_mae` (or both) set to True.")

        self.tvlt = TvltModel(config)
        if self.task_matching:
            self.matching_head = TvltMatchingHead(config)
        if self.task_mae:
            decoder_hidden_size = config.decoder_hidden_size
            self.num_patches_per_image = config.num_patches_per_image
            self.num_freq_patches = config.num_freq_patches
            self.image_patch_size = config.image_patch_size
            self.audio_patch_size = config.audio_patch_size
            self.encoder_to_decoder = nn.Linear(config.hidden_size, decoder_hidden_size, bias=True)
            self.pixel_mask_token = nn.Parameter(torch.zeros(1, 1, decoder_hidden_size))
            self.audio_mask_token = nn.Parameter(torch.zeros(1, 1, decoder_hidden_size))
            self.decoder = TvltDecoder(config)
            self.decoder_pixel_pos_embed = nn.Parameter(
                torch.zeros(1, self.num_patches_per_image, decoder_hidden_size)
            )
            self.decoder_temporal_embed = nn.Parameter(torch.zeros(1, config.num_frames, decoder_hidden_size))
            self.decoder_pixel_type_embed = nn.Parameter(torch.zeros(1, 1, decoder_hidden_size))
            self.decoder_audio_pos_embed = nn.Parameter(
                torch.zeros(1, config.max_audio_time_patches, decoder_hidden_size)
            )
            self.decoder_freq_embed = nn.Parameter(torch.zeros(1, self.num_freq_patches, decoder_hidden_size))
            self.decoder_audio_type_embed = nn.Parameter(torch.zeros(1, 1, decoder_hidden_size))
            self.pixel_mae_head = TvltMAEHead(config, "pixel")
            self.audio_mae_head = TvltMAEHead(config, "audio")
        self.post_init()

    def patchify_pixel(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`[B, T, C, H, W]` -> `[B, T * h * w, ph * pw * C]`, in the encoder's patch order."""
        batch_size, num_frames, num_channels, height, width = pixel_values.shape
        patch_h, patch_w = self.image_patch_size
        grid_h, grid_w = height // patch_h, width // patch_w
        patches = pixel_values.reshape(batch_size, num_frames, num_channels, grid_h, patch_h, grid_w, patch_w)
        patches = torch.einsum("ntchpwq->nthwpqc", patches)
        return patches.reshape(batch_size, num_frames * grid_h * grid_w, patch_h * patch_w * num_channels)

    def patchify_audio(self, audio_values: torch.Tensor) -> torch.Tensor:
        """`[B, C, time, freq]` -> `[B, time_patches * freq_patches, pt * pf * C]`, in the encoder's patch order."""
        batch_size, num_channels, height, width = audio_values.shape
        patch_t, patch_f = self.audio_patch_size
        grid_t, grid_f = height // patch_t, width // patch_f
        patches = audio_values.reshape(batch_size, num_channels, grid_t, patch_t, grid_f, patch_f)
        patches = torch.einsum("nchpwq->nhwpqc", patches)
        return patches.reshape(batch_size, grid_t * grid_f, patch_t * patch_f * num_channels)

    @staticmethod
    def _masked_mse(predictions: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        loss = ((predictions - targets) ** 2).mean(dim=-1)  # [B, N], mean loss per patch
        return (loss * mask).sum() / mask.sum()  # mean over hidden patches

    def pixel_mae_loss(self, pixel_values, pixel_predictions, mask):
        return self._masked_mse(pixel_predictions, self.patchify_pixel(pixel_values), mask)

    def audio_mae_loss(self, audio_values, audio_predictions, mask):
        return self._masked_mse(audio_predictions, self.patchify_audio(audio_values), mask)

    def concatenate_mask(self, mask_token, sequence, ids_restore):
        """Append mask tokens for the hidden patches and unshuffle: `[B, L_kept, d]` -> `[B, N, d]`."""
        batch_size, seq_length, dim = sequence.shape
        mask_tokens = mask_token.to(sequence.dtype).repeat(batch_size, ids_restore.shape[1] - seq_length, 1)
        padded = torch.cat([sequence, mask_tokens], dim=1)
        return torch.gather(padded, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, dim))

    def _decode(self, kept_states, ids_restore, mask_token, position_tables, mae_head) -> torch.Tensor:
        """Encoder states of the kept patches `[B, L_kept, D]` -> patch values of every patch `[B, N, patch size]`."""
        hidden = self.concatenate_mask(mask_token, self.encoder_to_decoder(kept_states), ids_restore)  # [B, N, d]
        return mae_head(self.decoder(add_position_embeddings(hidden, *position_tables)).logits)

    def _decode_pixels(self, pixel_sequence_output, ids_restore):
        tables = (self.decoder_pixel_pos_embed, self.decoder_temporal_embed, self.decoder_pixel_type_embed)
        return self._decode(pixel_sequence_output, ids_restore, self.pixel_mask_token, tables, self.pixel_mae_head)

    def _decode_audio(self, audio_sequence_output, ids_restore):
        tables = (self.decoder_freq_embed, self.decoder_audio_pos_embed, self.decoder_audio_type_embed)
        return self._decode(audio_sequence_output, ids_restore, self.audio_mask_token, tables, self.audio_mae_head)

    def forward(
        self,
        pixel_values: torch.FloatTensor | None = None,
        audio_values: torch.FloatTensor | None = None,
        pixel_mask: torch.FloatTensor | None = None,
        audio_mask: torch.FloatTensor | None = None,
        labels: torch.FloatTensor | None = None,
        pixel_values_mixed: torch.FloatTensor | None = None,
        pixel_mask_mixed: torch.FloatTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        reconstruct: bool | None = None,
        pixel_noise: torch.FloatTensor | None = None,
        audio_noise: torch.FloatTensor | None = None,
    ) -> TvltForPreTrainingOutput | tuple:
        r"""
        Args:
            pixel_values, audio_values, pixel_mask, audio_mask:
                As for [`TvltModel`]. Either modality may be absent; matching needs both.
            labels (`torch.FloatTensor` of shape `(B,)` or `(B, 1)`, *optional*):
                Matching targets (1 = the video belongs to the audio, 0 = it does not). Without labels the matching
                logits are returned and no matching loss is computed, e.g. to score or rank pairs.
            pixel_values_mixed (`torch.FloatTensor`, *optional*):
                Video for the matching pass (a mix of matching and non-matching videos); defaults to `pixel_values`.
            pixel_mask_mixed (`torch.FloatTensor`, *optional*):
                Padding mask of `pixel_values_mixed`.
            reconstruct (`bool`, *optional*):
                Run the MAE pass (masking, decoder, reconstruction loss). `None`: only in training mode (4.40.2's
                behaviour); `True` also in eval mode (e.g. to visualise reconstructions).
            pixel_noise, audio_noise (`torch.FloatTensor`, *optional*):
                Masking noise for the MAE pass, see [`TvltModel.forward`]; for reproducible masks.
            output_attentions, output_hidden_states, return_dict:
                As for [`TvltModel`].
        """
        reconstruct = self.training if reconstruct is None else reconstruct
        _check_pretraining_inputs(
            self.config, pixel_values, audio_values, labels, pixel_values_mixed, pixel_mask_mixed, reconstruct
        )
        loss = outputs = matching_logits = pixel_logits = audio_logits = None
        if pixel_values_mixed is None:
            pixel_values_mixed, pixel_mask_mixed = pixel_values, pixel_mask
        if self.task_matching and pixel_values_mixed is not None and audio_values is not None:
            outputs = self._encode(
                pixel_values_mixed, audio_values, pixel_mask_mixed, audio_mask, output_attentions, output_hidden_states
            )
            matching_logits = self.matching_head(outputs.last_hidden_state)  # [B, 1]
            if labels is not None:
                labels = labels.to(matching_logits.device, matching_logits.dtype)
                loss = BCEWithLogitsLoss()(matching_logits.view(-1), labels.view(-1))

        if self.task_mae and reconstruct:
            outputs = self._encode(
                pixel_values,
                audio_values,
                pixel_mask,
                audio_mask,
                output_attentions,
                output_hidden_states,
                mask_pixel=pixel_values is not None,
                mask_audio=audio_values is not None,
                pixel_noise=pixel_noise,
                audio_noise=audio_noise,
            )
            mae_loss = 0.0
            if pixel_values is not None:
                pixel_logits = self._decode_pixels(outputs.last_pixel_hidden_state, outputs.pixel_ids_restore)
                mae_loss = mae_loss + self.pixel_mae_loss(pixel_values, pixel_logits, outputs.pixel_label_masks)
            if audio_values is not None:
                audio_logits = self._decode_audio(outputs.last_audio_hidden_state, outputs.audio_ids_restore)
                mae_loss = mae_loss + self.audio_mae_loss(audio_values, audio_logits, outputs.audio_label_masks)
            loss = mae_loss if loss is None else loss + mae_loss

        output = TvltForPreTrainingOutput(
            loss=loss,
            matching_logits=matching_logits,
            pixel_logits=pixel_logits,
            audio_logits=audio_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            pixel_label_masks=outputs.pixel_label_masks,
            audio_label_masks=outputs.audio_label_masks,
        )
        return self._as_requested(output, return_dict)


class TvltForAudioVisualClassification(TvltPreTrainedModel):
    """TVLT with a classification/regression MLP on the CLS token (e.g. CMU-MOSEI sentiment and emotion)."""

    def __init__(self, config: TvltConfig):
        super().__init__(config)
        self.tvlt = TvltModel(config)
        self.classifier = TvltClassifier(config)
        self.config = config
        self.post_init()

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        problem_type = self.config.head_problem_type
        # 4.40.2's `loss_type="classification"` (no `problem_type`): cross-entropy on the labels as given (soft too)
        as_given = self.config.problem_type is None and problem_type == "single_label_classification"
        if not as_given:
            _check_classification_labels(problem_type, labels, *logits.shape)
        labels = labels.to(logits.device)
        if problem_type == "regression":
            return MSELoss()(logits, labels.to(logits.dtype).view(logits.shape))
        if problem_type == "multi_label_classification":
            return BCEWithLogitsLoss()(logits, labels.to(logits.dtype))
        if as_given:
            return CrossEntropyLoss()(logits, labels)
        return CrossEntropyLoss()(logits, labels.view(-1).long())

    def forward(
        self,
        pixel_values: torch.FloatTensor | None = None,
        audio_values: torch.FloatTensor | None = None,
        pixel_mask: torch.FloatTensor | None = None,
        audio_mask: torch.FloatTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        labels: torch.Tensor | None = None,
    ) -> SequenceClassifierOutput | tuple:
        r"""
        Args:
            pixel_values, audio_values, pixel_mask, audio_mask, output_attentions, output_hidden_states, return_dict:
                As for [`TvltModel`]; either modality may be absent.
            labels (`torch.Tensor`, *optional*):
                Targets, by `config.problem_type` (else 4.40.2's `config.loss_type`): `"regression"` float `(B,)` or
                `(B, num_labels)` (MSE); `"single_label_classification"` class indices `(B,)` (cross-entropy);
                `"multi_label_classification"` 0/1 `(B, num_labels)` (BCE with logits); `loss_type="classification"`
                anything `CrossEntropyLoss` takes (indices or class probabilities).
        """
        outputs = self._encode(
            pixel_values, audio_values, pixel_mask, audio_mask, output_attentions, output_hidden_states
        )
        logits = self.classifier(outputs.last_hidden_state)  # [B, num_labels]
        output = SequenceClassifierOutput(
            loss=self._loss(logits, labels) if labels is not None else None,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return self._as_requested(output, return_dict)


# Saving a model writes config.json through TvltConfig.save_pretrained, which adds every other Auto class to auto_map
TvltModel.register_for_auto_class("AutoModel")
TvltForPreTraining.register_for_auto_class("AutoModelForPreTraining")
TvltForAudioVisualClassification.register_for_auto_class("AutoModelForVideoClassification")


# Remote-code fetch list, written by scripts/fetch_lists.py (see remote_code_tvlt.py): do not edit.
if TYPE_CHECKING:
    from .embedding_tvlt import TvltAudioVisualEmbedder  # noqa: F401
    from .feature_extraction_tvlt import TvltFeatureExtractor  # noqa: F401
    from .image_processing_tvlt import TvltImageProcessor  # noqa: F401
    from .inputs_tvlt import TvltClipPreparer  # noqa: F401
    from .media_tvlt import DecodedVideo  # noqa: F401
    from .pipeline_tvlt import TvltAudioVisualClassificationPipeline  # noqa: F401
    from .processing_tvlt import TvltProcessor  # noqa: F401
    from .processing_utils_tvlt import PREPROCESSING_MODES  # noqa: F401
    from .remote_code_tvlt import CODE_FILES  # noqa: F401
    from .retrieval_tvlt import TvltAudioVisualMatcher  # noqa: F401


__all__ = [
    "TvltPreTrainedModel",
    "TvltModel",
    "TvltForPreTraining",
    "TvltForAudioVisualClassification",
]
