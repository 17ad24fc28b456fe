"""`tvlt predict VIDEO --model DIR_OR_ID`: classify a clip, or score how well its audio matches its video.

With --out RESULTS.parquet (or .jsonl), or several inputs, a folder, a glob or a manifest: a batch job, one row per clip
(`_batch.py`, `_batch_job.py`).
"""

import argparse
import json
import os

from . import CommandError
from ._argtypes import positive_int
from ._batch import add_batch_arguments, looks_like_batch_input, plan_batch_job
from ._checkpoints import (
    CLASSIFICATION,
    add_clip_arguments,
    add_model_arguments,
    check_clip_arguments,
    check_device,
    checkpoint_kind,
    clip_and_model_errors,
    load_tvlt_config,
    quiet_transformers,
)


HELP = (
    "Classify a video clip and its audio with a fine-tuned TVLT checkpoint (the audio-visual-classification "
    "pipeline), or, with a pre-training checkpoint, score how well the audio matches the video."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_arguments(parser, batch=True)
    add_model_arguments(parser)
    parser.add_argument(
        "--top-k", type=positive_int, default=5, metavar="K", help="how many labels to show, best first (default: 5)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_batch_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if _is_batch_job(args):
        return _run_batch(args)
    args.video = args.video[0]
    with quiet_transformers():
        return _run(args)


def _is_batch_job(args: argparse.Namespace) -> bool:
    """Several inputs, a folder, a glob or a manifest, or --out: a batch job (rows to --out); else one clip."""
    batch_input = len(args.video) > 1 or looks_like_batch_input(args.video[0])
    if batch_input and args.out is None:
        first = args.video[0]
        what = "is a directory; expected a video file" if os.path.isdir(first) else "names a batch job"
        raise CommandError(
            f"{first} {what}, or --out RESULTS.parquet (or .jsonl) to write one row per clip of a batch job."
        )
    return batch_input or args.out is not None


def _run_batch(args: argparse.Namespace) -> int:
    if args.audio is not None:
        raise CommandError(
            "--audio gives one clip's audio; in a batch job, give each clip's audio in a manifest's `audio` column."
        )
    if args.json:
        raise CommandError("--json prints one clip's result; a batch job writes its rows to --out.")
    job = plan_batch_job(args.video, args)  # before torch and transformers are imported
    with quiet_transformers():
        from ._batch_job import predict_task, run_batch_job

        return run_batch_job(job, args, lambda config: predict_task(config, args.model))


def _run(args: argparse.Namespace) -> int:
    clip = check_clip_arguments(args)
    check_device(args.device)
    config = load_tvlt_config(args.model, args.revision)
    kind = checkpoint_kind(config)
    with clip_and_model_errors(args):
        result = _classify(args, clip, config) if kind == CLASSIFICATION else _match(args, clip, config)
    note = getattr(config, "tvlt_demo_note", None)  # set by examples/make_demo_checkpoint.py
    if note:
        result["note"] = note
    print(json.dumps(result) if args.json else _readable(result))
    return 0


def _classify(args, clip: dict, config) -> dict:
    from transformers import pipeline

    from ..pipeline_tvlt import TASK, TvltAudioVisualClassificationPipeline, head_problem_type
    from ..processing_tvlt import TvltProcessor

    processor = TvltProcessor.from_pretrained(args.model, revision=args.revision)
    # The package's own pipeline class: a repo's `custom_pipelines` entry would otherwise ask for trust_remote_code.
    classifier = pipeline(
        TASK,
        model=args.model,
        processor=processor,
        pipeline_class=TvltAudioVisualClassificationPipeline,
        revision=args.revision,
        device=args.device,
    )
    predictions = classifier(clip, top_k=args.top_k)
    return {
        "video": args.video,
        "audio": args.audio,
        "model": args.model,
        "task": "classification",
        "problem_type": head_problem_type(config),
        "predictions": predictions,
    }


def _match(args, clip: dict, config) -> dict:
    from ..retrieval_tvlt import TvltAudioVisualMatcher

    if not config.task_matching:
        raise CommandError(
            f"--model {args.model} is a pre-training checkpoint without the matching head (task_matching is false) "
            "and without a classifier: nothing to predict."
        )
    matcher = TvltAudioVisualMatcher.from_pretrained(args.model, revision=args.revision, device=args.device)
    score = matcher.score(clip)
    return {
        "video": args.video,
        "audio": args.audio,
        "model": args.model,
        "task": "matching",
        "match_score": score,
    }


def _readable(result: dict) -> str:
    audio = result["audio"] or "its own audio track"
    lines = [f"{result['video']} + {audio}", f"model: {result['model']}"]
    if result.get("note"):
        lines.append(f"NOTE: {result['note']}")
    if result["task"] == "matching":
        lines.append(
            f"audio-video match: {result['match_score']:.4f}  (probability that the audio belongs to the video, "
            "from the pre-training matching head; this checkpoint has no classifier)"
        )
        return "\n".join(lines)
    predictions = result["predictions"]
    width = max(len(str(prediction["label"])) for prediction in predictions)
    kind = {
        "regression": "predicted values",
        "multi_label_classification": "label probabilities (multi-label, independent)",
    }.get(result["problem_type"], "label probabilities")
    lines.append(f"{kind}:")
    lines += [f"  {str(prediction['label']):<{width}}  {prediction['score']:.4f}" for prediction in predictions]
    return "\n".join(lines)


__all__ = ["HELP", "add_arguments", "run"]
