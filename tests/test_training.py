"""Training as transformers users do it: a classifier started from a pre-training checkpoint (one line, not a load
report of every decoder tensor), and adapters (LoRA-style) on a frozen model under reentrant gradient checkpointing."""

import logging

import pytest
import safetensors.torch
import torch
from _av_toys import moving_square_frames, save_tiny_checkpoint, tone, write_clip
from conftest import tiny_config, tiny_inputs
from torch import nn
from transformers import pipeline

from tvlt import TvltAudioVisualClassificationPipeline, TvltForAudioVisualClassification, TvltForPreTraining, TvltModel
from tvlt.modeling_tvlt import _PRETRAINING_HEADS


@pytest.fixture(scope="module")
def pretraining(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("pretraining") / "tvlt", "pretraining")


def head_tensors(folder) -> int:
    keys = safetensors.torch.load_file(folder / "model.safetensors").keys()
    return sum(not key.startswith("tvlt.") for key in keys)


def tvlt_records(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name.startswith("tvlt.")]


def load_reports(caplog) -> list[str]:
    """transformers' load report: a table with a line per missing or unexpected tensor."""
    return [record.getMessage() for record in caplog.records if "LOAD REPORT" in record.getMessage()]


def test_the_pretraining_heads_are_what_tvlt_for_pretraining_adds_to_the_encoder():
    names = {key.split(".")[0] for key in TvltForPreTraining(tiny_config()).state_dict()}
    assert names - {"tvlt"} == set(_PRETRAINING_HEADS)


def test_a_classifier_from_a_pretraining_checkpoint_says_so_in_one_line(pretraining, caplog):
    with caplog.at_level(logging.INFO, logger="tvlt"):
        model, info = TvltForAudioVisualClassification.from_pretrained(
            pretraining, num_labels=2, output_loading_info=True
        )
    assert load_reports(caplog) == []
    [message] = tvlt_records(caplog)
    assert message == (
        f"TvltForAudioVisualClassification from {pretraining}: dropped the pre-training checkpoint's MAE decoder and "
        f"the matching head ({head_tensors(pretraining)} tensors); initialised a new classifier (6 tensors): "
        "fine-tune it before use."
    )
    assert not info["unexpected_keys"] and not info["missing_keys"]
    assert model.classifier[0].weight.std() > 0  # the new head is initialised, the encoder loaded
    reference = TvltForPreTraining.from_pretrained(pretraining)
    torch.testing.assert_close(model.tvlt.cls_embedding, reference.tvlt.cls_embedding)


def test_a_bare_encoder_from_a_pretraining_checkpoint_drops_the_heads_quietly(pretraining, caplog):
    with caplog.at_level(logging.INFO, logger="tvlt"):
        _, info = TvltModel.from_pretrained(pretraining, output_loading_info=True)
    assert load_reports(caplog) == []
    [record] = [record for record in caplog.records if record.name.startswith("tvlt.")]
    assert record.levelno == logging.INFO
    assert "dropped the pre-training checkpoint's MAE decoder" in record.getMessage()
    assert not info["unexpected_keys"]


def test_only_the_first_process_of_a_distributed_run_says_it(pretraining, caplog, monkeypatch):
    monkeypatch.setenv("RANK", "1")  # set by torchrun and accelerate launch before the process group exists
    with caplog.at_level(logging.INFO, logger="tvlt"):
        TvltForAudioVisualClassification.from_pretrained(pretraining, num_labels=2)
    assert tvlt_records(caplog) == [] and load_reports(caplog) == []


def test_other_unexpected_tensors_are_still_reported(pretraining, tmp_path, caplog):
    state = safetensors.torch.load_file(pretraining / "model.safetensors")
    state["tvlt.stray_table"] = torch.zeros(3)
    for name in ("config.json", "preprocessor_config.json", "processor_config.json"):
        if (pretraining / name).exists():
            (tmp_path / name).write_bytes((pretraining / name).read_bytes())
    safetensors.torch.save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    _, info = TvltForAudioVisualClassification.from_pretrained(tmp_path, num_labels=2, output_loading_info=True)
    assert info["unexpected_keys"] == {"stray_table"} or info["unexpected_keys"] == {"tvlt.stray_table"}
    [report] = load_reports(caplog)
    assert "stray_table" in report and "decoder" not in report


