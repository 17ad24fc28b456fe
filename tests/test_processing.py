"""TvltProcessor: one call for videos and audio, saving/loading (5.x and legacy layouts), Auto classes, real clips."""

import json
import logging
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from _preprocessing_utils import (
    FIXTURES_DIR,
    HOWTO100M_VIDEO,
    MOSEI_AUDIO,
    MOSEI_VIDEO,
    PROCESSOR_CASES,
    REPO_ROOT,
    decode_pixels,
    make_audio_input,
    make_video_input,
    write_video,
)

from tvlt import TvltConfig, TvltFeatureExtractor, TvltImageProcessor, TvltModel, TvltProcessor
from tvlt.feature_extraction_tvlt import PREPROCESSING_MODES as AUDIO_MODES
from tvlt.image_processing_tvlt import PREPROCESSING_MODES as IMAGE_MODES
from tvlt.remote_code_tvlt import CODE_FILES, PROCESSOR_AUTO_MAP


REFERENCE = np.load(FIXTURES_DIR / "processor.npz")
BEHAVIOUR_4402 = json.loads((FIXTURES_DIR / "behaviour_4402.json").read_text())
SMALL = {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}}
needs_samples = pytest.mark.skipif(not MOSEI_VIDEO.is_file(), reason="../shared/samples is not available")


@pytest.fixture
def processor():
    return TvltProcessor(TvltImageProcessor(), TvltFeatureExtractor())


