"""Memory and time of the pipeline over long videos read in windows (`chunk_length_s="auto"`), 5 minutes to 1 hour.

    python benchmarks/bench_long_video.py                       # 5, 20 and 60 minutes, a small random model
    python benchmarks/bench_long_video.py --minutes 20 60 --model-size base --device cuda --batch-size 8

Each length is a generated mp4 (64x64 H.264 at 4 fps with a keyframe every second, mono AAC at 16 kHz, 24 kbit/s;
scenes change every 20 s), written once into `--workdir` (reused if there). Each run is a fresh child process, which
builds a random-weight classifier (the TVLT-base processor, so ~24 s windows of 8 frames; `--model-size small`: a
2-layer width-64 encoder, so that the forward does not dominate on a CPU; `base`: the TVLT-base encoder), reads the
whole video with the pipeline and reports: windows, wall time, time per window, the resident memory after loading,
and the peak resident memory while reading (the kernel's high-water mark, reset after loading). Flat memory means the
same peak for 20 and 60 minutes (within 10%).

For comparison, in the same run, the naive way (`--no-naive` skips it): decoding the whole audio track and every
frame first, then cutting windows out of the arrays, whose peak grows with the length of the video (here modestly,
because the generated frames are tiny: a real 480x360 video at 25 fps would need ~46 GB per hour of frames).

Prints a markdown table; numbers depend on the machine and its load: rerun rather than quote.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_name, proc_bytes  # benchmarks/ is on sys.path when the script runs


REPO_ROOT = Path(__file__).resolve().parents[1]
FLAT_TOLERANCE = 0.10


def video_path(workdir: Path, minutes: float) -> Path:
    path = workdir / f"long_{minutes:g}min.mp4"
    if not path.exists():
        sys.path.insert(0, str(REPO_ROOT / "tests"))
        from _av_toys import write_long_clip  # the clip generator of the tests (tests/test_chunking.py)

        started = time.perf_counter()
        partial = path.with_suffix(".partial.mp4")
        write_long_clip(partial, minutes * 60.0, size=64)
        partial.rename(path)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - started:.0f} s")
    return path


# -- child process --------------------------------------------------------------------------------------------------


def worker(path: str, mode: str, model_size: str, device: str, batch_size: int) -> None:
    import torch
    from _model_worker import reset_peak_rss, rss_bytes
    from transformers.utils import logging

    from tvlt import (
        TvltAudioVisualClassificationPipeline,
        TvltConfig,
        TvltFeatureExtractor,
        TvltForAudioVisualClassification,
        TvltImageProcessor,
        TvltProcessor,
    )

    logging.set_verbosity_error()
    # TVLT-base preprocessing: 224x224, 8 frames, 2048 spectrogram frames (~24 s)
    processor = TvltProcessor(TvltImageProcessor(), TvltFeatureExtractor())
    small = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    labels = {0: "negative", 1: "neutral", 2: "positive"}
    config = TvltConfig(**(small if model_size == "small" else {}), num_labels=3, id2label=labels)
    torch.manual_seed(0)
    model = TvltForAudioVisualClassification(config).eval()
    classifier = TvltAudioVisualClassificationPipeline(model=model, processor=processor, device=device)
    loaded = rss_bytes()
    reset_peak_rss()
    started = time.perf_counter()
    if mode == "windows":
        result = classifier(path, chunk_length_s="auto", batch_size=batch_size)
        windows = len(result["windows"])
    else:  # the naive way: everything decoded first, windows cut from the arrays
        from tvlt.media_tvlt import load_audio, read_video

        video = read_video(path, None)
        waveform, rate = load_audio(path)
        seconds = len(waveform) / rate
        span = classifier.clip_preparer.max_audio_seconds
        windows = 0
        start = 0.0
        while start < seconds:
            first, stop = int(start * video.fps), int((start + span) * video.fps)
            frames = video.frames[first:stop]
            audio = waveform[int(start * rate) : int((start + span) * rate)]
            classifier({"video": frames, "audio": audio, "sampling_rate": rate})
            windows += 1
            start += span
    elapsed = time.perf_counter() - started
    print(json.dumps({"windows": windows, "seconds": elapsed, "loaded": loaded, "peak": proc_bytes("VmHWM")}))


# -- this process ---------------------------------------------------------------------------------------------------


def run(path: Path, mode: str, args) -> dict:
    command = [sys.executable, __file__, "--worker", str(path), "--mode", mode, "--model-size", args.model_size]
    command += ["--device", args.device, "--batch-size", str(args.batch_size)]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        raise SystemExit(f"worker failed ({mode}, {path}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 20, 60], help="video lengths")
    parser.add_argument("--model-size", choices=("small", "base"), default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=1, help="windows per forward pass")
    parser.add_argument("--workdir", help="where the videos are written and reused (default: a temporary folder)")
    parser.add_argument("--no-naive", action="store_true", help="skip the decode-everything-first comparison")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="windows", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.mode, args.model_size, args.device, args.batch_size)
        return

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(args.workdir or scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        rows = []
        for minutes in args.minutes:
            path = video_path(workdir, minutes)
            for mode in ("windows",) if args.no_naive else ("windows", "naive"):
                rows.append({"minutes": minutes, "mode": mode, **run(path, mode, args)})
                print(f"  {minutes:g} min, {mode}: {rows[-1]}", file=sys.stderr)

    import torch
    import transformers

    print(
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f}; device "
        f"{args.device}; Python {platform.python_version()}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}. Model: {args.model_size} (random weights), TVLT-base processor; batch size "
        f"{args.batch_size}.\n"
    )
    print(
        "| video | reading | windows | wall time (s) | s / window | RSS after loading (MiB) | peak RSS reading (MiB) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    names = {"windows": 'chunk_length_s="auto"', "naive": "decode everything first"}
    for row in rows:
        print(
            f"| {row['minutes']:g} min | {names[row['mode']]} | {row['windows']} | {row['seconds']:.1f} | "
            f"{row['seconds'] / row['windows']:.3f} | {row['loaded'] / 2**20:.0f} | {row['peak'] / 2**20:.0f} |"
        )
    windowed = {row["minutes"]: row["peak"] for row in rows if row["mode"] == "windows"}
    if len(windowed) > 1:
        shortest, longest = min(windowed), max(windowed)
        ratio = windowed[longest] / windowed[shortest]
        verdict = "flat" if abs(ratio - 1) <= FLAT_TOLERANCE else "NOT flat"
        print(
            f"\nPeak RSS while reading, {longest:g} min / {shortest:g} min: {ratio:.3f} ({verdict}: within "
            f"{FLAT_TOLERANCE:.0%} is the target)."
        )


if __name__ == "__main__":
    main()
