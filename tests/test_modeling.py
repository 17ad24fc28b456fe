"""Behaviour of the TVLT models on tiny random configs: shapes, single-modality inputs, heads, options, attention
backends, errors, weight init and loading, save/load, gradient checkpointing, dtypes, torch.compile, device maps."""

import json
import warnings

import pytest
import torch
from conftest import FIXTURES, assert_close_rel, max_relative_error, tiny_config, tiny_inputs
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForPreTraining

from tvlt import TvltConfig, TvltForAudioVisualClassification, TvltForPreTraining, TvltModel, modeling_tvlt
from tvlt.modeling_tvlt import TvltLayer, TvltSelfAttention, eager_attention_forward, random_masking


HEADS = [TvltModel, TvltForPreTraining, TvltForAudioVisualClassification]


def padded_masks(config, batch_size=2):
    per_frame = config.num_patches_per_image
    pixel_mask = torch.ones(batch_size, config.num_frames * per_frame)
    pixel_mask[1, -2 * per_frame :] = 0
    audio_patches = config.max_audio_time_patches * config.num_freq_patches
    audio_mask = torch.ones(batch_size, audio_patches)
    audio_mask[1, audio_patches // 2 :] = 0
    return pixel_mask, audio_mask


# -- shapes ----------------------------------------------------------------------------------------------------------


def test_base_model_output_shapes():
    config = tiny_config()
    model = TvltModel(config).eval()
    inputs = tiny_inputs(config, num_frames=3, time=48)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True, output_attentions=True)
    video, audio = 3 * config.num_patches_per_image, (48 // 8) * config.num_freq_patches
    length = 1 + video + audio
    assert out.last_hidden_state.shape == (2, length, 32)
    assert out.last_pixel_hidden_state.shape == (2, video, 32)
    assert out.last_audio_hidden_state.shape == (2, audio, 32)
    assert torch.equal(out.last_pixel_hidden_state, out.last_hidden_state[:, 1 : 1 + video])
    assert len(out.hidden_states) == config.num_hidden_layers + 1
    assert all(h.shape == (2, length, 32) for h in out.hidden_states)
    assert len(out.attentions) == config.num_hidden_layers
    assert all(a.shape == (2, config.num_attention_heads, length, length) for a in out.attentions)
    assert out.pixel_label_masks is None and out.audio_ids_restore is None


def test_masked_pass_shapes_and_masks():
    config = tiny_config()
    model = TvltModel(config).eval()
    pixel_mask, audio_mask = padded_masks(config)
    with torch.no_grad():
        out = model(
            **tiny_inputs(config), pixel_mask=pixel_mask, audio_mask=audio_mask, mask_pixel=True, mask_audio=True
        )
    num_video, num_audio = pixel_mask.shape[1], audio_mask.shape[1]
    kept_video, kept_audio = int(num_video * 0.25), int(num_audio * 0.85)
    assert out.last_hidden_state.shape == (2, 1 + kept_video + kept_audio, 32)
    assert out.pixel_label_masks.shape == (2, num_video) and out.audio_label_masks.shape == (2, num_audio)
    assert out.pixel_ids_restore.shape == (2, num_video)
    # padding is never a reconstruction target
    assert (out.pixel_label_masks * (1 - pixel_mask)).sum() == 0
    assert (out.audio_label_masks * (1 - audio_mask)).sum() == 0
    assert out.pixel_label_masks[0].sum() == num_video - kept_video


def test_pretraining_output_shapes():
    config = tiny_config()
    model = TvltForPreTraining(config).train()
    out = model(**tiny_inputs(config), labels=torch.tensor([1.0, 0.0]), output_hidden_states=True)
    assert out.loss.shape == ()
    assert out.matching_logits.shape == (2, 1)
    assert out.pixel_logits.shape == (2, config.num_frames * config.num_patches_per_image, 8 * 8 * 3)
    assert out.audio_logits.shape == (2, config.max_audio_time_patches * config.num_freq_patches, 8 * 8)
    assert out.pixel_label_masks.shape == out.pixel_logits.shape[:2]
    assert len(out.hidden_states) == config.num_hidden_layers + 1


@pytest.mark.parametrize("num_labels", [1, 5])
def test_classifier_output_shapes(num_labels):
    config = tiny_config(num_labels=num_labels)
    model = TvltForAudioVisualClassification(config).eval()
    with torch.no_grad():
        out = model(**tiny_inputs(config, batch_size=3))
    assert out.logits.shape == (3, num_labels) and out.loss is None


# -- single modality -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("modality", ["pixel_values", "audio_values"])
def test_single_modality_forward(modality):
    config = tiny_config(num_labels=3)
    inputs = {modality: tiny_inputs(config)[modality]}
    base = TvltModel(config).eval()
    with torch.no_grad():
        out = base(**inputs)
    if modality == "pixel_values":
        assert out.last_audio_hidden_state is None
        assert out.last_hidden_state.shape[1] == 1 + config.num_frames * config.num_patches_per_image
    else:
        assert out.last_pixel_hidden_state is None
        assert out.last_hidden_state.shape[1] == 1 + config.max_audio_time_patches * config.num_freq_patches
    classifier = TvltForAudioVisualClassification(config).eval()
    assert classifier(**inputs).logits.shape == (2, 3)
    pretraining = TvltForPreTraining(config).train()
    out = pretraining(**inputs)
    assert out.matching_logits is None and torch.isfinite(out.loss)
    assert (out.pixel_logits is None) == (modality == "audio_values")
    with pytest.raises(ValueError, match="need both"):
        pretraining(**inputs, labels=torch.ones(2))


def test_no_input_is_an_error():
    with pytest.raises(ValueError, match="needs `pixel_values`, `audio_values` or both"):
        TvltModel(tiny_config())()


def test_mask_without_its_modality_is_an_error():
    config = tiny_config()
    pixel_mask, _ = padded_masks(config)
    with pytest.raises(ValueError, match="`pixel_mask` was given without `pixel_values`"):
        TvltModel(config)(audio_values=tiny_inputs(config)["audio_values"], pixel_mask=pixel_mask)


# -- heads and options -----------------------------------------------------------------------------------------------


def test_multi_label_classification_uses_bce():
    config = tiny_config(num_labels=6, problem_type="multi_label_classification")
    model = TvltForAudioVisualClassification(config).eval()
    labels = torch.tensor([[1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1]])
    with torch.no_grad():
        out = model(**tiny_inputs(config), labels=labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels.float())
    assert_close_rel(out.loss, expected, tol=1e-6)
    with pytest.raises(ValueError, match="Multi-label `labels` must have shape"):
        model(**tiny_inputs(config), labels=torch.tensor([1, 2]))


def test_single_label_classification_uses_cross_entropy():
    config = tiny_config(num_labels=4, problem_type="single_label_classification")
    model = TvltForAudioVisualClassification(config).eval()
    labels = torch.tensor([3, 1])
    with torch.no_grad():
        out = model(**tiny_inputs(config), labels=labels)
    assert_close_rel(out.loss, torch.nn.functional.cross_entropy(out.logits, labels), tol=1e-6)


def test_problem_type_takes_precedence_over_loss_type():
    config = tiny_config(num_labels=2, loss_type="regression", problem_type="single_label_classification")
    model = TvltForAudioVisualClassification(config).eval()
    labels = torch.tensor([0, 1])
    with torch.no_grad():
        out = model(**tiny_inputs(config), labels=labels)
    assert_close_rel(out.loss, torch.nn.functional.cross_entropy(out.logits, labels), tol=1e-6)


def test_original_pooler_classifier_head():
    """The released MOSEI heads: Pooler (dense + tanh on CLS) -> Linear -> LayerNorm(eps 1e-5) -> GELU -> Linear."""
    config = tiny_config(num_labels=6, use_classifier_pooler=True, classifier_layer_norm_eps=1e-5)
    model = TvltForAudioVisualClassification(config).eval()
    names = {n for n in model.state_dict() if n.startswith("classifier.")}
    assert names == {
        "classifier.0.dense.weight",
        "classifier.0.dense.bias",
        "classifier.1.weight",
        "classifier.1.bias",
        "classifier.2.weight",
        "classifier.2.bias",
        "classifier.4.weight",
        "classifier.4.bias",
    }
    assert model.classifier[2].eps == 1e-5
    inputs = tiny_inputs(config)
    with torch.no_grad():
        sequence = model.tvlt(**inputs).last_hidden_state
        pooled = torch.tanh(model.classifier[0].dense(sequence[:, 0]))
        expected = model.classifier[4](torch.nn.functional.gelu(model.classifier[2](model.classifier[1](pooled))))
        assert_close_rel(model(**inputs).logits, expected, tol=1e-6)


def test_default_classifier_head_is_4402s():
    model = TvltForAudioVisualClassification(tiny_config(num_labels=2))
    names = {n for n in model.state_dict() if n.startswith("classifier.")}
    assert names == {f"classifier.{i}.{p}" for i in (0, 1, 3) for p in ("weight", "bias")}
    assert model.classifier[1].eps == model.config.layer_norm_eps


def test_mae_pass_without_cls_token():
    """The original research code runs the masked pass without the CLS token (`mae_use_cls_token=False`)."""
    config = tiny_config(mae_use_cls_token=False)
    model = TvltModel(config).eval()
    with torch.no_grad():
        out = model(**tiny_inputs(config), mask_pixel=True, mask_audio=True)
        unmasked = model(**tiny_inputs(config))
    kept_video = int(config.num_frames * config.num_patches_per_image * 0.25)
    kept_audio = int(config.max_audio_time_patches * config.num_freq_patches * 0.85)
    assert out.last_hidden_state.shape[1] == kept_video + kept_audio
    assert torch.equal(out.last_pixel_hidden_state, out.last_hidden_state[:, :kept_video])
    assert unmasked.last_hidden_state.shape[1] == 1 + config.num_frames * config.num_patches_per_image + 64 // 8 * 4


def test_explicit_noise_gives_deterministic_masks():
    config = tiny_config(audio_mask_type="patch-level")
    model = TvltForPreTraining(config).eval()
    inputs = tiny_inputs(config)
    num_video = config.num_frames * config.num_patches_per_image
    num_audio = config.max_audio_time_patches * config.num_freq_patches
    noise = {"pixel_noise": torch.rand(2, num_video), "audio_noise": torch.rand(2, num_audio)}
    with torch.no_grad():
        first = model(**inputs, reconstruct=True, **noise)
        torch.manual_seed(12345)  # the global generator plays no part
        second = model(**inputs, reconstruct=True, **noise)
    assert torch.equal(first.pixel_label_masks, second.pixel_label_masks)
    assert torch.equal(first.audio_logits, second.audio_logits)
    hidden_first = noise["pixel_noise"].argsort(1)[:, int(num_video * 0.25) :]
    assert torch.equal(
        first.pixel_label_masks.gather(1, hidden_first), torch.ones_like(hidden_first, dtype=torch.float)
    )
    with pytest.raises(ValueError, match="`pixel_noise` must have shape"):
        model(**inputs, reconstruct=True, pixel_noise=torch.rand(2, 5))
    with pytest.raises(ValueError, match="`audio_noise` must have shape"):
        model(**inputs, reconstruct=True, audio_noise=torch.rand(2, config.max_audio_time_patches))


def test_a_noise_is_checked_after_the_inputs_and_only_when_used():
    config = tiny_config()
    inputs = tiny_inputs(config)
    model = TvltModel(config).eval()
    bad_noise = torch.rand(2, 3)
    with pytest.raises(ValueError, match="same batch size"):  # the inputs' error comes first, as in earlier releases
        model(inputs["pixel_values"][:1], inputs["audio_values"], mask_pixel=True, pixel_noise=bad_noise)
    with torch.no_grad():
        model(**inputs, pixel_noise=bad_noise, audio_noise=bad_noise)  # no masking: the noises are not used


def test_frame_level_noise_may_be_given_per_time_step():
    config = tiny_config(audio_mask_ratio=0.5)
    model = TvltModel(config).eval()
    noise = torch.rand(2, config.max_audio_time_patches)
    with torch.no_grad():
        per_step = model(**tiny_inputs(config), mask_audio=True, audio_noise=noise)
        per_patch = model(
            **tiny_inputs(config), mask_audio=True, audio_noise=noise.repeat_interleave(config.num_freq_patches, 1)
        )
    assert torch.equal(per_step.audio_label_masks, per_patch.audio_label_masks)


def test_random_masking_step():
    sequence = torch.arange(2 * 6 * 1, dtype=torch.float).view(2, 6, 1)
    noise = torch.tensor([[0.5, 0.1, 0.9, 0.3, 0.7, 0.2], [0.0, 1.0, 0.2, 0.8, 0.4, 0.6]])
    kept, kept_mask, labels, ids_restore = random_masking(sequence, noise, len_keep=2, attention_mask=torch.ones(2, 6))
    assert kept[:, :, 0].tolist() == [[1.0, 5.0], [6.0, 8.0]]
    assert labels.tolist() == [[1, 0, 1, 1, 1, 0], [0, 1, 0, 1, 1, 1]]
    assert torch.equal(torch.argsort(torch.argsort(noise, 1), 1), ids_restore)
    assert kept_mask.shape == (2, 2)


# -- attention backends ----------------------------------------------------------------------------------------------


def _with_attention(cls, config, implementation):
    torch.manual_seed(0)
    model = cls(config).eval()
    model.set_attn_implementation(implementation)
    assert model.config._attn_implementation == implementation  # transformers may refuse the switch silently
    return model


@pytest.mark.parametrize("cls", HEADS)
def test_eager_and_sdpa_agree_with_padding(cls):
    config = tiny_config(num_labels=3)
    eager, sdpa = (_with_attention(cls, config, impl) for impl in ("eager", "sdpa"))
    sdpa.load_state_dict(eager.state_dict())
    pixel_mask, audio_mask = padded_masks(config)
    inputs = {**tiny_inputs(config), "pixel_mask": pixel_mask, "audio_mask": audio_mask}
    with torch.no_grad():
        outputs = [m(**inputs) for m in (eager, sdpa)]
    for key, value in outputs[0].items():
        if isinstance(value, torch.Tensor):
            assert_close_rel(outputs[1][key], value, what=key)


def test_attention_implementation_reaches_the_decoder():
    """4.40.2 built the decoder from a deep copy of the config; here every layer reads the model's config, so
    switching the implementation after construction reaches the decoder too."""
    model = TvltForPreTraining(tiny_config())
    model.set_attn_implementation("eager")
    for module in model.modules():
        if hasattr(module, "is_causal"):
            assert module.config._attn_implementation == "eager"


def test_the_decoder_runs_the_attention_set_after_construction(monkeypatch):
    """Behaviour as well as config: after `set_attn_implementation`, the MAE decoder's layers run the chosen attention,
    both ways. A decoder built from a copy of the config (4.40.2, vit_mae) keeps the implementation it was built
    with."""
    calls = []

    def counting_eager(module, *args, **kwargs):
        calls.append(module)
        return eager_attention_forward(module, *args, **kwargs)

    monkeypatch.setattr(modeling_tvlt, "eager_attention_forward", counting_eager)
    model = TvltForPreTraining(tiny_config()).eval()
    decoder_attention = [m for m in model.decoder.modules() if isinstance(m, TvltSelfAttention)]

    def decoder_eager_calls(implementation):
        model.set_attn_implementation(implementation)
        calls.clear()
        with torch.no_grad():
            model(**tiny_inputs(model.config), reconstruct=True)
        return sum(any(module is m for m in decoder_attention) for module in calls)

    assert decoder_eager_calls("sdpa") == 0
    assert decoder_eager_calls("eager") == 2 * len(decoder_attention)  # the video and the audio decoding
    assert decoder_eager_calls("sdpa") == 0


def test_padding_is_ignored_by_every_backend():
    """A padded sample gives the same real-token outputs as the same sample cut to its real length."""
    config = tiny_config()
    for implementation in ("eager", "sdpa"):
        model = _with_attention(TvltModel, config, implementation)
        inputs = tiny_inputs(config)
        pixel_mask, audio_mask = padded_masks(config)
        with torch.no_grad():
            padded = model(**inputs, pixel_mask=pixel_mask, audio_mask=audio_mask)
            cut = model(inputs["pixel_values"][1:, :2], inputs["audio_values"][1:, :, :32])
        assert_close_rel(padded.last_hidden_state[1, 0], cut.last_hidden_state[0, 0], tol=1e-5, what=implementation)


def test_output_attentions_under_sdpa_uses_eager_for_that_call():
    config = tiny_config()
    model = _with_attention(TvltModel, config, "sdpa")
    with torch.no_grad():
        out = model(**tiny_inputs(config), output_attentions=True)
    assert all(a is not None for a in out.attentions)
    assert torch.allclose(out.attentions[0].sum(-1), torch.ones(()), atol=1e-5)


def _flex_available():
    try:
        from torch.nn.attention.flex_attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    from transformers.utils import is_torch_flex_attn_available

    return is_torch_flex_attn_available()


@pytest.mark.slow
@pytest.mark.skipif(not _flex_available(), reason="flex attention not available in this torch/transformers")
def test_flex_attention_matches_eager():
    config = tiny_config()
    eager = _with_attention(TvltModel, config, "eager")
    flex = _with_attention(TvltModel, config, "flex_attention")
    flex.load_state_dict(eager.state_dict())
    pixel_mask, audio_mask = padded_masks(config)
    inputs = {**tiny_inputs(config), "pixel_mask": pixel_mask, "audio_mask": audio_mask}
    with torch.no_grad():
        assert_close_rel(flex(**inputs).last_hidden_state, eager(**inputs).last_hidden_state, tol=1e-4)


# -- input errors ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, match",
    [
        (
            lambda i, c: {"pixel_values": i["pixel_values"][:, :, :2]},
            r"`pixel_values` must have shape \(batch_size, num_frames <= 4, 3, 32, 32\)",
        ),
        (
            lambda i, c: {"pixel_values": torch.randn(2, 5, 3, 32, 32)},
            r"`pixel_values` has 5 frames but the model takes at most `num_frames`=4",
        ),
        (lambda i, c: {"pixel_values": torch.randn(2, 2, 3, 40, 40)}, r"`pixel_values` must have shape"),
        (lambda i, c: {"pixel_values": torch.randn(2, 3, 32, 32)}, r"`pixel_values` must have shape"),
        (
            lambda i, c: {"audio_values": torch.randn(2, 1, 72, 32)},
            r"`audio_values` has 72 time steps but the model takes 8 to `spectrogram_length`=64",
        ),
        (lambda i, c: {"audio_values": torch.randn(2, 1, 60, 32)}, r"not a multiple of the audio patch height 8"),
        (
            lambda i, c: {"audio_values": torch.randn(2, 1, 64, 40)},
            r"`audio_values` has 40 frequency bins but `frequency_length` is 32",
        ),
        (
            lambda i, c: {"audio_values": torch.randn(2, 2, 64, 32)},
            r"`audio_values` must have shape \(batch_size, 1, time <= 64",
        ),
        (
            lambda i, c: {"pixel_mask": torch.ones(2, 10)},
            r"`pixel_mask` must have shape \(batch_size, num_frames \* patches_per_frame\) = \(2, 64\)",
        ),
        (
            lambda i, c: {"audio_mask": torch.ones(2, 31)},
            r"`audio_mask` must have shape \(batch_size, time_patches \* frequency_patches\) = \(2, 32\)",
        ),
        (lambda i, c: {"audio_values": i["audio_values"][:1]}, r"same batch size"),
    ],
)
def test_wrong_input_shapes_raise_clear_errors(change, match):
    config = tiny_config()
    inputs = tiny_inputs(config)
    inputs.update(change(inputs, config))
    with pytest.raises(ValueError, match=match):
        TvltModel(config)(**inputs)


