"""The original-faithful mode against the original TVLT code's own outputs (issue 8).

Fixtures (tests/fixtures/original_tvlt, see its README): `resample_torchaudio.npz` from torchaudio's resampler
(`scripts/reference_original/make_resample_fixtures.py`), `original_outputs.npz` from the original code's audio
pipeline, video pipeline and model with the tiny checkpoints of ../shared/fixtures/original-tvlt
(`scripts/reference_original/make_original_fixtures.py`). Inputs are rebuilt from `tests/_original_cases.py`.
"""

import numpy as np
import pytest
import soundfile
import torch
from _original_cases import (
    AUDIO_FILE_CASES,
    EDGE_FRAMES,
    FIXTURES_DIR,
    MOSEI_AUDIO,
    MOSEI_VIDEO,
    ORIGINAL_CHECKPOINTS,
    RESAMPLE_CASES,
    WHOLE_SPECTROGRAMS,
    make_audio_file,
    make_resample_input,
)

from tvlt import feature_extraction_tvlt
from tvlt.feature_extraction_tvlt import TvltFeatureExtractor, sinc_resample


RESAMPLED = np.load(FIXTURES_DIR / "resample_torchaudio.npz")
ORIGINAL = np.load(FIXTURES_DIR / "original_outputs.npz")
requires_mosei = pytest.mark.skipif(not MOSEI_AUDIO.is_file(), reason="../shared/samples is not available")


def needs_mosei(case: dict):
    return [requires_mosei] if case["kind"] == "mosei" else []


# -- resampling: torchaudio.functional.resample with its defaults --------------------------------------------------


def resample_case_ids():
    return [pytest.param(name, marks=needs_mosei(case)) for name, case in RESAMPLE_CASES.items()]


@pytest.mark.parametrize("name", resample_case_ids())
def test_resampling_matches_torchaudio(name):
    case = RESAMPLE_CASES[name]
    signal, rate = make_resample_input(case, soundfile)
    np.testing.assert_array_equal(signal.astype(np.float64).sum(axis=-1), RESAMPLED[f"{name}/input_sum"])
    resampled = sinc_resample(signal, rate, case["target"])
    assert resampled.dtype == signal.dtype and resampled.shape[-1] == int(RESAMPLED[f"{name}/length"])
    outputs = {name: resampled}
    if signal.ndim == 2 and signal.shape[0] > 1:
        outputs[f"{name}/mono"] = resampled.mean(axis=0)  # the original's channel mean, after resampling
    for prefix, output in outputs.items():
        for part in ("start", "middle", "end"):
            expected = RESAMPLED[f"{prefix}/slice_{part}"]
            offset = int(RESAMPLED[f"{prefix}/slice_{part}_offset"])
            np.testing.assert_allclose(output[..., offset : offset + expected.shape[-1]], expected, rtol=0, atol=1e-6)
        wide = output.astype(np.float64)
        np.testing.assert_allclose(wide.sum(axis=-1), RESAMPLED[f"{prefix}/sum"], rtol=0, atol=1e-4)
        np.testing.assert_allclose(np.square(wide).sum(axis=-1), RESAMPLED[f"{prefix}/sum_of_squares"], rtol=1e-6)
        np.testing.assert_allclose(np.abs(output).max(axis=-1), RESAMPLED[f"{prefix}/max_abs"], rtol=0, atol=1e-6)


def test_resampling_in_chunks_changes_nothing(monkeypatch):
    """Long signals are convolved a million output samples at a time: the same samples as in one call."""
    signal, rate = make_resample_input(RESAMPLE_CASES["long_48k"], soundfile)
    chunked = sinc_resample(signal, rate, 44100)
    monkeypatch.setattr(feature_extraction_tvlt, "_RESAMPLE_CHUNK_SAMPLES", 1 << 30)
    np.testing.assert_allclose(chunked, sinc_resample(signal, rate, 44100), rtol=0, atol=1e-7)


def test_resampling_needs_positive_integer_rates_with_a_usable_divisor():
    with pytest.raises(ValueError, match="orig_sampling_rate"):
        sinc_resample(np.zeros(10, np.float32), 0, 44100)
    assert sinc_resample(np.ones(10, np.float32), 44100, 44100).tolist() == [1.0] * 10
    # torchaudio would build 44100 filters of 44115 taps (7 GiB) for this pair: a clear error instead
    with pytest.raises(ValueError, match=r"44101 Hz to 44100 Hz .* 44100 filters of 44115 taps"):
        TvltFeatureExtractor(preprocessing_mode="original")(np.zeros(44101, np.float32), sampling_rate=44101)


