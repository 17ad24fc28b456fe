"""One command for a machine with a CUDA device: does TVLT run there as it does on the CPU, and how fast?

    python benchmarks/gpu_check.py                        # CUDA, TVLT-base size (random weights), < 8 minutes
    python benchmarks/gpu_check.py --device cpu           # the same checks on the CPU, a narrow model (tiny)
    python benchmarks/gpu_check.py --out gpu_check.md     # also write the table to a file

Prints the machine and one markdown table, a row per check, each with numbers or "n/a: reason":

- **fp32 parity**: the three heads (TvltModel, TvltForPreTraining with a fixed MAE mask,
  TvltForAudioVisualClassification) on the device against the same weights on the CPU, on a padded batch (clips of
  different lengths, pixel_mask and audio_mask); max relative error (max |device - CPU| / max |CPU|), PASS at <= 1e-5.
  TF32 is off for every check that compares outputs (cuBLAS and cuDNN, else fp32 matmuls and convolutions on the GPU
  round to 10 bits);
- **drift**: bfloat16 and float16 against fp32 on the device (max abs and rel error of the classifier's logits and
  the encoder's last hidden state); stated, FAIL only when an output is not finite;
- **attention**: eager, sdpa, flex_attention (compiles; not with --skip-compile) and flash_attention_2 (CUDA with
  `flash_attn` installed; in bfloat16, against eager in bfloat16): max rel difference to eager and ms per clip;
- **torch.compile** (mode default) of the encoder: outputs against eager mode, first-call and steady ms per clip;
- **forward**: TvltModel forward ms per clip on full-length inputs (all frames, the whole spectrogram) for each
  `--batch-sizes`, fp32 (torch's default TF32 settings) and bfloat16, median of `--repeats` after warm-ups, with
  torch.cuda.synchronize around each;
- **batch job**: `tvlt embed` over a manifest of generated mp4 clips (`--device`, a subprocess) in clips/s, against
  the forward-only limit (the same forward on pre-made batches on the device) and the naive loop (the pipeline
  called once per clip); the job / limit ratio.

Peak memory per row: torch.cuda.max_memory_allocated on CUDA; on the CPU the process's peak RSS (VmHWM, reset per
row), and for the batch job the largest PSS of its process tree. The same-output checks use 1e-4 (kernels that sum
in another order; parity uses 1e-5), bfloat16 kernels against eager bfloat16 2e-2. The exit status is 1 when a row
FAILs, after the table is printed. Numbers depend on the machine: rerun rather than quote.
"""

import argparse
import contextlib
import copy
import csv
import functools
import importlib.util
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _machine import cpu_name, proc_bytes, reset_peak_rss  # benchmarks/ is on sys.path when the script runs
from bench_batch import job_summary, run_child, save_checkpoint, worker_limit, worker_naive, write_clip


PARITY_TOLERANCE = 1e-5  # fp32, device against CPU
KERNEL_TOLERANCE = 1e-4  # fp32, another attention kernel or torch.compile against eager mode
HALF_KERNEL_TOLERANCE = 2e-2  # bfloat16 kernels against eager bfloat16
PAPER_MS_PER_CLIP = 103  # the TVLT paper's forward time per clip on a GPU, TVLT-base
# TvltConfig overrides of --size tiny: TVLT-base's inputs (so that its processor and real clips fit), the demo
# checkpoint's narrow widths
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from make_demo_checkpoint import NARROW_WIDTHS as TINY  # noqa: E402


HEADS = ("TvltModel", "TvltForPreTraining", "TvltForAudioVisualClassification")
PARITY_BATCH = 4


@dataclass
class Row:
    check: str
    setting: str
    result: str
    ms: str = "-"
    memory: str = "-"
    verdict: str = "-"  # PASS, FAIL, n/a or - (a measurement)


def not_available(check: str, setting: str, reason: str) -> Row:
    return Row(check, setting, f"n/a: {reason}", verdict="n/a")


def failed(check: str, setting: str, error: BaseException, device: str) -> Row:
    """A feature that should run here but raised: FAIL on CUDA (where it was built to run); on the CPU, where half
    precision and compiled kernels are not all there, n/a with the reason."""
    text = str(error).strip().splitlines()
    reason = f"{type(error).__name__}: {text[0] if text else ''}"[:160].replace("|", "/")
    if device == "cpu":
        return not_available(check, setting, reason)
    return Row(check, setting, f"error: {reason}", verdict="FAIL")


