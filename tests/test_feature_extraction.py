"""TvltFeatureExtractor: 4.40.2 parity, the fixes of issue 3, the original-faithful mode, files and settings."""

import json
import logging

import librosa
import numpy as np
import pytest
import soundfile
import torch
from _preprocessing_utils import (
    AUDIO_CASES,
    EMPTY_AUDIO_LENGTHS,
    FIXTURES_DIR,
    MOSEI_AUDIO,
    SHORT_AUDIO_CASES,
    make_audio_input,
    stereo_tone,
    write_video,
)

from tvlt import feature_extraction_tvlt
from tvlt.feature_extraction_tvlt import TvltFeatureExtractor, sinc_resample
from tvlt.media_tvlt import MediaDecodingError, load_audio, resample_audio


REFERENCE = np.load(FIXTURES_DIR / "feature_extractor.npz")
SHORT_REFERENCE = np.load(FIXTURES_DIR / "short_audio.npz")
BEHAVIOUR_4402 = json.loads((FIXTURES_DIR / "behaviour_4402.json").read_text())
SR = 44100


def noise(length: int, seed: int = 0, amplitude: float = 0.1) -> np.ndarray:
    return (amplitude * np.random.default_rng(seed).standard_normal(length)).astype(np.float32)


def original_reference(waveform: np.ndarray, sampling_rate: int = SR) -> np.ndarray:
    """The original TVLT audio pipeline, from librosa (float64), before padding/cutting: (frames, 128)."""
    centred = waveform.astype(np.float64) - waveform.astype(np.float64).mean()
    power = librosa.feature.melspectrogram(y=centred, sr=sampling_rate, n_mels=128, pad_mode="constant")
    decibels = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=80.0)
    return (np.clip((decibels - 20.0) / 40.0, -2.0, 0.0) + 1.0).T


# -- transformers 4.40.2 parity -------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values")  # 4.40.2's 22.05 kHz top
@pytest.mark.parametrize("name", sorted(AUDIO_CASES))
def test_outputs_match_transformers_4_40_2(name):
    case = AUDIO_CASES[name]
    if case["audio"].get("kind") == "mosei" and not MOSEI_AUDIO.is_file():
        pytest.skip("../shared/samples is not available")
    extractor = TvltFeatureExtractor(**case.get("init", {}))
    outputs = extractor(make_audio_input(case["audio"]), return_tensors="np", **case["kwargs"])
    expected_keys = sorted(key.split("/")[1] for key in REFERENCE.files if key.startswith(f"{name}/"))
    assert sorted(outputs) == expected_keys
    for key in expected_keys:
        reference = REFERENCE[f"{name}/{key}"]
        assert outputs[key].shape == reference.shape and outputs[key].dtype == reference.dtype
        np.testing.assert_allclose(outputs[key], reference, rtol=0, atol=1e-5, err_msg=f"{name}/{key}")


def test_pytorch_tensors():
    outputs = TvltFeatureExtractor()([noise(9000), noise(12000, 1)], sampling_rate=SR, return_tensors="pt")
    assert outputs["audio_values"].dtype == torch.float32 and outputs["audio_values"].shape == (2, 1, 32, 128)
    assert outputs["audio_mask"].dtype == torch.float32 and outputs["audio_mask"].tolist()[0] == [1.0] * 16 + [0.0] * 0


# -- fixes of 4.40.2 bugs -------------------------------------------------------------------------------------------


def test_other_sampling_rates_are_resampled():
    """4.40.2 refused 16 kHz audio even with `resample=True` (it documented resampling but never did it)."""
    assert BEHAVIOUR_4402["resample_true_16k"]["raises"] == "ValueError"
    clip = noise(16000)
    extractor = TvltFeatureExtractor()
    resampled = extractor(clip, sampling_rate=16000, return_tensors="np")
    expected = extractor(resample_audio(clip, 16000, SR), sampling_rate=SR, return_tensors="np")
    np.testing.assert_array_equal(resampled["audio_values"], expected["audio_values"])
    assert resampled["audio_values"].shape == (1, 1, 96, 128)  # 1 s at 44.1 kHz


def test_resample_false_keeps_refusing_other_rates():
    with pytest.raises(ValueError, match="sampling rate of 44100.*16000 Hz.*resample=True"):
        TvltFeatureExtractor()(noise(16000), sampling_rate=16000, resample=False)


