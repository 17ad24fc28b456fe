"""How fast the `tvlt` command line answers: wall time of `--help`, `--version` and argument/file errors.

    python benchmarks/bench_cli.py [--runs 7]

Each case runs `--runs` times as a fresh process (the console script `tvlt` next to this Python, else
`python -m tvlt`), alternating between the cases so that load changes hit all of them alike; the table gives the
median and the fastest run, and whether the process imported torch or transformers (from Python's import profile).
References in the same run: an empty interpreter, `import torch`, `import tvlt` as a program does it (with the Auto
registration, which imports torch and transformers), and the command line as it was before the registration was
deferred (`import tvlt` first, then the command: what `tvlt --help` cost until then). Target: under 0.5 s.
Prints a markdown table; numbers depend on the machine and its load: rerun rather than quote.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_name  # benchmarks/ is on sys.path when the script runs


REPO_ROOT = Path(__file__).resolve().parents[1]
CLIP = REPO_ROOT / "examples" / "assets" / "talking_face.mp4"
HEAVY = ("torch", "transformers")


def command_line() -> list[str]:
    script = Path(sys.executable).with_name("tvlt")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tvlt"]


def eagerly(arguments: list[str]) -> list[str]:
    """The command with TVLT registered at import, as `tvlt` did before the registration was deferred."""
    program = "import sys, tvlt, tvlt.cli; sys.argv[0] = 'tvlt'; sys.exit(tvlt.cli.main(sys.argv[1:]))"
    return [sys.executable, "-c", program, *arguments]


def cases(workdir: Path) -> list[tuple[str, list[str], int]]:
    """(name, command, expected exit code)."""
    tvlt = command_line()
    missing_file = ["predict", "missing.mp4", "--model", str(workdir)]
    bad_argument = ["predict", str(CLIP), "--model", str(workdir), "--start", "inf"]
    return [
        ("python -c pass (interpreter start-up)", [sys.executable, "-c", "pass"], 0),
        ("python -c 'import torch'", [sys.executable, "-c", "import torch"], 0),
        ("python -c 'import tvlt' (a program: registers)", [sys.executable, "-c", "import tvlt"], 0),
        ("tvlt --help", [*tvlt, "--help"], 0),
        ("tvlt predict --help", [*tvlt, "predict", "--help"], 0),
        ("tvlt --version", [*tvlt, "--version"], 0),
        ("tvlt predict missing.mp4 ... (file error)", [*tvlt, *missing_file], 2),
        ("tvlt predict clip.mp4 ... --start inf (argument error)", [*tvlt, *bad_argument], 2),
        ("before: tvlt --help (registered at import)", eagerly(["--help"]), 0),
        ("before: tvlt predict missing.mp4 ... (file error)", eagerly(missing_file), 2),
    ]


def run_once(command: list[str], expected: int, workdir: Path) -> tuple[float, bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPROFILEIMPORTTIME="1", HF_HUB_OFFLINE="1")
    started = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != expected:
        sys.exit(f"{command}: exit code {result.returncode}, expected {expected}\n{result.stderr[-2000:]}")
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "import time:" in line
    }
    return elapsed, bool(imported & set(HEAVY))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per case (default: 7)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        (workdir / "config.json").write_text('{"model_type": "tvlt"}')
        table = cases(workdir)
        times = {name: [] for name, _, _ in table}
        heavy = {}
        for _ in range(args.runs):
            for name, command, expected in table:
                elapsed, heavy[name] = run_once(command, expected, workdir)
                times[name].append(elapsed)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{cpu_name()}, {os.cpu_count()} CPUs, load average {load:.1f} at the end; "
        f"Python {platform.python_version()}; {args.runs} runs per case, fresh processes, import profiling on "
        "(adds a few ms)\n"
    )
    print("| case | median (s) | fastest (s) | imports torch/transformers |")
    print("|---|---:|---:|---|")
    for name, _, _ in table:
        print(
            f"| {name} | {statistics.median(times[name]):.2f} | {min(times[name]):.2f} | "
            f"{'yes' if heavy[name] else 'no'} |"
        )


if __name__ == "__main__":
    main()
