"""A 4.40.2-saved processor of a model that is not 224x224 / 8 frames is sized to its model.

4.40.2's `save_pretrained` lost the image processor's settings (`tests/fixtures/processor_4402`, written by
`scripts/reference_4402/make_sized_processor_fixtures.py`): reloaded, it made 224x224 frames for any model. Loading
such a folder (Auto classes, `TvltProcessor`) and converting it give the processor the user had built, sized to the
model; a folder where nothing contradicts the model (TVLT-base) keeps 4.40.2's settings and outputs.
"""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _av_toys import moving_square_frames, tone, write_clip
from conftest import FIXTURES
from fixture_inputs import make_clip_arrays
from transformers import AutoFeatureExtractor, AutoProcessor

# the real class on every 5.x (the top-level name is a torchvision placeholder on 5.4-5.17, see docs/compatibility.md)
from transformers.models.auto.image_processing_auto import AutoImageProcessor

from tvlt import TvltConfig, TvltForAudioVisualClassification, TvltProcessor
from tvlt.cli import main


SAVED = FIXTURES / "processor_4402"
MANIFEST = json.loads((SAVED / "manifest.json").read_text())
MODELS = FIXTURES / "model_4402"


def load(loader: str, folder: Path):
    """The processor (or its two halves, for the single-component Auto classes) loaded from `folder`."""
    if loader == "AutoImageProcessor+AutoFeatureExtractor":
        return TvltProcessor(AutoImageProcessor.from_pretrained(folder), AutoFeatureExtractor.from_pretrained(folder))
    return {"AutoProcessor": AutoProcessor, "TvltProcessor": TvltProcessor}[loader].from_pretrained(folder)


def fit_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "do not fit the model" in r.getMessage()]


