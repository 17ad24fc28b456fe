"""Fine-tune TVLT for audio-visual classification or regression with `transformers.Trainer`.

Data: a folder of clips and a CSV of labels, one row per clip:

    video,audio,start,end,label
    clip_001.mp4,,,,happy|surprise
    face_002.mp4,face_002.wav,1.5,9.0,sad

- `video`: a video file, relative to `--clips_dir` (or absolute); its own audio track is used unless `audio` names a
  separate audio file. `audio`, `start` and `end` (seconds, a time window of the files) are optional columns.
- labels, by `--problem_type`:
  `single_label_classification` (default): one class name per row in `--label_column` (default `label`);
  `multi_label_classification`: class names separated by `--label_separator` (default `|`), possibly none;
  `regression`: numbers in the `--label_column` column, or in several comma-separated columns (one output each).

The model starts from any TVLT checkpoint: a pre-training one (e.g. `ZinengTang/tvlt-base` converted with
`tvlt convert`) gets a new classifier; a classifier with other labels gets a new head. Every `TrainingArguments`
option is accepted (`--num_train_epochs`, `--learning_rate`, `--per_device_train_batch_size`, ...). The same command
runs on one process, under `torchrun --nproc_per_node N` (DDP; gloo on CPUs) and under `accelerate launch`:

    python examples/finetune.py --model_name_or_path tvlt-base --clips_dir clips --train_csv train.csv \\
        --output_dir tvlt-finetuned --num_train_epochs 10 --per_device_train_batch_size 4 --learning_rate 1e-4
    torchrun --nproc_per_node 2 examples/finetune.py ...same arguments...
    accelerate launch --num_processes 2 examples/finetune.py ...same arguments...

The result (`--output_dir`) is a self-contained TVLT repo: it loads with `trust_remote_code=True` and serves
`pipeline("audio-visual-classification", model=output_dir, trust_remote_code=True)`.
"""

import csv
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments, set_seed

from tvlt import TvltConfig, TvltForAudioVisualClassification, TvltProcessor
from tvlt.inputs_tvlt import AudioVisualClip, TvltClipPreparer, TvltDataCollator


PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


@dataclass
class FinetuneArguments:
    model_name_or_path: str = field(metadata={"help": "TVLT checkpoint to start from: a folder or a Hub repo id."})
    clips_dir: str = field(metadata={"help": "Folder the CSV's relative file names start from."})
    train_csv: str = field(metadata={"help": "CSV of the training clips and their labels."})
    eval_csv: str | None = field(default=None, metadata={"help": "CSV of the evaluation clips (same columns)."})
    problem_type: str = field(default="single_label_classification", metadata={"help": f"One of {PROBLEM_TYPES}."})
    label_column: str = field(
        default="label", metadata={"help": "Label column; for regression, one or more comma-separated columns."}
    )
    label_separator: str = field(default="|", metadata={"help": "Separator of multi-label class names."})
    revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a Hub checkpoint."})


@dataclass
class Row:
    clip: AudioVisualClip
    label: object  # class index, multi-hot vector or float target(s)


class ClipDataset(torch.utils.data.Dataset):
    """Clips decoded and preprocessed on demand (only the sampled frames and the audio window), with their labels."""

    def __init__(self, rows: list[Row], preparer: TvltClipPreparer):
        self.rows = rows
        self.preparer = preparer

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        example = self.preparer(row.clip)  # tensors with a batch dimension of 1: the collator accepts them as they are
        example["labels"] = row.label
        return example


def read_csv(path: str, clips_dir: str) -> list[dict]:
    """The CSV's rows, with `video`/`audio` resolved against `clips_dir` and `start`/`end` as floats or None."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path} has no rows.")
    if "video" not in rows[0]:
        raise ValueError(f"{path} needs a `video` column; it has {list(rows[0])}.")
    for number, row in enumerate(rows, start=2):  # line numbers as an editor shows them (1 is the header)
        for column in ("video", "audio"):
            value = (row.get(column) or "").strip()
            row[column] = str(Path(clips_dir, value)) if value else None
        if row["video"] is None:
            raise ValueError(f"{path}, line {number}: empty `video`.")
        for column in ("start", "end"):
            value = (row.get(column) or "").strip()
            try:
                row[column] = float(value) if value else None
            except ValueError:
                raise ValueError(
                    f"{path}, line {number}: `{column}` must be a number of seconds, got {value!r}."
                ) from None
        row["_line"] = f"{path}, line {number}"
    return rows


def clip_of(row: dict) -> AudioVisualClip:
    """The row's clip, after checking that its files exist (a `FileNotFoundError` naming the CSV line otherwise)."""
    clip = AudioVisualClip(video=row["video"], audio=row["audio"], start=row["start"], end=row["end"])
    try:
        clip.validate(row["_line"])
    except (FileNotFoundError, IsADirectoryError) as error:
        raise type(error)(f"{row['_line']}: {error}") from None
    return clip


def label_names(rows: list[dict], args: FinetuneArguments) -> list[str]:
    """The classes (sorted), or the regression outputs (the label columns)."""
    if args.problem_type == "regression":
        return [column.strip() for column in args.label_column.split(",")]
    names = set()
    for row in rows:
        names.update(_class_names(row, args))
    if not names:
        raise ValueError(f"{args.train_csv}: no class names in column `{args.label_column}`.")
    return sorted(names)


