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


def test_resampling_needs_positive_integer_rates():
    with pytest.raises(ValueError, match="orig_sampling_rate"):
        sinc_resample(np.zeros(10, np.float32), 0, 44100)
    assert sinc_resample(np.ones(10, np.float32), 44100, 44100).tolist() == [1.0] * 10


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
