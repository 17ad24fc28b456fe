"""What TVLT relies on in transformers that changed between 5.x minor releases, each with the tests that notice the
next change, so that a new release that breaks one of them fails here, not for a user.

`CONTRACT` is the list (docs/compatibility.md explains each point for users); every entry names its shim and its
guard tests, and `test_every_contract_point_is_guarded` keeps the names real. The loading-path tests below are the
guards of the processor sizing: every way of loading a TVLT processor gives the same settings and the same tensors.
"""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from _av_toys import tiny_processor
from conftest import FIXTURES, REPO_ROOT, run_without_package, tiny_config
from fixture_inputs import make_clip_arrays
from transformers import AutoFeatureExtractor, AutoProcessor

# the real class on every 5.x (the top-level name is a torchvision placeholder on 5.4-5.17)
from transformers.models.auto.image_processing_auto import AutoImageProcessor

from tvlt import TvltConfig, TvltFeatureExtractor, TvltImageProcessor, TvltProcessor


# point: (what changed, in which releases; the shim; the guard tests as "file.py::test_name")
CONTRACT = {
    "processor loading": (
        "5.0-5.24: AutoImageProcessor / AutoFeatureExtractor call the class's from_pretrained; 5.25 reads the file "
        "itself and calls from_dict, without the source",
        "processing_utils_tvlt.loading_from / size_saved_settings (in each processor's from_dict), "
        "size_auto_class_loads (the package's registration)",
        [
            "test_transformers_contract.py::test_every_loading_path_gives_the_same_sized_processor",
            "test_transformers_contract.py::test_remote_code_loading_paths_give_the_package_processor",
            "test_processor_sizing.py::test_a_4402_folder_loads_the_processor_that_was_saved",
        ],
    ),
    "AutoImageProcessor import": (
        "5.4-5.17: `from transformers import AutoImageProcessor` is a placeholder that needs torchvision",
        "imported from transformers.models.auto.image_processing_auto",
        ["test_package.py::test_legacy_processor_config_loads_through_the_auto_classes_without_remote_code"],
    ),
    "remote-code copying": (
        "5.0-5.9 copy from a local folder only the files the loaded module names itself; 5.10 follows them",
        "a generated fetch list at the end of each entry code file (remote_code_tvlt, scripts/fetch_lists.py)",
        [
            "test_remote_code.py::test_each_entry_loaded_alone_fetches_every_code_file",
            "test_remote_code.py::test_fetch_lists_are_written_from_code_files",
        ],
    ),
    "Auto registration": (
        "5.x deprecates `slow_image_processor_class=` of AutoImageProcessor.register (image_processor_classes=)",
        "the keyword every 5.x accepts (tvlt/__init__.py)",
        ["test_package.py::test_legacy_folders_load_through_the_auto_classes_without_remote_code"],
    ),
    "attention interface": (
        "5.0 has no ALL_ATTENTION_FUNCTIONS.get_interface; set_attn_implementation greps the modeling source",
        "TvltSelfAttention._attention_interface (modeling_tvlt.py)",
        [
            "test_modeling_parity.py::test_base_model_matches_4402",
            "test_modeling.py::test_attention_implementation_reaches_the_decoder",
            "test_modeling.py::test_flex_attention_matches_eager",
        ],
    ),
    "bidirectional mask": (
        "create_bidirectional_mask renamed its second parameter within 5.x",
        "positional arguments (modeling_tvlt.py)",
        ["test_modeling_parity.py::test_classifier_matches_4402"],
    ),
    "load report hook": (
        "_adjust_missing_and_unexpected_keys: 5.0 passes the key sets, later 5.x the loading info",
        "TvltPreTrainedModel._adjust_missing_and_unexpected_keys handles both (modeling_tvlt.py)",
        ["test_training.py::test_a_classifier_from_a_pretraining_checkpoint_says_so_in_one_line"],
    ),
    "processor saving": (
        "5.x writes processor_config.json (4.x: preprocessor_config.json) and only the saved class's auto_map entry",
        "set_processor_remote_code_entries before every save (remote_code_tvlt; SavesAsRemoteCode)",
        [
            "test_remote_code.py::test_saving_a_processor_writes_every_processor_auto_class_and_code_file",
            "test_remote_code.py::test_saving_what_remote_code_loaded_gives_a_complete_repo_again",
        ],
    ),
    "pipeline loading": (
        "transformers' pipeline() loads the processor through AutoProcessor (its `_load_processor` flags vary)",
        "TvltAudioVisualClassificationPipeline's _load_* flags and its processor check (pipeline_tvlt.py)",
        ["test_transformers_contract.py::test_every_loading_path_gives_the_same_sized_processor"],
    ),
}