@pytest.mark.parametrize(
    "change, match",
    [
        # the encoder called them `pixel_values` and `audio_values` (it is handed the mixed video)
        (
            lambda i: {"pixel_values_mixed": i["pixel_values"][:1]},
            r"^`pixel_values_mixed` \(batch 1\) and `audio_values` \(batch 2\) must have the same batch size",
        ),
        (
            lambda i: {"pixel_values_mixed": torch.randn(2, 2, 3, 40, 40)},
            r"^`pixel_values_mixed` must have shape \(batch_size, num_frames <= 4, 3, 32, 32\)",
        ),
        (
            lambda i: {"pixel_values_mixed": i["pixel_values"], "pixel_mask_mixed": torch.ones(2, 10)},
            r"^`pixel_mask_mixed` must have shape .* for `pixel_values_mixed` of shape \(2, 4, 3, 32, 32\), "
            r"got \(2, 10\)",
        ),
        (
            lambda i: {"pixel_mask_mixed": torch.ones(2, 64)},
            r"^`pixel_mask_mixed` was given without `pixel_values_mixed`",
        ),
        # torch's BCE said only "Target size (torch.Size([3])) must be the same as input size (torch.Size([2]))"
        (
            lambda i: {"labels": torch.tensor([1.0, 0.0, 1.0])},
            r"^Matching `labels` must hold one 0/1 target per pair, shape \(2,\) or \(2, 1\) for the batch of 2 in "
            r"`pixel_values` and `audio_values`; got shape \(3,\)",
        ),
        (
            lambda i: {"labels": torch.ones(1, 1), "pixel_values_mixed": i["pixel_values"]},
            r"^Matching `labels` .* in `pixel_values_mixed` and `audio_values`; got shape \(1, 1\)",
        ),
    ],
)
def test_matching_input_errors_name_the_argument(change, match):
    config = tiny_config()
    inputs = tiny_inputs(config)
    inputs.update(change(inputs))
    with pytest.raises(ValueError, match=match):
        TvltForPreTraining(config).eval()(**inputs)


