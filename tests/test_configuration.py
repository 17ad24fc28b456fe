"""TvltConfig: 4.40.2 fields and defaults, legacy config files, validation errors."""

import json

import pytest
from conftest import FIXTURES
from transformers import AutoConfig

from tvlt import TvltConfig


MANIFEST = json.loads((FIXTURES / "model_4402" / "manifest.json").read_text())
MODEL_FIELDS = [
    "image_size",
    "spectrogram_length",
    "frequency_length",
    "image_patch_size",
    "audio_patch_size",
    "num_image_channels",
    "num_audio_channels",
    "num_frames",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "layer_norm_eps",
    "qkv_bias",
    "use_mean_pooling",
    "decoder_num_attention_heads",
    "decoder_hidden_size",
    "decoder_num_hidden_layers",
    "decoder_intermediate_size",
    "pixel_mask_ratio",
    "audio_mask_ratio",
    "audio_mask_type",
    "task_matching",
    "task_mae",
    "loss_type",
]


def test_defaults_are_4402s_tvlt_base():
    reference = MANIFEST["default_config"]
    ours = TvltConfig()
    for field in MODEL_FIELDS:
        assert getattr(ours, field) == reference[field], field
    # new fields default to 4.40.2's behaviour
    assert ours.use_classifier_pooler is False
    assert ours.classifier_layer_norm_eps is None
    assert ours.mae_use_cls_token is True
    assert ours.cls_mask_from_first_audio_patch is False


def test_full_4402_config_dict_loads_unchanged(tmp_path):
    """4.40.2 wrote generation and other legacy keys into config.json; they must not stop 5.x from loading it."""
    (tmp_path / "config.json").write_text(json.dumps(MANIFEST["default_config"]))
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, TvltConfig)
    for field in MODEL_FIELDS:
        assert getattr(config, field) == MANIFEST["default_config"][field], field


@pytest.mark.parametrize("case", sorted(MANIFEST["cases"]))
def test_4402_saved_configs_round_trip(case, tmp_path):
    folder = FIXTURES / "model_4402" / case / "TvltModel"
    saved = json.loads((folder / "config.json").read_text())
    config = AutoConfig.from_pretrained(folder)
    for field in MODEL_FIELDS:
        assert getattr(config, field) == saved[field], field
    config.save_pretrained(tmp_path)
    again = TvltConfig.from_pretrained(tmp_path)
    new_fields = [
        "use_classifier_pooler",
        "classifier_layer_norm_eps",
        "mae_use_cls_token",
        "cls_mask_from_first_audio_patch",
    ]
    for field in MODEL_FIELDS + new_fields:
        assert getattr(again, field) == getattr(config, field), field


def test_legacy_patch_level_spelling_is_accepted():
    # 4.40.2 validated "patch_level" but only implemented "patch-level"
    assert TvltConfig(audio_mask_type="patch_level").audio_mask_type == "patch-level"
    assert TvltConfig(audio_mask_type="patch-level").audio_mask_type == "patch-level"


def test_int_patch_size_means_square():
    assert TvltConfig(image_patch_size=16, audio_patch_size=8).audio_patch_size == [8, 8]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(audio_mask_type="random"), "audio_mask_type"),
        (dict(loss_type="ranking"), "loss_type"),
        (dict(image_size=224, image_patch_size=[16, 15]), "image_patch_size"),
        (dict(spectrogram_length=100), r"audio_patch_size\[0\]"),
        (dict(frequency_length=120, audio_patch_size=[16, 16]), r"audio_patch_size\[1\]"),
        (dict(hidden_size=100, num_attention_heads=12), "num_attention_heads"),
        (dict(decoder_hidden_size=100, decoder_num_attention_heads=16), "decoder_num_attention_heads"),
        (dict(pixel_mask_ratio=1.0), "pixel_mask_ratio"),
        (dict(audio_mask_ratio=-0.1), "audio_mask_ratio"),
        (dict(image_patch_size=[16, 16, 3]), "image_patch_size"),
        (dict(num_frames=0), "num_frames"),
        (dict(problem_type="ranking"), "problem_type"),
        (dict(cls_mask_from_first_audio_patch="yes"), "cls_mask_from_first_audio_patch"),
    ],
)
def test_invalid_values_raise_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        TvltConfig(**overrides)
