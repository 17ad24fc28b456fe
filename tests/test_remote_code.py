"""The repo root and every converted or saved TVLT folder are self-contained remote-code repos.

The proof runs `remote_code_client.py` in a clean interpreter where `tvlt` cannot be imported (other cwd, `-I -S`, a
fresh HF_MODULES_CACHE, offline) and compares what the Auto classes give there, with `trust_remote_code=True` only,
with what they give with the package: bit for bit.
"""

import ast
import configparser
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, ORIGINAL_FIXTURES, REPO_ROOT, run_without_package, tiny_config
from remote_code_client import run_job
from transformers import AutoConfig
from transformers.dynamic_module_utils import get_imports, get_relative_imports

from tvlt import TvltConfig, TvltFeatureExtractor, TvltImageProcessor, TvltProcessor
from tvlt.conversion import OriginalOptions, convert_checkpoint
from tvlt.remote_code_tvlt import (
    CODE_FILES,
    CONFIG_AUTO_MAP,
    ENTRY_CODE_FILES,
    MODEL_AUTO_MAP,
    PIPELINE_CODE_FILE,
    PIPELINE_TASK,
    PROCESSOR_AUTO_MAP,
    custom_pipelines,
)


MODULES = {name.removesuffix(".py") for name in CODE_FILES}
_FETCH_LISTS_SPEC = importlib.util.spec_from_file_location("fetch_lists", REPO_ROOT / "scripts" / "fetch_lists.py")
fetch_lists = importlib.util.module_from_spec(_FETCH_LISTS_SPEC)
_FETCH_LISTS_SPEC.loader.exec_module(fetch_lists)
LEGACY = FIXTURES / "model_4402" / "square"
HUB_REPO_ID = "someone/tvlt-mosei-ea"
# import names of the distributions in setup.cfg's install_requires that differ from them
_IMPORT_NAMES = {"pillow": "PIL", "huggingface_hub": "huggingface_hub"}


def install_requires_imports() -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg")
    names = set()
    for line in parser["options"]["install_requires"].strip().splitlines():
        distribution = re.split(r"[<>=!~ \[;]", line.strip(), maxsplit=1)[0].lower().replace("-", "_")
        names.add(_IMPORT_NAMES.get(distribution, distribution))
    return names


# -- the code files --------------------------------------------------------------------------------------------------


def test_every_code_file_is_in_the_repo_root():
    assert [name for name in CODE_FILES if not (REPO_ROOT / name).is_file()] == []
    assert set(ENTRY_CODE_FILES) <= set(CODE_FILES)


@pytest.mark.parametrize("entry", ENTRY_CODE_FILES)
def test_each_entry_file_names_every_other_code_file_directly(entry):
    # transformers 5.0-5.9 copy from a local folder only the files named by the loaded file itself
    named = set(get_relative_imports(REPO_ROOT / entry))
    assert MODULES - {entry.removesuffix(".py")} - named == set(), f"{entry}: run scripts/fetch_lists.py"


def test_fetch_lists_are_written_from_code_files():
    assert fetch_lists.problems() == []


def test_non_entry_files_name_only_what_they_import():
    for name in set(CODE_FILES) - set(ENTRY_CODE_FILES):
        source = (REPO_ROOT / name).read_text()
        assert fetch_lists.split_fetch_list(source)[1] == "", name
        assert not any(getattr(node, "id", None) == "TYPE_CHECKING" for node in ast.walk(ast.parse(source))), name
        assert set(get_relative_imports(REPO_ROOT / name)) == fetch_lists.imported_code_modules(source), name


def test_code_files_import_one_another_without_a_cycle():
    imports = {name[:-3]: fetch_lists.imported_code_modules((REPO_ROOT / name).read_text()) for name in CODE_FILES}
    done = set()
    while len(done) < len(imports):
        ready = {module for module, needed in imports.items() if module not in done and needed <= done}
        assert ready, f"import cycle among {sorted(set(imports) - done)}"
        done |= ready
    assert imports["remote_code_tvlt"] == imports["media_tvlt"] == set()
    assert imports["configuration_tvlt"] == {"remote_code_tvlt"}