@pytest.mark.parametrize("layout", ["channels_first", "channels_last", "batch_3d"])
def test_multi_channel_audio_is_mixed_down_by_channel_mean(layout):
    """4.40.2 rejected stereo input."""
    assert BEHAVIOUR_4402["stereo_clip"]["raises"] == "ValueError"
    stereo = stereo_tone(20000, SR)
    extractor = TvltFeatureExtractor()
    inputs = {"channels_first": [stereo], "channels_last": [stereo.T], "batch_3d": stereo[None]}[layout]
    outputs = extractor(inputs, sampling_rate=SR, return_tensors="np")
    expected = extractor(stereo.mean(axis=0), sampling_rate=SR, return_tensors="np")
    np.testing.assert_allclose(outputs["audio_values"], expected["audio_values"], atol=1e-6)


@pytest.mark.parametrize("dtype, scale", [(np.int16, 2**15), (np.int32, 2**31), (np.int8, 2**7)])
def test_integer_pcm_is_scaled_to_unit_range(dtype, scale):
    """4.40.2 fed int16 samples unscaled to the spectrogram (+90 dB): its output differed from the float clip's."""
    assert BEHAVIOUR_4402["int16_vs_scaled_float_max_difference"]["returns"] > 0.5
    pcm = np.round(np.clip(noise(12000, amplitude=0.3).astype(np.float64), -1, 1) * (scale - 1)).astype(dtype)
    extractor = TvltFeatureExtractor()
    outputs = extractor(pcm, sampling_rate=SR, return_tensors="np")
    expected = extractor(pcm.astype(np.float64) / scale, sampling_rate=SR, return_tensors="np")
    np.testing.assert_allclose(outputs["audio_values"], expected["audio_values"], atol=1e-6)


def test_unsigned_8_bit_pcm_is_centred():
    pcm = (np.round(noise(12000, amplitude=0.3) * 127) + 128).astype(np.uint8)
    extractor = TvltFeatureExtractor()
    expected = extractor((pcm.astype(np.float64) - 128) / 128, sampling_rate=SR, return_tensors="np")
    np.testing.assert_allclose(extractor(pcm, sampling_rate=SR)["audio_values"], expected["audio_values"], atol=1e-6)


def test_empty_audio_is_a_clear_error():
    """4.40.2 failed inside numpy ("can't extend empty axis")."""
    assert "empty axis" in BEHAVIOUR_4402["empty_clip"]["message"]
    with pytest.raises(ValueError, match="raw_speech.*clip 1 is empty"):
        TvltFeatureExtractor()([noise(9000), np.zeros(0, np.float32)], sampling_rate=SR)


@pytest.mark.parametrize("name", sorted(SHORT_AUDIO_CASES))
def test_audio_shorter_than_one_patch_gives_the_output_of_4_40_2(name):
    """4.40.2 padded a clip of 512 to 8191 samples (0.01-0.19 s) into one patch, masked as real; main raised "too
    short" (issue 9)."""
    case = SHORT_AUDIO_CASES[name]
    extractor = TvltFeatureExtractor(**case.get("init", {}))
    outputs = extractor(make_audio_input(case["audio"]), return_tensors="np", **case["kwargs"])
    for key in ("audio_values", "audio_mask"):
        reference = SHORT_REFERENCE[f"{name}/{key}"]
        assert outputs[key].shape == reference.shape, key
        np.testing.assert_allclose(outputs[key], reference, rtol=0, atol=1e-5, err_msg=f"{name}/{key}")


@pytest.mark.parametrize("length", EMPTY_AUDIO_LENGTHS)
def test_audio_without_a_spectrogram_frame_is_a_clear_error(length):
    """Below one hop, 4.40.2 returned an empty spectrogram (0 frames), which no model takes: a clear error instead."""
    assert SHORT_REFERENCE[f"empty_{length}/shape"].tolist() == [1, 1, 0, 128]
    with pytest.raises(
        ValueError, match=f"too short: {length} samples at 44100 Hz give no spectrogram frame.*at least 512 samples"
    ):
        TvltFeatureExtractor()(noise(length), sampling_rate=SR)