def test_matching_labels_of_4402s_shapes_are_accepted():
    config = tiny_config()
    model = TvltForPreTraining(config).eval()
    inputs = tiny_inputs(config)
    losses = [model(**inputs, labels=labels).loss for labels in (torch.ones(2), torch.ones(2, 1), torch.ones(1, 2))]
    torch.testing.assert_close(losses[0], losses[1])
    torch.testing.assert_close(losses[0], losses[2])


# -- weight init and loading -----------------------------------------------------------------------------------------


def _learned_tables(model):
    return {n: p for n, p in model.named_parameters() if p.dim() == 3 and p.shape[0] == 1}


def test_fresh_model_defines_every_parameter():
    torch.manual_seed(0)
    model = TvltForPreTraining(tiny_config(initializer_range=0.02))
    for name, param in model.named_parameters():
        assert torch.isfinite(param).all(), name
    tables = _learned_tables(model)
    assert set(tables) >= {
        "tvlt.cls_embedding",
        "pixel_mask_token",
        "decoder_temporal_embed",
        "tvlt.pixel_embeddings.pos_embed_v",
    }
    for name, param in tables.items():
        if "pos_embed" in name:
            assert torch.count_nonzero(param) == 0, name  # position tables start at zero (original recipe)
        else:
            assert 0.005 < param.std() < 0.05, name
    assert torch.equal(model.tvlt.layernorm.weight, torch.ones(32))


