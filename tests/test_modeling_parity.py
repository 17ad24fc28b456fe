"""Parity with transformers 4.40.2: its `save_pretrained` folders load with no missing/unexpected keys and give the
same outputs (relative error <= 1e-5) under every attention implementation we support on CPU.

Fixtures: `tests/fixtures/model_4402`, made by `scripts/reference_4402/make_model_fixtures.py` under 4.40.2.
"""

import json

import pytest
import torch
from conftest import FIXTURES, assert_close_rel
from fixture_inputs import make_inputs
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForPreTraining

import tvlt  # noqa: F401  (registers TVLT with the Auto classes)
from tvlt import TvltForAudioVisualClassification


FIXTURE_DIR = FIXTURES / "model_4402"
MANIFEST = json.loads((FIXTURE_DIR / "manifest.json").read_text())
CASES = sorted(MANIFEST["cases"])
ATTENTION = ["eager", "sdpa"]
MODEL_INPUTS = ("pixel_values", "audio_values", "pixel_mask", "audio_mask")


def load(loader, case, head, attn):
    model, info = loader.from_pretrained(FIXTURE_DIR / case / head, attn_implementation=attn, output_loading_info=True)
    assert info["missing_keys"] == set() or not info["missing_keys"], info
    assert not info["unexpected_keys"], info
    assert not info["mismatched_keys"], info
    return model.eval()


def reference(case, head):
    return load_file(FIXTURE_DIR / case / head / "io.safetensors")


def inputs_for(model, case, ref):
    inputs = make_inputs(model.config, MANIFEST["cases"][case]["input_seed"])
    for name, value in inputs.items():
        assert torch.isclose(value.double().sum(), ref[f"input_checksum.{name}"]), f"fixture input {name} drifted"
    return inputs


def flatten(prefix, output):
    flat = {}
    for key, value in output.items():
        if isinstance(value, torch.Tensor):
            flat[f"{prefix}.{key}"] = value
        elif isinstance(value, tuple):
            flat.update({f"{prefix}.{key}.{i}": item for i, item in enumerate(value)})
    return flat


def assert_matches(ours, ref, prefix, exact_keys=True):
    expected = {k: v for k, v in ref.items() if k.startswith(prefix + ".")}
    assert expected, f"no reference tensors under {prefix}"
    if exact_keys:
        assert set(ours) == set(expected), f"output fields differ: {sorted(set(ours) ^ set(expected))}"
    for key, value in expected.items():
        assert key in ours, f"missing output {key}"
        assert_close_rel(ours[key], value, what=key)


@pytest.mark.parametrize("attn", ATTENTION)
@pytest.mark.parametrize("case", CASES)
def test_base_model_matches_4402(case, attn):
    model = load(AutoModel, case, "TvltModel", attn)
    assert type(model).__name__ == "TvltModel"
    ref = reference(case, "TvltModel")
    inputs = inputs_for(model, case, ref)
    model_inputs = {k: inputs[k] for k in MODEL_INPUTS}
    with torch.no_grad():
        out = model(**model_inputs, output_hidden_states=True, output_attentions=case == "oblong")
        assert_matches(flatten("eval", out), ref, "eval")
        out = model(inputs["pixel_values"], inputs["audio_values"])
        assert_matches(flatten("eval_nomask", out), ref, "eval_nomask")
        as_tuple = model(**model_inputs, return_dict=False)
    assert len(as_tuple) == int(ref["eval_tuple.len"])
    assert_close_rel(as_tuple[0], ref["eval.last_hidden_state"])


@pytest.mark.parametrize("case", CASES)
def test_legacy_bin_checkpoint_loads(case):
    from_bin = load(AutoModel, case, "TvltModel_bin", "sdpa")
    ref = reference(case, "TvltModel")
    inputs = inputs_for(from_bin, case, ref)
    with torch.no_grad():
        out = from_bin(**{k: inputs[k] for k in MODEL_INPUTS})
    assert_close_rel(out.last_hidden_state, ref["eval.last_hidden_state"])


@pytest.mark.parametrize("attn", ATTENTION)
@pytest.mark.parametrize("case", CASES)
def test_pretraining_eval_matches_4402(case, attn):
    model = load(AutoModelForPreTraining, case, "TvltForPreTraining", attn)
    ref = reference(case, "TvltForPreTraining")
    inputs = inputs_for(model, case, ref)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    assert_matches(flatten("eval", out), ref, "eval")


@pytest.mark.parametrize("attn", ATTENTION)
@pytest.mark.parametrize("case", CASES)
def test_pretraining_training_loss_matches_4402_with_same_seed(case, attn):
    """Same `torch.manual_seed` -> same masking noise (drawn in 4.40.2's order and shapes) -> same loss."""
    model = load(AutoModelForPreTraining, case, "TvltForPreTraining", attn).train()
    ref = reference(case, "TvltForPreTraining")
    inputs = inputs_for(model, case, ref)
    torch.manual_seed(int(ref["seed.train"]))
    out = model(**inputs)
    ours = flatten("train", out)
    assert_matches(ours, ref, "train", exact_keys=False)
    out.loss.backward()  # the loss is a real graph, not a detached number
    assert model.tvlt.pixel_embeddings.patch_embeddings.projection.weight.grad is not None


@pytest.mark.parametrize("attn", ATTENTION)
@pytest.mark.parametrize("case", CASES)
def test_classifier_matches_4402(case, attn):
    model = load(TvltForAudioVisualClassification, case, "TvltForAudioVisualClassification", attn)
    ref = reference(case, "TvltForAudioVisualClassification")
    inputs = inputs_for(model, case, ref)
    labels = ref["cls_labels"] if model.config.num_labels > 1 else None
    with torch.no_grad():
        out = model(**{k: inputs[k] for k in MODEL_INPUTS}, labels=labels)
    assert_matches(flatten("eval", out), ref, "eval")
