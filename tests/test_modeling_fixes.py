"""Bugs of transformers 4.40.2's TVLT that this port fixes. Each test fails on 4.40.2's behaviour (named in its
docstring) and passes here; docs/differences-from-4.40.2.md lists them."""

import pytest
import torch
from conftest import assert_close_rel, tiny_config, tiny_inputs

from tvlt import TvltForAudioVisualClassification, TvltForPreTraining, TvltModel


def padded_masks(config, batch_size=2):
    per_frame = config.num_patches_per_image
    pixel_mask = torch.ones(batch_size, config.num_frames * per_frame)
    pixel_mask[1, -per_frame:] = 0  # sample 1 has one padding frame
    audio_patches = config.max_audio_time_patches * config.num_freq_patches
    audio_mask = torch.ones(batch_size, audio_patches)
    audio_mask[1, audio_patches // 2 :] = 0
    return pixel_mask, audio_mask


@pytest.mark.parametrize("return_dict", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_pretraining_without_matching_task(training, return_dict):
    """4.40.2: `task_matching=False` crashes (`matching_logits` referenced before assignment)."""
    torch.manual_seed(0)
    model = TvltForPreTraining(tiny_config(task_matching=False)).train(training)
    assert not hasattr(model, "matching_head")
    out = model(**tiny_inputs(model.config), reconstruct=True, return_dict=return_dict)
    if return_dict:
        assert out.matching_logits is None
        assert out.loss is not None and torch.isfinite(out.loss)
        assert out.pixel_logits is not None and out.audio_logits is not None
    else:
        loss, matching_logits, pixel_logits, audio_logits = out[:4]
        assert matching_logits is None and torch.isfinite(loss)


@pytest.mark.parametrize("return_dict", [True, False])
def test_pretraining_without_mae_task(return_dict):
    """4.40.2: `task_mae=False` without labels raises, and with `return_dict=False` refers to an unbound `loss`."""
    model = TvltForPreTraining(tiny_config(task_mae=False)).eval()
    assert not hasattr(model, "decoder")
    out = model(**tiny_inputs(model.config), return_dict=return_dict)
    logits = out.matching_logits if return_dict else out[0]
    assert logits.shape == (2, 1)
    if return_dict:
        assert out.loss is None and out.pixel_logits is None


def test_pretraining_needs_a_task():
    with pytest.raises(ValueError, match="task_matching"):
        TvltForPreTraining(tiny_config(task_matching=False, task_mae=False))


@pytest.mark.parametrize("spelling", ["patch-level", "patch_level"])
def test_patch_level_audio_masking_runs(spelling):
    """4.40.2: "patch-level" is rejected by the config and "patch_level" leaves the noise unbound."""
    config = tiny_config(audio_mask_type=spelling, audio_mask_ratio=0.5)
    model = TvltModel(config).eval()
    torch.manual_seed(3)
    out = model(**tiny_inputs(config), mask_audio=True)
    masks = out.audio_label_masks.view(2, config.max_audio_time_patches, config.num_freq_patches)
    # patch-level: some time step has both hidden and visible frequency patches (frame-level never does)
    mixed = (masks.amin(-1) != masks.amax(-1)).any()
    assert mixed
    assert out.audio_label_masks.sum(1).tolist() == [masks.shape[1] * masks.shape[2] // 2] * 2


def test_frame_level_audio_masking_hides_whole_time_steps():
    config = tiny_config(audio_mask_ratio=0.5)
    model = TvltModel(config).eval()
    torch.manual_seed(3)
    out = model(**tiny_inputs(config), mask_audio=True)
    masks = out.audio_label_masks.view(2, config.max_audio_time_patches, config.num_freq_patches)
    assert torch.equal(masks.amin(-1), masks.amax(-1))


def test_decoder_gradient_checkpointing_keeps_attention():
    """4.40.2: the decoder's checkpointed call passes `False` as `head_mask`, multiplying its attention by zero."""
    config = tiny_config()
    torch.manual_seed(0)
    model = TvltForPreTraining(config).train()
    inputs = tiny_inputs(config)
    noise = {
        "pixel_noise": torch.rand(2, config.num_frames * config.num_patches_per_image),
        "audio_noise": torch.rand(2, config.max_audio_time_patches),
    }
    reference = model(**inputs, **noise)
    reference.loss.backward()
    reference_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert all(layer.gradient_checkpointing for layer in model.decoder.decoder_layers)
    checkpointed = model(**inputs, **noise)
    checkpointed.loss.backward()
    assert_close_rel(checkpointed.loss, reference.loss, tol=1e-6, what="loss")
    assert_close_rel(checkpointed.pixel_logits, reference.pixel_logits, tol=1e-6, what="pixel_logits")
    for name, grad in reference_grads.items():
        assert_close_rel(dict(model.named_parameters())[name].grad, grad, tol=1e-5, what=f"grad {name}")


def test_reconstructions_in_eval_mode():
    """4.40.2 computes reconstructions only in training mode; `reconstruct=True` allows them in eval, the default
    (`None`) keeps 4.40.2's behaviour."""
    config = tiny_config()
    model = TvltForPreTraining(config).eval()
    inputs = tiny_inputs(config)
    default = model(**inputs)
    assert default.pixel_logits is None and default.audio_logits is None
    torch.manual_seed(1)
    with torch.no_grad():
        out = model(**inputs, reconstruct=True)
    assert out.pixel_logits.shape == (2, config.num_frames * config.num_patches_per_image, 8 * 8 * 3)
    assert out.audio_logits.shape == (2, config.max_audio_time_patches * config.num_freq_patches, 8 * 8)
    assert out.pixel_label_masks.sum(1).tolist() == [int(config.num_frames * config.num_patches_per_image * 0.75)] * 2
    assert torch.isfinite(out.loss)
    # same seed, same masks and same reconstructions: reproducible for visualisation
    torch.manual_seed(1)
    with torch.no_grad():
        again = model(**inputs, reconstruct=True)
    assert torch.equal(again.pixel_logits, out.pixel_logits)


def test_matching_without_labels_scores_pairs():
    """4.40.2 raises "Matching task requires labels" (and requires `pixel_values_mixed`); here the logits come back
    with no loss, scoring the given video against the given audio."""
    config = tiny_config()
    model = TvltForPreTraining(config).eval()
    inputs = tiny_inputs(config)
    with torch.no_grad():
        out = model(**inputs)
    assert out.loss is None
    assert out.matching_logits.shape == (2, 1)
    # the mixed video, when given, is what gets scored
    with torch.no_grad():
        swapped = model(**inputs, pixel_values_mixed=inputs["pixel_values"].flip(0))
    assert_close_rel(
        swapped.matching_logits, model(inputs["pixel_values"].flip(0), inputs["audio_values"]).matching_logits
    )


def test_matching_loss_with_labels():
    config = tiny_config()
    model = TvltForPreTraining(config).eval()
    inputs = tiny_inputs(config)
    labels = torch.tensor([1.0, 0.0])
    out = model(**inputs, labels=labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.matching_logits.view(-1), labels)
    assert_close_rel(out.loss, expected, tol=1e-6)


def test_classifier_tuple_output_holds_hidden_states_and_attentions():
    """4.40.2 sliced `outputs[4:]` of the base model's tuple, returning label masks (None) instead of the hidden
    states and attentions."""
    config = tiny_config(num_labels=3)
    model = TvltForAudioVisualClassification(config).eval()
    inputs = tiny_inputs(config)
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        as_dict = model(**inputs, labels=labels, output_hidden_states=True, output_attentions=True)
        as_tuple = model(**inputs, labels=labels, output_hidden_states=True, output_attentions=True, return_dict=False)
    loss, logits, hidden_states, attentions = as_tuple
    assert torch.equal(loss, as_dict.loss) and torch.equal(logits, as_dict.logits)
    assert len(hidden_states) == config.num_hidden_layers + 1 and all(h is not None for h in hidden_states)
    assert len(attentions) == config.num_hidden_layers
    assert attentions[0].shape[1] == config.num_attention_heads


def test_regression_loss_compares_per_sample():
    """4.40.2 feeds (B, 1) logits and (B,) labels to MSELoss, which broadcasts to a (B, B) comparison."""
    config = tiny_config(num_labels=1, loss_type="regression")
    model = TvltForAudioVisualClassification(config).eval()
    inputs = tiny_inputs(config)
    labels = torch.tensor([0.5, -2.0])
    with torch.no_grad():
        out = model(**inputs, labels=labels)
    expected = ((out.logits[:, 0] - labels) ** 2).mean()
    broadcast_bug = ((out.logits - labels) ** 2).mean()
    assert_close_rel(out.loss, expected, tol=1e-6)
    assert not torch.isclose(out.loss, broadcast_bug)
    with torch.no_grad():
        assert_close_rel(model(**inputs, labels=labels[:, None]).loss, expected, tol=1e-6)
    with pytest.raises(ValueError, match="Regression `labels` must have shape"):
        model(**inputs, labels=torch.zeros(2, 3))


def test_a_mask_for_one_modality_alone_is_honoured():
    """4.40.2 ignores `pixel_mask` unless `audio_mask` is given too (and the other way round)."""
    config = tiny_config()
    model = TvltModel(config).eval()
    inputs = tiny_inputs(config)
    pixel_mask, audio_mask = padded_masks(config)
    with torch.no_grad():
        unmasked = model(**inputs).last_hidden_state
        pixel_only = model(**inputs, pixel_mask=pixel_mask).last_hidden_state
        explicit = model(**inputs, pixel_mask=pixel_mask, audio_mask=torch.ones_like(audio_mask)).last_hidden_state
        audio_only = model(**inputs, audio_mask=audio_mask).last_hidden_state
    assert_close_rel(pixel_only, explicit, tol=1e-6)
    assert not torch.allclose(pixel_only[1], unmasked[1], atol=1e-4)  # the padded sample changes
    assert_close_rel(pixel_only[0], unmasked[0], tol=1e-5)  # the full one does not
    assert not torch.allclose(audio_only[1], unmasked[1], atol=1e-4)


def test_cls_token_stays_attendable_in_masked_pass():
    """4.40.2 gives CLS the padding flag of the first kept video patch; when that patch is padding, CLS is hidden
    from every other token. Here CLS is always visible: the output equals the pass where that patch is real."""
    config = tiny_config()
    model = TvltModel(config).eval()
    inputs = tiny_inputs(config)
    pixel_mask, audio_mask = padded_masks(config)
    num_patches = pixel_mask.shape[1]
    noise = torch.rand(2, num_patches)
    noise[1, -1] = -1.0  # sample 1 keeps a padding patch first
    with torch.no_grad():
        out = model(**inputs, pixel_mask=pixel_mask, audio_mask=audio_mask, mask_pixel=True, pixel_noise=noise)
    kept_order = torch.argsort(noise[1])
    assert pixel_mask[1, kept_order[0]] == 0
    # reference: the same pass computed by hand with CLS visible
    embeddings = model.pixel_embeddings(inputs["pixel_values"])
    len_keep = int(num_patches * (1 - config.pixel_mask_ratio))
    kept = torch.gather(embeddings, 1, torch.argsort(noise, 1)[:, :len_keep, None].expand(-1, -1, config.hidden_size))
    kept_mask = torch.gather(pixel_mask, 1, torch.argsort(noise, 1)[:, :len_keep])
    audio = model.audio_embeddings(inputs["audio_values"])
    sequence = torch.cat([model.cls_embedding.expand(2, -1, -1), kept, audio], 1)
    mask = torch.cat([torch.ones(2, 1), kept_mask, audio_mask], 1)
    additive = (1 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
    with torch.no_grad():
        hidden = sequence
        for layer in model.encoder.layer:
            hidden, _ = layer(hidden, additive, "eager")
        expected = model.layernorm(hidden)
    assert_close_rel(out.last_hidden_state, expected, tol=1e-5)


def test_cls_token_stays_attendable_in_unmasked_pass():
    """4.40.2's unmasked pass gives CLS the padding flag of the first video patch. With the image processor's masks
    that patch is always real (the first frame is), so nothing changes; a mask whose first patch is padding (an
    all-black patch in the original preprocessing mode, or a hand-made mask) hid CLS in 4.40.2, and does not here.
    (scripts/reference_4402/measure_cls_flag.py measures both against 4.40.2 itself.)"""
    config = tiny_config()
    model = TvltModel(config).eval()
    inputs = tiny_inputs(config)
    pixel_mask, audio_mask = padded_masks(config)

    def encoder_with_cls_flag(pixel_mask, cls_flag):  # the pass computed by hand with a given CLS flag
        sequence = torch.cat(
            [
                model.cls_embedding.expand(2, -1, -1),
                model.pixel_embeddings(inputs["pixel_values"]),
                model.audio_embeddings(inputs["audio_values"]),
            ],
            1,
        )
        mask = torch.cat([cls_flag, pixel_mask, audio_mask], 1)
        hidden = sequence
        for layer in model.encoder.layer:
            hidden, _ = layer(hidden, (1 - mask[:, None, None, :]) * torch.finfo(torch.float32).min, "eager")
        return model.layernorm(hidden)

    with torch.no_grad():
        out = model(**inputs, pixel_mask=pixel_mask, audio_mask=audio_mask).last_hidden_state
        assert pixel_mask[:, 0].eq(1).all()  # processor batches: 4.40.2's flag is 1 too
        assert_close_rel(out, encoder_with_cls_flag(pixel_mask, pixel_mask[:, :1]), tol=1e-5)

        first_patch_padding = pixel_mask.clone()
        first_patch_padding[0, 0] = 0
        out = model(**inputs, pixel_mask=first_patch_padding, audio_mask=audio_mask).last_hidden_state
        assert_close_rel(out, encoder_with_cls_flag(first_patch_padding, torch.ones(2, 1)), tol=1e-5)
        rule_4402 = encoder_with_cls_flag(first_patch_padding, first_patch_padding[:, :1])
    assert (out[0] - rule_4402[0]).abs().max() > 1e-3
    assert_close_rel(out[1], rule_4402[1], tol=1e-5)


def test_non_square_video_patches_in_pretraining():
    """4.40.2 sizes the video MAE head as `image_patch_size[0] ** 2 * channels`, so non-square patches crash."""
    config = tiny_config(image_patch_size=[8, 4])
    model = TvltForPreTraining(config).train()
    out = model(**tiny_inputs(config))
    assert out.pixel_logits.shape[-1] == 8 * 4 * 3
    assert torch.isfinite(out.loss)