def test_the_pipeline_refuses_a_pretraining_checkpoint_without_a_load_report(pretraining, tmp_path, caplog):
    clip = write_clip(tmp_path / "clip.mp4", moving_square_frames(4), waveform=tone(300.0, 0.5))
    with pytest.raises(ValueError, match="has no trained classifier"):
        classifier = pipeline(
            "audio-visual-classification",
            model=str(pretraining),
            pipeline_class=TvltAudioVisualClassificationPipeline,
        )
        classifier(str(clip))
    assert load_reports(caplog) == []


# -- adapters ---------------------------------------------------------------------------------------------------------


class LowRankAdapter(nn.Module):
    """LoRA: a frozen linear layer plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int = 2):
        super().__init__()
        self.base = base
        self.down = nn.Linear(base.in_features, rank, bias=False)
        self.up = nn.Linear(rank, base.out_features, bias=False)
        nn.init.normal_(self.up.weight, std=0.02)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.base(hidden_states) + self.up(self.down(hidden_states))


def adapted(model: nn.Module) -> nn.Module:
    """Freeze `model` and put adapters on the query and value projections of every encoder layer."""
    model.requires_grad_(False)
    for layer in model.tvlt.encoder.layer:
        attention = layer.attention.attention
        attention.query, attention.value = LowRankAdapter(attention.query), LowRankAdapter(attention.value)
    return model


def adapter_gradients(model: nn.Module, checkpointing: bool, **forward_kwargs) -> dict[str, torch.Tensor]:
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
        model.enable_input_require_grads()
    model.train()
    model.zero_grad()
    loss = model(**tiny_inputs(model.config), **forward_kwargs).loss
    loss.backward()
    gradients = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    return gradients


@pytest.mark.parametrize(
    "model_class, forward_kwargs",
    [
        (TvltForAudioVisualClassification, {"labels": torch.tensor([0, 2])}),
        (TvltForPreTraining, {"labels": torch.tensor([1.0, 0.0])}),  # matching and MAE passes
    ],
)
def test_adapters_train_on_a_frozen_model_with_reentrant_checkpointing(model_class, forward_kwargs):
    """transformers' enable_input_require_grads hooks get_input_embeddings(), which is the (video, audio) pair of patch
    embeddings here (4.40.2's API): it hooked nothing and backward failed ("element 0 of tensors does not require
    grad"). Both patch embeddings are hooked now; the adapters get the gradients of a run without checkpointing."""
    config = tiny_config(num_labels=3)
    torch.manual_seed(0)
    plain = adapted(model_class(config))
    torch.manual_seed(0)
    checkpointed = adapted(model_class(config))
    checkpointed.load_state_dict(plain.state_dict())

    torch.manual_seed(1)  # the same MAE masks in both runs
    expected = adapter_gradients(plain, checkpointing=False, **forward_kwargs)
    torch.manual_seed(1)
    gradients = adapter_gradients(checkpointed, checkpointing=True, **forward_kwargs)
    assert gradients.keys() == expected.keys() and len(gradients) == 4 * config.num_hidden_layers
    for name, gradient in gradients.items():
        assert gradient.abs().sum() > 0, name
        torch.testing.assert_close(gradient, expected[name], rtol=1e-5, atol=1e-7)
    assert isinstance(checkpointed.get_input_embeddings(), tuple)  # 4.40.2's return value is kept

    checkpointed.disable_input_require_grads()
    assert checkpointed._require_grads_hooks == []
    with pytest.raises(RuntimeError, match="does not require grad"):
        checkpointed(**tiny_inputs(config), **forward_kwargs).loss.backward()
