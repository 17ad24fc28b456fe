"""Forward latency and peak memory of TvltModel at TVLT-base size, against transformers 4.40.2 in the same run.

    python benchmarks/bench_model.py --reference-python /path/to/venv-4.40.2/bin/python

(or set TVLT_REFERENCE_PYTHON). Input: 8 frames 224x224 + a 2048x128 spectrogram, batch 1, fp32, CPU; random
TVLT-base weights saved once and loaded by both sides, whose outputs are compared. Each implementation runs in a
fresh child process (`_model_worker.py`) so its peak memory is its own. Also prints the matmul floor: the forward's
FLOPs (counted by torch's FlopCounterMode) divided by the best GEMM rate measured on this machine.
Prints a markdown table. Numbers depend on the machine: rerun rather than quote.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _machine import cpu_name  # benchmarks/ is on sys.path when the script runs


WORKER = Path(__file__).with_name("_model_worker.py")


def run_worker(python: str, weights: Path, out: Path, repeats: int, threads: int, attn: str | None) -> dict:
    command = [python, str(WORKER), "--weights", str(weights), "--repeats", str(repeats), "--save-output", str(out)]
    if threads:
        command += ["--threads", str(threads)]
    if attn:
        command += ["--attn", attn]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"benchmark worker failed ({python}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def gemm_rate(threads: int) -> float:
    """Best fp32 GEMM rate (FLOP/s) over the shapes the forward uses and a large square one."""
    if threads:
        torch.set_num_threads(threads)
    best = 0.0
    for m, k, n in [(2593, 768, 3072), (2593, 3072, 768), (2593, 768, 768), (2048, 2048, 2048)]:
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(2):
            a @ b
        repeats = 8
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * m * k * n * repeats / (time.perf_counter() - start))
    return best


def forward_flops(model, inputs) -> int:
    """FLOPs of one forward. Counted under eager attention: the counter does not see inside the fused sdpa kernel."""
    from torch.utils.flop_counter import FlopCounterMode

    model.set_attn_implementation("eager")
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--reference-python",
        default=os.environ.get("TVLT_REFERENCE_PYTHON"),
        help="python with transformers==4.40.2 (default: $TVLT_REFERENCE_PYTHON)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per implementation (after one warm-up)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's default)")
    parser.add_argument("--attn", nargs="+", default=["sdpa", "eager"], help="our attention implementations to time")
    args = parser.parse_args()
    if not args.reference_python:
        parser.error("--reference-python (or TVLT_REFERENCE_PYTHON) is required: a python with transformers==4.40.2")

    import transformers

    import tvlt
    from tvlt import TvltConfig, TvltModel

    torch.manual_seed(0)
    config = TvltConfig()
    model = TvltModel(config).eval()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model.save_pretrained(tmp / "weights")
        g = torch.Generator().manual_seed(0)
        inputs = {
            "pixel_values": torch.randn(1, 8, 3, 224, 224, generator=g),
            "audio_values": torch.rand(1, 1, 2048, 128, generator=g) * 2 - 1,
        }
        flops = forward_flops(model, inputs)
        del model

        rows = [
            (
                "reference",
                run_worker(args.reference_python, tmp / "weights", tmp / "ref.pt", args.repeats, args.threads, None),
            )
        ]
        for attn in args.attn:
            rows.append(
                (
                    attn,
                    run_worker(sys.executable, tmp / "weights", tmp / f"{attn}.pt", args.repeats, args.threads, attn),
                )
            )
        reference_output = torch.load(tmp / "ref.pt")
        errors = {
            attn: (
                (torch.load(tmp / f"{attn}.pt") - reference_output).abs().max() / reference_output.abs().max()
            ).item()
            for attn, _ in rows[1:]
        }
    rate = gemm_rate(args.threads)
    floor = flops / rate

    reference = rows[0][1]
    print(
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__}, threads {reference['threads']}; "
        f"ours on transformers {transformers.__version__}, tvlt {tvlt.__version__}"
    )
    print(
        f"TvltModel forward, TVLT-base, batch 1, 8x3x224x224 video + 1x2048x128 spectrogram, fp32, CPU; "
        f"median of {args.repeats} after 1 warm-up."
    )
    print(
        f"Matmul floor: {flops / 1e9:.0f} GFLOP / {rate / 1e9:.0f} GFLOP/s (best measured fp32 GEMM) = {floor:.2f} s\n"
    )
    print(
        "| implementation | median (s) | min (s) | speed-up vs 4.40.2 | / matmul floor | peak forward memory (MiB) "
        "| memory vs 4.40.2 | max rel. error vs 4.40.2 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for attn, row in rows:
        speedup = reference["median_s"] / row["median_s"]
        memory = row["peak_forward_bytes"] / reference["peak_forward_bytes"]
        error = "-" if attn == "reference" else f"{errors[attn]:.1e}"
        print(
            f"| {row['name']} | {row['median_s']:.2f} | {row['min_s']:.2f} | {speedup:.2f}x "
            f"| {row['median_s'] / floor:.2f}x "
            f"| {row['peak_forward_bytes'] / 2**20:.0f} | {memory:.2f}x | {error} |"
        )


if __name__ == "__main__":
    main()