INIT_FIXTURE = FIXTURES / "fresh_init_seed0.json"
INIT_CASES = {
    "TvltForPreTraining": (TvltForPreTraining, {}),
    "TvltForAudioVisualClassification": (
        TvltForAudioVisualClassification,
        {"use_classifier_pooler": True, "num_labels": 3},
    ),
}


def _init_digest(cls, overrides):
    torch.manual_seed(0)
    state = cls(tiny_config(**overrides)).state_dict()
    return {name: [t.double().sum().item(), t.double().square().sum().item()] for name, t in state.items()}


@pytest.mark.parametrize("case", sorted(INIT_CASES))
def test_fresh_initialisation_values_are_pinned(case):
    """Same seed, same fresh weights, on every supported transformers: the values were recorded from the modeling file
    before the issue-11 refactor moved plain layers to `PreTrainedModel._init_weights` (run this module as a script
    to rewrite them), so a change of an init rule, or of the order of the draws, shows here."""
    expected = json.loads(INIT_FIXTURE.read_text())[case]
    got = _init_digest(*INIT_CASES[case])
    assert got.keys() == expected.keys()
    for name, sums in expected.items():
        assert got[name] == pytest.approx(sums, rel=1e-9, abs=1e-12), name


def test_zero_initializer_range_gives_zero_weights():
    """`initializer_range=0` draws every weight and table from N(0, 0), as 4.40.2 did; transformers' base
    `_init_weights` would read 0 as its default 0.02."""
    model = TvltForPreTraining(tiny_config(initializer_range=0.0))
    layer_norm_weights = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    for name, param in model.named_parameters():
        expected = torch.ones_like(param) if name in layer_norm_weights else torch.zeros_like(param)
        assert torch.equal(param, expected), name


