"""The command line answers at once: `--help`, `--version` and argument or file errors import neither torch nor
transformers (seconds of start-up; `benchmarks/bench_cli.py` measures the times), while `import tvlt` in a program
still registers TVLT with the Auto classes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from tvlt.commands import SUBCOMMANDS


CLIP = REPO_ROOT / "examples" / "assets" / "talking_face.mp4"
HEAVY = ("torch", "transformers")


def console_script() -> list[str]:
    return [str(Path(sys.executable).with_name("tvlt"))]


def imported_modules(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `command` with Python's import profiling on; its result and the top-level names of what it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPROFILEIMPORTTIME="1", HF_HUB_OFFLINE="1")
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    modules, messages = set(), []
    for line in result.stderr.splitlines():
        if line.startswith("import time:"):
            name = line.rsplit("|", 1)[-1].strip()
            if name != "imported package":  # the header line
                modules.add(name.split(".")[0])
        else:
            messages.append(line)
    result.stderr = "\n".join(messages)
    return result, modules


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("startup")
    checkpoint = root / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({"model_type": "tvlt"}))
    (checkpoint / "processor_config.json").write_text("{}")
    (root / "typo.csv").write_text("video,strat\nclip.mp4,3\n")
    return {"root": root, "checkpoint": checkpoint}


HELP_CASES = [["--help"], ["--version"], *[[name, "--help"] for name in SUBCOMMANDS]]

ERROR_CASES = [
    # (arguments, what the one-line error says)
    (["predict", "missing.mp4", "--model", "{checkpoint}"], "VIDEO missing.mp4: no such video file."),
    (["predict", "{root}", "--model", "{checkpoint}"], "is a directory; expected a video file"),
    (["predict", "{clip}", "--audio", "missing.wav", "--model", "{checkpoint}"], "--audio missing.wav: no such"),
    (["predict", "{clip}", "--model", "{checkpoint}", "--start", "inf"], "argument --start: expected a finite"),
    (["predict", "{clip}", "--model", "{checkpoint}", "--end", "1e20"], "argument --end: expected a number of"),
    (["predict", "{clip}", "--model", "{checkpoint}", "--start", "2", "--end", "1"], "--end (1.0) must be after"),
    (["predict", "{clip}", "--model", "./no/such/folder"], "no such checkpoint folder"),
    (["predict", "{clip}", "--model", "{checkpoint}", "--top-k", "0"], "argument --top-k: expected a positive"),
    (["predict", "{clip}"], "the following arguments are required: --model"),
    (["reconstruct", "{clip}", "--model", "{checkpoint}", "--out", "x.unknown"], "unknown picture format"),
    (["reconstruct", "{clip}", "--model", "{checkpoint}", "--out", "{root}/no/x.png"], "does not exist"),
    (["convert", "src", "dst", "--private"], "--private needs --push-to-hub"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    # batch jobs: manifests and --out are checked before the heavy imports too
    (["embed", "{root}/typo.csv", "--model", "{checkpoint}", "--out", "{root}/e.parquet"], "line 2: unknown column"),
    (["embed", "{clip}", "--model", "{checkpoint}", "--out", "{root}/e.txt"], "expected a path ending in .parquet"),
    (["embed", "{clip}", "--model", "./no/such/folder", "--out", "{root}/e.jsonl"], "no such checkpoint folder"),
    (["predict", "{root}/typo.csv", "--model", "{checkpoint}"], "names a batch job, or --out RESULTS.parquet"),
    (
        ["predict", "{clip}", "{clip}", "--model", "{checkpoint}", "--out", "{root}/p.jsonl", "--chunk-length", "5"],
        "--chunk-length reads one long clip in windows",
    ),
    # several inputs make a batch job: a picture --out (one clip's timeline) is not its output
    (
        ["predict", "{clip}", "{clip}", "--model", "{checkpoint}", "--out", "{root}/t.png"],
        "ending in .parquet or .jsonl",
    ),
]


@pytest.mark.parametrize("arguments", HELP_CASES, ids=" ".join)
def test_help_and_version_import_neither_torch_nor_transformers(arguments, folders):
    result, modules = imported_modules([*console_script(), *arguments], folders["root"])
    assert result.returncode == 0, result.stderr
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    if arguments == ["--version"]:
        from tvlt import __version__

        assert result.stdout.strip() == f"tvlt {__version__}"
    else:
        assert result.stdout.startswith("usage: tvlt")


@pytest.mark.parametrize("arguments, message", ERROR_CASES, ids=[" ".join(case[0]) for case in ERROR_CASES])
def test_argument_and_file_errors_come_before_torch_and_transformers(arguments, message, folders):
    values = {"clip": str(CLIP), "root": str(folders["root"]), "checkpoint": str(folders["checkpoint"])}
    arguments = [argument.format(**values) for argument in arguments]
    result, modules = imported_modules([*console_script(), *arguments], folders["root"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tvlt") and ": error: " in lines[0], result.stderr
    assert message in lines[0], lines[0]
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


@pytest.mark.parametrize(
    "interpreter_arguments", [["-m", "tvlt"], ["-mtvlt"], ["-I", "-m", "tvlt"]], ids=["-m tvlt", "-mtvlt", "-I -m"]
)
def test_python_m_tvlt_is_as_quick(interpreter_arguments, folders):
    command = [sys.executable, *interpreter_arguments, "predict", "missing.mp4", "--model", "x"]
    result, modules = imported_modules(command, folders["root"])
    assert result.returncode == 2 and "no such video file" in result.stderr, result.stderr
    assert not modules & set(HEAVY)


def test_every_subcommand_module_imports_without_torch_or_transformers(folders):
    script = (  # imported as the console script does (`from tvlt.cli import main`)
        "from tvlt.cli import build_parser\n"
        "import sys, importlib\n"
        "from tvlt.commands import SUBCOMMANDS\n"
        "for name in SUBCOMMANDS:\n"
        "    module = importlib.import_module(f'tvlt.commands.{name}')\n"
        "    assert callable(module.run) and isinstance(module.HELP, str), name\n"
        "build_parser()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=folders["root"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


REGISTERED = "from transformers import AutoConfig\nprint(type(AutoConfig.for_model('tvlt')).__module__)\n"


def test_programs_importing_tvlt_get_the_auto_registration(folders):
    """`import tvlt` registers in a program (every in-process test relies on it); only the command line's entry
    points defer it. Three programs, at once (each imports torch and transformers)."""
    package = folders["root"] / "probe"
    package.mkdir()
    (package / "__init__.py").write_text("import tvlt\n")
    (package / "__main__.py").write_text(REGISTERED)
    programs = {
        # while `python -m probe` locates probe.__main__, sys.argv[0] is "-m" too: only `-m tvlt` defers
        "another module run with -m": ["-m", "probe"],
        # the statement that imports the package decides, not what else __main__ imports later
        "import tvlt, then tvlt.cli": ["-c", "import tvlt\nimport tvlt.cli\n" + REGISTERED],
        # importing tvlt.cli from __main__ defers, like the console script; the first class used registers
        "tvlt.cli, then a class": ["-c", "import tvlt.cli\nfrom tvlt import TvltModel\n" + REGISTERED],
    }
    running = {
        name: subprocess.Popen(
            [sys.executable, *arguments],
            cwd=folders["root"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, arguments in programs.items()
    }
    for name, process in running.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}: {err[-3000:]}"
        assert out.strip() == "tvlt.configuration_tvlt", name


def test_a_closed_pipe_ends_the_command_without_a_traceback(monkeypatch, capsys):
    """`tvlt predict ... | head` printed a BrokenPipeError traceback once the reader had gone."""
    from tvlt import cli
    from tvlt.commands import predict

    def write_a_lot(args):
        for _ in range(1000):
            print("x" * 1000)
        sys.stdout.flush()
        return 0

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    stdout = os.fdopen(write_end, "w")
    monkeypatch.setattr(predict, "validate", lambda args: None)
    monkeypatch.setattr(predict, "run", write_a_lot)
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        assert cli.main(["predict", "clip.mp4", "--model", "m"]) == 141
    finally:
        monkeypatch.undo()
        stdout.close()
    assert capsys.readouterr().err == ""
