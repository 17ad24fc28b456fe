"""The installable package `tvlt`: its exports, its Auto registrations (legacy checkpoints load with no remote code),
the `tvlt` command line, and a non-editable install built from the repository."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO_ROOT
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
    AutoProcessor,
)

# transformers 5.4-5.17 export a placeholder that needs torchvision under this name; the class itself does not
from transformers.models.auto.image_processing_auto import AutoImageProcessor

import tvlt
from tvlt.commands import SUBCOMMANDS
from tvlt.remote_code_tvlt import CODE_FILES


PUBLIC_NAMES = [
    "TvltConfig",
    "TvltModel",
    "TvltForPreTraining",
    "TvltForAudioVisualClassification",
    "TvltProcessor",
    "TvltImageProcessor",
    "TvltFeatureExtractor",
    # the end-to-end tools, for `pipeline_class=`, retrieval and custom training loops
    "TvltAudioVisualClassificationPipeline",
    "TvltAudioVisualMatcher",
    "TvltDataCollator",
]
LEGACY = FIXTURES / "model_4402" / "square"


def test_public_names():
    for name in PUBLIC_NAMES:
        assert name in tvlt.__all__ and getattr(tvlt, name).__module__.startswith("tvlt."), name


def legacy_folder(tmp_path: Path, architecture: str) -> Path:
    """A 4.40.2 folder (no auto_map anywhere) with the flat preprocessor_config.json of that era."""
    folder = tmp_path / architecture
    shutil.copytree(LEGACY / architecture, folder)
    config = json.loads((folder / "config.json").read_text())
    assert "auto_map" not in config
    preprocessor = {
        "feature_extractor_type": "TvltFeatureExtractor",
        "image_processor_type": "TvltImageProcessor",
        "processor_class": "TvltProcessor",
        "crop_size": {"height": config["image_size"], "width": config["image_size"]},
        "size": {"shortest_edge": config["image_size"]},
        "num_frames": config["num_frames"],
        "patch_size": config["image_patch_size"],
        "feature_size": config["frequency_length"],
        "spectrogram_length": config["spectrogram_length"],
        "sampling_rate": 44100,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return folder


@pytest.mark.parametrize(
    "architecture, auto_class, expected",
    [
        ("TvltModel", AutoModel, "TvltModel"),
        ("TvltForPreTraining", AutoModelForPreTraining, "TvltForPreTraining"),
        ("TvltForAudioVisualClassification", AutoModelForVideoClassification, "TvltForAudioVisualClassification"),
        ("TvltForAudioVisualClassification", AutoModelForAudioClassification, "TvltForAudioVisualClassification"),
    ],
)
def test_legacy_folders_load_through_the_auto_classes_without_remote_code(
    tmp_path, architecture, auto_class, expected
):
    folder = legacy_folder(tmp_path, architecture)
    model, info = auto_class.from_pretrained(folder, output_loading_info=True)
    assert type(model) is getattr(tvlt, expected)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert type(AutoConfig.from_pretrained(folder)) is tvlt.TvltConfig


def test_legacy_processor_config_loads_through_the_auto_classes_without_remote_code(tmp_path):
    folder = legacy_folder(tmp_path, "TvltModel")
    assert type(AutoProcessor.from_pretrained(folder)) is tvlt.TvltProcessor
    assert type(AutoImageProcessor.from_pretrained(folder)) is tvlt.TvltImageProcessor
    assert type(AutoFeatureExtractor.from_pretrained(folder)) is tvlt.TvltFeatureExtractor


def test_a_repo_with_auto_map_loads_package_classes_when_tvlt_is_imported(tmp_path):
    # with the package imported, trust_remote_code is not needed (and not used) for TVLT repos
    dst = tvlt.TvltForPreTraining(
        tvlt.TvltConfig(**json.loads((LEGACY / "TvltForPreTraining" / "config.json").read_text()))
    )
    dst.save_pretrained(tmp_path)
    assert "auto_map" in json.loads((tmp_path / "config.json").read_text())
    assert type(AutoModelForPreTraining.from_pretrained(tmp_path)) is tvlt.TvltForPreTraining


# -- command line -----------------------------------------------------------------------------------------------------

# one interpreter for all the subcommands' help (each start imports torch and transformers)
HELP_SCRIPT = (
    "import contextlib, io, json, tvlt.cli as cli\n"
    "texts = {}\n"
    "for name in ['', *cli.SUBCOMMANDS]:\n"
    "    out = io.StringIO()\n"
    "    with contextlib.redirect_stdout(out):\n"
    "        try:\n"
    "            cli.main([name, '--help'] if name else ['--help'])\n"
    "        except SystemExit as exit:\n"
    "            assert exit.code == 0, (name, exit.code)\n"
    "    texts[name] = out.getvalue()\n"
    "print(json.dumps(texts))\n"
)


@pytest.fixture(scope="module")
def help_texts() -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", HELP_SCRIPT], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT.parent
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_every_subcommand_has_help(help_texts, subcommand):
    assert help_texts[subcommand].startswith(f"usage: tvlt {subcommand} ")
    assert subcommand in help_texts[""]


def test_convert_help_lists_its_options(help_texts):
    for option in (
        "SRC",
        "DST",
        "--push-to-hub",
        "--private",
        "--commit-message",
        "--force",
        "--revision",
        "--num-attention-heads",
        "--decoder-num-attention-heads",
        "--num-frames",
        "--spectrogram-length",
    ):
        assert option in help_texts["convert"], option


def test_tvlt_and_python_m_tvlt_show_help():
    commands = {
        "console script": [str(Path(sys.executable).with_name("tvlt")), "--help"],
        "python -m tvlt": [sys.executable, "-m", "tvlt", "--help"],
    }
    running = {
        entry: subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT.parent
        )
        for entry, command in commands.items()
    }
    for entry, process in running.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"{entry}: {err[-2000:]}"
        assert all(name in out for name in SUBCOMMANDS), entry


# -- a non-editable install ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the repository (the build writes build/ and *.egg-info next to the sources)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(
        REPO_ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "fixtures"
        ),
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(root / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    [built] = (root / "dist").glob("tvlt-*.whl")
    return built


def test_checkpoint_loading_lives_outside_the_converter():
    """Only `tvlt convert` reaches into `conversion/`; every command loads checkpoints through `checkpoints/`, which
    depends on neither the converter nor the command line."""
    package = Path(tvlt.__file__).parent
    for module in sorted((package / "commands").glob("*.py")):
        if module.name != "convert.py":
            assert "conversion" not in _imported_modules(module), f"{module.name} imports from conversion/"
    for module in sorted((package / "checkpoints").glob("*.py")):
        assert not {"conversion", "commands"} & _imported_modules(module), f"checkpoints/{module.name}"


def _imported_modules(path: Path) -> set[str]:
    """The first component of every relative module a file imports from, at any depth (`..conversion.x` ->
    `conversion`)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_wheel_holds_the_flat_modules_as_package_tvlt(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"tvlt/{name}" for name in (*CODE_FILES, "__init__.py", "__main__.py", "cli.py")}
    expected |= {"tvlt/commands/__init__.py", "tvlt/commands/convert.py", "tvlt/conversion/__init__.py"}
    expected |= {"tvlt/checkpoints/__init__.py", "tvlt/checkpoints/loading.py", "tvlt/checkpoints/preflight.py"}
    assert expected <= names
    assert not [
        name
        for name in names
        if name.startswith(("tests/", "tvlt/tests/", "benchmarks/", "tvlt/benchmarks/", "scripts/"))
    ]
    metadata = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "tvlt = tvlt.cli:main" in zipfile.ZipFile(wheel).read(metadata).decode()
    requirements = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Dist: transformers<6,>=5.0" in requirements
    # setup.cfg reads the version from tvlt/__init__.py, which `tvlt --version` prints
    assert f"\nVersion: {tvlt.__version__}\n" in requirements


def test_installed_wheel_converts_and_copies_its_own_code_files(wheel, tmp_path):
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # -I -S: no .pth files, so the editable install of the checkout is out of the way; the target comes first
    script = (
        "import sys; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2])\n"
        "import tvlt\n"
        "from tvlt.conversion import convert_checkpoint\n"
        "assert tvlt.__file__.startswith(sys.argv[1]), tvlt.__file__\n"
        "print(convert_checkpoint(sys.argv[3], sys.argv[4]).destination)\n"
    )
    dst = tmp_path / "repo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            script,
            str(target),
            sysconfig.get_paths()["purelib"],
            str(LEGACY / "TvltModel"),
            str(dst),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for name in CODE_FILES:
        assert (dst / name).read_bytes() == (target / "tvlt" / name).read_bytes() == (REPO_ROOT / name).read_bytes(), (
            name
        )