def _save_base(tmp_path, seed=0):
    torch.manual_seed(seed)
    base = TvltModel(tiny_config())
    with torch.no_grad():
        for param in base.parameters():
            param.add_(1.0)  # values no init could produce
    base.save_pretrained(tmp_path)
    return load_file(tmp_path / "model.safetensors")


@pytest.mark.parametrize("cls", [TvltForPreTraining, TvltForAudioVisualClassification])
def test_loading_base_checkpoint_into_head_never_rerandomises_loaded_tensors(cls, tmp_path):
    saved = _save_base(tmp_path)
    models = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model, info = cls.from_pretrained(tmp_path, output_loading_info=True)
        assert not info["unexpected_keys"]
        models.append((model, info))
    model, info = models[0]
    state = model.state_dict()
    for key, tensor in saved.items():
        assert torch.equal(state[f"tvlt.{key}"], tensor), f"loaded tensor {key} changed"
    # every missing tensor got a defined value: tables per the init rules, layers finite with unit norms
    assert info["missing_keys"], "expected the head's parameters to be missing"
    for key in info["missing_keys"]:
        value = state[key]
        assert torch.isfinite(value).all(), key
        if "pos_embed" in key or key.endswith(".bias"):
            assert torch.count_nonzero(value) == 0, key
        elif "layernorm" in key or (key.endswith(".weight") and value.dim() == 1):
            assert torch.equal(value, torch.ones_like(value)), key
        else:
            assert 0.005 < value.float().std() < 0.05, key
    # the missing tensors are random draws (different seeds differ), the loaded ones are the checkpoint's
    other = models[1][0].state_dict()
    random_missing = [k for k in info["missing_keys"] if other[k].dim() > 1 or "token" in k or "type" in k]
    assert any(not torch.equal(state[k], other[k]) for k in random_missing)