def _copy_code_files(folder: Path) -> Path:
    folder.mkdir()
    for name in CODE_FILES:
        (folder / name).write_bytes((REPO_ROOT / name).read_bytes())
    return folder


def test_a_new_code_file_is_one_line_in_code_files_and_a_rerun_of_the_script(tmp_path):
    root = _copy_code_files(tmp_path / "repo")
    remote_code = root / "remote_code_tvlt.py"
    remote_code.write_text(
        remote_code.read_text().replace(
            '    "remote_code_tvlt.py",\n)', '    "remote_code_tvlt.py",\n    "segments_tvlt.py",\n)'
        )
    )
    (root / "segments_tvlt.py").write_text(
        'from .modeling_tvlt import TvltModel\n\n\nclass TvltSegmenter:\n    pass\n\n\n__all__ = ["TvltSegmenter"]\n'
    )
    assert {line.split(":")[0] for line in fetch_lists.problems(root)} == set(ENTRY_CODE_FILES)
    assert sorted(fetch_lists.write(root)) == sorted(ENTRY_CODE_FILES)
    assert fetch_lists.problems(root) == []
    for entry in ENTRY_CODE_FILES:
        assert "segments_tvlt" in get_relative_imports(root / entry), entry
        compile((root / entry).read_text(), entry, "exec")
    assert "from .segments_tvlt import TvltSegmenter  # noqa: F401\n" in (root / "pipeline_tvlt.py").read_text()
    assert fetch_lists.fetch_list("segments_tvlt.py", root) == ""  # not an entry file: it names nothing more


def test_a_fetch_list_edited_by_hand_is_caught_and_rewritten(tmp_path):
    root = _copy_code_files(tmp_path / "repo")
    config = root / "configuration_tvlt.py"
    config.write_text(
        config.read_text().replace("    from .retrieval_tvlt import TvltAudioVisualMatcher  # noqa: F401\n", "")
    )
    inputs = root / "inputs_tvlt.py"
    inputs.write_text(
        inputs.read_text() + f"{fetch_lists.HEADER}\nif TYPE_CHECKING:\n    from .modeling_tvlt import X\n"
    )
    assert [line.split(":")[0] for line in fetch_lists.problems(root)] == ["configuration_tvlt.py", "inputs_tvlt.py"]
    fetch_lists.write(root)
    for name in CODE_FILES:
        assert (root / name).read_text() == (REPO_ROOT / name).read_text(), name


@pytest.mark.parametrize("code_file", CODE_FILES)
def test_code_files_import_only_code_files_and_declared_dependencies(code_file):
    assert set(get_relative_imports(REPO_ROOT / code_file)) <= MODULES, "a Hub code file imports package-only code"
    # transformers refuses remote code whose imports (outside try blocks) are not installed
    allowed = set(sys.stdlib_module_names) | install_requires_imports()
    assert set(get_imports(REPO_ROOT / code_file)) - allowed == set()


def test_remote_code_demands_no_more_than_transformers_torch_and_pillow():
    """Loading any TVLT class remotely fetches (and import-checks) every code file, so an import outside a `try`
    block anywhere would be demanded even from someone loading only the model: audio (soundfile, soxr) and video
    (av) libraries must be imported where they are used, inside `try`."""
    demanded = set().union(*(get_imports(REPO_ROOT / name) for name in CODE_FILES)) - set(sys.stdlib_module_names)
    assert demanded <= {"torch", "transformers", "numpy", "PIL"}, demanded


def test_pipeline_file_is_wired_once_it_exists():
    if (REPO_ROOT / PIPELINE_CODE_FILE).exists():
        assert PIPELINE_CODE_FILE in CODE_FILES and PIPELINE_CODE_FILE in ENTRY_CODE_FILES
    assert bool(custom_pipelines()) == (PIPELINE_CODE_FILE in CODE_FILES)