@pytest.mark.parametrize("loader", ["AutoProcessor", "TvltProcessor", "AutoImageProcessor+AutoFeatureExtractor"])
@pytest.mark.parametrize("case", ["square", "oblong"])
def test_a_4402_folder_loads_the_processor_that_was_saved(case, loader, caplog):
    """The outputs are those of the processor the user built and saved with 4.40.2, not 224x224 frames."""
    config = TvltConfig.from_pretrained(SAVED / case)
    with caplog.at_level(logging.WARNING):
        processor = load(loader, SAVED / case)
    warnings = fit_warnings(caplog)
    assert warnings and "crop_size 224x224 -> " in warnings[0]
    if loader != "AutoImageProcessor+AutoFeatureExtractor":
        assert len(warnings) == 1  # one line for both halves
    video, audio = make_clip_arrays(config.num_frames, MANIFEST["input_seed"])
    ours = processor(images=[list(video)], audio=audio, sampling_rate=44100, return_tensors="np")
    expected = np.load(SAVED / case / "outputs_4402.npz")
    np.testing.assert_allclose(ours["pixel_values"], expected["pixel_values"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours["audio_values"], expected["audio_values"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ours["audio_mask"], expected["audio_mask"])
    # 4.40.2 counted the mask's patches with the shortest edge and the first patch side; ours fits the model
    assert ours["pixel_mask"].shape == (1, config.num_frames * config.num_patches_per_image)


def test_what_4402_itself_reloads_from_those_folders_is_recorded():
    """The bug being fixed, as the fixture script recorded it under 4.40.2."""
    for case in ("square", "oblong", "square_default_processor"):
        reloaded = MANIFEST["cases"][case]["reloaded_4402"]
        assert reloaded["crop_size"] == {"height": 224, "width": 224} and reloaded["num_frames"] == 8
    assert MANIFEST["cases"]["oblong"]["reloaded_4402"]["image_patch_size"] == [4, 12]  # the audio patch size


def test_tvlt_base_sized_folders_keep_4402s_settings(caplog):
    with caplog.at_level(logging.WARNING):
        processor = AutoProcessor.from_pretrained(SAVED / "base")
    assert not fit_warnings(caplog)
    image, audio = processor.image_processor, processor.feature_extractor
    reloaded = MANIFEST["cases"]["base"]["reloaded_4402"]
    assert (image.crop_size, image.size, image.num_frames) == (
        reloaded["crop_size"],
        reloaded["size"],
        reloaded["num_frames"],
    )
    assert list(image.patch_size) == reloaded["image_patch_size"]
    assert (audio.feature_size, list(audio.patch_size), audio.spectrogram_length) == (
        reloaded["feature_size"],
        reloaded["audio_patch_size"],
        reloaded["spectrogram_length"],
    )


def test_a_default_processor_saved_with_a_small_model_is_sized_to_it(caplog):
    """Both halves contradict the model (128 mel bins, 2048 frames, 16x16 patches, 224x224): all sized to it."""
    config = TvltConfig.from_pretrained(SAVED / "square_default_processor")
    with caplog.at_level(logging.WARNING):
        processor = TvltProcessor.from_pretrained(SAVED / "square_default_processor")
    (warning,) = fit_warnings(caplog)
    assert "feature_size (mel bins) 128 -> 32" in warning and "spectrogram_length 2048 -> 64" in warning
    model = TvltForAudioVisualClassification.from_pretrained(MODELS / "square" / "TvltForAudioVisualClassification")
    video, audio = make_clip_arrays(config.num_frames, 0)
    inputs = processor(images=[list(video)], audio=np.tile(audio, 8), sampling_rate=44100, return_tensors="pt")
    with torch.no_grad():
        assert model(**inputs).logits.shape == (1, config.num_labels)


def test_settings_given_to_from_pretrained_are_kept(caplog):
    processor = TvltProcessor.from_pretrained(SAVED / "square", num_frames=2, crop_size={"height": 16, "width": 16})
    assert processor.image_processor.num_frames == 2
    assert processor.image_processor.crop_size == {"height": 16, "width": 16}


def test_a_saved_processor_that_fits_is_left_alone(tmp_path, caplog):
    processor = TvltProcessor.from_pretrained(SAVED / "square")
    folder = tmp_path / "saved"
    processor.save_pretrained(folder)
    shutil.copy(SAVED / "square" / "config.json", folder)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = TvltProcessor.from_pretrained(folder)
    assert not fit_warnings(caplog)
    assert again.image_processor.to_dict() == processor.image_processor.to_dict()


def test_fewer_saved_frames_than_the_model_takes_are_kept(tmp_path):
    folder = tmp_path / "fewer"
    shutil.copytree(SAVED / "square", folder)
    config = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps({**config, "num_frames": 2}))
    assert TvltProcessor.from_pretrained(folder).image_processor.num_frames == 2


# -- conversion and the command line ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def legacy_classifier(tmp_path_factory):
    """A 4.40.2 folder as saved by a user of the `square` model: its weights, its config, its processor config."""
    folder = tmp_path_factory.mktemp("legacy") / "square-classifier"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(MODELS / "square" / "TvltForAudioVisualClassification" / name, folder)
    shutil.copy(SAVED / "square" / "preprocessor_config.json", folder)
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", moving_square_frames(8), waveform=tone(440.0, 1.0))


def test_converting_a_4402_folder_sizes_its_processor_to_the_model(legacy_classifier, tmp_path, capsys):
    dst = tmp_path / "converted"
    assert main(["convert", str(legacy_classifier), str(dst)]) == 0
    err = capsys.readouterr().err
    (warning,) = [line for line in err.splitlines() if "do not fit the model" in line]
    assert warning.startswith("tvlt convert: ") and "crop_size 224x224 -> 32x32" in warning
    assert "num_frames 8 (not saved) -> 3" in warning
    saved = json.loads((dst / "processor_config.json").read_text())["image_processor"]
    assert saved["crop_size"] == {"height": 32, "width": 32} and saved["num_frames"] == 3
    assert saved["size"] == {"shortest_edge": 32} and saved["patch_size"] == [8, 8]


@pytest.mark.parametrize("converted", [False, True], ids=["4402-folder", "converted"])
def test_predict_runs_on_a_real_video_with_a_4402_folder(legacy_classifier, clip, tmp_path, capsys, converted):
    model = legacy_classifier
    if converted:
        model = tmp_path / "converted"
        assert main(["convert", str(legacy_classifier), str(model)]) == 0
    capsys.readouterr()
    assert main(["predict", str(clip), "--model", str(model), "--json"]) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "classification" and len(result["predictions"]) == 4


@pytest.mark.parametrize("load", [TvltProcessor.from_pretrained, AutoProcessor.from_pretrained], ids=["Tvlt", "Auto"])
def test_a_processor_load_reads_the_model_config_beside_it_once(monkeypatch, load):
    """Sizing reads the model's config.json once per processor load, not once per sub-processor or per check."""
    import builtins

    real_open, reads = builtins.open, []

    def counting_open(file, *args, **kwargs):
        if Path(str(file)).name == "config.json":
            reads.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    load(SAVED / "square")
    assert len(reads) == 1, reads