# -- the audio pipeline ----------------------------------------------------------------------------------------------


def audio_case_ids():
    return [pytest.param(name, marks=needs_mosei(case)) for name, case in AUDIO_FILE_CASES.items()]


@pytest.mark.parametrize("name", audio_case_ids())
def test_original_mode_gives_the_original_spectrogram_and_mask(name, tmp_path):
    path = make_audio_file(AUDIO_FILE_CASES[name], tmp_path / f"{name}.wav", soundfile)
    outputs = TvltFeatureExtractor(preprocessing_mode="original")(str(path), return_tensors="np")
    values = outputs["audio_values"]
    assert values.shape == tuple(ORIGINAL[f"audio/{name}/shape"])
    if name in WHOLE_SPECTROGRAMS:
        np.testing.assert_allclose(values[0, 0], ORIGINAL[f"audio/{name}/audio_values"], rtol=0, atol=1e-5)
    else:
        np.testing.assert_allclose(values[0, 0, :EDGE_FRAMES], ORIGINAL[f"audio/{name}/first_frames"], atol=1e-5)
        np.testing.assert_allclose(values[0, 0, -EDGE_FRAMES:], ORIGINAL[f"audio/{name}/last_frames"], atol=1e-5)
        wide = values[0, 0].astype(np.float64)
        np.testing.assert_allclose(wide.sum(axis=1), ORIGINAL[f"audio/{name}/frame_sums"], rtol=0, atol=128e-5)
        np.testing.assert_allclose(wide.sum(axis=0), ORIGINAL[f"audio/{name}/bin_sums"], rtol=0, atol=1e-5 * len(wide))
    np.testing.assert_array_equal(outputs["audio_mask"], ORIGINAL[f"audio/{name}/audio_mask"])


def test_original_padding_adds_a_patch_to_whole_patches(tmp_path):
    """32 frames become 48: the original appends 16 - 32 % 16 = 16 frames of -1, a masked patch row (issue 8)."""
    path = make_audio_file(AUDIO_FILE_CASES["frames_32"], tmp_path / "a.wav", soundfile)
    outputs = TvltFeatureExtractor(preprocessing_mode="original")(str(path), return_tensors="np")
    assert outputs["audio_values"].shape == (1, 1, 48, 128)
    assert (outputs["audio_values"][0, 0, 32:] == -1).all()
    assert outputs["audio_mask"].reshape(3, 8).sum(axis=1).tolist() == [8, 8, 0]
    # 1023 frames get one frame of padding; 1024 frames or more are cut at 1024, with none
    extractor = TvltFeatureExtractor(preprocessing_mode="original")
    for frames, length in ((1023, 1024), (1024, 1024), (1100, 1024), (1008, 1024), (1007, 1008)):
        clip = 0.1 * np.random.default_rng(frames).standard_normal((frames - 1) * 512).astype(np.float32)
        assert extractor(clip, sampling_rate=44100)["audio_values"].shape[2] == length, frames


def test_original_mask_takes_the_mean_in_float32_like_the_original():
    """A patch of -1 values plus one at -1 + 1e-6 has a float32 mean of exactly -1: the original masked it."""
    extractor = TvltFeatureExtractor(preprocessing_mode="original")
    values = np.full((1, 1, 32, 128), -1.0, np.float32)
    values[0, 0, 3, 5] = np.float32(-1 + 1e-6)  # rounds away in the patch's sum
    values[0, 0, 20, 5] = np.float32(-1 + 1e-3)  # does not
    mask = extractor._audio_mask(values, [values[0, 0]])
    expected = torch.nn.functional.avg_pool2d(torch.from_numpy(values).mean(1), (16, 16)).flatten(1) != -1
    np.testing.assert_array_equal(mask, expected.float().numpy())
    assert mask[0, 0] == 0 and mask[0, 8] == 1


# -- converted original checkpoints: the CLS mask rule, the padding rule, the whole pipeline --------------------------

