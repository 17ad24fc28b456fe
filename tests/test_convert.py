"""`tvlt convert`: original research checkpoints and 4.40.2-format folders become self-contained remote-code repos.

The original fixtures (../shared/fixtures/original-tvlt, see its README) are tiny checkpoints of the original code with
its outputs; converted, they must reproduce those outputs within 1e-5 through our public classes.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import FIXTURES, ORIGINAL_FIXTURES, REPO_ROOT, offline_env, requires_path
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
)

from tvlt import TvltConfig, TvltForAudioVisualClassification, TvltForPreTraining, TvltModel
from tvlt.cli import main
from tvlt.conversion import (
    MOSEI_EMOTIONS,
    ConversionError,
    OriginalOptions,
    convert_checkpoint,
    load_checkpoint,
)
from tvlt.conversion.model_card import render_model_card
from tvlt.remote_code_tvlt import CODE_FILES, CONFIG_AUTO_MAP, custom_pipelines


requires_original = requires_path(ORIGINAL_FIXTURES, "original TVLT fixtures")
LEGACY = FIXTURES / "model_4402" / "square"
# the tiny original checkpoints have 2 heads in the encoder and in the decoder
TINY_OPTIONS = OriginalOptions(num_attention_heads=2, decoder_num_attention_heads=2)
TINY_CLI_OPTIONS = ["--num-attention-heads", "2", "--decoder-num-attention-heads", "2"]
ORIGINAL_FILES = {
    "mae": "tiny_orig_tvlt_mae.pt",
    "mosei_sa": "tiny_orig_tvlt_mosei_sa.pt",
    "mosei_ea": "tiny_orig_tvlt_mosei_ea.pt",
}
NUM_VIDEO_PATCHES = 196  # one 224x224 frame of 16x16 patches in the reference inputs


def original_checkpoint(name: str) -> Path:
    return ORIGINAL_FIXTURES / ORIGINAL_FILES[name]


@pytest.fixture(scope="module")
def reference():
    return torch.load(ORIGINAL_FIXTURES / "tiny_reference.pt", weights_only=True)


@pytest.fixture(scope="module")
def converted_originals(tmp_path_factory):
    if not ORIGINAL_FIXTURES.exists():
        pytest.skip(f"original TVLT fixtures not found at {ORIGINAL_FIXTURES}")
    root = tmp_path_factory.mktemp("converted-originals")
    return {
        name: convert_checkpoint(original_checkpoint(name), root / name, original_options=TINY_OPTIONS).destination
        for name in ORIGINAL_FILES
    }


def to_original_token_order(hidden: torch.Tensor) -> torch.Tensor:
    """Ours is [CLS, video, audio]; the original's [CLS, audio, video]."""
    return torch.cat([hidden[:, :1], hidden[:, 1 + NUM_VIDEO_PATCHES :], hidden[:, 1 : 1 + NUM_VIDEO_PATCHES]], dim=1)


def reference_inputs(reference):
    return {
        "pixel_values": reference["video"],
        "audio_values": reference["audio"],
        # the original derives this mask from the -1 padding of sample 1
        "audio_mask": reference["audio_mask_equiv"].float(),
    }


def assert_within(actual, expected, what, atol=1e-5):
    torch.testing.assert_close(actual.float(), expected.float(), rtol=0, atol=atol, msg=lambda m: f"{what}: {m}")