def test_missing_tables_get_values_under_meta_device_loading(tmp_path):
    """5.x builds models on the meta device; `torch.zeros` in `__init__` leaves nothing behind, so `_init_weights`
    must define every table itself. Load twice and check the missing decoder tables are identical zeros / normal
    draws rather than leftover memory."""
    _save_base(tmp_path)
    torch.manual_seed(0)
    model = AutoModelForPreTraining.from_pretrained(tmp_path)
    assert torch.count_nonzero(model.decoder_pixel_pos_embed) == 0
    assert torch.count_nonzero(model.decoder_audio_pos_embed) == 0
    assert 0.005 < model.pixel_mask_token.std() < 0.05


@pytest.mark.parametrize("cls", HEADS)
def test_save_and_load_round_trip(cls, tmp_path):
    config = tiny_config(num_labels=3)
    torch.manual_seed(0)
    model = cls(config).eval()
    model.save_pretrained(tmp_path)
    loaded, info = cls.from_pretrained(tmp_path, output_loading_info=True)
    loaded.eval()
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    inputs = tiny_inputs(config)
    with torch.no_grad():
        first, second = model(**inputs), loaded(**inputs)
    for key, value in first.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(second[key], value), key
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "tvlt"


def test_full_size_architecture_matches_4402():
    """TVLT-base (the defaults): every parameter name and shape equals 4.40.2's (built on meta, no weights)."""
    reference = json.loads((FIXTURES / "model_4402" / "manifest.json").read_text())["base_parameter_shapes"]
    for cls in HEADS:
        with torch.device("meta"):
            model = cls(TvltConfig())
        ours = {name: list(t.shape) for name, t in model.state_dict().items()}
        assert ours == reference[cls.__name__], cls.__name__


