"""Runs a batch job of `tvlt embed` or batch `tvlt predict`, once `_batch.py` has checked its arguments and inputs.

Clips are decoded and preprocessed in DataLoader worker processes (`embedding_tvlt.prepare_inputs`, the pipeline's own
steps) while the model runs batched, padded forward passes (`TvltDataCollator`); a clip that cannot be read becomes a
row with its error. Rows stream to the output folder in whole parts (`_batch_output.py`). Under `torchrun` or
`accelerate launch` each process takes every WORLD_SIZE-th clip from RANK on and writes its own parts; a gloo process
group (CPU tensors, so it also works next to CUDA) only sums the counts for one summary and one exit status.
"""

import functools
import logging
import os
import sys
import time

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm
from transformers.utils import logging as transformers_logging

from .. import inputs_tvlt
from ..checkpoints.loading import CLASSIFICATION, checkpoint_kind, hub_options, load_checkpoint
from ..embedding_tvlt import embed_batch, load_encoder, prepare_inputs
from ..inputs_tvlt import MissingAudioError, TvltClipPreparer, TvltDataCollator, batch_on_model
from ..pipeline_tvlt import scores_from_logits
from ..processing_tvlt import TvltProcessor
from . import CommandError
from ._batch import CLIP_COLUMNS, BatchJob, ClipRow
from ._batch_output import OutputFolder, job_identity, model_fingerprint
from ._clip_and_model import check_device, clip_and_model_errors


# Every row starts with these; the task's own columns follow
COMMON_COLUMNS = ("id", *CLIP_COLUMNS, "error")
# DataLoader worker processes are replaced after this many clips each (see _recycled_loaders)
CLIPS_PER_WORKER = 256
_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


# -- tasks ------------------------------------------------------------------------------------------------------------


class EmbedTask:
    """`tvlt embed`: one `embedding` (list of `hidden_size` float32) per clip."""

    command = "embed"
    payload = ("embedding",)

    def __init__(self, config, modality: str, pooling: str):
        self.modality, self.pooling = modality, pooling
        self.size = int(config.hidden_size)

    def options(self) -> dict:
        return {"modality": self.modality, "pooling": self.pooling}

    def columns(self) -> dict:
        return {"embedding": f"float32[{self.size}]"}

    def arrow_fields(self, pa) -> list:
        return [pa.field("embedding", pa.list_(pa.float32(), self.size))]

    def load_model(self, model: str, revision: str | None, dtype):
        return load_encoder(model, **hub_options(model, revision), dtype=dtype)

    def run(self, model, batch) -> list[dict]:
        embeddings = embed_batch(model, batch, self.modality, self.pooling).numpy()
        return [{"embedding": embedding} for embedding in embeddings]


class ClassifyTask:
    """Batch `tvlt predict` with a fine-tuned head: the best `label` and its `score`, and `scores` of every label."""

    command = "predict"
    modality = "audio-visual"
    payload = ("label", "score", "scores")

    def __init__(self, config):
        self.problem_type = config.head_problem_type
        self.labels = _unique_names([str(config.id2label.get(i, f"LABEL_{i}")) for i in range(config.num_labels)])

    def options(self) -> dict:
        return {}

    def columns(self) -> dict:
        return {"problem_type": self.problem_type, "labels": self.labels}

    def arrow_fields(self, pa) -> list:
        scores = pa.struct([pa.field(label, pa.float32()) for label in self.labels])
        return [pa.field("label", pa.string()), pa.field("score", pa.float32()), pa.field("scores", scores)]

    def load_model(self, model: str, revision: str | None, dtype):
        from ..modeling_tvlt import TvltForAudioVisualClassification

        return TvltForAudioVisualClassification.from_pretrained(
            model, **hub_options(model, revision), dtype=dtype
        ).eval()

    @torch.no_grad()
    def run(self, model, batch) -> list[dict]:
        scores = scores_from_logits(model(**batch_on_model(batch, model)).logits, self.problem_type).cpu()
        rows = []
        for row in scores.tolist():
            named = dict(zip(self.labels, row, strict=True))
            if self.problem_type == "regression":  # raw values: no "best" label
                rows.append({"label": None, "score": None, "scores": named})
            else:
                best = max(range(len(row)), key=row.__getitem__)
                rows.append({"label": self.labels[best], "score": row[best], "scores": named})
        return rows