def files_of(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


# -- original checkpoints: configs ---------------------------------------------------------------------------------


@requires_original
def test_original_pretraining_checkpoint_config(converted_originals):
    config = json.loads((converted_originals["mae"] / "config.json").read_text())
    assert config["architectures"] == ["TvltForPreTraining"]
    assert config["task_matching"] is True and config["task_mae"] is True
    assert config["mae_use_cls_token"] is False  # the original MAE pass has no CLS token
    assert config["layer_norm_eps"] == 1e-6
    assert (config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]) == (32, 2, 128)
    assert (
        config["decoder_hidden_size"],
        config["decoder_num_hidden_layers"],
        config["decoder_intermediate_size"],
    ) == (16, 1, 64)
    assert (config["num_attention_heads"], config["decoder_num_attention_heads"]) == (2, 2)
    assert (config["image_size"], config["image_patch_size"], config["audio_patch_size"]) == (224, [16, 16], [16, 16])
    assert (config["frequency_length"], config["num_frames"], config["spectrogram_length"]) == (128, 8, 2048)
    assert config["auto_map"] == CONFIG_AUTO_MAP
    assert config.get("custom_pipelines", {}) == custom_pipelines()
    # position tables cut from 64 frames / 1020 audio time patches to the configured maxima
    weights = load_file(converted_originals["mae"] / "model.safetensors")
    assert weights["tvlt.pixel_embeddings.temporal_embed"].shape == (1, 8, 32)
    assert weights["tvlt.audio_embeddings.pos_embed_a"].shape == (1, 2048 // 16, 32)
    assert weights["decoder_temporal_embed"].shape == (1, 8, 16)
    assert weights["decoder_audio_pos_embed"].shape == (1, 2048 // 16, 16)


@requires_original
@pytest.mark.parametrize(
    "name, problem_type, labels",
    [("mosei_sa", "regression", ["sentiment"]), ("mosei_ea", "multi_label_classification", list(MOSEI_EMOTIONS))],
)
def test_original_mosei_checkpoint_configs(converted_originals, name, problem_type, labels):
    config = AutoConfig.from_pretrained(converted_originals[name])
    assert config.architectures == ["TvltForAudioVisualClassification"]
    assert config.problem_type == problem_type
    assert [config.id2label[i] for i in range(config.num_labels)] == labels
    assert labels[:6] == list(MOSEI_EMOTIONS)[:6] or labels == ["sentiment"]
    assert config.use_classifier_pooler is True and config.classifier_layer_norm_eps == 1e-5
    assert config.mae_use_cls_token is False


# -- original checkpoints: outputs of the original code --------------------------------------------------------------


@requires_original
@pytest.mark.parametrize("name", ["mae", "mosei_sa", "mosei_ea"])
def test_converted_encoder_reproduces_original(converted_originals, reference, name):
    model = AutoModel.from_pretrained(converted_originals[name]).eval()
    assert type(model) is TvltModel
    with torch.no_grad():
        hidden = model(**reference_inputs(reference)).last_hidden_state
    assert_within(to_original_token_order(hidden), reference[f"{name}.encoder_out"], f"{name} encoder output")


@requires_original
def test_converted_pretraining_reproduces_matching_and_seeded_mae(converted_originals, reference):
    model = AutoModelForPreTraining.from_pretrained(converted_originals["mae"]).eval()
    assert type(model) is TvltForPreTraining
    # the original draws the video noise, then the frame-level audio noise, right after this seed
    torch.manual_seed(123)
    with torch.no_grad():
        out = model(**reference_inputs(reference), reconstruct=True)
    assert_within(out.matching_logits, reference["mae.matching_logits"], "matching logits")
    assert_within(out.pixel_logits, reference["mae.pixel_pred"], "video reconstruction")
    assert_within(out.audio_logits, reference["mae.audio_pred"], "audio reconstruction")
    assert torch.equal(out.pixel_label_masks, reference["mae.pixel_label_mask"].float())
    assert torch.equal(out.audio_label_masks, reference["mae.audio_label_mask"].float())


@requires_original
@pytest.mark.parametrize("auto_class", [AutoModelForVideoClassification, AutoModelForAudioClassification])
@pytest.mark.parametrize("name", ["mosei_sa", "mosei_ea"])
def test_converted_mosei_heads_reproduce_original_logits(converted_originals, reference, name, auto_class):
    model = auto_class.from_pretrained(converted_originals[name]).eval()
    assert type(model) is TvltForAudioVisualClassification
    with torch.no_grad():
        logits = model(**reference_inputs(reference)).logits
    assert_within(logits, reference[f"{name}.logits"], f"{name} logits")


# -- original checkpoints: wrappers, options -------------------------------------------------------------------------


@requires_original
def test_lightning_checkpoint_converts_like_the_plain_state_dict(converted_originals, tmp_path):
    plain = torch.load(original_checkpoint("mosei_ea"), weights_only=True)
    lightning = {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "1.5.0",
        "state_dict": {f"transformer.{key}": value for key, value in plain.items()},
        "hyper_parameters": {"config": {"num_frames": 8, "loss_names": {"moseiemo": 1}}},
    }
    torch.save(lightning, tmp_path / "last.ckpt")
    dst = convert_checkpoint(tmp_path / "last.ckpt", tmp_path / "repo", original_options=TINY_OPTIONS).destination
    ours, expected = (
        load_file(dst / "model.safetensors"),
        load_file(converted_originals["mosei_ea"] / "model.safetensors"),
    )
    assert ours.keys() == expected.keys()
    assert all(torch.equal(ours[key], expected[key]) for key in ours)


@requires_original
def test_encoder_only_checkpoint_becomes_tvlt_model(tmp_path, reference):
    plain = torch.load(original_checkpoint("mosei_sa"), weights_only=True)
    torch.save({k: v for k, v in plain.items() if not k.startswith("classifier.")}, tmp_path / "encoder.pt")
    dst = convert_checkpoint(tmp_path / "encoder.pt", tmp_path / "repo", original_options=TINY_OPTIONS).destination
    config = json.loads((dst / "config.json").read_text())
    assert config["architectures"] == ["TvltModel"]
    model = AutoModel.from_pretrained(dst).eval()
    with torch.no_grad():
        hidden = model(**reference_inputs(reference)).last_hidden_state
    assert_within(to_original_token_order(hidden), reference["mosei_sa.encoder_out"], "encoder output")


@requires_original
def test_pretraining_checkpoint_without_decoder_keeps_matching_only(tmp_path, reference):
    plain = torch.load(original_checkpoint("mae"), weights_only=True)
    kept = {k: v for k, v in plain.items() if not k.startswith(("decoder_", "mask_token_", "mae_score_"))}
    torch.save(kept, tmp_path / "vam.pt")
    checkpoint = load_checkpoint(str(tmp_path / "vam.pt"), original_options=TINY_OPTIONS)
    assert type(checkpoint.model) is TvltForPreTraining
    assert (checkpoint.model.config.task_matching, checkpoint.model.config.task_mae) == (True, False)
    with torch.no_grad():
        logits = checkpoint.model(**reference_inputs(reference)).matching_logits
    assert_within(logits, reference["mae.matching_logits"], "matching logits")


@requires_original
def test_vqa_head_converts_to_a_multi_label_classifier(tmp_path, reference):
    plain = torch.load(original_checkpoint("mosei_ea"), weights_only=True)
    renamed = {
        k.replace("classifier.", "vqa_classifier.", 1) if k.startswith("classifier.") else k: v
        for k, v in plain.items()
    }
    torch.save(renamed, tmp_path / "vqa.ckpt")
    checkpoint = load_checkpoint(str(tmp_path / "vqa.ckpt"), original_options=TINY_OPTIONS)
    config = checkpoint.model.config
    assert config.problem_type == "multi_label_classification" and config.id2label[5] == "LABEL_5"
    assert "VQA head (6 answers)" in checkpoint.description
    with torch.no_grad():
        logits = checkpoint.model(**reference_inputs(reference)).logits
    assert_within(logits, reference["mosei_ea.logits"], "VQA logits")


@requires_original
def test_retrieval_training_head_is_dropped_with_a_warning(tmp_path, caplog):
    plain = torch.load(original_checkpoint("mae"), weights_only=True)
    extra = {
        k.replace("matching_score.", "rank_output.", 1): v + 1
        for k, v in plain.items()
        if k.startswith("matching_score.")
    }
    torch.save({**plain, **extra}, tmp_path / "msrvtt.ckpt")
    with caplog.at_level("WARNING", logger="tvlt.conversion"):
        checkpoint = load_checkpoint(str(tmp_path / "msrvtt.ckpt"), original_options=TINY_OPTIONS)
    assert "rank_output" in caplog.text
    # the original code ranks with matching_score: that head is kept
    assert torch.equal(checkpoint.model.matching_head.fc.weight, plain["matching_score.fc.weight"])


@requires_original
def test_original_options_set_table_lengths(tmp_path):
    options = OriginalOptions(
        num_attention_heads=4, decoder_num_attention_heads=8, num_frames=4, spectrogram_length=1024
    )
    checkpoint = load_checkpoint(str(original_checkpoint("mae")), original_options=options)
    config, weights = checkpoint.model.config, checkpoint.model.state_dict()
    assert (config.num_attention_heads, config.decoder_num_attention_heads) == (4, 8)
    assert (config.num_frames, config.spectrogram_length) == (4, 1024)
    assert weights["tvlt.pixel_embeddings.temporal_embed"].shape[1] == 4
    assert weights["tvlt.audio_embeddings.pos_embed_a"].shape[1] == 1024 // 16
    assert weights["decoder_audio_pos_embed"].shape[1] == 1024 // 16
    original = torch.load(original_checkpoint("mae"), weights_only=True)
    assert torch.equal(weights["tvlt.audio_embeddings.pos_embed_a"], original["pos_embed_a"][:, :64])


@requires_original
@pytest.mark.parametrize(
    "options, message",
    [
        (dict(num_frames=65), "temporal_embed"),
        (dict(spectrogram_length=1021 * 16), "pos_embed_a"),
        (dict(spectrogram_length=1000), "must divide `spectrogram_length`"),
        (dict(spectrogram_length=512), "at least 1024"),
        (dict(num_attention_heads=3), "divisible by `num_attention_heads`"),
        (dict(decoder_num_attention_heads=5), "divisible by `decoder_num_attention_heads`"),
    ],
)
def test_original_options_that_do_not_fit_the_weights_are_refused(options, message):
    options = OriginalOptions(**{**dict(num_attention_heads=2, decoder_num_attention_heads=2), **options})
    with pytest.raises(ConversionError, match=re.escape(message)):
        load_checkpoint(str(original_checkpoint("mae")), original_options=options)


# -- sources that are not (supported) TVLT checkpoints ---------------------------------------------------------------


class _RunsCodeWhenUnpickled:
    marker = None

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_code_is_never_run(tmp_path):
    payload = _RunsCodeWhenUnpickled()
    payload.marker = str(tmp_path / "code-was-run")
    torch.save({"state_dict": {"x": torch.zeros(1)}, "callback": payload}, tmp_path / "evil.ckpt")
    with pytest.raises(ConversionError, match=r"weights_only=True"):
        load_checkpoint(str(tmp_path / "evil.ckpt"))
    assert not (tmp_path / "code-was-run").exists()


@requires_original
@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda sd: {"bert.weight": torch.zeros(2), "fc.bias": torch.zeros(2)},
            r"not a TVLT checkpoint.*`bert.weight`",
        ),
        (lambda sd: {**sd, "text_embeddings.word_embeddings.weight": torch.zeros(2)}, "text .*not support"),
        (lambda sd: {**sd, "extra_head.weight": torch.zeros(2)}, "Unexpected keys.*`extra_head.weight`"),
        (lambda sd: {k: v for k, v in sd.items() if k != "freq_embed"}, "encoder is incomplete: missing `freq_embed`"),
        (lambda sd: {k: v for k, v in sd.items() if k != "classifier.4.bias"}, "classifier head is incomplete"),
        (
            lambda sd: {**sd, "classifier.4.weight": torch.zeros(3, 64), "classifier.4.bias": torch.zeros(3)},
            "3 outputs",
        ),
        (lambda sd: {**sd, "blocks.5.norm1.weight": torch.zeros(32)}, r"not numbered 0..n-1"),
        (lambda sd: {**sd, "notes": "not a tensor"}, "not tensors"),
    ],
    ids=[
        "foreign",
        "text-variant",
        "unknown-key",
        "missing-encoder-key",
        "missing-head-key",
        "odd-head",
        "layers",
        "non-tensor",
    ],
)
def test_unsupported_original_checkpoints_are_refused_with_what_was_found(tmp_path, edit, message):
    state_dict = edit(torch.load(original_checkpoint("mosei_sa"), weights_only=True))
    torch.save(state_dict, tmp_path / "x.ckpt")
    with pytest.raises(ConversionError, match=message):
        load_checkpoint(str(tmp_path / "x.ckpt"), original_options=TINY_OPTIONS)


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConversionError, match="not a PyTorch checkpoint"):
        load_checkpoint(str(tmp_path / "notes.txt"))
    torch.save(load_file(LEGACY / "TvltModel" / "model.safetensors"), tmp_path / "ours.bin")
    with pytest.raises(ConversionError, match="transformers-format TVLT state dict"):
        load_checkpoint(str(tmp_path / "ours.bin"))


