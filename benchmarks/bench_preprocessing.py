"""Speed of the TVLT preprocessing against transformers 4.40.2, in the same run, with identical outputs checked.

    python benchmarks/bench_preprocessing.py --reference-python /path/to/venv-4.40.2/bin/python

(or set TVLT_REFERENCE_PYTHON; without one, only our timings are printed). Cases (issue 3):

- feature extraction of 8 clips x 10 s of noise at 44.1 kHz (`TvltFeatureExtractor`, target >= 10x faster);
- image preprocessing of 8 videos x 8 frames of 360x640 uint8 noise (`TvltImageProcessor`, target >= 3x faster).

4.40.2 cannot be imported next to transformers 5.x, so it runs in a child process (this file with `--worker`),
which times it and saves its outputs; ours runs in this process on the same seeded inputs, and the two outputs are
compared. Both sides alternate over `--rounds` rounds of `--repeats` calls and report their fastest call (the
least disturbed by other load). `--threads` sets torch's thread count, which bounds the threads our
preprocessing uses (PIL resizes, FFT workers); the child gets the same value through OMP/OpenBLAS variables.
Prints a markdown table; numbers depend on the machine and its load: rerun rather than quote.
"""

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import cpu_name  # benchmarks/ is on sys.path when the script runs


CASES = {
    "feature_extraction": "feature extraction, 8 clips x 10 s at 44.1 kHz",
    "image_processing": "image preprocessing, 8 videos x 8 frames 360x640",
}
TARGETS = {"feature_extraction": 10.0, "image_processing": 3.0}
OUTPUT_KEYS = {"feature_extraction": "audio_values", "image_processing": "pixel_values"}


def make_inputs(case: str):
    rng = np.random.default_rng(0)
    if case == "feature_extraction":
        return [(0.1 * rng.standard_normal(441000)).astype(np.float32) for _ in range(8)]
    return [rng.integers(0, 256, (8, 360, 640, 3), dtype=np.uint8) for _ in range(8)]


def make_callable(case: str, classes):
    image_processor_class, feature_extractor_class = classes
    inputs = make_inputs(case)
    if case == "feature_extraction":
        extractor = feature_extractor_class()
        return lambda: extractor(inputs, sampling_rate=44100, return_tensors="np")
    processor = image_processor_class()
    return lambda: processor(inputs, return_tensors="np")


def time_calls(function, repeats: int) -> tuple[list[float], list[float], dict]:
    """Wall-clock and CPU seconds (all threads of this process) of each call, and the last call's outputs."""
    wall, cpu, outputs = [], [], None
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        outputs = function()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu, outputs


# -- child process (transformers 4.40.2) ----------------------------------------------------------------------------


def worker(case: str, repeats: int, output: str) -> None:
    import logging
    import warnings

    import transformers
    from transformers import TvltFeatureExtractor, TvltImageProcessor

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    function = make_callable(case, (TvltImageProcessor, TvltFeatureExtractor))
    function()  # warm-up: imports, FFT plans
    wall, cpu, outputs = time_calls(function, repeats)
    np.save(output, np.asarray(outputs[OUTPUT_KEYS[case]]))
    print(json.dumps({"wall": wall, "cpu": cpu, "transformers": transformers.__version__}))


# -- this process ---------------------------------------------------------------------------------------------------


def run_reference(python: str, case: str, repeats: int, output: Path, threads: int) -> dict:
    thread_variables = {name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    environment = {**os.environ, **thread_variables, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    command = [python, __file__, "--worker", case, "--repeats", str(repeats), "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        raise SystemExit(f"4.40.2 worker failed ({python}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-python", default=os.environ.get("TVLT_REFERENCE_PYTHON"))
    parser.add_argument("--repeats", type=int, default=3, help="calls per round and side")
    parser.add_argument("--rounds", type=int, default=2, help="alternations between 4.40.2 and ours")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own)")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--worker", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.repeats, args.output)
        return

    import PIL
    import torch
    import transformers

    from tvlt import TvltFeatureExtractor, TvltImageProcessor  # the installed package (`pip install -e .`)

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    rows = []
    reference_version = None
    with tempfile.TemporaryDirectory() as scratch:
        for case in args.cases:
            ours = make_callable(case, (TvltImageProcessor, TvltFeatureExtractor))
            ours()  # warm-up
            timings = {"ours": ([], []), "reference": ([], [])}
            outputs = None
            for _ in range(args.rounds):
                if args.reference_python:
                    reference = run_reference(
                        args.reference_python, case, args.repeats, Path(scratch) / "ref.npy", threads
                    )
                    timings["reference"][0].extend(reference["wall"])
                    timings["reference"][1].extend(reference["cpu"])
                    reference_version = reference["transformers"]
                wall, cpu, outputs = time_calls(ours, args.repeats)
                timings["ours"][0].extend(wall)
                timings["ours"][1].extend(cpu)
            row = {"case": CASES[case], "target": TARGETS[case], "ours": tuple(map(min, timings["ours"]))}
            if reference_version:
                reference_output = np.load(Path(scratch) / "ref.npy")
                ours_output = np.asarray(outputs[OUTPUT_KEYS[case]])
                same_shape = ours_output.shape == reference_output.shape
                row.update(
                    reference=tuple(map(min, timings["reference"])),
                    difference=float(np.abs(ours_output - reference_output).max()) if same_shape else float("inf"),
                )
            rows.append(row)

    print(
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"torch threads: {threads}."
    )
    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, Pillow {PIL.__version__}, torch "
        f"{torch.__version__}; ours on transformers {transformers.__version__}"
        + (f", reference transformers {reference_version}." if reference_version else ".")
    )
    print(
        f"Fastest of {args.rounds * args.repeats} calls per side; wall-clock time, and CPU time of all the process's "
        "threads (less sensitive to other load on the machine).\n"
    )
    if reference_version:
        print(
            f"| case | transformers {reference_version} wall / CPU | ours wall / CPU | speed-up wall / CPU | target | "
            "max abs difference |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for row in rows:
            (reference_wall, reference_cpu), (ours_wall, ours_cpu) = row["reference"], row["ours"]
            speedup_wall, speedup_cpu = reference_wall / ours_wall, reference_cpu / ours_cpu
            verdict = "met" if speedup_wall >= row["target"] else "missed"
            print(
                f"| {row['case']} | {reference_wall * 1000:.0f} / {reference_cpu * 1000:.0f} ms | "
                f"{ours_wall * 1000:.0f} / {ours_cpu * 1000:.0f} ms | {speedup_wall:.1f}x / {speedup_cpu:.1f}x | "
                f">= {row['target']:.0f}x ({verdict}) | {row['difference']:.1e} |"
            )
    else:
        print("| case | ours wall / CPU |")
        print("|---|---:|")
        for row in rows:
            print(f"| {row['case']} | {row['ours'][0] * 1000:.0f} / {row['ours'][1] * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