def max_errors(actual, expected) -> tuple[float, float]:
    """(max |a - e|, max |a - e| / max |e|): the relative error is to the scale of the whole tensor, so that entries
    near zero do not dominate. Not finite when either tensor holds nan or inf."""
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    if actual.shape != expected.shape:
        raise ValueError(f"shape {tuple(actual.shape)} != expected {tuple(expected.shape)}")
    if not (actual.isfinite().all() and expected.isfinite().all()):
        return math.inf, math.inf
    difference = (actual - expected).abs().max().item()
    return difference, difference / max(expected.abs().max().item(), 1e-12)


def verdict(error: float, tolerance: float) -> str:
    return "PASS" if error <= tolerance else "FAIL"  # nan and inf fail


def mib(size: int | None) -> str:
    return "-" if not size else f"{size / 2**20:.0f}"


# -- the device -------------------------------------------------------------------------------------------------------


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


class Peak:
    """Peak memory of what runs inside: allocated CUDA memory, or the process's peak RSS on the CPU."""

    def __init__(self, device: str):
        self.device, self.bytes = device, 0

    def __enter__(self):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            reset_peak_rss()
        return self

    def __exit__(self, *exc):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self.bytes = proc_bytes("VmHWM")
        return False


@contextlib.contextmanager
def exact_fp32(device: str):
    """fp32 matmuls and convolutions without TF32 on CUDA; the previous settings afterwards. torch >= 2.9 has
    per-backend `fp32_precision` and refuses a mix of it with the legacy `allow_tf32` flags: use the one it has."""
    import torch

    if not device.startswith("cuda"):
        yield
        return
    backends = torch.backends
    if hasattr(backends.cuda.matmul, "fp32_precision"):
        settings = [(backends.cuda.matmul, "fp32_precision", "ieee"), (backends.cudnn.conv, "fp32_precision", "ieee")]
    else:
        settings = [(backends.cuda.matmul, "allow_tf32", False), (backends.cudnn, "allow_tf32", False)]
    before = [getattr(owner, name) for owner, name, _ in settings]
    try:
        for owner, name, value in settings:
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name, _), value in zip(settings, before, strict=True):
            setattr(owner, name, value)


def tf32_state() -> str:
    import torch

    backends = torch.backends
    if hasattr(backends.cuda.matmul, "fp32_precision"):
        return f"matmul {backends.cuda.matmul.fp32_precision}, cuDNN conv {backends.cudnn.conv.fp32_precision}"
    return f"matmul allow_tf32={backends.cuda.matmul.allow_tf32}, cuDNN allow_tf32={backends.cudnn.allow_tf32}"


def time_forward(run, device: str, warmup: int, repeats: int) -> float:
    """Median seconds of `run()` after `warmup` calls, each timed between two synchronizations."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# -- inputs -----------------------------------------------------------------------------------------------------------


def make_config(size: str, **overrides):
    from tvlt import TvltConfig

    return TvltConfig(**({} if size == "base" else TINY), **overrides)


def padded_batch(config, batch_size: int, seed: int = 0) -> dict:
    """A batch of clips of different lengths (frames and spectrogram time), padded by `TvltDataCollator`: the first
    clip full length, each next one shorter."""
    import torch

    from tvlt import TvltDataCollator

    g = torch.Generator().manual_seed(seed)
    time_patch, freq_patch = config.audio_patch_size
    examples = []
    for index in range(batch_size):
        frames = max(1, config.num_frames - index * config.num_frames // batch_size)
        steps = max(1, (config.spectrogram_length // time_patch) * (batch_size - index) // batch_size)
        examples.append(
            {
                "pixel_values": torch.randn(frames, config.num_image_channels, *config.frame_size, generator=g),
                "pixel_mask": torch.ones(frames * config.num_patches_per_image),
                "audio_values": torch.rand(
                    config.num_audio_channels, steps * time_patch, config.frequency_length, generator=g
                )
                * 2
                - 1,
                "audio_mask": torch.ones(steps * (config.frequency_length // freq_patch)),
            }
        )
    return TvltDataCollator()(examples)


def describe(batch: dict) -> str:
    """What a padded batch holds: its size and the real (unpadded) patches of each clip."""
    video = "/".join(str(int(n)) for n in batch["pixel_mask"].sum(1).tolist())
    audio = "/".join(str(int(n)) for n in batch["audio_mask"].sum(1).tolist())
    return f"padded batch of {len(batch['pixel_mask'])} (video patches {video}, audio patches {audio})"


def full_batch(config, batch_size: int, seed: int = 0) -> dict:
    """Full-length inputs (every frame, the whole spectrogram), as `bench_model.py` times them."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return {
        "pixel_values": torch.randn(
            batch_size, config.num_frames, config.num_image_channels, *config.frame_size, generator=g
        ),
        "audio_values": torch.rand(
            batch_size, config.num_audio_channels, config.spectrogram_length, config.frequency_length, generator=g
        )
        * 2
        - 1,
    }


