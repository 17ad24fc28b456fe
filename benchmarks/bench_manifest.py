"""A batch job over a large manifest: time to its first batch and memory, against a small manifest in the same run.

    python benchmarks/bench_manifest.py                     # 500 and 50,000 rows
    python benchmarks/bench_manifest.py --rows 500,50000,200000 --runs 3

A manifest of `--rows` rows (`video,id`: a few generated clips repeated under distinct ids, every row decoded anew)
goes through `tvlt embed MANIFEST --out RESULTS.jsonl` with the demo checkpoint (examples/make_demo_checkpoint.py: a
narrow model, so that what is measured is the job's handling of its rows, not the forward pass), each run a fresh
process. Measured per run: the time from the start of the process to the first part on disk (its first batch
embedded and written: `--rows-per-part` equals `--batch-size`), the part of it spent checking the manifest (every row
is checked before anything runs: columns, windows, repeated ids), the peak RSS of the job's process when its first
part is written (`VmHWM`) and the largest RSS of its decoding workers; the job is then interrupted (Ctrl-C: it writes
what it holds and exits 130). transformers 4.40.2 had no batch job, so there is nothing of it to compare with here;
the 500-row run is the baseline. Prints a markdown table; numbers depend on the machine and its load (printed).
"""

import argparse
import csv
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_name, descendants, proc_bytes  # benchmarks/ is on sys.path when the script runs
from bench_batch import write_clip


REPO_ROOT = Path(__file__).resolve().parents[1]


def write_clips(folder: Path, count: int) -> list[Path]:
    """`count` short mp4s (H.264 + AAC, 64x64 at 8 fps, 1 s): small, since the rows are measured, not the decoding."""
    paths = [folder / f"clip{seed}.mp4" for seed in range(count)]
    for seed, path in enumerate(paths):
        write_clip(path, 1.0, seed, size=(64, 64), fps=8)
    return paths


def write_manifest(path: Path, clips: list[Path], rows: int) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "id"])
        for index in range(rows):
            writer.writerow([clips[index % len(clips)].name, f"row{index:07d}"])
    return path


def time_manifest_check(manifest: Path, out: Path) -> float:
    """Seconds `tvlt embed` spends listing and checking the manifest's rows before anything else (in this process)."""
    from tvlt.commands._batch import list_clips

    started = time.perf_counter()
    rows = list_clips([str(manifest)], out=str(out))
    elapsed = time.perf_counter() - started
    assert len(rows) > 0
    return elapsed


def run_job(manifest: Path, model: Path, out: Path, batch_size: int, workers: int, timeout: float) -> dict:
    command = [sys.executable, "-m", "tvlt", "embed", str(manifest), "--model", str(model), "--out", str(out)]
    command += ["--batch-size", str(batch_size), "--rows-per-part", str(batch_size), "--num-workers", str(workers)]
    command += ["--quiet", "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    first_part, worker_peak = None, 0
    while process.poll() is None and time.perf_counter() - started < timeout:
        for child in descendants(process.pid):
            worker_peak = max(worker_peak, proc_bytes("VmRSS", child))
        if out.is_dir() and any(out.glob("part-*.jsonl")):
            first_part = time.perf_counter() - started
            break
        time.sleep(0.01)
    peak = proc_bytes("VmHWM", process.pid)
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    if first_part is None:
        raise RuntimeError(f"no part written within {timeout} s: {stderr[-2000:]}")
    return {"first_part_s": first_part, "peak_mib": peak / 2**20, "worker_mib": worker_peak / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="500,50000", help="manifest sizes, comma-separated (default: 500,50000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the table gives the median (default 3)")
    parser.add_argument("--clips", type=int, default=4, help="distinct clips the rows repeat (default 4)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the first part")
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    if not sizes or min(sizes) < 1 or args.runs < 1 or args.clips < 1:
        parser.error("--rows, --runs and --clips take positive numbers")

    with tempfile.TemporaryDirectory(prefix="tvlt-bench-manifest-") as tmp:
        root = Path(tmp)
        model = root / "demo"
        subprocess.run(
            [sys.executable, str(REPO_ROOT / "examples" / "make_demo_checkpoint.py"), str(model)],
            check=True,
            capture_output=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        clips = write_clips(root, args.clips)
        results = []
        for size in sizes:
            manifest = write_manifest(root / f"rows{size}.csv", clips, size)
            check = statistics.median(time_manifest_check(manifest, root / "unused.jsonl") for _ in range(args.runs))
            runs = [
                run_job(
                    manifest, model, root / f"out{size}-{run}.jsonl", args.batch_size, args.num_workers, args.timeout
                )
                for run in range(args.runs)
            ]
            results.append(
                {
                    "rows": size,
                    "manifest_mib": manifest.stat().st_size / 2**20,
                    "check_s": check,
                    **{key: statistics.median(run[key] for run in runs) for key in runs[0]},
                }
            )

    base = results[0]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{cpu_name()}, {os.cpu_count()} CPUs, load average {load:.1f}; Python {sys.version.split()[0]}; ")
    print(f"tvlt embed, demo checkpoint, --batch-size {args.batch_size} --num-workers {args.num_workers}, CPU; ")
    print(f"median of {args.runs} runs per size\n")
    print("| manifest rows | manifest size (MiB) | checking the rows (s) | start to first part (s) | "
          "job process, peak RSS (MiB) | largest worker, RSS (MiB) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for row in results:
        ratio = "" if row is base else f" ({row['peak_mib'] / base['peak_mib']:.2f}x)"
        first = "" if row is base else f" ({row['first_part_s'] / base['first_part_s']:.2f}x)"
        print(
            f"| {row['rows']:,} | {row['manifest_mib']:.1f} | {row['check_s']:.2f} | {row['first_part_s']:.2f}{first} "
            f"| {row['peak_mib']:.0f}{ratio} | {row['worker_mib']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