def test_root_config_is_tvlt_base_with_the_full_auto_map():
    root = json.loads((REPO_ROOT / "config.json").read_text())
    expected = TvltConfig(architectures=["TvltForPreTraining"]).to_diff_dict()
    expected["auto_map"] = CONFIG_AUTO_MAP
    if custom_pipelines():
        expected["custom_pipelines"] = custom_pipelines()
    for entry in (root, expected):
        entry.pop("transformers_version", None)
    assert root == expected, "regenerate config.json (see this test)"


def test_root_processor_config_has_the_full_processor_auto_map():
    processor_config = json.loads((REPO_ROOT / "processor_config.json").read_text())
    for level in (processor_config, processor_config["image_processor"], processor_config["feature_extractor"]):
        assert level["auto_map"] == PROCESSOR_AUTO_MAP


# -- save hooks ------------------------------------------------------------------------------------------------------


def assert_complete_code_repo(folder: Path):
    for name in CODE_FILES:
        assert (folder / name).read_bytes() == (REPO_ROOT / name).read_bytes(), f"{name} missing or different"


@pytest.mark.parametrize("head", ["TvltModel", "TvltForPreTraining", "TvltForAudioVisualClassification"])
def test_saving_any_model_writes_every_auto_class_and_code_file(tmp_path, head):
    import tvlt

    getattr(tvlt, head)(tiny_config()).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == CONFIG_AUTO_MAP
    assert config.get("custom_pipelines", {}) == custom_pipelines()
    assert_complete_code_repo(tmp_path)


def test_saving_a_config_keeps_unrelated_auto_map_entries_and_drops_foreign_tvlt_ones(tmp_path):
    config = tiny_config()
    config.auto_map = {
        "AutoModel": "elsewhere/repo--modeling_tvlt.TvltModel",
        "AutoModelForSequenceClassification": "my_heads.TvltForSomething",
    }
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert saved == {**CONFIG_AUTO_MAP, "AutoModelForSequenceClassification": "my_heads.TvltForSomething"}
    assert_complete_code_repo(tmp_path)


def test_saving_a_processor_writes_every_processor_auto_class_and_code_file(tmp_path):
    TvltProcessor(TvltImageProcessor(), TvltFeatureExtractor()).save_pretrained(tmp_path)
    processor_config = json.loads((tmp_path / "processor_config.json").read_text())
    for level in (processor_config, processor_config["image_processor"], processor_config["feature_extractor"]):
        assert level["auto_map"] == PROCESSOR_AUTO_MAP
    assert_complete_code_repo(tmp_path)


@pytest.mark.parametrize("component", [TvltImageProcessor, TvltFeatureExtractor])
def test_saving_a_lone_image_processor_or_feature_extractor_copies_every_code_file(tmp_path, component):
    component().save_pretrained(tmp_path)
    assert_complete_code_repo(tmp_path)


# -- the remote-code proof -------------------------------------------------------------------------------------------