def test_missing_src_is_reported():
    with pytest.raises(FileNotFoundError, match="not an existing file or folder"):
        load_checkpoint("does-not-exist.ckpt")


# -- 4.40.2-format folders --------------------------------------------------------------------------------------------


def legacy_folder(tmp_path, architecture="TvltForAudioVisualClassification", edit_config=None, preprocessor=None):
    """A copy of a 4.40.2 fixture folder, optionally with its config edited and a flat preprocessor_config.json."""
    folder = tmp_path / f"src-{architecture}"
    folder.mkdir()
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (LEGACY / architecture / name).exists():
            (folder / name).write_bytes((LEGACY / architecture / name).read_bytes())
    config = json.loads((LEGACY / architecture / "config.json").read_text())
    if edit_config:
        edit_config(config)
    (folder / "config.json").write_text(json.dumps(config))
    if preprocessor is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return folder


def flat_4402_preprocessor_config(image_size=32, num_frames=3, patch=8, frequency=32, spectrogram_length=64):
    """Both processors' keys in one file, as the 4.40.2-era Hub repos (e.g. ZinengTang/tvlt-base) have them."""
    return {
        "crop_size": {"height": image_size, "width": image_size},
        "do_center_crop": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "feature_extractor_type": "TvltFeatureExtractor",
        "feature_size": frequency,
        "freq_len": frequency // patch,
        "hop_length_to_sampling_rate": 86,
        "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "TvltImageProcessor",
        "image_std": [0.5, 0.5, 0.5],
        "n_fft": 2048,
        "num_channels": 1,
        "num_frames": num_frames,
        "padding_side": "right",
        "padding_value": 0.0,
        "patch_size": [patch, patch],
        "processor_class": "TvltProcessor",
        "resample": 2,
        "rescale_factor": 0.00392156862745098,
        "return_attention_mask": True,
        "sampling_rate": 44100,
        "size": {"shortest_edge": image_size},
        "spectrogram_length": spectrogram_length,
    }