def test_original_mode_takes_any_clip_like_the_original():
    """The original keeps the last STFT frame, so a single sample still gives a frame (silent after the DC removal,
    so its patch is masked); see test_original_pipeline.py for its values."""
    outputs = TvltFeatureExtractor(preprocessing_mode="original")(noise(1), sampling_rate=SR, return_tensors="np")
    assert outputs["audio_values"].shape == (1, 1, 16, 128) and outputs["audio_mask"].sum() == 0


def test_a_batch_is_one_vectorised_pass(monkeypatch):
    """All clips' STFT frames go through one FFT call (4.40.2 looped over clips and, in Python, over frames)."""
    calls = []
    real_rfft = feature_extraction_tvlt._rfft
    monkeypatch.setattr(
        feature_extraction_tvlt, "_rfft", lambda frames: calls.append(frames.shape) or real_rfft(frames)
    )
    clips = [noise(9000, 1), noise(30000, 2), noise(15000, 3)]
    extractor = TvltFeatureExtractor()
    batched = extractor(clips, sampling_rate=SR, return_tensors="np")
    assert len(calls) == 1 and calls[0][0] >= sum(1 + len(clip) // 512 for clip in clips)
    for index, clip in enumerate(clips):  # batching changes nothing for a clip
        alone = extractor(clip, sampling_rate=SR, return_tensors="np")["audio_values"][0]
        np.testing.assert_allclose(batched["audio_values"][index, :, : alone.shape[1]], alone, rtol=0, atol=1e-6)


def test_long_audio_is_processed_in_bounded_chunks(monkeypatch):
    calls = []
    real_rfft = feature_extraction_tvlt._rfft
    monkeypatch.setattr(
        feature_extraction_tvlt, "_rfft", lambda frames: calls.append(len(frames)) or real_rfft(frames)
    )
    TvltFeatureExtractor()(noise(44100 * 30), sampling_rate=SR)
    assert max(calls) <= feature_extraction_tvlt._FRAMES_PER_CHUNK and sum(calls) >= 30 * SR // 512


# -- original-faithful mode -----------------------------------------------------------------------------------------


def test_original_mode_matches_librosa_and_the_original_normalisation():
    clip = np.concatenate([noise(30000, 5, amplitude=0.5), np.zeros(15000, np.float32)]) + 0.01  # DC offset too
    outputs = TvltFeatureExtractor(preprocessing_mode="original")(clip, sampling_rate=SR, return_tensors="np")
    reference = original_reference(clip)
    frames = reference.shape[0]
    assert frames == 1 + len(clip) // 512  # the last STFT frame is kept
    values = outputs["audio_values"][0, 0]
    assert values.shape == (-(-frames // 16) * 16, 128)
    np.testing.assert_allclose(values[:frames], reference, atol=1e-5)
    assert (values[frames:] == -1.0).all()  # padded with -1 to a multiple of 16 frames


def test_original_mode_masks_patches_of_padding_and_silence():
    # Quiet enough that the 80 dB range reaches below the -60 dB floor, and without DC (whose removal would leave a
    # constant in the silence), so that silence normalises to -1.
    first, second = noise(16384, 6, amplitude=0.01), noise(16384, 7, amplitude=0.01)
    clip = np.concatenate([first - first.mean(), np.zeros(40000, np.float32), second - second.mean()])
    outputs = TvltFeatureExtractor(preprocessing_mode="original")(clip, sampling_rate=SR, return_tensors="np")
    values, mask = outputs["audio_values"][0, 0], outputs["audio_mask"][0]
    patches = values.reshape(values.shape[0] // 16, 16, 8, 16)
    np.testing.assert_array_equal(mask, (patches != -1.0).any(axis=(1, 3)).reshape(-1).astype(np.float32))
    silent_patch_rows = np.flatnonzero(mask.reshape(-1, 8).sum(axis=1) == 0)
    assert len(silent_patch_rows) >= 2  # the silence in the middle is masked, as the original model did
    assert mask.reshape(-1, 8)[0].all() and mask.reshape(-1, 8)[-2].all()


def test_original_mode_keeps_at_most_1024_frames_and_pads_batches_with_minus_one():
    long_clip, short_clip = noise(1100 * 512, 8), noise(20 * 512, 9)
    extractor = TvltFeatureExtractor(preprocessing_mode="original")
    outputs = extractor([long_clip, short_clip], sampling_rate=SR, return_tensors="np")
    assert outputs["audio_values"].shape == (2, 1, 1024, 128)
    np.testing.assert_allclose(outputs["audio_values"][0, 0], original_reference(long_clip)[:1024], atol=1e-5)
    assert (outputs["audio_values"][1, 0, 32:] == -1.0).all()
    assert outputs["audio_mask"][1].reshape(-1, 8)[2:].sum() == 0


@pytest.mark.media
@pytest.mark.skipif(not MOSEI_AUDIO.is_file(), reason="../shared/samples is not available")
def test_original_mode_on_the_mosei_clip_matches_librosa():
    extractor = TvltFeatureExtractor(preprocessing_mode="original")
    outputs = extractor(str(MOSEI_AUDIO), return_tensors="np")  # 16 kHz file: resampled to 44.1 kHz
    waveform, rate = soundfile.read(MOSEI_AUDIO, dtype="float32")
    reference = original_reference(sinc_resample(waveform, rate, SR))  # the original's resampler (torchaudio's)
    values = outputs["audio_values"][0, 0]
    assert reference.shape[0] == 425 and values.shape == (432, 128)
    np.testing.assert_allclose(values[:425], reference, rtol=0, atol=1e-5)
    assert (values[425:] == -1.0).all() and outputs["audio_mask"].shape == (1, 216)


# -- files, flags, settings -----------------------------------------------------------------------------------------


def test_audio_and_video_files(tmp_path):
    tone = stereo_tone(22050, 22050)
    wav = tmp_path / "tone.wav"
    soundfile.write(wav, tone.T, 22050, subtype="FLOAT")
    extractor = TvltFeatureExtractor()
    from_file = extractor(str(wav), return_tensors="np")
    from_array = extractor(tone.mean(axis=0), sampling_rate=22050, return_tensors="np")
    np.testing.assert_array_equal(from_file["audio_values"], from_array["audio_values"])

    video = tmp_path / "clip.mkv"
    write_video(video, num_frames=30, codec="ffv1", audio_codec="pcm_s16le")
    from_track = extractor([video, wav], return_tensors="np")
    track, rate = load_audio(video)
    expected = extractor(track, sampling_rate=rate, return_tensors="np")["audio_values"][0]
    np.testing.assert_allclose(from_track["audio_values"][0, :, : expected.shape[1]], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        from_track["audio_values"][1, :, : from_array["audio_values"].shape[2]],
        from_array["audio_values"][0],
        rtol=0,
        atol=1e-6,
    )


def test_files_need_no_sampling_rate_and_warn_about_nothing(tmp_path, caplog):
    wav = tmp_path / "tone.wav"
    soundfile.write(wav, stereo_tone(22050, 44100)[0], 44100)
    with caplog.at_level(logging.WARNING):
        TvltFeatureExtractor()(wav)
    assert caplog.text == ""


def test_arrays_without_sampling_rate_warn(caplog):
    with caplog.at_level(logging.WARNING):
        TvltFeatureExtractor()(noise(9000))
    assert "sampling_rate" in caplog.text


def test_video_without_audio_track_names_the_file(tmp_path):
    video = tmp_path / "silent.mp4"
    write_video(video, num_frames=10)
    with pytest.raises(MediaDecodingError, match="silent.mp4.*no audio track"):
        TvltFeatureExtractor()(video)


def test_mask_audio_flag_is_forwarded_to_the_model():
    outputs = TvltFeatureExtractor()(noise(9000), sampling_rate=SR, mask_audio=True)
    assert outputs["mask_audio"] is True
    assert "mask_audio" not in TvltFeatureExtractor()(noise(9000), sampling_rate=SR)


@pytest.mark.parametrize(
    "raw_speech, error, match",
    [
        (np.zeros((2, 2, 2, 9000), np.float32), ValueError, "1-D .* 2-D .* or 3-D"),
        ([], ValueError, "empty list"),
        (42, TypeError, "raw_speech"),
        ([np.zeros(9000, np.complex64)], TypeError, "dtype complex64"),
        ([np.zeros(9000, np.int64)], TypeError, "int64"),
        ([np.full(9000, np.nan, np.float32)], ValueError, "NaN"),
        ([np.zeros((40, 9000), np.float32)], ValueError, "at most 16 channels"),
        ([["a", "b"]], ValueError, "not a list of numbers"),
    ],
)
def test_bad_inputs_raise_clear_errors(raw_speech, error, match):
    with pytest.raises(error, match=match):
        TvltFeatureExtractor()(raw_speech, sampling_rate=SR)


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"num_channels": 2}, "num_channels"),
        ({"patch_size": [16]}, "patch_size"),
        ({"feature_size": 100}, "multiple of the frequency patch size"),
        ({"preprocessing_mode": "faithful"}, "preprocessing_mode"),
        ({"sampling_rate": 0}, "sampling_rate"),
        ({"hop_length_to_sampling_rate": 50000}, "hop length would be 0"),
    ],
)
def test_bad_settings_raise(settings, match):
    with pytest.raises(ValueError, match=match):
        TvltFeatureExtractor(**settings)