def on(batch: dict, device: str, dtype=None) -> dict:
    return {
        key: value.to(device, dtype) if dtype is not None and value.is_floating_point() else value.to(device)
        for key, value in batch.items()
    }


def head_outputs(name: str, model, batch: dict) -> dict:
    """The float outputs of head `name` on `batch` (the MAE pass with the masking noise in `batch`)."""
    if name == "TvltModel":
        return {"last_hidden_state": model(**batch).last_hidden_state}
    if name == "TvltForPreTraining":
        output = model(**batch, reconstruct=True)
        return {key: getattr(output, key) for key in ("matching_logits", "pixel_logits", "audio_logits")}
    return {"logits": model(**batch).logits}


def build_head(name: str, config, seed: int = 0):
    import torch

    import tvlt

    torch.manual_seed(seed)
    return getattr(tvlt, name)(config).eval()


# -- checks -----------------------------------------------------------------------------------------------------------


def check_parity(args, config) -> list[Row]:
    import torch

    rows = []
    batch = padded_batch(config, PARITY_BATCH)
    g = torch.Generator().manual_seed(1)
    noise = {
        "pixel_noise": torch.rand(batch["pixel_mask"].shape, generator=g),
        "audio_noise": torch.rand(batch["audio_mask"].shape, generator=g),
    }
    for name in HEADS:
        setting = f"{name}, fp32, {describe(batch)}"
        inputs = {**batch, **noise} if name == "TvltForPreTraining" else batch
        try:
            model = build_head(name, config)
            with torch.inference_mode():
                expected = head_outputs(name, model, inputs)
                device_model = copy.deepcopy(model).to(args.device)
                with Peak(args.device) as peak, exact_fp32(args.device):
                    actual = head_outputs(name, device_model, on(inputs, args.device))
            del device_model
        except Exception as error:  # noqa: BLE001 - the row says what failed
            rows.append(failed("fp32 parity: device vs CPU", setting, error, "cuda"))
            continue
        errors = {}
        for key, value in actual.items():
            errors[key] = max_errors(value * (1 + args.perturb), expected[key])[1]
        worst = max(errors, key=errors.get)
        rows.append(
            Row(
                "fp32 parity: device vs CPU",
                setting,
                f"max rel. error {errors[worst]:.1e} ({worst}; "
                + ", ".join(f"{k} {v:.1e}" for k, v in errors.items() if k != worst)
                + ")"
                if len(errors) > 1
                else f"max rel. error {errors[worst]:.1e} ({worst})",
                memory=mib(peak.bytes),
                verdict=verdict(errors[worst], PARITY_TOLERANCE),
            )
        )
    return rows