# -- training machinery ----------------------------------------------------------------------------------------------


def test_encoder_gradient_checkpointing_matches_plain_backward():
    config = tiny_config(num_labels=2)
    torch.manual_seed(0)
    model = TvltForAudioVisualClassification(config).train()
    inputs = tiny_inputs(config)
    labels = torch.tensor([0, 1])
    model(**inputs, labels=labels).loss.backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # 5.24 renames it; 5.0 has only this name
        model.gradient_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.modules() if isinstance(layer, TvltLayer))
    model(**inputs, labels=labels).loss.backward()
    for name, param in model.named_parameters():
        assert_close_rel(param.grad, plain[name], tol=1e-5, what=name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_weights(dtype, tmp_path):
    config = tiny_config(num_labels=3)
    torch.manual_seed(0)
    TvltForAudioVisualClassification(config).save_pretrained(tmp_path)
    full = TvltForAudioVisualClassification.from_pretrained(tmp_path).eval()
    half = TvltForAudioVisualClassification.from_pretrained(tmp_path, dtype=dtype).eval()
    assert half.tvlt.cls_embedding.dtype == dtype
    pixel_mask, audio_mask = padded_masks(config)
    inputs = {**tiny_inputs(config), "pixel_mask": pixel_mask, "audio_mask": audio_mask}  # float32 inputs
    with torch.no_grad():
        expected = full(**inputs).logits
        got = half(**inputs).logits
    assert got.dtype == dtype
    assert max_relative_error(got.float(), expected) < 5e-2


@pytest.mark.slow
def test_torch_compile_matches_eager_mode():
    config = tiny_config(num_labels=3)
    torch.manual_seed(0)
    model = TvltForAudioVisualClassification(config).eval()
    pixel_mask, audio_mask = padded_masks(config)
    inputs = {**tiny_inputs(config), "pixel_mask": pixel_mask, "audio_mask": audio_mask}
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        assert_close_rel(compiled(**inputs).logits, model(**inputs).logits, tol=1e-5)


def test_device_map_auto_and_no_split_modules(tmp_path):
    pytest.importorskip("accelerate")
    from accelerate import infer_auto_device_map

    config = tiny_config()
    torch.manual_seed(0)
    TvltModel(config).save_pretrained(tmp_path)
    model = AutoModel.from_pretrained(tmp_path, device_map="auto").eval()
    reference = TvltModel.from_pretrained(tmp_path).eval()
    inputs = tiny_inputs(config)
    with torch.no_grad():
        assert torch.allclose(model(**inputs).last_hidden_state, reference(**inputs).last_hidden_state)
    # a memory budget that forces a split: no embedding module or layer is cut in two
    size = sum(p.numel() * 4 for p in reference.parameters())
    device_map = infer_auto_device_map(
        reference, max_memory={"cpu": size // 2, "disk": size * 4}, no_split_module_classes=reference._no_split_modules
    )
    assert set(device_map.values()) == {"cpu", "disk"}
    for name in device_map:
        parts = name.split(".")
        assert not (len(parts) > 3 and parts[:2] == ["encoder", "layer"]), f"{name}: a TvltLayer was split"
        assert not name.startswith("pixel_embeddings.") and not name.startswith("audio_embeddings."), name


def test_non_square_frames():
    """4.40.2 accepted `image_size` as a (height, width) pair; a config.json with one must keep working."""
    config = tiny_config(image_size=[32, 16], num_labels=2)
    assert config.num_patches_per_image == (32 // 8) * (16 // 8)
    model = TvltForAudioVisualClassification(config).eval()
    inputs = {"pixel_values": torch.randn(2, 2, 3, 32, 16), "audio_values": tiny_inputs(config)["audio_values"]}
    with torch.no_grad():
        assert model(**inputs).logits.shape == (2, 2)
    with pytest.raises(ValueError, match=r"\(batch_size, num_frames <= 4, 3, 32, 16\)"):
        model(pixel_values=torch.randn(2, 2, 3, 16, 32))
    with pytest.raises(ValueError, match="image_patch_size"):
        tiny_config(image_size=[32, 20])


if __name__ == "__main__":  # rewrite the values of test_fresh_initialisation_values_are_pinned
    digests = {case: _init_digest(*args) for case, args in INIT_CASES.items()}
    INIT_FIXTURE.write_text(json.dumps(digests, indent=1) + "\n")