class MatchTask:
    """Batch `tvlt predict` with a pre-training checkpoint: `match_score`, the probability that the audio belongs to
    the video (the matching head)."""

    command = "predict"
    modality = "audio-visual"
    payload = ("match_score",)

    def options(self) -> dict:
        return {}

    def columns(self) -> dict:
        return {"match_score": "float32"}

    def arrow_fields(self, pa) -> list:
        return [pa.field("match_score", pa.float32())]

    def load_model(self, model: str, revision: str | None, dtype):
        from ..modeling_tvlt import TvltForPreTraining

        return TvltForPreTraining.from_pretrained(model, **hub_options(model, revision), dtype=dtype).eval()

    @torch.no_grad()
    def run(self, model, batch) -> list[dict]:
        logits = model(**batch_on_model(batch, model), reconstruct=False).matching_logits
        return [{"match_score": score} for score in logits.float().sigmoid().view(-1).tolist()]


def predict_task(config, model: str):
    if checkpoint_kind(config) == CLASSIFICATION:
        return ClassifyTask(config)
    if not config.task_matching:
        raise CommandError(
            f"--model {model} is a pre-training checkpoint without the matching head (task_matching is false) and "
            "without a classifier: nothing to predict (`tvlt embed` gives its embeddings)."
        )
    return MatchTask()


def _unique_names(names: list[str]) -> list[str]:
    """Label names as column names: a name that repeats an earlier one gets its index (`happy`, `happy_1`)."""
    seen, unique = set(), []
    for index, name in enumerate(names):
        unique.append(name if name not in seen else f"{name}_{index}")
        seen.add(unique[-1])
    return unique


# -- data -------------------------------------------------------------------------------------------------------------


class _ClipDataset(Dataset):
    """`(position, model inputs, None)` of each clip of `rows[first:stop]` (`position` indexes `rows`), or
    `(position, None, error)` when it cannot be read."""

    def __init__(self, rows: list[ClipRow], first: int, stop: int, clip_preparer: TvltClipPreparer, modality: str):
        self.rows, self.first, self.stop = rows, first, stop
        self.clip_preparer, self.modality = clip_preparer, modality

    def __len__(self) -> int:
        return self.stop - self.first

    def __getitem__(self, index: int):
        position = self.first + index
        row = self.rows[position]
        try:
            return position, prepare_inputs(self.clip_preparer, row.as_clip(), self.modality), None
        except MissingAudioError:  # the library's hint is Python (`{'video': ..., 'audio': ...}`); say it for a job
            return position, None, missing_audio_error(row)
        except Exception as error:  # noqa: BLE001 - a clip that cannot be read becomes a row with its error
            return position, None, describe_error(error)


def _collate(collator: TvltDataCollator, items: list) -> dict:
    ready = [(position, inputs) for position, inputs, error in items if error is None]
    batch = None
    if ready:
        try:
            batch = collator([inputs for _, inputs in ready])
        except Exception:  # noqa: BLE001 - the main process runs them one by one and records the culprit
            batch = None
    return {
        "positions": [position for position, _ in ready],
        "batch": batch,
        "failed": [(position, error) for position, _, error in items if error is not None],
    }


def _init_worker(verbosity: int, behind_the_model: bool, _worker_id: int) -> None:
    transformers_logging.set_verbosity(verbosity)
    _quiet_clip_warnings()
    if behind_the_model and hasattr(os, "nice"):  # not on Windows
        # The model's threads use every core of a CPU device, and a parallel matmul waits for its slowest thread: a
        # worker that takes a core from one stalls them all. At a lower priority the workers decode in the gaps.
        os.nice(10)


def _quiet_clip_warnings() -> int:
    """A batch job reads each clip's window by design (documented): no warning per clip longer than it. Returns the
    level to restore."""
    level = inputs_tvlt.logger.level
    inputs_tvlt.logger.setLevel(logging.ERROR)
    return level