@pytest.mark.parametrize("case", ["square", "oblong"])
@pytest.mark.parametrize(
    "architecture", ["TvltModel", "TvltForPreTraining", "TvltForAudioVisualClassification", "TvltModel_bin"]
)
def test_legacy_folder_converts_to_the_same_weights(tmp_path, architecture, case):
    src = FIXTURES / "model_4402" / case / architecture
    dst = convert_checkpoint(src, tmp_path / "repo").destination
    source_weights = (
        load_file(src / "model.safetensors")
        if (src / "model.safetensors").exists()
        else torch.load(src / "pytorch_model.bin", weights_only=True)
    )
    converted = load_file(dst / "model.safetensors")
    assert converted.keys() == source_weights.keys()
    assert all(torch.equal(converted[key], source_weights[key]) for key in converted)
    config, source_config = (
        json.loads((dst / "config.json").read_text()),
        json.loads((src / "config.json").read_text()),
    )
    assert config["auto_map"] == CONFIG_AUTO_MAP
    assert config["architectures"] == source_config["architectures"]
    for key in ("hidden_size", "num_attention_heads", "num_frames", "image_patch_size", "id2label", "loss_type"):
        assert config[key] == source_config[key], key


def test_legacy_folder_converts_with_its_flat_preprocessor_config(tmp_path):
    src = legacy_folder(tmp_path, preprocessor=flat_4402_preprocessor_config())
    dst = convert_checkpoint(src, tmp_path / "repo").destination
    from tvlt import TvltProcessor

    processor = TvltProcessor.from_pretrained(dst)
    assert processor.image_processor.crop_size == {"height": 32, "width": 32}
    assert processor.image_processor.num_frames == 3
    assert list(processor.feature_extractor.patch_size) == [8, 8]
    assert processor.feature_extractor.spectrogram_length == 64
    assert (
        processor.image_processor.preprocessing_mode
        == processor.feature_extractor.preprocessing_mode
        == "transformers"
    )


def test_legacy_folder_without_preprocessor_config_gets_one_sized_to_the_model(tmp_path):
    dst = convert_checkpoint(LEGACY / "TvltForPreTraining", tmp_path / "repo").destination
    from tvlt import TvltProcessor

    processor = TvltProcessor.from_pretrained(dst)
    config = AutoConfig.from_pretrained(dst)
    assert processor.image_processor.crop_size == {"height": config.image_size, "width": config.image_size}
    assert list(processor.image_processor.patch_size) == config.image_patch_size
    assert processor.image_processor.num_frames == config.num_frames
    assert list(processor.feature_extractor.patch_size) == config.audio_patch_size
    assert processor.feature_extractor.feature_size == config.frequency_length


def test_legacy_config_without_architectures_is_read_from_the_weights(tmp_path):
    src = legacy_folder(tmp_path, "TvltForPreTraining", edit_config=lambda c: c.pop("architectures"))
    checkpoint = load_checkpoint(str(src))
    assert type(checkpoint.model) is TvltForPreTraining


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: legacy_folder(d, edit_config=lambda c: c.update(model_type="vit")), "model_type 'vit', not 'tvlt'"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "folder without config.json"),
        (lambda d: _without(legacy_folder(d), "model.safetensors"), "no weights"),
        (lambda d: legacy_folder(d, edit_config=lambda c: c.update(hidden_size=48)), r"\(`hidden_size`=48\) implies"),
        (lambda d: legacy_folder(d, edit_config=lambda c: c.update(num_attention_heads=5)), "not a valid TVLT config"),
    ],
    ids=["other-model", "no-config", "no-weights", "wrong-sizes", "bad-config"],
)
def test_broken_legacy_folders_are_refused_with_what_was_found(tmp_path, make, message):
    with pytest.raises(ConversionError, match=message):
        load_checkpoint(str(make(tmp_path)))