def check_drift(args, config) -> list[Row]:
    import torch

    rows = []
    batch = padded_batch(config, PARITY_BATCH)
    reference = {}
    with torch.inference_mode(), exact_fp32(args.device):
        for name in ("TvltModel", "TvltForAudioVisualClassification"):
            model = build_head(name, config).to(args.device)
            reference[name] = (model, head_outputs(name, model, on(batch, args.device)))
        for dtype in ("bfloat16", "float16"):
            torch_dtype = getattr(torch, dtype)
            for name, (model, expected) in reference.items():
                setting = f"{name}, {dtype} vs fp32, padded batch of {PARITY_BATCH}"
                if dtype == "bfloat16" and args.device.startswith("cuda") and not torch.cuda.is_bf16_supported():
                    rows.append(not_available(f"{dtype} drift", setting, "this GPU has no bfloat16"))
                    continue
                try:
                    half = copy.deepcopy(model).to(torch_dtype)
                    with Peak(args.device) as peak:
                        actual = head_outputs(name, half, on(batch, args.device, torch_dtype))
                    del half
                except Exception as error:  # noqa: BLE001
                    rows.append(failed(f"{dtype} drift", setting, error, args.device))
                    continue
                ((key, value),) = actual.items()
                absolute, relative = max_errors(value, expected[key])
                rows.append(
                    Row(
                        f"{dtype} drift",
                        setting,
                        f"{key}: max abs {absolute:.2e}, max rel {relative:.2e}",
                        memory=mib(peak.bytes),
                        verdict="-" if math.isfinite(relative) else "FAIL",
                    )
                )
    return rows


def attention_implementations(args) -> list[tuple[str, str | None]]:
    """(implementation, why it cannot run here or None)."""
    import torch
    from transformers.utils import is_torch_flex_attn_available

    cuda = args.device.startswith("cuda")
    flex = None
    if not is_torch_flex_attn_available():
        flex = f"flex attention needs a newer torch than {torch.__version__}"
    elif args.skip_compile:
        flex = "flex_attention runs through torch.compile, and --skip-compile is set"
    flash = None
    if not cuda:
        flash = "flash_attention_2 runs on CUDA only"
    elif importlib.util.find_spec("flash_attn") is None:
        flash = "flash_attn is not installed (pip install flash-attn)"
    return [("eager", None), ("sdpa", None), ("flex_attention", flex), ("flash_attention_2", flash)]


def check_attention(args, config) -> list[Row]:
    import torch

    rows = []
    batch = padded_batch(config, PARITY_BATCH)
    base = build_head("TvltModel", config).to(args.device)
    eager = {}  # dtype -> (output, seconds)
    with torch.inference_mode(), exact_fp32(args.device):
        for implementation, unavailable in attention_implementations(args):
            # flash attention takes half precision only: it is compared with eager attention in bfloat16
            dtype = torch.bfloat16 if implementation == "flash_attention_2" else torch.float32
            setting = f"{implementation}, {str(dtype).removeprefix('torch.')}, padded batch of {PARITY_BATCH}"
            if unavailable:
                rows.append(not_available("attention", setting, unavailable))
                continue
            try:
                if dtype not in eager:
                    model = copy.deepcopy(base).to(dtype)
                    model.set_attn_implementation("eager")
                    inputs = on(batch, args.device, dtype)
                    output = model(**inputs).last_hidden_state
                    seconds = time_forward(functools.partial(model, **inputs), args.device, args.warmup, args.repeats)
                    eager[dtype] = (output, seconds)
                model = copy.deepcopy(base).to(dtype)
                model.set_attn_implementation(implementation)
                inputs = on(batch, args.device, dtype)
                with Peak(args.device) as peak:
                    output = model(**inputs).last_hidden_state
                seconds = time_forward(functools.partial(model, **inputs), args.device, args.warmup, args.repeats)
                del model
            except Exception as error:  # noqa: BLE001
                rows.append(failed("attention", setting, error, args.device))
                continue
            expected, eager_seconds = eager[dtype]
            _, relative = max_errors(output, expected)
            tolerance = KERNEL_TOLERANCE if dtype == torch.float32 else HALF_KERNEL_TOLERANCE
            rows.append(
                Row(
                    "attention",
                    setting,
                    f"max rel. diff vs eager {relative:.1e}; {eager_seconds / seconds:.2f}x eager's speed",
                    ms=f"{seconds * 1000 / PARITY_BATCH:.1f}",
                    memory=mib(peak.bytes),
                    verdict=verdict(relative, tolerance),
                )
            )
    return rows


