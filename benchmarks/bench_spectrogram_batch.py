"""Our log-mel spectrogram against `transformers.audio_utils.spectrogram_batch` called as transformers 4.40.2's
TvltFeatureExtractor calls `spectrogram`: largest difference to 4.40.2, time and peak memory.

    python benchmarks/bench_spectrogram_batch.py --reference-python /path/to/venv-4.40.2/bin/python

Cases: `bench_preprocessing.py`'s feature-extraction case (8 clips x 10 s of noise at 44.1 kHz, compared with 4.40.2's
output, which that script's worker computes), its first clip alone (what the pipeline passes), and one long clip
(`--long-seconds`) for memory. Both sides run the "transformers" mode in this process and give the feature
extractor's `audio_values`; time is the fastest of `--repeats` calls, memory the peak that tracemalloc sees (numpy's
allocations) in a separate call. Numbers depend on the machine and its load: rerun rather than quote.
"""

import argparse
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _machine import cpu_name  # benchmarks/ is on sys.path when the script runs
from bench_preprocessing import make_inputs, run_reference


def with_spectrogram_batch(extractor, waveforms: list[np.ndarray]) -> np.ndarray:
    """`audio_values` as 4.40.2 computes them, through `spectrogram_batch` (4.40.2's `spectrogram` call, batched)."""
    from transformers.audio_utils import mel_filter_bank, spectrogram_batch, window_function

    mel_filters = mel_filter_bank(  # 4.40.2's filters, float64
        num_frequency_bins=1 + extractor.n_fft // 2,
        num_mel_filters=extractor.feature_size,
        min_frequency=0.0,
        max_frequency=22050.0,
        sampling_rate=extractor.sampling_rate,
        norm="slaney",
        mel_scale="slaney",
    )
    spectrograms = spectrogram_batch(
        waveforms,
        window_function(extractor.n_fft, "hann"),
        frame_length=extractor.n_fft,
        hop_length=extractor.hop_length,
        power=2.0,
        mel_filters=mel_filters,
        log_mel="dB",
        db_range=80.0,
    )
    clips = [
        (np.clip((spectrogram[:, :-1] - 20.0) / 40.0, -2.0, 0.0) + 1.0).T[: extractor.spectrogram_length]
        for spectrogram in spectrograms
    ]
    patch = extractor.patch_size[0]
    length = max(-(-len(clip) // patch) * patch for clip in clips)
    audio_values = np.full((len(clips), 1, length, extractor.feature_size), extractor.padding_value, np.float32)
    for row, clip in zip(audio_values, clips, strict=True):
        row[0, : len(clip)] = clip
    return audio_values


def measure(function, repeats: int) -> tuple[float, float, float, np.ndarray]:
    """(fastest call: wall s, CPU s of all threads; peak traced memory in MiB; output)."""
    output = function()  # warm-up: imports, FFT plans, filter caches
    wall = cpu = float("inf")
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        function()
        wall, cpu = min(wall, time.perf_counter() - started), min(cpu, time.process_time() - started_cpu)
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return wall, cpu, peak, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-python", default=os.environ.get("TVLT_REFERENCE_PYTHON"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-seconds", type=float, default=120.0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (bounds our FFT workers)")
    args = parser.parse_args()

    import torch
    import transformers

    from tvlt import TvltFeatureExtractor

    if args.threads:
        torch.set_num_threads(args.threads)
    extractor = TvltFeatureExtractor()
    rng = np.random.default_rng(1)
    cases = {
        "8 clips x 10 s": make_inputs("feature_extraction"),
        "1 clip x 10 s": make_inputs("feature_extraction")[:1],
        f"1 clip x {args.long_seconds:g} s": [
            (0.1 * rng.standard_normal(int(44100 * args.long_seconds))).astype(np.float32)
        ],
    }
    reference = None
    if args.reference_python:
        with tempfile.TemporaryDirectory() as scratch:
            run_reference(
                args.reference_python, "feature_extraction", 1, Path(scratch) / "ref.npy", torch.get_num_threads()
            )
            reference = np.load(Path(scratch) / "ref.npy")

    print(
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"torch threads {torch.get_num_threads()}; transformers {transformers.__version__}, numpy {np.__version__}.\n"
    )
    print(
        "| case | implementation | wall / CPU time | peak memory | max abs diff to 4.40.2 | max abs diff ours vs it |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for case, waveforms in cases.items():
        results = {
            "ours": measure(
                lambda waveforms=waveforms: extractor(waveforms, sampling_rate=44100, return_tensors="np")[
                    "audio_values"
                ],
                args.repeats,
            ),
            "spectrogram_batch": measure(
                lambda waveforms=waveforms: with_spectrogram_batch(extractor, waveforms), args.repeats
            ),
        }
        between = np.abs(results["ours"][-1] - results["spectrogram_batch"][-1]).max()
        for name, (wall, cpu, peak, output) in results.items():
            to_reference = (
                f"{np.abs(output - reference).max():.1e}"
                if reference is not None and case.startswith("8 clips")
                else "-"
            )
            print(
                f"| {case} | {name} | {wall * 1000:.0f} / {cpu * 1000:.0f} ms | {peak:.0f} MiB | {to_reference} | "
                f"{between:.1e} |"
            )


if __name__ == "__main__":
    main()
