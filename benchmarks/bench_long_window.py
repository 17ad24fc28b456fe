"""Reading a 1-second window of a one-hour video: only the window is decoded (issue 9).

    python benchmarks/bench_long_window.py            # --seconds 3600 --start 3500 --end 3501 --keep FILE

`tvlt predict long.mp4 --start 3500 --end 3501` once decoded the audio track from 0 up to the window (1.2 GB,
11.6 s on an hour). A one-hour mp4 (32x32 H.264 at 30 fps with a keyframe every 2 s, mono AAC at 44.1 kHz) is made
in a temporary folder in seconds (10 s encoded once, its packets repeated; also as mkv), then each case runs in a
fresh process: wall time, peak RSS above the process after its imports, and what was decoded (counted by wrapping
`av.open`). Cases:

- audio, the naive way (what the clip preparer did before): `load_audio(path, end=end)`, then cut at `start`;
- audio, ours: `load_audio(path, start=start, end=end)` (seeks a 0.5 s pre-roll before `start`);
- video frames, the naive way: decode every frame from the start up to the window, keep the 8 sampled ones;
- video frames, ours: `read_video(path, 8, start=start, end=end)`;
- the same of the file written as Matroska, whose header declares no frame count (counting the packets would read
  the whole file);
- the clip preparer (what `tvlt predict` and the pipeline run), TVLT-base processor settings, ours.

Prints a markdown table; numbers depend on the machine and its load: rerun rather than quote.
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_name  # benchmarks/ is on sys.path when the script runs


REPO_ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "audio_naive": "audio, naive: decode from 0 to the window end, cut",
    "audio": "audio, ours: `load_audio(start=, end=)`",
    "video_naive": "8 video frames, naive: decode from 0 to the window",
    "video": "8 video frames, ours: `read_video(start=, end=)`",
    "video_mkv": "the same, the file as Matroska (no frame count)",
    "clip": "clip preparer (`tvlt predict`, pipeline), ours",
}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def worker(case: str, path: str, start: float, end: float) -> None:
    """Run one case in this (fresh) process; print its measurements as JSON."""
    import av
    import numpy as np

    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from _preprocessing_utils import DecodeCounter

    from tvlt import TvltFeatureExtractor, TvltImageProcessor, TvltProcessor
    from tvlt.inputs_tvlt import AudioVisualClip, TvltClipPreparer
    from tvlt.media_tvlt import load_audio, read_video, sample_frame_indices

    counter = DecodeCounter(av)
    av.open = counter
    preparer = TvltClipPreparer(TvltProcessor(TvltImageProcessor(), TvltFeatureExtractor()))
    baseline = _peak_rss_mib()
    started = time.perf_counter()
    if case == "audio_naive":
        waveform, rate = load_audio(path, end=end)
        result = waveform[round(start * rate) :].shape
    elif case == "audio":
        result = load_audio(path, start=start, end=end)[0].shape
    elif case == "video_naive":
        with counter._open(path) as container:  # uncounted: counted below by hand
            stream = container.streams.video[0]
            fps = float(stream.average_rate)
            first, stop = round(start * fps), round(end * fps)
            wanted = set((first + sample_frame_indices(stop - first, 8)).tolist())
            kept = []
            for frame in container.decode(stream):
                index = round(frame.time * fps)
                counter.frames[path] = counter.frames.get(path, 0) + 1
                if index in wanted:
                    kept.append(frame.to_ndarray(format="rgb24"))
                if index >= stop - 1:
                    break
        result = np.stack(kept).shape
    elif case in ("video", "video_mkv"):
        result = read_video(path, 8, start=start, end=end).frames.shape
    else:
        inputs = preparer(AudioVisualClip(video=path, start=start, end=end))
        result = f"{tuple(inputs['pixel_values'].shape)}, {tuple(inputs['audio_values'].shape)}"
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_mib": _peak_rss_mib() - baseline,
                "video_frames": counter.frames.get(path, 0),
                "audio_packets": counter.audio_packets.get(path, 0),
                "result": str(result),
            }
        )
    )


def run_case(case: str, path: Path, start: float, end: float) -> dict:
    command = [sys.executable, __file__, "--worker", case, "--file", str(path), "--start", str(start)]
    completed = subprocess.run([*command, "--end", str(end)], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"case {case} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3600.0, help="length of the generated file (default: 1 h)")
    parser.add_argument("--start", type=float, default=3500.0)
    parser.add_argument("--end", type=float, default=3501.0)
    parser.add_argument("--keep", type=Path, help="write the generated file here (and reuse it if it exists)")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--worker", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.file, args.start, args.end)
        return

    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from _av_toys import write_long_clip

    with tempfile.TemporaryDirectory() as folder:
        path = args.keep or Path(folder, "long.mp4")
        made = 0.0
        for file in (path, path.with_suffix(".mkv")):
            if not file.exists():
                started = time.perf_counter()
                write_long_clip(
                    file, args.seconds, fps=30, sampling_rate=44100, keyframe_interval_s=2.0, repeat_s=10.0
                )
                made += time.perf_counter() - started
        rows = {
            case: run_case(case, path.with_suffix(".mkv") if case == "video_mkv" else path, args.start, args.end)
            for case in args.cases
        }
        size = path.stat().st_size / 2**20

    import torch

    print(
        f"{cpu_name()}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}; a "
        f"{args.seconds:.0f} s mp4 ({size:.0f} MiB; it and its mkv made in {made:.0f} s), window "
        f"[{args.start:g} s, {args.end:g} s); "
        "each case in a fresh process, peak RSS above the process after its imports.\n"
    )
    print("| case | wall (s) | peak memory (MiB) | video frames decoded | audio packets read | output |")
    print("|---|---:|---:|---:|---:|---|")
    for case, row in rows.items():
        print(
            f"| {CASES[case]} | {row['seconds']:.2f} | {row['peak_mib']:.0f} | {row['video_frames']} | "
            f"{row['audio_packets']} | {row['result']} |"
        )


if __name__ == "__main__":
    main()