def _without(folder: Path, name: str) -> Path:
    (folder / name).unlink()
    return folder


def test_legacy_tensors_without_a_place_are_dropped_with_a_warning(tmp_path, caplog):
    src = legacy_folder(tmp_path)
    weights = load_file(src / "model.safetensors")
    save_file({**weights, "tvlt.pooler.dense.weight": torch.zeros(2, 2)}, src / "model.safetensors")
    with caplog.at_level("WARNING", logger="tvlt.conversion"):
        checkpoint = load_checkpoint(str(src))
    assert "`tvlt.pooler.dense.weight`" in caplog.text
    assert set(checkpoint.model.state_dict()) == set(weights)


def test_original_options_are_refused_for_a_legacy_source(tmp_path):
    with pytest.raises(ConversionError, match="original checkpoints only"):
        load_checkpoint(str(LEGACY / "TvltModel"), original_options=OriginalOptions(num_frames=4))


# -- DST: complete, atomic, never overwritten by accident -------------------------------------------------------------


def test_dst_is_a_complete_repo(tmp_path):
    dst = convert_checkpoint(LEGACY / "TvltForAudioVisualClassification", tmp_path / "repo").destination
    files = files_of(dst)
    assert {"model.safetensors", "config.json", "README.md", *CODE_FILES} <= files
    assert {"processor_config.json", "preprocessor_config.json"} & files
    for name in CODE_FILES:
        assert (dst / name).read_bytes() == (REPO_ROOT / name).read_bytes(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging folders left behind"


def test_non_empty_dst_is_refused_before_reading_src(tmp_path):
    dst = tmp_path / "repo"
    dst.mkdir()
    (dst / "keep.txt").write_text("mine")
    with pytest.raises(ConversionError, match=r"holds files tvlt convert does not write \(keep.txt\)"):
        convert_checkpoint(tmp_path / "no-such-src", dst)
    assert files_of(dst) == {"keep.txt"}


def test_force_replaces_a_previous_output_and_empty_dst_is_used(tmp_path):
    dst = tmp_path / "repo"
    dst.mkdir()
    convert_checkpoint(LEGACY / "TvltModel", dst)
    convert_checkpoint(LEGACY / "TvltForPreTraining", dst, force=True)
    assert json.loads((dst / "config.json").read_text())["architectures"] == ["TvltForPreTraining"]
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]


def test_dst_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "repo").write_text("x")
    with pytest.raises(ConversionError, match="not a folder"):
        convert_checkpoint(LEGACY / "TvltModel", tmp_path / "repo", force=True)