def video(count=2, height=32, width=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def audio(length=12000, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(length)).astype(np.float32)


def assert_no_warnings(caplog, recorded):
    assert caplog.text == "", caplog.text
    assert [str(warning.message) for warning in recorded] == []


# -- outputs --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROCESSOR_CASES))
def test_outputs_match_transformers_4_40_2(processor, name):
    case = PROCESSOR_CASES[name]
    outputs = processor(
        images=make_video_input(case["video"]),
        audio=make_audio_input(case["audio"]),
        return_tensors="np",
        **case["kwargs"],
    )
    assert sorted(outputs) == ["audio_mask", "audio_values", "pixel_mask", "pixel_values"]
    pixels = decode_pixels(
        REFERENCE[f"{name}/pixel_values/levels"],
        REFERENCE[f"{name}/pixel_values/scale"],
        REFERENCE[f"{name}/pixel_values/offset"],
        channel_axis=2,
    )
    np.testing.assert_allclose(outputs["pixel_values"], pixels, rtol=0, atol=1e-5)
    for key in ("pixel_mask", "audio_values", "audio_mask"):
        np.testing.assert_allclose(outputs[key], REFERENCE[f"{name}/{key}"], rtol=0, atol=1e-5)


def test_returns_a_batch_feature_of_tensors(processor):
    """4.40.2 returned a plain dict (no `.to(device)`, no tensor conversion of its own)."""
    assert BEHAVIOUR_4402["processor_output_type"]["returns"] == "dict"
    outputs = processor(videos=video(), audio=audio(), sampling_rate=44100, return_tensors="pt", **SMALL)
    assert type(outputs).__name__ == "BatchFeature"
    assert all(isinstance(value, torch.Tensor) for value in outputs.values())
    assert outputs.to(torch.float64)["pixel_values"].dtype == torch.float64


def test_videos_is_another_name_for_images(processor):
    by_videos = processor(videos=video(), return_tensors="np", **SMALL)
    by_images = processor(images=video(), return_tensors="np", **SMALL)
    np.testing.assert_array_equal(by_videos["pixel_values"], by_images["pixel_values"])
    with pytest.raises(ValueError, match="either `images` or `videos`"):
        processor(images=video(), videos=video())
    with pytest.raises(ValueError, match="You need to specify"):
        processor()


def test_mixed_videos(processor):
    outputs = processor(videos=video(), videos_mixed=video(seed=1), return_tensors="np", **SMALL)
    assert sorted(outputs) == ["pixel_mask", "pixel_mask_mixed", "pixel_values", "pixel_values_mixed"]
    alone = processor.image_processor(video(seed=1), return_tensors="np", **SMALL)["pixel_values"]
    np.testing.assert_array_equal(outputs["pixel_values_mixed"], alone)


def test_mask_flags_reach_the_model_and_nothing_warns(processor, caplog):
    """4.40.2 forwarded `mask_pixel` to the image processor, which warned "Unused or unrecognized kwargs"."""
    assert "mask_pixel" in BEHAVIOUR_4402["processor_mask_pixel_warnings"][0]
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        outputs = processor(
            videos=video(), audio=audio(), sampling_rate=44100, mask_pixel=True, mask_audio=True, **SMALL
        )
    assert_no_warnings(caplog, recorded)
    assert outputs["mask_pixel"] is True and outputs["mask_audio"] is True
    assert "mask_pixel" not in processor(videos=video(), **SMALL)


def test_options_are_routed_to_the_sub_processor_that_has_them(processor):
    outputs = processor(
        videos=video(6), audio=audio(), sampling_rate=16000, num_frames=4, resample=True, return_tensors="np", **SMALL
    )
    assert outputs["pixel_values"].shape[1] == 4 and outputs["audio_values"].shape[2] == 64  # 0.75 s at 44.1 kHz
    nested = processor(
        videos=video(6),
        images_kwargs={"num_frames": 3, **SMALL},
        audio=audio(),
        audio_kwargs={"return_attention_mask": False},
        sampling_rate=44100,
    )
    assert nested["pixel_values"].shape[1] == 3 and "audio_mask" not in nested
    with pytest.raises(TypeError, match="unexpected keyword argument 'num_frame'"):
        processor(videos=video(), num_frame=4)
    with pytest.raises(TypeError, match="images_kwargs.*resample"):
        processor(videos=video(), images_kwargs={"resample_audio": True, "resample": 2, "resample_rate": 1})


def test_model_ready_for_tvlt_model(processor):
    config = TvltConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        decoder_hidden_size=16,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    model = TvltModel(config).eval()
    inputs = processor(
        videos=[video(8, 48, 64), video(5, 48, 64, seed=1)],
        audio=[audio(44100), audio(30000, 1)],
        sampling_rate=44100,
        return_tensors="pt",
    )
    assert inputs["pixel_mask"].shape == (2, 8 * 196) and inputs["audio_mask"].shape == (2, 6 * 8)
    with torch.no_grad():
        outputs = model(**inputs)
    assert outputs.last_hidden_state.shape == (2, 1 + 6 * 8 + 8 * 196, 32)


# -- preprocessing mode ---------------------------------------------------------------------------------------------


def test_both_sub_processors_know_the_same_modes():
    assert IMAGE_MODES == AUDIO_MODES == ("transformers", "original")


def test_preprocessing_mode_switches_both_sub_processors(processor, tmp_path):
    assert processor.preprocessing_mode == "transformers"
    processor.preprocessing_mode = "original"
    assert (processor.image_processor.preprocessing_mode, processor.feature_extractor.preprocessing_mode) == (
        "original",
        "original",
    )
    processor.save_pretrained(tmp_path)
    assert TvltProcessor.from_pretrained(tmp_path).preprocessing_mode == "original"
    processor.feature_extractor.preprocessing_mode = "transformers"
    assert processor.preprocessing_mode is None  # the sub-processors disagree
    with pytest.raises(ValueError, match="preprocessing_mode"):
        processor.preprocessing_mode = "faithful"


def test_from_pretrained_can_switch_the_mode_of_a_saved_processor(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    loaded = TvltProcessor.from_pretrained(tmp_path, preprocessing_mode="original", num_frames=4, sampling_rate=48000)
    assert loaded.preprocessing_mode == "original"
    assert loaded.image_processor.num_frames == 4 and loaded.feature_extractor.sampling_rate == 48000


# -- saving and loading ---------------------------------------------------------------------------------------------


def test_save_pretrained_writes_one_processor_config_with_separate_settings(tmp_path):
    """4.40.2 saved both sub-processors into one preprocessor_config.json, the feature extractor overwriting the
    image processor: its settings were lost (and each reloaded sub-processor carried the other's keys)."""
    lost = BEHAVIOUR_4402["save_pretrained_shared_file"]
    assert "num_frames" not in lost["saved_keys"] and lost["reloaded_image_processor_num_frames"] == 8
    processor = TvltProcessor(TvltImageProcessor(num_frames=4), TvltFeatureExtractor(sampling_rate=22050))
    processor.save_pretrained(tmp_path)
    assert not (tmp_path / "preprocessor_config.json").exists()
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["processor_class"] == "TvltProcessor"
    assert saved["image_processor"]["num_frames"] == 4 and "sampling_rate" not in saved["image_processor"]
    assert saved["feature_extractor"]["sampling_rate"] == 22050 and "num_frames" not in saved["feature_extractor"]
    assert saved["auto_map"] == PROCESSOR_AUTO_MAP
    for code_file in CODE_FILES:  # a self-contained remote-code repo
        assert (tmp_path / code_file).read_bytes() == (REPO_ROOT / code_file).read_bytes()
    reloaded = TvltProcessor.from_pretrained(tmp_path)
    assert reloaded.image_processor.to_dict() == processor.image_processor.to_dict()
    assert reloaded.feature_extractor.to_dict() == processor.feature_extractor.to_dict()


def test_loads_the_config_transformers_4_40_2_saved(caplog):
    with caplog.at_level(logging.WARNING):
        loaded = TvltProcessor.from_pretrained(FIXTURES_DIR / "legacy_4402")
    assert caplog.text == ""
    assert loaded.image_processor.to_dict() == TvltImageProcessor().to_dict()
    assert loaded.feature_extractor.to_dict() == TvltFeatureExtractor().to_dict()


def test_loads_a_flat_legacy_config_giving_each_sub_processor_its_own_settings():
    loaded = TvltProcessor.from_pretrained(FIXTURES_DIR / "legacy_flat")
    image_settings, audio_settings = loaded.image_processor.to_dict(), loaded.feature_extractor.to_dict()
    assert image_settings["num_frames"] == 4 and image_settings["crop_size"] == {"height": 192, "width": 192}
    assert audio_settings["sampling_rate"] == 22050 and audio_settings["padding_value"] == -1.0
    assert loaded.feature_extractor.hop_length == 512
    assert not {"sampling_rate", "n_fft", "feature_size", "spectrogram_length", "freq_len"} & set(image_settings)
    assert not {"num_frames", "crop_size", "image_mean", "do_resize", "size"} & set(audio_settings)


def test_root_processor_config_holds_tvlt_base_defaults():
    saved = json.loads((REPO_ROOT / "processor_config.json").read_text())
    loaded = TvltProcessor.from_pretrained(REPO_ROOT)
    assert loaded.image_processor.to_dict() == {
        **TvltImageProcessor().to_dict(),
        "auto_map": saved["image_processor"]["auto_map"],
    }
    assert loaded.feature_extractor.to_dict() == {
        **TvltFeatureExtractor().to_dict(),
        "auto_map": saved["feature_extractor"]["auto_map"],
    }
    for level in (saved, saved["image_processor"], saved["feature_extractor"]):
        assert level["auto_map"] == PROCESSOR_AUTO_MAP


def test_registered_auto_classes(tmp_path):
    from transformers import AutoFeatureExtractor, AutoProcessor

    # transformers 5.4-5.17 export a placeholder that needs torchvision under this name; the class itself does not
    from transformers.models.auto.image_processing_auto import AutoImageProcessor

    TvltProcessor(TvltImageProcessor(num_frames=4), TvltFeatureExtractor()).save_pretrained(tmp_path)
    assert type(AutoProcessor.from_pretrained(tmp_path)) is TvltProcessor
    assert AutoImageProcessor.from_pretrained(tmp_path).num_frames == 4
    assert type(AutoFeatureExtractor.from_pretrained(tmp_path)) is TvltFeatureExtractor
    assert type(AutoProcessor.from_pretrained(FIXTURES_DIR / "legacy_4402")) is TvltProcessor


REMOTE_CODE_CHECK = """
import sys, warnings
import numpy as np
warnings.simplefilter("error")
from transformers import AutoFeatureExtractor, AutoProcessor
from transformers.models.auto.image_processing_auto import AutoImageProcessor  # a placeholder on 5.4-5.17
processor = AutoProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
assert type(processor).__module__.startswith("transformers_modules"), type(processor)
assert "tvlt" not in sys.modules
outputs = processor(videos=np.zeros((2, 40, 40, 3), np.uint8), audio=np.zeros(9000, np.float32), sampling_rate=44100)
assert outputs["pixel_values"].shape == (1, 2, 3, 224, 224) and outputs["audio_values"].shape == (1, 1, 32, 128)
assert AutoImageProcessor.from_pretrained(sys.argv[1], trust_remote_code=True).num_frames == 8
assert AutoFeatureExtractor.from_pretrained(sys.argv[1], trust_remote_code=True).sampling_rate == 44100
print("ok")
"""


def test_remote_code_loading_of_the_repository(tmp_path):
    """`AutoProcessor.from_pretrained(<repo>, trust_remote_code=True)` in a process that never imports `tvlt`."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_CODE_CHECK, str(REPO_ROOT)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


# -- real clips, file to tensors ------------------------------------------------------------------------------------


def test_video_file_with_its_own_audio_track(processor, tmp_path):
    clip = tmp_path / "clip.mp4"
    write_video(clip, num_frames=60, audio_codec="aac")
    outputs = processor(videos=clip, audio=clip, return_tensors="pt")
    assert outputs["pixel_values"].shape == (1, 8, 3, 224, 224)
    assert outputs["audio_values"].shape == (1, 1, 176, 128)  # 2 s at 44.1 kHz: 172 frames, padded to 176


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    write_video(folder / "sound.mp4", num_frames=30, audio_codec="aac")
    write_video(
        folder / "other.mp4", num_frames=45, audio_codec="aac", frame_fn=lambda i: np.full((64, 64, 3), i, np.uint8)
    )
    write_video(folder / "silent.mp4", num_frames=30)
    (folder / "folder.mp4").mkdir()
    return folder


def test_a_video_file_alone_brings_its_own_audio_track(processor, clips):
    """`processor(videos="clip.mp4")` returned frames only, and the model then ran video-only."""
    sound, other = str(clips / "sound.mp4"), clips / "other.mp4"
    alone = processor(videos=sound, return_tensors="np", **SMALL)
    explicit = processor(videos=sound, audio=sound, return_tensors="np", **SMALL)
    assert sorted(alone) == ["audio_mask", "audio_values", "pixel_mask", "pixel_values"]
    for key in explicit:
        np.testing.assert_array_equal(alone[key], explicit[key])
    batch = processor(videos=[sound, other], return_tensors="np", **SMALL)
    np.testing.assert_array_equal(
        batch["audio_values"], processor(audio=[sound, other], return_tensors="np")["audio_values"]
    )
    assert batch["pixel_values"].shape[0] == batch["audio_values"].shape[0] == 2


def test_audio_false_asks_for_the_video_inputs_only(processor, clips):
    outputs = processor(videos=clips / "sound.mp4", audio=False, return_tensors="np", **SMALL)
    assert sorted(outputs) == ["pixel_mask", "pixel_values"]
    silent = processor(videos=[clips / "silent.mp4"], audio=False, return_tensors="np", **SMALL)
    assert sorted(silent) == ["pixel_mask", "pixel_values"]


def test_explicit_audio_is_used_as_given(processor, clips):
    waveform = audio(44100)
    outputs = processor(
        videos=[clips / "silent.mp4", clips / "sound.mp4"], audio=[waveform, waveform], sampling_rate=44100, **SMALL
    )
    alone = processor(audio=[waveform, waveform], sampling_rate=44100)
    np.testing.assert_array_equal(outputs["audio_values"], alone["audio_values"])


def test_frames_never_bring_audio(processor):
    """Arrays-only calls give what they gave before files brought their tracks."""
    for videos in (video(), [video(), video(seed=1)], [list(video())]):
        assert sorted(processor(videos=videos, **SMALL)) == ["pixel_mask", "pixel_values"]


@pytest.mark.parametrize(
    "videos, error, message",
    [
        ("silent.mp4", ValueError, r"silent.mp4 has no audio track; give the audio with `audio=`.*`audio=False`"),
        (["sound.mp4", "silent.mp4"], ValueError, r"silent.mp4 has no audio track; .*`audio=False`"),
        (["sound.mp4", "frames"], ValueError, r"`videos`: video 1 is frames, which have no sound, .*`audio=False`"),
        ("folder.mp4", IsADirectoryError, r"folder.mp4 is a directory; expected a video file"),
        ("absent.mp4", FileNotFoundError, r"absent.mp4: no such video file"),
    ],
)
def test_a_video_file_without_sound_and_without_audio_says_both_ways_out(processor, clips, videos, error, message):
    def resolve(name):
        return video() if name == "frames" else clips / name

    videos = [resolve(name) for name in videos] if isinstance(videos, list) else resolve(videos)
    with pytest.raises(error, match=message):
        processor(videos=videos, **SMALL)


def test_directories_given_as_audio_say_so(processor, clips):
    with pytest.raises(IsADirectoryError, match=r"folder.mp4 is a directory; expected an audio file"):
        processor(audio=clips / "folder.mp4")
    with pytest.raises(IsADirectoryError, match=r"folder.mp4 is a directory; expected an audio file"):
        processor(videos=clips / "sound.mp4", audio=[clips / "folder.mp4"], **SMALL)


@pytest.mark.media
@needs_samples
@pytest.mark.parametrize("mode", ["transformers", "original"])
def test_mosei_video_and_wav_to_model_inputs(processor, mode):
    processor.preprocessing_mode = mode
    outputs = processor(videos=str(MOSEI_VIDEO), audio=str(MOSEI_AUDIO), return_tensors="pt")
    assert outputs["pixel_values"].shape == (1, 8, 3, 224, 224)
    assert outputs["audio_values"].shape[:2] == (1, 1) and outputs["audio_values"].shape[3] == 128
    assert outputs["audio_mask"].shape == (1, outputs["audio_values"].shape[2] // 16 * 8)
    assert outputs["pixel_mask"].shape == (1, 8 * 196)
    with pytest.raises(ValueError, match="K0m1tO3Ybyc_2.mp4.*no audio track"):
        processor(videos=str(MOSEI_VIDEO), audio=str(MOSEI_VIDEO))


@pytest.mark.media
@needs_samples
def test_howto100m_video_with_its_audio_track_to_model_inputs(processor):
    outputs = processor(videos=HOWTO100M_VIDEO, audio=HOWTO100M_VIDEO, return_tensors="pt")
    assert outputs["pixel_values"].shape == (1, 8, 3, 224, 224) and outputs["pixel_mask"].shape == (1, 8 * 196)
    # 58 s of decodable audio: cut at spectrogram_length (2048 frames)
    assert outputs["audio_values"].shape == (1, 1, 2048, 128) and outputs["audio_mask"].all()


def test_options_pipeline_passes_are_ignored_silently(processor, tmp_path, caplog):
    """`pipeline()` hands `dtype="auto"` (and the Auto classes `device_map`) to `AutoProcessor.from_pretrained`."""
    processor.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING):
        TvltProcessor.from_pretrained(tmp_path, dtype="auto", torch_dtype="auto", device_map="cpu")
    assert caplog.text == ""
    with caplog.at_level(logging.WARNING):
        TvltProcessor.from_pretrained(tmp_path, not_an_option=1)
    assert "not_an_option" in caplog.text
