"""Child process of `bench_model.py`: time one TVLT forward implementation in a fresh process.

Runs under either transformers 4.40.2 (reference: `transformers.TvltModel`) or 5.x (this project: `tvlt.TvltModel`),
so both are measured the same way. Prints one JSON line.
"""

import argparse
import json
import resource
import statistics
import time

import torch
from _machine import proc_bytes, reset_peak_rss  # benchmarks/ is on sys.path when the script runs


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True, help="save_pretrained folder of a TvltModel")
    parser.add_argument("--attn", default=None, help="attention implementation (5.x only)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--save-output", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import transformers

    if transformers.__version__.startswith("4."):
        from transformers import TvltModel

        model = TvltModel.from_pretrained(args.weights)
        name = f"transformers {transformers.__version__} (eager)"
    else:
        import tvlt  # noqa: F401
        from tvlt import TvltModel

        kwargs = {"attn_implementation": args.attn} if args.attn else {}
        model = TvltModel.from_pretrained(args.weights, **kwargs)
        name = f"tvlt on transformers {transformers.__version__} ({model.config._attn_implementation})"
    model.eval()
    config = model.config
    g = torch.Generator().manual_seed(0)
    pixel_values = torch.randn(
        args.batch_size, config.num_frames, 3, config.image_size, config.image_size, generator=g
    )
    audio_values = (
        torch.rand(args.batch_size, 1, config.spectrogram_length, config.frequency_length, generator=g) * 2 - 1
    )

    # safetensors weights are memory-mapped: page them in now, or the forward's peak would include the weights
    with torch.no_grad():
        for param in model.parameters():
            param.sum()
    rss_before = rss_bytes()
    reset_peak_rss()
    times = []
    with torch.inference_mode():
        start = time.perf_counter()
        output = model(pixel_values, audio_values).last_hidden_state
        first = time.perf_counter() - start
        peak_after_first = proc_bytes("VmHWM")
        for _ in range(args.repeats):
            start = time.perf_counter()
            model(pixel_values, audio_values)
            times.append(time.perf_counter() - start)
    if args.save_output:
        torch.save(output, args.save_output)
    print(
        json.dumps(
            {
                "name": name,
                "threads": torch.get_num_threads(),
                "first_s": first,
                "median_s": statistics.median(times),
                "min_s": min(times),
                "times_s": times,
                "peak_forward_bytes": peak_after_first - rss_before,
            }
        )
    )


if __name__ == "__main__":
    main()