def test_failure_while_writing_leaves_no_dst_and_no_debris(tmp_path, monkeypatch):
    import tvlt.conversion.repo as repo

    def broken_card(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(repo, "render_model_card", broken_card)
    with pytest.raises(RuntimeError, match="disk full"):
        convert_checkpoint(LEGACY / "TvltModel", tmp_path / "repo")
    assert list(tmp_path.iterdir()) == []


def test_failed_forced_replacement_keeps_the_old_dst(tmp_path, monkeypatch):
    import tvlt.conversion.repo as repo

    dst = convert_checkpoint(LEGACY / "TvltModel", tmp_path / "repo").destination
    before = {name: (dst / name).read_bytes() for name in files_of(dst)}
    monkeypatch.setattr(repo, "render_model_card", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        convert_checkpoint(LEGACY / "TvltForPreTraining", dst, force=True)
    assert {name: (dst / name).read_bytes() for name in files_of(dst)} == before
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]


# -- model card -------------------------------------------------------------------------------------------------------


def front_matter(readme: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", readme, re.DOTALL)
    assert match, "no YAML front matter"
    return yaml.safe_load(match.group(1))


@requires_original
def test_model_cards(converted_originals, tmp_path):
    for name, pipeline_tag in (("mae", "feature-extraction"), ("mosei_ea", "video-classification")):
        readme = (converted_originals[name] / "README.md").read_text()
        meta = front_matter(readme)
        assert meta["library_name"] == "transformers"
        assert meta["license"] == "mit"
        assert "custom_code" in meta["tags"] and "tvlt" in meta["tags"]
        assert meta["pipeline_tag"] == pipeline_tag
        assert "trust_remote_code=True" in readme and "revision=revision" in readme
        assert ORIGINAL_FILES[name] in readme
    ea_card = (converted_originals["mosei_ea"] / "README.md").read_text()
    assert "# TVLT: Original TVLT checkpoint with the CMU-MOSEI emotion head" in ea_card
    labels = "| 0 | `happy` |\n| 1 | `sad` |\n| 2 | `angry` |\n| 3 | `fear` |\n| 4 | `disgust` |\n| 5 | `surprise` |"
    assert f"## Labels\n\nIndependent labels (multi-label):\n\n| index | label |\n| --- | --- |\n{labels}\n" in ea_card
    assert "sigmoid" in ea_card
    assert 'preprocessing_mode="original"' in ea_card


@requires_original
def test_the_card_of_an_original_checkpoint_states_the_original_preprocessing(converted_originals):
    card = " ".join((converted_originals["mosei_ea"] / "README.md").read_text().split())
    assert "torchaudio's windowed-sinc resampler" in card
    assert "always gets 1 to 16 frames of -1" in card
    assert "`cls_mask_from_first_audio_patch`" in card
    legacy = " ".join(render_model_card(load_checkpoint(str(LEGACY / "TvltModel"))).split())
    assert "torchaudio" not in legacy and "cls_mask_from_first_audio_patch" not in legacy
    # that folder has no processor settings: the card says what the converter gave it instead
    assert "had no processor settings: the processor is TVLT-base's preprocessing" in legacy


def test_model_card_keeps_the_source_license_and_names_the_hub_repo(tmp_path):
    src = legacy_folder(tmp_path)
    (src / "README.md").write_text("---\nlicense: apache-2.0\ntags:\n- x\n---\n# card\n")
    from tvlt.conversion.repo import write_repo

    checkpoint = load_checkpoint(str(src))
    readme = (write_repo(checkpoint, tmp_path / "repo", repo_id="someone/tvlt-tiny") / "README.md").read_text()
    assert front_matter(readme)["license"] == "apache-2.0"
    assert 'repo = "someone/tvlt-tiny"' in readme


@pytest.fixture(scope="module")
def legacy_checkpoint():
    return load_checkpoint(str(LEGACY / "TvltForAudioVisualClassification"))


@pytest.mark.parametrize(
    "license", ["other: see LICENSE", "yes", "null", "3.0", "cc-by-nc-4.0 # non-commercial", 'it\'s "quoted"', "ünï"]
)
def test_model_card_carries_any_license_string_through_yaml(tmp_path, legacy_checkpoint, license):
    from tvlt.conversion.model_card import render_model_card
    from tvlt.conversion.sources import _card_license

    readme = tmp_path / "README.md"
    readme.write_text("---\n" + yaml.safe_dump({"license": license, "tags": ["x"]}) + "---\n# card\n")
    assert _card_license(readme) == license
    card = render_model_card(dataclasses.replace(legacy_checkpoint, license=license))
    assert front_matter(card)["license"] == license


@pytest.mark.parametrize(
    "readme, warned",
    [
        ("# a card without metadata\n", False),
        ("---\nlicense:\n---\n# card\n", False),
        ("---\nlicense: [mit, apache-2.0]\n---\n# card\n", False),
        ("---\nlicense: [unclosed\n---\n# card\n", True),
        ("---\n- a list\n---\n# card\n", True),
    ],
)
def test_a_source_card_without_a_usable_license_gives_the_default(tmp_path, capfd, caplog, readme, warned):
    from tvlt.conversion.sources import _card_license

    (tmp_path / "README.md").write_text(readme)
    with caplog.at_level("WARNING", logger="tvlt.conversion.sources"):
        assert _card_license(tmp_path / "README.md") is None
    assert ("unreadable card metadata" in caplog.text) == warned
    assert "metadata block was not found" not in capfd.readouterr().err  # huggingface_hub's noise, not ours


# -- command line -----------------------------------------------------------------------------------------------------


@requires_original
def test_cli_converts_an_original_checkpoint(tmp_path, capsys):
    dst = tmp_path / "repo"
    assert (
        main(["convert", str(original_checkpoint("mosei_sa")), str(dst), *TINY_CLI_OPTIONS, "--num-frames", "4"]) == 0
    )
    captured = capsys.readouterr()
    assert captured.out.strip() == str(dst)
    assert "tvlt convert: " in captured.err  # progress lines
    # ours only: no "Writing model shards" progress bar of save_pretrained
    assert all(line.startswith("tvlt convert: ") for line in captured.err.splitlines()), captured.err
    assert json.loads((dst / "config.json").read_text())["num_frames"] == 4


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["no-such-file.ckpt", "{dst}"], "not an existing file or folder"),
        ([str(LEGACY / "TvltModel"), "{dst}", "--private"], "--private needs --push-to-hub"),
        ([str(LEGACY / "TvltModel"), "{dst}", "--commit-message", "x"], "--commit-message needs --push-to-hub"),
        ([str(LEGACY / "TvltModel"), "{dst}", "--num-frames", "4"], "original checkpoints only"),
        ([str(LEGACY / "TvltModel"), "{dst}", "--revision", "v1"], "Hub repo SRC"),
    ],
    ids=["missing-src", "private-alone", "message-alone", "original-option", "revision-local"],
)
def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys, arguments, message):
    arguments = [a.replace("{dst}", str(tmp_path / "repo")) for a in arguments]
    assert main(["convert", *arguments]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tvlt convert: error: ") and message in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "repo").exists()


def test_cli_refuses_a_non_empty_dst_without_force(tmp_path, capsys):
    dst = tmp_path / "repo"
    dst.mkdir()
    (dst / "x").write_text("x")
    # the user's own file: not even --force replaces it
    for force in ([], ["--force"]):
        assert main(["convert", str(LEGACY / "TvltModel"), str(dst), *force]) == 2
        assert "does not write (x)" in capsys.readouterr().err
    assert files_of(dst) == {"x"}
    (dst / "x").unlink()
    convert_checkpoint(LEGACY / "TvltModel", dst)
    assert main(["convert", str(LEGACY / "TvltModel"), str(dst)]) == 2
    assert "a previous tvlt convert output); pass --force" in capsys.readouterr().err
    assert main(["convert", str(LEGACY / "TvltModel"), str(dst), "--force"]) == 0


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_cli_rejects_non_positive_sizes(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "a", "b", "--num-frames", value])
    assert exit_info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def _fake_hub_cache(cache: Path, repo_id: str, folder: Path, revision: str = "main") -> str:
    """Lay `folder` out as huggingface_hub's cache of `repo_id`, so offline downloads resolve to it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for path in folder.iterdir():
        (snapshot / path.name).write_bytes(path.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / revision).write_text(commit)
    return commit


def test_cli_converts_a_hub_repo_id(tmp_path):
    src = legacy_folder(tmp_path, preprocessor=flat_4402_preprocessor_config())
    cache = tmp_path / "hub-cache"
    _fake_hub_cache(cache, "someone/tvlt-tiny", src, revision="v1")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    dst = tmp_path / "repo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tvlt",
            "convert",
            "someone/tvlt-tiny",
            str(dst),
            "--revision",
            "v1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    weights = load_file(dst / "model.safetensors")
    expected = load_file(src / "model.safetensors")
    assert weights.keys() == expected.keys() and all(torch.equal(weights[k], expected[k]) for k in weights)
    card = ModelCard.load(dst / "README.md")
    assert card.data.base_model == "someone/tvlt-tiny"  # the Hub links the conversion to its source
    assert "[`someone/tvlt-tiny`](https://huggingface.co/someone/tvlt-tiny) at commit `0123456789abcdef" in card.text


CARD_SECTIONS = ["## Usage", "## Preprocessing", "## Model", "## Provenance", "## License", "## Citation"]


@requires_original
@pytest.mark.parametrize("name", ["mae", "mosei_ea", "mosei_sa"])
def test_the_card_is_a_hub_model_card(converted_originals, name):
    """huggingface_hub's own parser reads the card: its metadata, then the sections a Hub reader looks for."""
    import transformers

    card = ModelCard.load(converted_originals[name] / "README.md")
    classifier = name != "mae"
    assert card.data.library_name == "transformers" and card.data.license == "mit"
    assert card.data.pipeline_tag == ("video-classification" if classifier else "feature-extraction")
    assert {"tvlt", "custom_code"} <= set(card.data.tags)
    assert card.data.base_model is None  # a local file: where it came from on the Hub is not known
    sections = [line for line in card.text.splitlines() if line.startswith("## ")]
    assert sections == CARD_SECTIONS[:1] + (["## Labels"] if classifier else []) + CARD_SECTIONS[1:]
    provenance = card.text.split("## Provenance")[1].split("## ")[0]
    assert f"`{ORIGINAL_FILES[name]}`, an original research checkpoint" in provenance
    assert f"transformers {transformers.__version__}" in provenance
    assert "The weights' license, `mit`, is that of the TVLT code" in card.text
    if name == "mosei_sa":
        assert "Each output is a predicted value:" in card.text and "| 0 | `sentiment` |" in card.text