def check_compile(args, config) -> list[Row]:
    import torch

    setting = f"TvltModel, mode default, fp32, {config._attn_implementation}, padded batch of {PARITY_BATCH}"
    if args.skip_compile:
        return [not_available("torch.compile", setting, "--skip-compile")]
    batch = padded_batch(config, PARITY_BATCH)
    try:
        model = build_head("TvltModel", config).to(args.device)
        inputs = on(batch, args.device)
        with torch.inference_mode(), exact_fp32(args.device):
            expected = model(**inputs).last_hidden_state
            eager_seconds = time_forward(functools.partial(model, **inputs), args.device, args.warmup, args.repeats)
            compiled = torch.compile(model)
            with Peak(args.device) as peak:
                synchronize(args.device)
                started = time.perf_counter()
                output = compiled(**inputs).last_hidden_state
                synchronize(args.device)
                first = time.perf_counter() - started
            seconds = time_forward(lambda: compiled(**inputs), args.device, args.warmup, args.repeats)
    except Exception as error:  # noqa: BLE001
        return [failed("torch.compile", setting, error, args.device)]
    _, relative = max_errors(output, expected)
    return [
        Row(
            "torch.compile",
            setting,
            f"max rel. diff vs eager mode {relative:.1e}; first call {first:.1f} s; "
            f"{eager_seconds / seconds:.2f}x eager mode's speed ({eager_seconds * 1000 / PARITY_BATCH:.1f} ms/clip)",
            ms=f"{seconds * 1000 / PARITY_BATCH:.1f}",
            memory=mib(peak.bytes),
            verdict=verdict(relative, KERNEL_TOLERANCE),
        )
    ]