def _fake_hub_cache(cache: Path, repo_id: str, folder: Path) -> None:
    """Lay `folder` out as huggingface_hub's cache of `repo_id` at `main`, so offline loading takes the Hub path."""
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "snapshots" / commit).mkdir(parents=True)
    for path in folder.iterdir():
        (repo / "snapshots" / commit / path.name).write_bytes(path.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def _raw_media(path: Path, seed: int) -> None:
    """An 8-frame video with black borders (for the original mode's border crop) and a second of audio."""
    rng = np.random.default_rng(seed)
    video = np.zeros((8, 40, 56, 3), dtype=np.uint8)
    video[:, 4:-4, 6:-6] = rng.integers(40, 255, size=(8, 32, 44, 3), dtype=np.uint8)
    time = np.arange(44100) / 44100
    audio = (0.3 * np.sin(2 * np.pi * 440 * time) + 0.05 * rng.standard_normal(44100)).astype(np.float32)
    torch.save({"video": torch.from_numpy(video), "audio": torch.from_numpy(audio), "sampling_rate": 44100}, path)


@pytest.fixture(scope="module")
def remote_code_job(tmp_path_factory):
    """Converted repos (a 4.40.2 folder, and the original checkpoints when available) and the job for the client."""
    root = tmp_path_factory.mktemp("remote-code")
    cases = []

    _raw_media(root / "legacy-raw.pt", seed=1)
    legacy_autos = {
        "TvltForPreTraining": ["AutoModelForPreTraining", "AutoModel"],
        "TvltForAudioVisualClassification": ["AutoModelForVideoClassification", "AutoModelForAudioClassification"],
    }
    for architecture, auto_classes in legacy_autos.items():
        name = f"legacy_{architecture}"
        legacy = convert_checkpoint(LEGACY / architecture, root / name).destination
        config = AutoConfig.from_pretrained(legacy)
        generator = torch.Generator().manual_seed(0)
        torch.save(
            {
                "pixel_values": torch.randn(
                    2, config.num_frames, 3, config.image_size, config.image_size, generator=generator
                ),
                "audio_values": torch.rand(
                    2, 1, config.spectrogram_length, config.frequency_length, generator=generator
                )
                * 2
                - 1,
            },
            root / f"{name}-inputs.pt",
        )
        cases.append(
            dict(
                name=name,
                repo=str(legacy),
                package_repo=str(legacy),
                auto_classes=auto_classes,
                inputs=str(root / f"{name}-inputs.pt"),
                raw_inputs=str(root / "legacy-raw.pt"),
                resave_to=str(root / f"{name}_resaved"),
            )
        )

    if ORIGINAL_FIXTURES.exists():
        reference = torch.load(ORIGINAL_FIXTURES / "tiny_reference.pt", weights_only=True)
        torch.save(
            {
                "pixel_values": reference["video"],
                "audio_values": reference["audio"],
                "audio_mask": reference["audio_mask_equiv"].float(),
            },
            root / "original-inputs.pt",
        )
        _raw_media(root / "original-raw.pt", seed=2)
        options = OriginalOptions(num_attention_heads=2, decoder_num_attention_heads=2)
        autos = {
            "mae": ["AutoModelForPreTraining", "AutoModel"],
            "mosei_sa": ["AutoModelForVideoClassification", "AutoModelForAudioClassification", "AutoModel"],
            "mosei_ea": ["AutoModelForVideoClassification", "AutoModel"],
        }
        for name, auto_classes in autos.items():
            src = ORIGINAL_FIXTURES / f"tiny_orig_tvlt_{name}.pt"
            repo = convert_checkpoint(src, root / f"original_{name}", original_options=options).destination
            cases.append(
                dict(
                    name=f"original_{name}",
                    repo=str(repo),
                    package_repo=str(repo),
                    auto_classes=auto_classes,
                    inputs=str(root / "original-inputs.pt"),
                    raw_inputs=str(root / "original-raw.pt"),
                    resave_to=str(root / f"original_{name}_resaved") if name == "mosei_ea" else None,
                )
            )
        # the Hub path of transformers (files fetched one by one into a per-commit folder), served offline
        _fake_hub_cache(root / "hub-cache", HUB_REPO_ID, root / "original_mosei_ea")
        cases.append(
            dict(
                name="hub",
                repo=HUB_REPO_ID,
                package_repo=str(root / "original_mosei_ea"),
                auto_classes=["AutoModelForVideoClassification"],
                inputs=str(root / "original-inputs.pt"),
                raw_inputs=str(root / "original-raw.pt"),
            )
        )
    job = dict(cases=cases, output=str(root / "remote-outputs.pt"), report=str(root / "remote-report.json"))
    (root / "job.json").write_text(json.dumps(job))
    return root, job


@pytest.fixture(scope="module")
def package_results(remote_code_job):
    _, job = remote_code_job
    tensors, report = run_job(
        {**job, "cases": [c for c in job["cases"] if c["name"] != "hub"]}, trust_remote_code=False
    )
    return tensors, report


@pytest.fixture(scope="module")
def remote_results(remote_code_job, package_results):
    root, job = remote_code_job
    run_without_package("remote_code_client.py", root / "job.json", root, HF_HUB_CACHE=str(root / "hub-cache"))
    return torch.load(job["output"], weights_only=True), json.loads(Path(job["report"]).read_text())


def test_the_client_process_cannot_import_the_package(remote_results):
    _, report = remote_results
    assert str(REPO_ROOT) not in report["sys_path"]
    assert all(not entry or "tvlt" not in Path(entry).name for entry in report["sys_path"])


def test_every_auto_class_loads_remote_code_only(remote_results, package_results):
    _, remote = remote_results
    _, package = package_results
    for key, qualified_name in remote["classes"].items():
        assert qualified_name.startswith("transformers_modules."), f"{key} loaded {qualified_name}"
    for key, qualified_name in package["classes"].items():
        assert qualified_name.startswith("tvlt."), f"{key} loaded {qualified_name}"
    assert {k.split("/", 1)[1] for k in remote["classes"]} >= {
        "AutoModel",
        "AutoModelForPreTraining",
        "AutoModelForVideoClassification",
        "AutoProcessor",
    }


def test_loading_any_class_fetches_every_code_file(remote_results):
    _, remote = remote_results
    for key, files in remote["code_files"].items():
        assert set(CODE_FILES) <= set(files), f"{key}: {sorted(set(CODE_FILES) - set(files))} not fetched"


def test_remote_code_outputs_are_identical_to_the_package(remote_results, package_results):
    remote, _ = remote_results
    package, _ = package_results
    local_keys = {key for key in remote if not key.startswith("hub/")}
    assert local_keys == set(package)
    for key in sorted(local_keys):
        assert torch.equal(remote[key], package[key]), key
    hub_keys = [key for key in remote if key.startswith("hub/")]
    for key in hub_keys:
        assert torch.equal(remote[key], package[key.replace("hub/", "original_mosei_ea/", 1)]), key


@pytest.mark.skipif(not ORIGINAL_FIXTURES.exists(), reason=f"original TVLT fixtures not found at {ORIGINAL_FIXTURES}")
def test_remote_code_reproduces_the_original_outputs(remote_results):
    remote, _ = remote_results
    reference = torch.load(ORIGINAL_FIXTURES / "tiny_reference.pt", weights_only=True)

    def close(actual, expected):
        torch.testing.assert_close(actual, expected.float(), rtol=0, atol=1e-5)

    close(remote["original_mosei_sa/AutoModelForVideoClassification/logits"], reference["mosei_sa.logits"])
    close(remote["original_mosei_ea/AutoModelForVideoClassification/logits"], reference["mosei_ea.logits"])
    close(remote["hub/AutoModelForVideoClassification/logits"], reference["mosei_ea.logits"])
    close(remote["original_mae/AutoModelForPreTraining/matching_logits"], reference["mae.matching_logits"])
    close(remote["original_mae/AutoModelForPreTraining/pixel_logits"], reference["mae.pixel_pred"])
    close(remote["original_mae/AutoModelForPreTraining/audio_logits"], reference["mae.audio_pred"])
    assert torch.equal(
        remote["original_mae/AutoModelForPreTraining/pixel_label_masks"], reference["mae.pixel_label_mask"].float()
    )
    assert torch.equal(
        remote["original_mae/AutoModelForPreTraining/audio_label_masks"], reference["mae.audio_label_mask"].float()
    )
    hidden = remote["original_mae/AutoModel/last_hidden_state"]
    video = 196
    original_order = torch.cat([hidden[:, :1], hidden[:, 1 + video :], hidden[:, 1 : 1 + video]], dim=1)
    close(original_order, reference["mae.encoder_out"])


def test_saving_what_remote_code_loaded_gives_a_complete_repo_again(remote_results):
    remote, report = remote_results
    assert report["saved"], "nothing was re-saved"
    for name, saved in report["saved"].items():
        assert set(CODE_FILES) <= set(saved["files"]), name
        assert saved["config"]["auto_map"] == CONFIG_AUTO_MAP, name
        for level in (saved["processor_config"], saved["processor_config"]["image_processor"]):
            assert level["auto_map"] == PROCESSOR_AUTO_MAP, name
        for key in [k for k in remote if k.startswith(f"{name}/resaved/")]:
            original_key = key.replace("/resaved/", "/", 1)
            assert torch.equal(remote[key], remote[original_key]), key


def test_repo_root_loads_as_remote_code_in_a_clean_process(tmp_path):
    script = (
        "import sys; sys.path.append(sys.argv[1])\n"
        "try:\n    import tvlt\nexcept ModuleNotFoundError:\n    pass\n"
        "else:\n    raise SystemExit('tvlt importable')\n"
        "from transformers import AutoConfig, AutoProcessor, AutoFeatureExtractor\n"
        # transformers 5.4-5.17 export a placeholder that needs torchvision under this name; the class itself does not
        "from transformers.models.auto.image_processing_auto import AutoImageProcessor\n"
        "config = AutoConfig.from_pretrained(sys.argv[2], trust_remote_code=True)\n"
        "processor = AutoProcessor.from_pretrained(sys.argv[2], trust_remote_code=True)\n"
        "image = AutoImageProcessor.from_pretrained(sys.argv[2], trust_remote_code=True)\n"
        "audio = AutoFeatureExtractor.from_pretrained(sys.argv[2], trust_remote_code=True)\n"
        "for obj in (config, processor, image, audio):\n"
        "    assert type(obj).__module__.startswith('transformers_modules.'), type(obj)\n"
        "print(type(config).__name__, config.hidden_size, config.num_hidden_layers, type(processor).__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHON"))}
    env.update(HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, sysconfig.get_paths()["purelib"], str(REPO_ROOT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.split() == ["TvltConfig", "768", "12", "TvltProcessor"]


# -- each entry alone fetches and saves every code file --------------------------------------------------------------

# everything a user loads TVLT code through: the Auto classes, `pipeline()`, `get_class_from_dynamic_module` (the
# matcher and the embedder)
FETCH_LOADERS = (*MODEL_AUTO_MAP, *PROCESSOR_AUTO_MAP, "pipeline", "matcher", "embedder")


@pytest.fixture(scope="module")
def fetch_report(tmp_path_factory):
    """Each loader, with remote code only, from a repo nothing else was loaded from (a folder of its own name, a Hub
    id of its own), as a local folder and from a Hub cache (offline); then what it loaded is saved."""
    from _av_toys import save_tiny_checkpoint

    root = tmp_path_factory.mktemp("fetch")
    sources = {kind: save_tiny_checkpoint(root / kind, kind) for kind in ("classification", "pretraining")}
    cases = []
    for loader in FETCH_LOADERS:
        source = sources["pretraining" if loader == "matcher" else "classification"]
        shutil.copytree(source, root / f"local-{loader}")
        _fake_hub_cache(root / "hub-cache", f"someone/tvlt-{loader.lower()}", source)
        for where, repo in (("local", str(root / f"local-{loader}")), ("hub", f"someone/tvlt-{loader.lower()}")):
            save_to = str(root / "saved" / where / loader)
            cases.append(dict(name=f"{where}/{loader}", loader=loader, repo=repo, task=PIPELINE_TASK, save_to=save_to))
    job = dict(cases=[], fetch=cases, output=str(root / "outputs.pt"), report=str(root / "report.json"))
    (root / "job.json").write_text(json.dumps(job))
    run_without_package("remote_code_client.py", root / "job.json", root, HF_HUB_CACHE=str(root / "hub-cache"))
    return json.loads((root / "report.json").read_text())["fetch"]


def test_each_entry_loaded_alone_fetches_every_code_file(fetch_report):
    assert len(fetch_report) == 2 * len(FETCH_LOADERS)
    for name, result in fetch_report.items():
        assert "error" not in result, f"{name}: {result.get('error')}"
        assert result["class"].startswith("transformers_modules."), (name, result["class"])
        assert set(CODE_FILES) <= set(result["fetched"]), f"{name}: {sorted(set(CODE_FILES) - set(result['fetched']))}"
    # every entry file was the one loaded by some loader
    assert {result["class"].split(".")[-2] + ".py" for result in fetch_report.values()} == set(ENTRY_CODE_FILES)


def test_saving_what_each_entry_loaded_copies_every_code_file(fetch_report):
    for name, result in fetch_report.items():
        assert "error" not in result, f"{name}: {result.get('error')}"
        assert set(CODE_FILES) <= set(result["saved"]), f"{name}: {sorted(set(CODE_FILES) - set(result['saved']))}"
