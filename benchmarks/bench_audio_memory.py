"""Peak memory of `TvltFeatureExtractor()(path)` on a long audio file, against the size of its waveform.

    python benchmarks/bench_audio_memory.py                      # a generated 60-minute mono FLAC at 44.1 kHz
    python benchmarks/bench_audio_memory.py --baseline-code DIR  # also another checkout (e.g. `git archive main`)

Each measurement runs in a fresh child process (this file with `--worker`): after the imports and a warm-up call on a
short clip, it records its resident memory, runs one call on the file, and reports the peak resident memory above that
level (`ru_maxrss`). The cases are:

- `read the file`: `load_audio(path)` alone, i.e. the float32 waveform: the floor any reader of the whole file pays;
- `extractor, <mode>`: `TvltFeatureExtractor(preprocessing_mode=<mode>)(path)`, for both preprocessing modes.

With `--baseline-code`, the same cases also run on the code in DIR (a checkout root, imported as `tvlt`), and the
outputs of both are compared. Prints a markdown table; numbers depend on the machine: rerun rather than quote.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import cpu_name, proc_bytes  # benchmarks/ is on sys.path when the script runs


SAMPLING_RATE = 44100
CASES = {
    "read": "read the file (the waveform)",
    "transformers": 'extractor, `preprocessing_mode="transformers"`',
    "original": 'extractor, `preprocessing_mode="original"`',
}


def write_long_flac(path: Path, minutes: float) -> int:
    """A mono 16-bit FLAC of `minutes` of speech-like noise bursts, written block by block; returns its samples."""
    import soundfile

    total = int(minutes * 60 * SAMPLING_RATE)
    rng = np.random.default_rng(0)
    block = 10 * SAMPLING_RATE
    envelope = (0.5 + 0.5 * np.sin(np.linspace(0, 20 * np.pi, block))).astype(np.float32)
    with soundfile.SoundFile(path, "w", SAMPLING_RATE, 1, subtype="PCM_16", format="FLAC") as sink:
        for start in range(0, total, block):
            count = min(block, total - start)
            sink.write(0.1 * envelope[:count] * rng.standard_normal(count).astype(np.float32))
    return total


# -- child process ----------------------------------------------------------------------------------------------------


def worker(case: str, path: str, code: str | None, output: str) -> None:
    if code:  # import the checkout in `code` as `tvlt`
        link_folder = Path(tempfile.mkdtemp())
        (link_folder / "tvlt").symlink_to(Path(code).resolve(), target_is_directory=True)
        sys.path.insert(0, str(link_folder))
    import logging

    from tvlt.feature_extraction_tvlt import TvltFeatureExtractor
    from tvlt.media_tvlt import load_audio

    logging.disable(logging.WARNING)
    if case == "read":
        function = lambda source: load_audio(source)[0]  # noqa: E731
    else:
        extractor = TvltFeatureExtractor(preprocessing_mode=case)
        function = lambda source: extractor(source, return_tensors="np")["audio_values"]  # noqa: E731
    with tempfile.TemporaryDirectory() as scratch:  # warm-up on a short file: imports, FFT plans, filters
        import soundfile

        short = Path(scratch) / "short.flac"
        soundfile.write(short, np.zeros(SAMPLING_RATE, np.float32), SAMPLING_RATE)
        function(str(short))
    before = proc_bytes("VmRSS")
    # ru_maxrss is the process's lifetime peak: the imports and the warm-up stay far below a long file's call
    started = time.perf_counter()
    result = function(path)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    np.save(output, result if case != "read" else result[::SAMPLING_RATE])
    print(json.dumps({"peak_above_start": peak - before, "seconds": seconds}))


# -- this process -----------------------------------------------------------------------------------------------------


def run_case(case: str, path: Path, code: str | None, output: Path) -> dict:
    command = [sys.executable, __file__, "--worker", case, "--file", str(path), "--output", str(output)]
    if code:
        command += ["--code", code]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if result.returncode != 0:
        raise SystemExit(f"worker {case} ({code or 'this checkout'}) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the generated file")
    parser.add_argument("--baseline-code", help="another checkout root to measure in the same run (imported as tvlt)")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--worker", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.file, args.code, args.output)
        return

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "long.flac"
        num_samples = write_long_flac(path, args.minutes)
        waveform_mib = num_samples * 4 / 2**20
        sides = [("ours", None)] + ([("baseline", args.baseline_code)] if args.baseline_code else [])
        rows = []
        for case in args.cases:
            results = {}
            for side, code in sides:
                output = Path(scratch) / f"{case}-{side}.npy"
                results[side] = run_case(case, path, code, output)
                results[side]["output"] = output
            if "baseline" in results:
                ours, baseline = np.load(results["ours"]["output"]), np.load(results["baseline"]["output"])
                same_shape = ours.shape == baseline.shape
                results["difference"] = float(np.abs(ours - baseline).max()) if same_shape else float("inf")
            rows.append((case, results))

    print(
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f}; Python "
        f"{platform.python_version()}, numpy {np.__version__}."
    )
    print(
        f"File: {args.minutes:g} min mono 16-bit FLAC at {SAMPLING_RATE} Hz; its float32 waveform is "
        f"{waveform_mib:.0f} MiB. Peak = the call's peak resident memory above the level after a warm-up.\n"
    )
    header = "| case | ours: peak MiB (x waveform) | ours: s |"
    rule = "|---|---:|---:|"
    if args.baseline_code:
        header += " baseline: peak MiB (x waveform) | baseline: s | max abs difference |"
        rule += "---:|---:|---:|"
    print(header)
    print(rule)
    for case, results in rows:
        line = f"| {CASES[case]} |"
        for side, _ in sides:
            peak = results[side]["peak_above_start"] / 2**20
            line += f" {peak:.0f} ({peak / waveform_mib:.2f}x) | {results[side]['seconds']:.1f} |"
        if "difference" in results:
            line += f" {results['difference']:.1e} |"
        print(line)


if __name__ == "__main__":
    main()