def test_every_contract_point_is_guarded():
    for point, (_, _, guards) in CONTRACT.items():
        assert guards, point
        for guard in guards:
            file, name = guard.split("::")
            source = (REPO_ROOT / "tests" / file).read_text()
            assert f"def {name}(" in source, f"{point}: {guard} does not exist"


# -- the processor sizing, on every loading path ---------------------------------------------------------------------

SAVED = FIXTURES / "processor_4402"
MODELS = FIXTURES / "model_4402"
PATHS = ["AutoProcessor", "AutoImageProcessor+AutoFeatureExtractor", "TvltImageProcessor+TvltFeatureExtractor"]


def _halves(path: str, folder: Path):
    if path == "AutoProcessor":
        processor = AutoProcessor.from_pretrained(folder)
        return processor.image_processor, processor.feature_extractor
    if path == "AutoImageProcessor+AutoFeatureExtractor":
        return AutoImageProcessor.from_pretrained(folder), AutoFeatureExtractor.from_pretrained(folder)
    if path == "TvltImageProcessor+TvltFeatureExtractor":
        return TvltImageProcessor.from_pretrained(folder), TvltFeatureExtractor.from_pretrained(folder)
    if path == "pipeline":
        from _av_toys import load_classifier

        pipe = load_classifier(folder)
        return pipe.processor.image_processor, pipe.processor.feature_extractor
    raise AssertionError(path)


def _outputs(image, audio, config) -> dict:
    video, sound = make_clip_arrays(config.num_frames, 0)
    return {
        **image([list(video)], return_tensors="np"),
        **audio(np.tile(sound, 4), sampling_rate=44100, return_tensors="np"),
    }


def _assert_same(halves, reference, config, what: str):
    for ours, theirs in zip(halves, reference, strict=True):
        assert type(ours) is type(theirs), what
        assert ours.to_dict() == theirs.to_dict(), f"{what}: {type(ours).__name__} settings differ"
    ours, theirs = _outputs(*halves, config), _outputs(*reference, config)
    assert ours.keys() == theirs.keys(), what
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=f"{what}: {name}")


@pytest.fixture(scope="module")
def legacy_classifiers(tmp_path_factory):
    """4.40.2 folders (weights, config, the processor config 4.40.2 saved) that the pipeline can load."""
    root = tmp_path_factory.mktemp("legacy")
    folders = {}
    for case in ("square", "oblong"):
        folder = root / case
        shutil.copytree(SAVED / case, folder)
        for name in ("config.json", "model.safetensors"):
            shutil.copy(MODELS / case / "TvltForAudioVisualClassification" / name, folder)
        folders[case] = folder
    return folders


@pytest.mark.parametrize("path", [*PATHS, "pipeline"])
@pytest.mark.parametrize("case", ["square", "oblong", "square_default_processor"])
def test_every_loading_path_gives_the_same_sized_processor(case, path, legacy_classifiers, caplog):
    """A 4.40.2 folder whose saved processor does not fit its model: each path sizes both halves to the model (the
    same settings, the same tensors as `TvltProcessor.from_pretrained`) and says so."""
    if path == "pipeline" and case not in legacy_classifiers:
        pytest.skip("no weights for this processor fixture")
    folder = legacy_classifiers.get(case, SAVED / case) if path == "pipeline" else SAVED / case
    config = TvltConfig.from_pretrained(folder)
    reference = TvltProcessor.from_pretrained(SAVED / case)
    assert reference.image_processor.crop_size == dict(zip(("height", "width"), config.frame_size, strict=True))
    with caplog.at_level(logging.WARNING):
        halves = _halves(path, folder)
    assert any("do not fit the model" in record.getMessage() for record in caplog.records), path
    _assert_same(halves, (reference.image_processor, reference.feature_extractor), config, f"{case}/{path}")