def encode_label(row: dict, labels: list[str], args: FinetuneArguments):
    if args.problem_type == "regression":
        try:
            values = [float(row[column]) for column in labels]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{row['_line']}: regression columns {labels} must hold numbers.") from None
        if not all(math.isfinite(value) for value in values):
            raise ValueError(f"{row['_line']}: regression targets must be finite, got {values}.")
        return values[0] if len(values) == 1 else values
    names = _class_names(row, args)
    unknown = sorted(set(names) - set(labels))
    if unknown:
        raise ValueError(f"{row['_line']}: unknown class(es) {unknown}; the training classes are {labels}.")
    if args.problem_type == "multi_label_classification":
        return [1.0 if label in names else 0.0 for label in labels]
    if len(names) != 1:
        raise ValueError(f"{row['_line']}: a single-label row needs exactly one class, got {names}.")
    return labels.index(names[0])


def _class_names(row: dict, args: FinetuneArguments) -> list[str]:
    if args.label_column not in row:
        raise ValueError(f"{row['_line']}: no `{args.label_column}` column.")
    value = (row[args.label_column] or "").strip()
    if args.problem_type == "multi_label_classification":
        return [name.strip() for name in value.split(args.label_separator) if name.strip()]
    return [value] if value else []


class SaveProcessorCallback(TrainerCallback):
    """Writes the processor into every checkpoint folder, so that each one is a complete TVLT repo.

    The processor is not given to `Trainer` as `processing_class`: transformers 5.x's Trainer then reads
    `processing_class.tokenizer`, which a processor without a tokenizer (like TVLT's) does not have.
    """

    def __init__(self, processor):
        self.processor = processor

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.processor.save_pretrained(Path(args.output_dir, f"checkpoint-{state.global_step}"))


def make_compute_metrics(problem_type: str):
    def compute_metrics(prediction) -> dict:
        logits = np.asarray(prediction.predictions)
        labels = np.asarray(prediction.label_ids)
        if problem_type == "regression":
            errors = logits.reshape(labels.shape) - labels
            return {"mse": float((errors**2).mean()), "mae": float(np.abs(errors).mean())}
        if problem_type == "multi_label_classification":
            predicted = logits > 0  # sigmoid > 0.5
            truth = labels > 0.5
            true_positives = (predicted & truth).sum()
            f1 = 2 * true_positives / max(predicted.sum() + truth.sum(), 1)
            return {"f1_micro": float(f1), "exact_match": float((predicted == truth).all(axis=1).mean())}
        return {"accuracy": float((logits.argmax(-1) == labels).mean())}

    return compute_metrics


def use_cpu_processes_when_distributed_without_accelerator() -> None:
    """Make a multi-process launch on a machine without GPUs train with DDP over gloo.

    Launched by torchrun or `accelerate launch` on CPUs only, `TrainingArguments` leaves the processes unaware of each
    other (world size 1: each one trains alone on all the data) unless it is told to use the CPU; this tells it.
    """
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    accelerator = getattr(torch, "accelerator", None)
    has_accelerator = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
    if distributed and not has_accelerator:
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")


def main(argv: list[str] | None = None) -> dict:
    use_cpu_processes_when_distributed_without_accelerator()
    parser = HfArgumentParser((FinetuneArguments, TrainingArguments))
    args, training_args = parser.parse_args_into_dataclasses(args=argv)
    if args.problem_type not in PROBLEM_TYPES:
        parser.error(f"--problem_type must be one of {PROBLEM_TYPES}, got {args.problem_type!r}")

    train_rows = read_csv(args.train_csv, args.clips_dir)
    eval_rows = read_csv(args.eval_csv, args.clips_dir) if args.eval_csv else []
    labels = label_names(train_rows, args)

    # every file and label is checked before anything heavy happens: no failure in the middle of an epoch
    train_rows = [Row(clip_of(row), encode_label(row, labels, args)) for row in train_rows]
    eval_rows = [Row(clip_of(row), encode_label(row, labels, args)) for row in eval_rows]

    set_seed(training_args.seed)  # before the new head is initialised: the same head on every process
    base_config = TvltConfig.from_pretrained(args.model_name_or_path, revision=args.revision)
    new_head = (
        base_config.num_labels != len(labels)
        or [base_config.id2label[i] for i in range(base_config.num_labels)] != labels
    )
    model = TvltForAudioVisualClassification.from_pretrained(
        args.model_name_or_path,
        revision=args.revision,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
        problem_type=args.problem_type,
        ignore_mismatched_sizes=new_head,
    )
    processor = TvltProcessor.from_pretrained(args.model_name_or_path, revision=args.revision)
    preparer = TvltClipPreparer(processor, model.config)
    train_dataset = ClipDataset(train_rows, preparer)
    eval_dataset = ClipDataset(eval_rows, preparer) if eval_rows else None

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=TvltDataCollator.from_processor(processor),
        compute_metrics=make_compute_metrics(args.problem_type),
        callbacks=[SaveProcessorCallback(processor)],
    )
    result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    metrics = dict(result.metrics, world_size=training_args.world_size)
    if eval_dataset is not None:
        metrics.update(trainer.evaluate())
    # saves on the main process only: config.json with auto_map and custom_pipelines, the weights, the processor and
    # the code files, i.e. a repo that loads with trust_remote_code=True
    trainer.save_model(training_args.output_dir)
    if trainer.is_world_process_zero():
        processor.save_pretrained(training_args.output_dir)
    trainer.save_state()
    if trainer.is_world_process_zero():
        trainer.log_metrics("all", metrics)
    trainer.save_metrics("all", metrics)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # leave together and close the group: a rank that exits while another still writes can make gloo abort it
        # ("terminate called without an active exception", seen once in the 2-process test on a loaded machine)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return metrics


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, IsADirectoryError) as error:
        print(f"finetune.py: error: {error}", file=sys.stderr)
        sys.exit(2)