def test_unknown_call_options_raise():
    with pytest.raises(TypeError):
        TvltFeatureExtractor()(noise(9000), sampling_rate=SR, padding=True)


def test_save_and_load_keep_the_settings(tmp_path):
    extractor = TvltFeatureExtractor(preprocessing_mode="original", spectrogram_length=512, padding_value=-0.5)
    extractor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["preprocessing_mode"] == "original" and saved["hop_length"] == 512 and "freq_len" not in saved
    reloaded = TvltFeatureExtractor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == extractor.to_dict()
    assert (reloaded.hop_length, reloaded.freq_len, reloaded.mel_filters.shape) == (512, 8, (128, 1025))


def test_legacy_config_hop_length_survives_reloading():
    """4.40.2 saved `hop_length` but not the ratio it came from: reloading fell back to 44100 // 86 = 512 for any
    sampling rate. A flat 4.40.2 config at 22.05 kHz with hop 512 keeps its hop here."""
    extractor = TvltFeatureExtractor.from_pretrained(FIXTURES_DIR / "legacy_flat")
    assert (extractor.sampling_rate, extractor.hop_length, extractor.padding_value) == (22050, 512, -1.0)
    assert not hasattr(extractor, "num_frames") and not hasattr(extractor, "image_mean")


def test_from_pretrained_applies_settings_missing_from_a_legacy_config():
    extractor = TvltFeatureExtractor.from_pretrained(FIXTURES_DIR / "legacy_4402", preprocessing_mode="original")
    assert extractor.preprocessing_mode == "original"