def missing_audio_error(row: ClipRow) -> str:
    return (
        f"MissingAudioError: {row.video}: the video has no audio track; give its audio in a manifest's `audio` column."
    )


def describe_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:1000]


# -- the job ----------------------------------------------------------------------------------------------------------


def run_batch_job(job: BatchJob, args, make_task) -> int:
    """Run `job` (checked inputs and output) with the task `make_task(config)` builds; returns the exit status."""
    launch = job.launch
    device = _device(args.device, launch.local_rank)
    config, _ = load_checkpoint(args.model, args.revision)
    task = make_task(config)
    options = {**task.options(), "dtype": args.dtype}
    identity = job_identity(
        task.command, args.model, model_fingerprint(args.model, args.revision, config), options, task.columns()
    )
    output = OutputFolder(job.output.folder, job.output.format, launch.rank, launch.world_size)
    if job.output.resume:
        output.check_identity(identity)  # refuse before minutes of loading

    distributed = launch.world_size > 1
    own_group = distributed and not torch.distributed.is_initialized()
    if own_group:
        # gloo on CPU tensors: only counts go through it, so it works whatever the device
        torch.distributed.init_process_group("gloo", rank=launch.rank, world_size=launch.world_size)
    try:
        with clip_and_model_errors(args):
            model = task.load_model(args.model, args.revision, _TORCH_DTYPES[args.dtype]).to(device)
            processor = TvltProcessor.from_pretrained(args.model, **hub_options(args.model, args.revision))
        output.lock()
        try:
            if args.force and launch.rank == 0:
                output.clear()
            if distributed:
                torch.distributed.barrier()  # rank 0 has cleared before anyone writes
            output.check_or_write_identity(identity)
            counts = _run(job, args, task, model, processor, output, identity, device)
        finally:
            output.release()
        if distributed:
            totals = torch.tensor(counts, dtype=torch.int64)
            torch.distributed.all_reduce(totals)
            counts = totals.tolist()
    finally:
        if own_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    done_now, failed_now, already, failed_before, milliseconds = counts
    failed = failed_now + failed_before
    if launch.rank == 0 and not (args.quiet and not failed):
        now = done_now + failed_now
        seconds = milliseconds / 1000 / launch.world_size  # the ranks' mean
        speed = f" in {seconds:.1f} s ({now / seconds:.2f} clips/s)" if now and seconds else ""
        print(
            f"tvlt {task.command}: {now + already} clips in {job.output.folder}: {now} written now{speed}, "
            f"{already} already there; {failed} failed (their rows hold the `error`)",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _run(job: BatchJob, args, task, model, processor, output: OutputFolder, identity: dict, device) -> list[int]:
    launch = job.launch
    written = output.written_rows()
    output.check_written_rows(job.rows, written)  # every rank checks every row: all refuse, or none
    shard = job.rows[launch.rank :: launch.world_size]
    todo = [row for row in shard if row.id not in written]
    already = len(shard) - len(todo)
    failed_before = sum(1 for row in shard if row.id in written and written[row.id]["error"] is not None)
    if not todo:
        return [0, 0, already, failed_before, 0]

    schema = None
    if job.output.format == "parquet":
        import pyarrow as pa

        common = [pa.field(name, pa.float64() if name in ("start", "end") else pa.string()) for name in COMMON_COLUMNS]
        schema = pa.schema(common + task.arrow_fields(pa))
    empty = dict.fromkeys(task.payload)
    writer = output.writer(schema, identity, args.rows_per_part)
    clip_warnings = _quiet_clip_warnings()
    clip_preparer = TvltClipPreparer(processor, model.config)
    collator = TvltDataCollator(clip_preparer.audio_padding_value)
    # a worker decodes whole batches: more workers than batches would only start idle processes (`--num-workers 64`
    # for a few clips)
    workers = min(args.num_workers, -(-len(todo) // args.batch_size))
    loader_options = {
        "batch_size": args.batch_size,
        "num_workers": workers,
        "collate_fn": functools.partial(_collate, collator),
        "pin_memory": device.type == "cuda",
        "worker_init_fn": functools.partial(_init_worker, transformers_logging.get_verbosity(), device.type == "cpu")
        if workers
        else None,
    }
    loader = _recycled_loaders(todo, clip_preparer, task.modality, loader_options)
    progress = tqdm(
        total=len(todo),
        unit=" clips",
        desc=f"tvlt {task.command}",
        disable=args.quiet or launch.rank != 0 or not sys.stderr.isatty(),
        file=sys.stderr,
    )
    state = _LoopState()
    try:
        for item in loader:
            results = {position: {**empty, "error": error} for position, error in item["failed"]}
            if item["positions"]:
                results.update(_forward(item, todo, task, model, clip_preparer, collator, empty, state))
            for position in sorted(results):
                row, payload = todo[position], results[position]
                writer.add({
                    "id": row.id, "video": row.video, "audio": row.audio, "start": row.start, "end": row.end,
                    "error": payload.get("error"), **{key: payload.get(key) for key in empty},
                })  # fmt: skip
                if payload.get("error") is None:
                    state.done += 1
                else:
                    state.failed += 1
                    if not args.quiet:
                        progress.write(f"tvlt {task.command}: {row.id}: {payload['error']}", file=sys.stderr)
            progress.update(len(results))
    finally:
        progress.close()
        inputs_tvlt.logger.setLevel(clip_warnings)
        writer.flush()  # the rows computed so far, also when interrupted
    elapsed = round((time.monotonic() - state.started) * 1000)
    return [state.done, state.failed, already, failed_before, elapsed]


def _recycled_loaders(todo: list, clip_preparer, modality: str, options: dict):
    """The batches of `todo` from DataLoaders whose worker processes each decode at most `CLIPS_PER_WORKER` clips: a
    forked worker's memory creeps up as it touches the parent's pages and fills its heap, so long jobs start fresh
    workers. One loader at a time, so that the job never holds two sets of workers (measured: +12% peak with the next
    set started during the last batch). The pause while fresh workers decode their first batch costs at most
    batch_size / (CLIPS_PER_WORKER x num_workers) of the job's time, as the job cannot run faster than they decode."""
    workers = options["num_workers"]
    per_loader = len(todo) if workers == 0 else max(options["batch_size"], CLIPS_PER_WORKER * workers)
    for first in range(0, len(todo), per_loader):
        dataset = _ClipDataset(todo, first, min(first + per_loader, len(todo)), clip_preparer, modality)
        yield from DataLoader(dataset, **options)


class _LoopState:
    def __init__(self):
        self.done = self.failed = 0
        self.forward_ran = False  # whether the model has run on any clip yet
        self.started = time.monotonic()


def _forward(item, todo, task, model, clip_preparer, collator, empty, state: _LoopState) -> dict:
    """Payloads of the clips of a collated batch. A batch the model fails on runs again clip by clip: a clip the model
    cannot take gets its error. When no clip has run yet the model itself is failing (e.g. a dtype this device cannot
    run): stop rather than fail every clip."""
    if item["batch"] is not None:
        try:
            payloads = task.run(model, item["batch"])
            state.forward_ran = True
            return dict(zip(item["positions"], payloads, strict=True))
        except Exception:  # noqa: BLE001, S110 - retried clip by clip below
            pass
    results = {}
    for position in item["positions"]:
        try:
            inputs = prepare_inputs(clip_preparer, todo[position].as_clip(), task.modality)
            results[position] = task.run(model, collator([inputs]))[0]
            state.forward_ran = True
        except Exception as error:  # noqa: BLE001
            if not state.forward_ran:
                raise CommandError(
                    f"the model cannot run on {todo[position].video}: {describe_error(error)}"
                ) from None
            results[position] = {**empty, "error": describe_error(error)}
    return results


def _device(device: str | None, local_rank: int) -> torch.device:
    check_device(device)
    if device is None:
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    parsed = torch.device(device)
    if parsed.type == "cuda" and parsed.index is None:
        return torch.device(f"cuda:{local_rank}")  # one GPU per process under torchrun
    return parsed


__all__ = [
    "COMMON_COLUMNS",
    "ClassifyTask",
    "EmbedTask",
    "MatchTask",
    "describe_error",
    "predict_task",
    "run_batch_job",
]