requires_checkpoints = pytest.mark.skipif(
    not ORIGINAL_CHECKPOINTS.exists(), reason=f"original TVLT fixtures not found at {ORIGINAL_CHECKPOINTS}"
)
NUM_VIDEO_PATCHES = 196  # one 224x224 frame
MAE_SEED = 123  # the seed of scripts/reference_original/make_original_fixtures.py


def assert_within(actual, expected, what, atol=1e-5):
    expected = torch.as_tensor(np.asarray(expected))
    torch.testing.assert_close(actual.float(), expected.float(), rtol=0, atol=atol, msg=lambda m: f"{what}: {m}")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    if not ORIGINAL_CHECKPOINTS.exists():
        pytest.skip(f"original TVLT fixtures not found at {ORIGINAL_CHECKPOINTS}")
    from tvlt.conversion import OriginalOptions, convert_checkpoint

    options = OriginalOptions(num_attention_heads=2, decoder_num_attention_heads=2)  # the tiny checkpoints' heads
    root = tmp_path_factory.mktemp("converted-originals")
    files = {
        "mae": "tiny_orig_tvlt_mae.pt",
        "mosei_sa": "tiny_orig_tvlt_mosei_sa.pt",
        "mosei_ea": "tiny_orig_tvlt_mosei_ea.pt",
    }
    return {
        name: convert_checkpoint(ORIGINAL_CHECKPOINTS / file, root / name, original_options=options).destination
        for name, file in files.items()
    }


def load(converted, name, **overrides):
    from tvlt import TvltForAudioVisualClassification, TvltForPreTraining

    model_class = TvltForPreTraining if name == "mae" else TvltForAudioVisualClassification
    return model_class.from_pretrained(converted[name], **overrides).eval()


def silent_start_inputs():
    reference = torch.load(ORIGINAL_CHECKPOINTS / "tiny_reference.pt", weights_only=True)
    audio = reference["audio"].clone()
    audio[0, 0, :16] = -1.0  # sample 0 starts with a silent patch row
    mask = TvltFeatureExtractor(preprocessing_mode="original")._audio_mask(audio.numpy(), None)
    np.testing.assert_array_equal(mask, ORIGINAL["silent_start/audio_mask"])  # the original's mask from values
    return {"pixel_values": reference["video"], "audio_values": audio, "audio_mask": torch.from_numpy(mask)}


@requires_checkpoints
def test_converted_checkpoints_hide_cls_after_a_silent_start_like_the_original(converted):
    inputs = silent_start_inputs()
    for name in ("mosei_sa", "mosei_ea"):
        model = load(converted, name)
        assert model.config.cls_mask_from_first_audio_patch is True  # set by `tvlt convert`
        with torch.no_grad():
            out = model(**inputs, output_hidden_states=True)
            hidden = model.tvlt(**inputs).last_hidden_state
        assert_within(out.logits, ORIGINAL[f"silent_start/{name}.logits"], f"{name} logits")
        if name == "mosei_sa":  # CLS and the first 16 audio tokens, in the original's [CLS, audio, video] order
            ours = torch.cat([hidden[:, :1], hidden[:, 1 + NUM_VIDEO_PATCHES : 1 + NUM_VIDEO_PATCHES + 16]], dim=1)
            assert_within(ours, ORIGINAL["silent_start/mosei_sa.encoder_out_first_tokens"], "encoder output")
    model = load(converted, "mae")
    with torch.no_grad():
        matching = model(**inputs).matching_logits
        torch.manual_seed(MAE_SEED)
        mae = model(**inputs, reconstruct=True)
    assert_within(matching, ORIGINAL["silent_start/mae.matching_logits"], "matching logits")
    # the masked pass has no CLS token: the rule does not apply, the masks from values do
    assert_within(mae.audio_logits[:, :16], ORIGINAL["silent_start/mae.audio_pred_first_patches"], "audio MAE")
    assert torch.equal(mae.audio_label_masks, torch.from_numpy(ORIGINAL["silent_start/mae.audio_label_mask"]))
    assert torch.equal(mae.pixel_label_masks, torch.from_numpy(ORIGINAL["silent_start/mae.pixel_label_mask"]))