def test_hop_length_is_saved_and_a_different_one_is_refused(tmp_path):
    """4.40.2 saved `hop_length` (512) but replaced a `hop_length=` argument by `sampling_rate // 86` without a word;
    main dropped it from the saved config (issue 9). The hop follows from the two settings: a value that agrees is
    accepted (4.40.2's configs), another is refused with the ratio that gives it."""
    assert int(SHORT_REFERENCE["hop_length_256/hop_length"]) == 512  # 4.40.2 ignored the argument
    assert TvltFeatureExtractor(hop_length=512).hop_length == 512
    assert TvltFeatureExtractor(sampling_rate=22050, hop_length=256).hop_length == 256
    with pytest.raises(ValueError, match=r"`hop_length` \(256\).*44100 // 86 = 512.*hop_length_to_sampling_rate=172"):
        TvltFeatureExtractor(hop_length=256)
    with pytest.raises(ValueError, match="no integer `hop_length_to_sampling_rate` gives a hop of 500 samples"):
        TvltFeatureExtractor(hop_length=500)
    with pytest.raises(ValueError, match="hop_length"):
        TvltFeatureExtractor(hop_length=0)
    assert TvltFeatureExtractor(hop_length_to_sampling_rate=172).hop_length == 256

    TvltFeatureExtractor().save_pretrained(tmp_path)
    assert json.loads((tmp_path / "preprocessor_config.json").read_text())["hop_length"] == 512
    assert TvltFeatureExtractor.from_pretrained(tmp_path, sampling_rate=22050).hop_length == 22050 // 86
    with pytest.raises(ValueError, match="hop_length"):
        TvltFeatureExtractor.from_pretrained(tmp_path, hop_length=256)
