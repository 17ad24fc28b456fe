# Copyright 2023 MURGe-Lab and The HuggingFace Inc. team; 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""TVLT model configuration."""

from typing import TYPE_CHECKING

from transformers import PretrainedConfig

from .remote_code_tvlt import set_model_remote_code_entries


# "patch_level" is the spelling 4.40.2's validation accepted: it means patch-level masking too
_AUDIO_MASK_TYPE_ALIASES = {"frame-level": "frame-level", "patch-level": "patch-level", "patch_level": "patch-level"}
_LOSS_TYPES = ("classification", "regression")


def _as_pair(value, name):
    """Patch sizes are stored as `[height, width]` lists (the 4.40.2 layout); an int means a square patch."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return [int(value[0]), int(value[1])]
    raise ValueError(f"`{name}` must be a positive int or a pair of positive ints [height, width], got {value!r}.")


class TvltConfig(PretrainedConfig):
    r"""
    Configuration of a TVLT model ([`TvltModel`], [`TvltForPreTraining`], [`TvltForAudioVisualClassification`]).
    The defaults give the [ZinengTang/tvlt-base](https://huggingface.co/ZinengTang/tvlt-base) architecture. Every
    field and default of transformers 4.40.2's `TvltConfig` is kept, so any `config.json` written by 4.40.2 loads
    unchanged; the fields added here default to 4.40.2's behaviour.

    Args:
        image_size (`int` or `list[int]`, *optional*, defaults to 224):
            Height and width of each video frame (`[height, width]` for non-square frames, as 4.40.2 accepted).
        spectrogram_length (`int`, *optional*, defaults to 2048):
            Maximum number of time steps of the audio spectrogram (shorter spectrograms are accepted).
        frequency_length (`int`, *optional*, defaults to 128):
            Number of frequency (mel) bins of the audio spectrogram.
        image_patch_size (`list[int]`, *optional*, defaults to `[16, 16]`):
            Size `[height, width]` of a video patch.
        audio_patch_size (`list[int]`, *optional*, defaults to `[16, 16]`):
            Size `[time, frequency]` of an audio patch.
        num_image_channels (`int`, *optional*, defaults to 3):
            Number of channels of a video frame.
        num_audio_channels (`int`, *optional*, defaults to 1):
            Number of channels of the spectrogram.
        num_frames (`int`, *optional*, defaults to 8):
            Maximum number of video frames (length of the temporal position table).
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the encoder.
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of encoder layers.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Number of attention heads in each encoder layer.
        intermediate_size (`int`, *optional*, defaults to 3072):
            Width of the feed-forward layer of the encoder.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the feed-forward layers (any key of `transformers.activations.ACT2FN`).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout after the attention output and feed-forward projections.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the attention probabilities.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of weights and learned embeddings.
        layer_norm_eps (`float`, *optional*, defaults to 1e-06):
            Epsilon of the layer norms.
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Whether query, key and value projections have a bias.
        use_mean_pooling (`bool`, *optional*, defaults to `False`):
            When `True`, [`TvltModel`] has no final layer norm (the name is 4.40.2's: there is no pooling).
        decoder_num_attention_heads (`int`, *optional*, defaults to 16):
            Number of attention heads in each MAE decoder layer.
        decoder_hidden_size (`int`, *optional*, defaults to 512):
            Width of the MAE decoder.
        decoder_num_hidden_layers (`int`, *optional*, defaults to 8):
            Number of MAE decoder layers.
        decoder_intermediate_size (`int`, *optional*, defaults to 2048):
            Width of the feed-forward layer of the MAE decoder.
        pixel_mask_ratio (`float`, *optional*, defaults to 0.75):
            Fraction of video patches hidden from the encoder in MAE pre-training.
        audio_mask_ratio (`float`, *optional*, defaults to 0.15):
            Fraction of audio patches hidden from the encoder in MAE pre-training.
        audio_mask_type (`str`, *optional*, defaults to `"frame-level"`):
            `"frame-level"` masks whole time steps (all frequency patches of a time step together), `"patch-level"`
            masks single patches. (`"patch_level"`, accepted by 4.40.2, means `"patch-level"`.)
        task_matching (`bool`, *optional*, defaults to `True`):
            Whether [`TvltForPreTraining`] has the vision-audio matching head.
        task_mae (`bool`, *optional*, defaults to `True`):
            Whether [`TvltForPreTraining`] has the MAE decoder.
        loss_type (`str`, *optional*, defaults to `"classification"`):
            4.40.2's loss switch of [`TvltForAudioVisualClassification`]: `"classification"` or `"regression"`.
            Used only when `problem_type` is not set; `problem_type` (`"regression"`,
            `"single_label_classification"`, `"multi_label_classification"`) takes precedence.
        use_classifier_pooler (`bool`, *optional*, defaults to `False`):
            Put the original TVLT Pooler (dense + tanh on the CLS token) in front of the classifier MLP, as in the
            released TVLT-MOSEI-SA/EA checkpoints. `False` is 4.40.2's head.
        classifier_layer_norm_eps (`float`, *optional*):
            Epsilon of the classifier's layer norm. Defaults to `layer_norm_eps` (4.40.2); the original MOSEI heads
            use 1e-5.
        mae_use_cls_token (`bool`, *optional*, defaults to `True`):
            Whether the masked (MAE) encoder pass prepends the CLS token, as 4.40.2 does. The original research code
            runs it without the CLS token; set `False` to reproduce its reconstructions.
        cls_mask_from_first_audio_patch (`bool`, *optional*, defaults to `False`):
            Give the CLS token the padding flag of the first audio patch (in `audio_mask`) whenever video and audio are
            both given, as the original research code did: when a clip starts with silence (its first patch all -1 in
            the original preprocessing), CLS is hidden from the other tokens' attention. `tvlt convert` sets it for
            original checkpoints. `False` keeps CLS always attendable.

    Example:

    ```python
    >>> from tvlt import TvltConfig, TvltModel

    >>> configuration = TvltConfig()  # ZinengTang/tvlt-base architecture
    >>> model = TvltModel(configuration)  # random weights
    ```"""

    model_type = "tvlt"

    def __init__(
        self,
        image_size=224,
        spectrogram_length=2048,
        frequency_length=128,
        image_patch_size=(16, 16),
        audio_patch_size=(16, 16),
        num_image_channels=3,
        num_audio_channels=1,
        num_frames=8,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.02,
        layer_norm_eps=1e-6,
        qkv_bias=True,
        use_mean_pooling=False,
        decoder_num_attention_heads=16,
        decoder_hidden_size=512,
        decoder_num_hidden_layers=8,
        decoder_intermediate_size=2048,
        pixel_mask_ratio=0.75,
        audio_mask_ratio=0.15,
        audio_mask_type="frame-level",
        task_matching=True,
        task_mae=True,
        loss_type="classification",
        use_classifier_pooler=False,
        classifier_layer_norm_eps=None,
        mae_use_cls_token=True,
        cls_mask_from_first_audio_patch=False,
        **kwargs,
    ):
        if audio_mask_type not in _AUDIO_MASK_TYPE_ALIASES:
            raise ValueError(f"`audio_mask_type` must be 'frame-level' or 'patch-level', got {audio_mask_type!r}.")
        if loss_type not in _LOSS_TYPES:
            raise ValueError(f"`loss_type` must be one of {_LOSS_TYPES}, got {loss_type!r}.")
        image_patch_size = _as_pair(image_patch_size, "image_patch_size")
        audio_patch_size = _as_pair(audio_patch_size, "audio_patch_size")
        frame_height, frame_width = _as_pair(image_size, "image_size")
        for name, value in (
            ("spectrogram_length", spectrogram_length),
            ("frequency_length", frequency_length),
            ("num_frames", num_frames),
            ("num_image_channels", num_image_channels),
            ("num_audio_channels", num_audio_channels),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        if frame_height % image_patch_size[0] or frame_width % image_patch_size[1]:
            raise ValueError(
                f"`image_patch_size` {image_patch_size} must divide `image_size` ({image_size}) in both dimensions."
            )
        if spectrogram_length % audio_patch_size[0]:
            raise ValueError(
                f"`audio_patch_size[0]` ({audio_patch_size[0]}) must divide `spectrogram_length` "
                f"({spectrogram_length})."
            )
        if frequency_length % audio_patch_size[1]:
            raise ValueError(
                f"`audio_patch_size[1]` ({audio_patch_size[1]}) must divide `frequency_length` ({frequency_length})."
            )
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"`hidden_size` ({hidden_size}) must be divisible by `num_attention_heads` ({num_attention_heads})."
            )
        if decoder_hidden_size % decoder_num_attention_heads:
            raise ValueError(
                f"`decoder_hidden_size` ({decoder_hidden_size}) must be divisible by `decoder_num_attention_heads` "
                f"({decoder_num_attention_heads})."
            )
        if not isinstance(cls_mask_from_first_audio_patch, bool):
            raise ValueError(
                f"`cls_mask_from_first_audio_patch` must be True or False, got {cls_mask_from_first_audio_patch!r}."
            )
        for name, value in (("pixel_mask_ratio", pixel_mask_ratio), ("audio_mask_ratio", audio_mask_ratio)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {value!r}.")

        self.image_size = image_size
        self.spectrogram_length = spectrogram_length
        self.frequency_length = frequency_length
        self.image_patch_size = image_patch_size
        self.audio_patch_size = audio_patch_size
        self.num_image_channels = num_image_channels
        self.num_audio_channels = num_audio_channels
        self.num_frames = num_frames

        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.qkv_bias = qkv_bias
        self.use_mean_pooling = use_mean_pooling

        self.decoder_num_attention_heads = decoder_num_attention_heads
        self.decoder_hidden_size = decoder_hidden_size
        self.decoder_num_hidden_layers = decoder_num_hidden_layers
        self.decoder_intermediate_size = decoder_intermediate_size
        self.pixel_mask_ratio = pixel_mask_ratio
        self.audio_mask_ratio = audio_mask_ratio
        self.audio_mask_type = _AUDIO_MASK_TYPE_ALIASES[audio_mask_type]

        self.task_matching = task_matching
        self.task_mae = task_mae
        self.loss_type = loss_type
        self.use_classifier_pooler = use_classifier_pooler
        self.classifier_layer_norm_eps = classifier_layer_norm_eps
        self.mae_use_cls_token = mae_use_cls_token
        self.cls_mask_from_first_audio_patch = cls_mask_from_first_audio_patch

        # checked before the base class sees it: depending on the 5.x release it raises a non-ValueError or nothing
        problem_type = kwargs.get("problem_type")
        if problem_type not in (None, "regression", "single_label_classification", "multi_label_classification"):
            raise ValueError(
                "`problem_type` must be 'regression', 'single_label_classification' or 'multi_label_classification', "
                f"got {problem_type!r}."
            )
        super().__init__(**kwargs)

    @property
    def num_freq_patches(self) -> int:
        """Number of audio patches along the frequency axis (8 for TVLT-base)."""
        return self.frequency_length // self.audio_patch_size[1]

    @property
    def num_patches_per_image(self) -> int:
        """Number of video patches in one frame (196 for TVLT-base)."""
        height, width = self.frame_size
        return (height // self.image_patch_size[0]) * (width // self.image_patch_size[1])

    @property
    def frame_size(self) -> tuple[int, int]:
        """`(height, width)` of a video frame, whether `image_size` is an int or a pair."""
        height, width = _as_pair(self.image_size, "image_size")
        return height, width

    @property
    def max_audio_time_patches(self) -> int:
        """Length of the audio time position table (128 for TVLT-base)."""
        return self.spectrogram_length // self.audio_patch_size[0]

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """
        Save like [`~PretrainedConfig.save_pretrained`], as a Hub code repo: `config.json` gets the `auto_map` of
        every TVLT Auto class and the `custom_pipelines` entry, and the TVLT code files are copied next to it. Models
        save their config through this method, so saving any TVLT model does the same.
        """
        # transformers writes only the auto_map entry of the class being saved
        set_model_remote_code_entries(self)
        return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)

    @property
    def head_problem_type(self) -> str:
        """What the classifier head predicts: `problem_type`, else what 4.40.2's `loss_type` meant ("regression", or
        "single_label_classification", whose loss 4.40.2 computed on the labels as given)."""
        if self.problem_type is not None:
            return self.problem_type
        return "regression" if self.loss_type == "regression" else "single_label_classification"


# Hub remote code (see remote_code_tvlt.py)
TvltConfig.register_for_auto_class("AutoConfig")


# Remote-code fetch list, written by scripts/fetch_lists.py (see remote_code_tvlt.py): do not edit.
if TYPE_CHECKING:
    from .embedding_tvlt import TvltAudioVisualEmbedder  # noqa: F401
    from .feature_extraction_tvlt import TvltFeatureExtractor  # noqa: F401
    from .image_processing_tvlt import TvltImageProcessor  # noqa: F401
    from .inputs_tvlt import TvltClipPreparer  # noqa: F401
    from .media_tvlt import DecodedVideo  # noqa: F401
    from .modeling_tvlt import TvltPreTrainedModel  # noqa: F401
    from .pipeline_tvlt import TvltAudioVisualClassificationPipeline  # noqa: F401
    from .processing_tvlt import TvltProcessor  # noqa: F401
    from .processing_utils_tvlt import PREPROCESSING_MODES  # noqa: F401
    from .retrieval_tvlt import TvltAudioVisualMatcher  # noqa: F401


__all__ = ["TvltConfig"]