def test_loading_outside_from_pretrained_takes_the_settings_as_given():
    """`from_dict` alone has no folder to read a model from: nothing is sized (as in 4.40.2)."""
    saved = json.loads((SAVED / "square" / "preprocessor_config.json").read_text())
    assert TvltImageProcessor.from_dict(saved).crop_size == {"height": 224, "width": 224}


def test_a_processor_config_file_given_by_its_path_is_sized_to_the_model_beside_it():
    config = TvltConfig.from_pretrained(SAVED / "oblong")
    image = AutoImageProcessor.from_pretrained(SAVED / "oblong" / "preprocessor_config.json")
    assert image.crop_size == dict(zip(("height", "width"), config.frame_size, strict=True))


@pytest.fixture(scope="module")
def remote_settings(tmp_path_factory):
    """Remote-code repos (code files and auto_maps, as TVLT saves them) loaded in a clean process without the package:
    one converted like `tvlt convert` writes them (settings fit), one whose saved processor contradicts its model."""
    root = tmp_path_factory.mktemp("remote")
    fitting, mismatched = root / "fitting", root / "mismatched"
    tiny_processor().save_pretrained(fitting)
    tiny_config().save_pretrained(fitting)
    TvltProcessor(TvltImageProcessor(), TvltFeatureExtractor()).save_pretrained(
        mismatched
    )  # TVLT-base's processor next to a tiny model
    tiny_config().save_pretrained(mismatched)
    video, audio = make_clip_arrays(4, 0)
    np.savez(root / "raw.npz", video=video, audio=np.tile(audio, 4))
    cases = [
        dict(name=f"{repo.name}/{loader}", repo=str(repo), loader=loader, raw_inputs=str(root / "raw.npz"))
        for repo in (fitting, mismatched)
        for loader in ("AutoProcessor", "AutoImageProcessor+AutoFeatureExtractor")
    ]
    for case in cases:
        case["output"] = str(root / f"{case['name'].replace('/', '-')}.npz")
    job = dict(cases=[], settings=cases, output=str(root / "outputs.pt"), report=str(root / "report.json"))
    (root / "job.json").write_text(json.dumps(job))
    run_without_package("remote_code_client.py", root / "job.json", root)
    report = json.loads((root / "report.json").read_text())["settings"]
    return root, {case["name"]: (report[case["name"]], np.load(case["output"])) for case in cases}


def _package_settings(folder: Path, loader: str) -> tuple[dict, dict]:
    image, audio = _halves(loader, folder)
    video, sound = make_clip_arrays(4, 0)
    outputs = {
        **image([list(video)], return_tensors="np"),
        **audio(np.tile(sound, 4), sampling_rate=44100, return_tensors="np"),
    }
    return {"image_processor": image.to_json_string(), "feature_extractor": audio.to_json_string()}, outputs


def _comparable(settings_json: str) -> dict:
    settings = json.loads(settings_json)
    settings.pop("auto_map", None)  # remote code names its own module there
    return settings


@pytest.mark.parametrize("loader", ["AutoProcessor", "AutoImageProcessor+AutoFeatureExtractor"])
def test_remote_code_loading_paths_give_the_package_processor(remote_settings, loader):
    """Remote code gives what the package gives: always for the repos TVLT writes; for a repo whose saved processor
    contradicts its model, through AutoProcessor on every release, through the single-component Auto classes up to
    transformers 5.24 only (from 5.25 they hand the class no source to find the model by; the saved settings are used
    as saved, see docs/compatibility.md). A release that changes either shows up here."""
    import transformers
    from packaging.version import Version

    root, results = remote_settings
    for repo in ("fitting", "mismatched"):
        remote, remote_outputs = results[f"{repo}/{loader}"]
        package, package_outputs = _package_settings(root / repo, loader)
        unsized = repo == "mismatched" and loader != "AutoProcessor"
        unsized = unsized and Version(transformers.__version__) >= Version("5.25.0")
        for half in ("image_processor", "feature_extractor"):
            if unsized:
                assert _comparable(remote[half]) != _comparable(package[half]), f"{repo}/{loader}: now sized, update"
            else:
                assert _comparable(remote[half]) == _comparable(package[half]), f"{repo}/{loader}: {half}"
        if not unsized:
            for name, value in package_outputs.items():
                if hasattr(value, "shape"):
                    np.testing.assert_array_equal(remote_outputs[name], value, err_msg=f"{repo}/{loader}: {name}")