def check_forward(args, config) -> list[Row]:
    import torch

    rows = []
    time_patch, freq_patch = config.audio_patch_size
    audio_patches = (config.spectrogram_length // time_patch) * (config.frequency_length // freq_patch)
    tokens = 1 + config.num_frames * config.num_patches_per_image + audio_patches
    for dtype in ("float32", "bfloat16"):
        torch_dtype = getattr(torch, dtype)
        model = None
        for batch_size in args.batch_sizes:
            setting = f"TvltModel, {dtype}, {config._attn_implementation}, batch {batch_size}, {tokens} tokens/clip"
            if dtype == "bfloat16" and args.device.startswith("cuda") and not torch.cuda.is_bf16_supported():
                rows.append(not_available("forward", setting, "this GPU has no bfloat16"))
                continue
            try:
                if model is None:
                    model = build_head("TvltModel", config).to(args.device, torch_dtype)
                inputs = on(full_batch(config, batch_size), args.device, torch_dtype)
                with torch.inference_mode(), Peak(args.device) as peak:
                    seconds = time_forward(functools.partial(model, **inputs), args.device, args.warmup, args.repeats)
                del inputs
            except Exception as error:  # noqa: BLE001
                rows.append(failed("forward", setting, error, args.device))
                continue
            per_clip = seconds * 1000 / batch_size
            paper = f"; paper {PAPER_MS_PER_CLIP} ms" if args.size == "base" and args.device.startswith("cuda") else ""
            rows.append(
                Row(
                    "forward",
                    setting,
                    f"{seconds * 1000:.1f} ms/batch, {1000 / per_clip:.1f} clips/s{paper}",
                    ms=f"{per_clip:.1f}",
                    memory=mib(peak.bytes),
                )
            )
        del model
    return rows


# -- the batch job ----------------------------------------------------------------------------------------------------


def check_batch_job(args, tmp: Path) -> list[Row]:
    """`tvlt embed` over a folder of clips, the forward-only limit, the naive loop."""
    check = "batch job"
    job_setting = (
        f"`tvlt embed` {args.clips} clips, --device {args.device} --dtype {args.job_dtype} "
        f"--batch-size {args.job_batch_size} --num-workers {args.num_workers}"
    )
    limit_setting = f"limit: embed forward alone, {args.job_dtype}, batch {args.job_batch_size}, pre-made batches"
    naive_setting = f"naive loop: the pipeline called once per clip, fp32, {args.naive_clips} clips"
    try:
        distinct = [tmp / "distinct" / f"clip{index:02d}.mp4" for index in range(args.distinct)]
        distinct[0].parent.mkdir()
        for index, path in enumerate(distinct):
            write_clip(path, args.seconds, seed=index, size=args.clip_size)
        folder = tmp / "clips"  # every clip a link to a distinct file: each is decoded anew
        folder.mkdir()
        clips = [folder / f"clip{index:05d}.mp4" for index in range(args.clips)]
        for index, path in enumerate(clips):
            path.symlink_to(distinct[index % len(distinct)])
        manifest = tmp / "clips.csv"
        with open(manifest, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["video", "id"])
            writer.writerows([str(path), path.stem] for path in clips)
        naive_manifest = tmp / "naive.csv"
        with open(naive_manifest, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["video", "id"])
            writer.writerows([str(path), path.stem] for path in clips[: args.naive_clips])
        model = save_checkpoint(tmp / "model", **({} if args.size == "base" else TINY))
    except Exception as error:  # noqa: BLE001
        return [failed(check, job_setting, error, "cuda")]

    rows = []
    out = tmp / "embeddings.parquet" if importlib.util.find_spec("pyarrow") else tmp / "embeddings.jsonl"
    # the manifest, not the folder: a job lists a file reached through several links once, a manifest row each time
    command = [sys.executable, "-m", "tvlt", "embed", str(manifest), "--model", str(model), "--out", str(out)]
    command += ["--device", args.device, "--dtype", args.job_dtype, "--batch-size", str(args.job_batch_size)]
    command += ["--num-workers", str(args.num_workers)]  # not --quiet: its summary line is the measurement
    job = None
    try:
        text, _, peaks = run_child(command, sample_memory=True)
        done, seconds = job_summary(text)
        job = done / seconds
        rows.append(
            Row(check, job_setting, f"{job:.2f} clips/s ({done} clips in {seconds:.1f} s)", memory=mib(peaks["tree"]))
        )
    except (Exception, SystemExit) as error:  # noqa: BLE001 - run_child and job_summary exit with the job's output
        rows.append(failed(check, job_setting, error, "cuda"))

    limit = None
    try:
        with Peak(args.device) as peak:
            measured = worker_limit(
                str(model), str(manifest), args.device, args.job_dtype, args.job_batch_size, args.repeats, embed=True
            )
        limit = measured["clips"] / measured["seconds"]
        ratio = f"; job / limit {job / limit:.2f}" if job else ""
        rows.append(
            Row(
                check,
                limit_setting,
                f"{limit:.2f} clips/s{ratio}",
                ms=f"{measured['seconds'] * 1000 / measured['clips']:.1f}",
                memory=mib(peak.bytes),
            )
        )
    except Exception as error:  # noqa: BLE001
        rows.append(failed(check, limit_setting, error, args.device))

    try:
        with Peak(args.device) as peak:
            measured = worker_naive(str(model), str(naive_manifest), args.device)
        naive = measured["clips"] / measured["seconds"]
        versus = f"; job {job / naive:.2f}x the naive loop" if job else ""
        rows.append(Row(check, naive_setting, f"{naive:.2f} clips/s{versus}", memory=mib(peak.bytes)))
    except Exception as error:  # noqa: BLE001
        rows.append(failed(check, naive_setting, error, args.device))
    return rows


# -- main -------------------------------------------------------------------------------------------------------------


def positive_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, e.g. 1,8,32; got {text!r}")
    return values


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", help="cuda (default when torch sees a CUDA device), cuda:N or cpu")
    parser.add_argument("--size", choices=("base", "tiny"), help="model size (default: base on CUDA, tiny on CPU)")
    parser.add_argument("--out", help="also write the machine lines and the table to this markdown file")
    parser.add_argument("--batch-sizes", type=positive_ints, help="forward rows (default: 1,8,32 on CUDA; 1,2,4 CPU)")
    parser.add_argument("--repeats", type=int, help="timed forwards per row (default: 10 on CUDA, 3 on CPU)")
    parser.add_argument("--warmup", type=int, help="untimed forwards before them (default: 3 on CUDA, 1 on CPU)")
    parser.add_argument("--skip-compile", action="store_true", help="no torch.compile row (and no flex_attention)")
    parser.add_argument("--clips", type=int, help="clips of the batch job (default: 256 on CUDA, 6 on CPU)")
    parser.add_argument("--distinct", type=int, help="distinct files the clips link to (default: 16 / 2)")
    parser.add_argument("--naive-clips", type=int, help="clips of the naive loop (default: 64 / all)")
    parser.add_argument("--seconds", type=float, help="length of each clip (default: 3 on CUDA, 1 on CPU)")
    parser.add_argument("--job-batch-size", type=int, help="the job's --batch-size (default: 32 on CUDA, 2 on CPU)")
    parser.add_argument("--num-workers", type=int, help="the job's --num-workers (default: CPUs - 2, at least 1)")
    parser.add_argument("--job-dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--skip-job", action="store_true", help="no batch job rows")
    # scales the device outputs of the parity rows by 1 + X: the test of the FAIL path
    parser.add_argument("--perturb", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch

    if args.device is None:
        if not torch.cuda.is_available():
            parser.exit(
                2, "gpu_check.py: torch sees no CUDA device here; pass --device cpu to run the checks on the CPU\n"
            )
        args.device = "cuda"
    try:
        parsed = torch.device(args.device)
    except RuntimeError as error:
        parser.error(f"--device {args.device}: {error}")
    if parsed.type not in ("cuda", "cpu"):
        parser.error(f"--device {args.device}: expected cuda, cuda:N or cpu")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch sees no CUDA device on this machine; use --device cpu")
    cuda = parsed.type == "cuda"
    defaults = {
        "size": "base" if cuda else "tiny",
        "batch_sizes": [1, 8, 32] if cuda else [1, 2, 4],
        "repeats": 10 if cuda else 3,
        "warmup": 3 if cuda else 1,
        "clips": 256 if cuda else 6,
        "distinct": 16 if cuda else 2,
        "seconds": 3.0 if cuda else 1.0,
        "job_batch_size": 32 if cuda else 2,
        "num_workers": max(1, (os.cpu_count() or 1) - 2),
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.naive_clips is None:
        args.naive_clips = min(args.clips, 64)
    args.clip_size = (240, 320) if cuda else (120, 160)  # (height, width)
    return args


def machine_lines(args, config) -> list[str]:
    import torch
    import transformers

    import tvlt

    if args.device.startswith("cuda"):
        properties = torch.cuda.get_device_properties(args.device)
        gpu = (
            f"GPU {torch.cuda.get_device_name(args.device)} ({properties.total_memory / 2**30:.0f} GiB, CUDA "
            f"{torch.version.cuda}, TF32 by default: {tf32_state()}; off for the output checks)"
        )
    else:
        gpu = "no GPU: --device cpu"
    size = (
        "TVLT-base"
        if args.size == "base"
        else f"tiny ({TINY['hidden_size']} wide, {TINY['num_hidden_layers']} layers)"
    )
    return [
        f"Machine: {gpu}; CPU {cpu_name()}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads; "
        f"Python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"tvlt {tvlt.__version__}.",
        f"Model: {size} size, random weights (seed 0), inputs {config.num_frames}x{config.num_image_channels}x"
        f"{config.image_size}x{config.image_size} video + {config.spectrogram_length}x{config.frequency_length} "
        f"spectrogram; median of {args.repeats} after {args.warmup} warm-up(s). Peak memory: "
        + ("torch.cuda.max_memory_allocated per row" if args.device.startswith("cuda") else "process peak RSS")
        + "; the batch job: the largest PSS of its process tree.",
    ]


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| check | configuration | result | ms/clip | peak memory (MiB) | verdict |",
        "|---|---|---|---:|---:|---|",
    ]
    lines += [f"| {r.check} | {r.setting} | {r.result} | {r.ms} | {r.memory} | {r.verdict} |" for r in rows]
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # the saves and loads of each row would fill the screen
    started = time.perf_counter()
    config = make_config(args.size)
    rows = []
    for check in (check_parity, check_drift, check_attention, check_compile, check_forward):
        rows += check(args, config)
    if args.skip_job:
        rows.append(not_available("batch job", "`tvlt embed`", "--skip-job"))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows += check_batch_job(args, Path(tmp))
    lines = machine_lines(args, config)
    lines.append(f"{len(rows)} rows in {time.perf_counter() - started:.0f} s.\n")
    lines += table(rows)
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    failures = [row for row in rows if row.verdict == "FAIL"]
    if failures:
        print(f"\n{len(failures)} check(s) FAIL: " + "; ".join(f"{r.check} ({r.setting})" for r in failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