@requires_checkpoints
def test_without_the_option_cls_stays_visible_and_only_silent_starts_differ(converted):
    """Why the option exists: the same weights with CLS always attendable (4.40.2-style, the default) give other
    logits for the clip that starts silent, and the same for the other."""
    inputs = silent_start_inputs()
    model = load(converted, "mosei_ea", cls_mask_from_first_audio_patch=False)
    with torch.no_grad():
        logits = model(**inputs).logits
    expected = torch.from_numpy(ORIGINAL["silent_start/mosei_ea.logits"])
    assert (logits[0] - expected[0]).abs().max() > 1e-4
    assert_within(logits[1], expected[1], "the clip that starts with sound")
    # audio alone: the original has no CLS token there, so the rule does not apply
    with_rule = load(converted, "mosei_ea").tvlt
    audio_only = {"audio_values": inputs["audio_values"], "audio_mask": inputs["audio_mask"]}
    with torch.no_grad():
        expected = model.tvlt(**audio_only).last_hidden_state
        torch.testing.assert_close(with_rule(**audio_only).last_hidden_state, expected, rtol=0, atol=0)


@requires_checkpoints
@pytest.mark.parametrize("name", ["frames_32", "frames_32_silent_start"])
def test_padding_rule_draws_mae_masks_like_the_original(converted, name, tmp_path):
    """32 spectrogram frames become 48: the seeded MAE pass draws over 3 time steps, as the original's did."""
    path = make_audio_file(AUDIO_FILE_CASES[name], tmp_path / f"{name}.wav", soundfile)
    audio = TvltFeatureExtractor(preprocessing_mode="original")(str(path), return_tensors="pt")
    video = torch.load(ORIGINAL_CHECKPOINTS / "tiny_reference.pt", weights_only=True)["video"][:1]
    inputs = {"pixel_values": video, **audio}
    assert inputs["audio_values"].shape == (1, 1, 48, 128)
    model = load(converted, "mae")
    with torch.no_grad():
        torch.manual_seed(MAE_SEED)
        mae = model(**inputs, reconstruct=True)
        logits = load(converted, "mosei_sa")(**inputs).logits
    prefix = f"padding/{name}"
    assert torch.equal(mae.audio_label_masks, torch.from_numpy(ORIGINAL[f"{prefix}/mae.audio_label_mask"]))
    assert torch.equal(mae.pixel_label_masks, torch.from_numpy(ORIGINAL[f"{prefix}/mae.pixel_label_mask"]))
    assert_within(mae.audio_logits[:, :16], ORIGINAL[f"{prefix}/mae.audio_pred_first_patches"], "audio MAE")
    assert_within(logits, ORIGINAL[f"{prefix}/mosei_sa.logits"], "logits")


@pytest.mark.media
@requires_checkpoints
@requires_mosei
@pytest.mark.parametrize("audio_name", ["mosei", "mosei_silent_start"])
def test_mosei_clip_end_to_end_gives_the_original_logits(converted, audio_name, tmp_path):
    """The real MOSEI clip (frames from its mp4, audio from its 16 kHz wav) through each converted repo's own saved
    processor and model equals the original pipeline's logits (issue 8)."""
    from tvlt import TvltProcessor

    wav = make_audio_file(AUDIO_FILE_CASES[audio_name], tmp_path / f"{audio_name}.wav", soundfile)
    for name in ("mosei_sa", "mosei_ea", "mae"):
        processor = TvltProcessor.from_pretrained(converted[name])
        assert processor.preprocessing_mode == "original"
        inputs = processor(videos=str(MOSEI_VIDEO), audio=str(wav), return_tensors="pt")
        if name == "mosei_sa":
            pixels = inputs["pixel_values"]
            assert tuple(pixels.shape) == tuple(ORIGINAL["mosei_video/shape"])
            assert_within(pixels[0, :, :, :16, :16], ORIGINAL["mosei_video/corner_patches"], "frames")
            assert_within(pixels[0, :, :, 104:120, 104:120], ORIGINAL["mosei_video/centre_patches"], "frames")
            sums = pixels[0].double().sum(dim=(1, 2, 3))
            assert_within(sums, ORIGINAL["mosei_video/frame_sums"], "frame sums", atol=1e-2)
        with torch.no_grad():
            out = load(converted, name)(**inputs)
        if name == "mae":
            assert_within(out.matching_logits, ORIGINAL[f"e2e/{audio_name}/mae.matching_logits"], "matching logits")
        else:
            assert_within(out.logits, ORIGINAL[f"e2e/{audio_name}/{name}.logits"], f"{name} logits")