def test_the_card_lists_many_labels_up_to_a_bound(tmp_path, legacy_checkpoint):
    from tvlt.conversion.model_card import LABELS_LISTED

    config = legacy_checkpoint.model.config
    many = {index: f"class_{index}" for index in range(LABELS_LISTED + 7)}
    config = TvltConfig(**{**config.to_dict(), "id2label": many, "label2id": {v: k for k, v in many.items()}})
    model = TvltForAudioVisualClassification(config)
    text = ModelCard(render_model_card(dataclasses.replace(legacy_checkpoint, model=model))).text
    assert f"| {LABELS_LISTED - 1} | `class_{LABELS_LISTED - 1}` |" in text and f"`class_{LABELS_LISTED}`" not in text
    assert f"... and 7 more: `model.config.id2label` has all {LABELS_LISTED + 7}." in text


@requires_original
def test_the_cards_usage_code_runs_through_remote_code(converted_originals, tmp_path):
    """The card's Python blocks, as a reader copies them, with the repo and the clip swapped for local ones, in a
    process with a fresh modules cache: the snippet loads the repo's own code and gives outputs."""
    import soundfile
    from _av_toys import moving_square_frames, tone, write_clip

    write_clip(tmp_path / "clip.mp4", moving_square_frames(8), waveform=tone(440.0, 1.0))
    soundfile.write(tmp_path / "clip.wav", tone(330.0, 1.0), 44100)
    for name, result in (("mosei_ea", "outputs.logits.shape, classifier('clip.mp4')"), ("mae", "outputs.keys()")):
        card = (converted_originals[name] / "README.md").read_text()
        blocks = re.findall(r"```python\n(.*?)```", card, re.DOTALL)
        assert blocks and 'repo = "<owner>/<this-repo>"' in blocks[0]
        code = "\n".join(blocks).replace('"<owner>/<this-repo>"', repr(str(converted_originals[name])))
        env = offline_env(tmp_path, HF_MODULES_CACHE=str(tmp_path / f"modules-{name}"))
        done = subprocess.run(
            [sys.executable, "-c", f"{code}\nprint(type(model).__module__, {result})"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.startswith("transformers_modules."), done.stdout  # the repo's code, not the package's
        if name == "mosei_ea":
            assert "torch.Size([1, 6])" in done.stdout
            assert re.search(r"'label': '(happy|sad|angry|fear|disgust|surprise)'", done.stdout), done.stdout
        else:
            assert "matching_logits" in done.stdout


def test_a_hub_repo_id_that_cannot_be_found_is_reported(tmp_path, capsys):
    # offline (as the tests run) nothing is cached for this id; online the Hub has no such repo
    assert main(["convert", "someone/not-there-at-all", str(tmp_path / "repo")]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("tvlt convert: error: SRC someone/not-there-at-all: ")
    assert not (tmp_path / "repo").exists()


# -- real size --------------------------------------------------------------------------------------------------------


def _released_layout_state_dict(with_decoder: bool) -> dict:
    """Zero tensors shaped like the released TVLT.ckpt (pre-training) or TVLT-MOSEI-EA.ckpt (classifier)."""
    dim, decoder_dim = 768, 512

    def block(prefix: str, width: int) -> dict:
        return {
            f"{prefix}.norm1.weight": torch.zeros(width),
            f"{prefix}.norm1.bias": torch.zeros(width),
            f"{prefix}.attn.qkv.weight": torch.zeros(3 * width, width),
            f"{prefix}.attn.qkv.bias": torch.zeros(3 * width),
            f"{prefix}.attn.proj.weight": torch.zeros(width, width),
            f"{prefix}.attn.proj.bias": torch.zeros(width),
            f"{prefix}.norm2.weight": torch.zeros(width),
            f"{prefix}.norm2.bias": torch.zeros(width),
            f"{prefix}.mlp.fc1.weight": torch.zeros(4 * width, width),
            f"{prefix}.mlp.fc1.bias": torch.zeros(4 * width),
            f"{prefix}.mlp.fc2.weight": torch.zeros(width, 4 * width),
            f"{prefix}.mlp.fc2.bias": torch.zeros(width),
        }

    state = {
        "type_embed_v": torch.zeros(1, 1, dim),
        "temporal_embed": torch.zeros(1, 64, dim),
        "pos_embed_v": torch.zeros(1, 196, dim),
        "cls_token": torch.zeros(1, 1, dim),
        "type_embed_a": torch.zeros(1, 1, dim),
        "pos_embed_a": torch.zeros(1, 1020, dim),
        "freq_embed": torch.zeros(1, 8, dim),
        "patch_embed_v.proj.weight": torch.zeros(dim, 3, 16, 16),
        "patch_embed_v.proj.bias": torch.zeros(dim),
        "patch_embed_a.proj.weight": torch.zeros(dim, 1, 16, 16),
        "patch_embed_a.proj.bias": torch.zeros(dim),
        "norm.weight": torch.zeros(dim),
        "norm.bias": torch.zeros(dim),
    }
    for layer in range(12):
        state.update(block(f"blocks.{layer}", dim))
    if with_decoder:
        state.update(
            {
                "decoder_pos_embed_v": torch.zeros(1, 196, decoder_dim),
                "decoder_temporal_embed": torch.zeros(1, 64, decoder_dim),
                "decoder_type_embed_v": torch.zeros(1, 1, decoder_dim),
                "mask_token_v": torch.zeros(1, 1, decoder_dim),
                "decoder_type_embed_a": torch.zeros(1, 1, decoder_dim),
                "decoder_pos_embed_a": torch.zeros(1, 1020, decoder_dim),
                "decoder_freq_embed": torch.zeros(1, 8, decoder_dim),
                "mask_token_a": torch.zeros(1, 1, decoder_dim),
                "decoder_embed.weight": torch.zeros(decoder_dim, dim),
                "decoder_embed.bias": torch.zeros(decoder_dim),
                "decoder_norm.weight": torch.zeros(decoder_dim),
                "decoder_norm.bias": torch.zeros(decoder_dim),
                "matching_score.pooler.dense.weight": torch.zeros(dim, dim),
                "matching_score.pooler.dense.bias": torch.zeros(dim),
                "matching_score.fc.weight": torch.zeros(1, dim),
                "matching_score.fc.bias": torch.zeros(1),
                "mae_score_audio.decoder.weight": torch.zeros(256, decoder_dim),
                "mae_score_audio.decoder.bias": torch.zeros(256),
                "mae_score_video.decoder.weight": torch.zeros(768, decoder_dim),
                "mae_score_video.decoder.bias": torch.zeros(768),
            }
        )
        for layer in range(8):
            state.update(block(f"decoder_blocks.{layer}", decoder_dim))
    else:
        state.update(
            {
                "classifier.0.dense.weight": torch.zeros(dim, dim),
                "classifier.0.dense.bias": torch.zeros(dim),
                "classifier.1.weight": torch.zeros(2 * dim, dim),
                "classifier.1.bias": torch.zeros(2 * dim),
                "classifier.2.weight": torch.zeros(2 * dim),
                "classifier.2.bias": torch.zeros(2 * dim),
                "classifier.4.weight": torch.zeros(6, 2 * dim),
                "classifier.4.bias": torch.zeros(6),
            }
        )
    return state


@pytest.mark.slow
@pytest.mark.parametrize("with_decoder", [True, False], ids=["TVLT.ckpt", "TVLT-MOSEI-EA.ckpt"])
def test_released_checkpoint_layouts_convert_to_tvlt_base_with_the_default_options(tmp_path, with_decoder):
    torch.save(_released_layout_state_dict(with_decoder), tmp_path / "released.ckpt")
    dst = convert_checkpoint(tmp_path / "released.ckpt", tmp_path / "repo").destination
    config = json.loads((dst / "config.json").read_text())
    base = json.loads((REPO_ROOT / "config.json").read_text())  # the TVLT-base architecture
    architecture_fields = [
        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "image_size",
        "image_patch_size", "audio_patch_size", "frequency_length", "spectrogram_length", "num_frames",
        "layer_norm_eps", "qkv_bias", "hidden_act",
    ]  # fmt: skip
    if with_decoder:
        architecture_fields += [
            "decoder_hidden_size", "decoder_num_hidden_layers", "decoder_num_attention_heads",
            "decoder_intermediate_size",
        ]  # fmt: skip
    assert {k: config[k] for k in architecture_fields} == {k: base[k] for k in architecture_fields}
    processor = json.loads((dst / "processor_config.json").read_text())
    assert processor["image_processor"]["preprocessing_mode"] == processor["feature_extractor"]["preprocessing_mode"]
    assert processor["image_processor"]["preprocessing_mode"] == "original"
    assert processor["image_processor"]["crop_size"] == {"height": 224, "width": 224}
    assert processor["image_processor"]["num_frames"] == 8
