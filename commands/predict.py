"""`tvlt predict VIDEO --model DIR_OR_ID`: classify a clip, or score how well its audio matches its video; with
`--chunk-length` or `--out PICTURE`, per window of a long clip, drawn over time (`_timeline.py`); with
`--out RESULTS.parquet` (or .jsonl), several inputs, a folder, a glob or a manifest: a batch job, one row per clip
(`_batch.py`, `_batch_job.py`)."""

import argparse
import json
import os

from ..checkpoints.loading import CLASSIFICATION, check_model_argument, hub_options
from . import CommandError
from ._argtypes import option_group, positive_int
from ._batch import (
    BATCH_OPTIONS,
    OUTPUT_FORMATS,
    add_batch_arguments,
    looks_like_batch_input,
    output_suffix,
    plan_batch_job,
)
from ._clip_and_model import (
    SOURCE_AND_DEVICE_OPTIONS,
    WINDOW_OPTIONS,
    add_clip_arguments,
    add_model_arguments,
    check_clip_and_model_paths,
    clip_and_model_errors,
    load_clip_and_checkpoint,
    quiet_transformers,
)
from ._timeline import (
    LONG_CLIP_OPTIONS,
    add_timeline_arguments,
    check_timeline_arguments,
    classify_in_windows,
    match_in_windows,
    window_lines,
)


HELP = (
    "Classify a clip with a fine-tuned TVLT checkpoint, or score how well its audio matches its video with a "
    "pre-training one; a long clip in windows, drawn over time; many clips at once as a batch job."
)
USAGE = "VIDEO... --model DIR_OR_ID [--audio FILE] [--out FILE] [options]"
EXAMPLES = [
    "tvlt predict clip.mp4 --model tvlt-mosei-ea",
    "tvlt predict clip.mp4 --audio speech.wav --model tvlt-base --json",
    "tvlt predict talk.mp4 --model tvlt-mosei-ea --chunk-length 10 --hop 5 --out timeline.png",
    "tvlt predict clips/ manifest.csv --model tvlt-mosei-ea --out results.parquet",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for title in (WINDOW_OPTIONS, LONG_CLIP_OPTIONS, BATCH_OPTIONS, SOURCE_AND_DEVICE_OPTIONS):
        option_group(parser, title)  # the order of the headings in --help
    add_model_arguments(parser)
    add_clip_arguments(parser, batch=True)
    add_timeline_arguments(parser)  # --out is the timeline's or the batch job's, by its extension
    parser.add_argument(
        "--top-k", type=positive_int, default=5, metavar="K", help="how many labels to show, best first (default: 5)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_batch_arguments(parser, out=False)


def validate(args: argparse.Namespace) -> None:
    if _is_batch_job(args):
        _check_batch_arguments(args)
        check_model_argument(args.model)
        args.job = plan_batch_job(args.video, args)
        return
    args.video = args.video[0]
    check_timeline_arguments(args)
    check_clip_and_model_paths(args)


def run(args: argparse.Namespace) -> int:
    with quiet_transformers():
        if getattr(args, "job", None) is not None:
            from ._batch_job import predict_task, run_batch_job

            return run_batch_job(args.job, args, lambda config: predict_task(config, args.model))
        return _run(args)


def _is_batch_job(args: argparse.Namespace) -> bool:
    """Several inputs, a folder, a glob or a manifest, or --out RESULTS.parquet/.jsonl: a batch job; else one clip."""
    batch_input = len(args.video) > 1 or looks_like_batch_input(args.video[0])
    batch_out = args.out is not None and output_suffix(args.out) in OUTPUT_FORMATS
    if batch_input and args.out is None:
        first = args.video[0]
        what = "is a directory; expected a video file" if os.path.isdir(first) else "names a batch job"
        raise CommandError(
            f"{first} {what}, or --out RESULTS.parquet (or .jsonl) to write one row per clip of a batch job."
        )
    return batch_input or batch_out


def _check_batch_arguments(args: argparse.Namespace) -> None:
    if args.audio is not None:
        raise CommandError(
            "--audio gives one clip's audio; in a batch job, give each clip's audio in a manifest's `audio` column."
        )
    if args.json:
        raise CommandError("--json prints one clip's result; a batch job writes its rows to --out.")
    for flag, value in (("--chunk-length", args.chunk_length), ("--hop", args.hop), ("--stride", args.stride)):
        if value is not None:
            raise CommandError(
                f"{flag} reads one long clip in windows; a batch job reads one window per clip: give each row its "
                "start and end in a manifest."
            )


def _run(args: argparse.Namespace) -> int:
    clip, config, kind = load_clip_and_checkpoint(args)
    with clip_and_model_errors(args):
        result = _classify(args, clip, config) if kind == CLASSIFICATION else _match(args, clip, config)
    note = getattr(config, "tvlt_demo_note", None)  # set by examples/make_demo_checkpoint.py
    if note:
        result["note"] = note
    print(json.dumps(result) if args.json else _readable(result))
    return 0


def _classify(args, clip: dict, config) -> dict:
    from transformers import pipeline

    from ..modeling_tvlt import TvltForAudioVisualClassification
    from ..pipeline_tvlt import TASK, TvltAudioVisualClassificationPipeline
    from ..processing_tvlt import TvltProcessor

    hub = hub_options(args.model, args.revision)
    processor = TvltProcessor.from_pretrained(args.model, **hub)
    # loaded here, not by `pipeline` from the id: with `hub`, so that it does not ask an unreachable Hub again
    model = TvltForAudioVisualClassification.from_pretrained(args.model, config=config, **hub)
    # The package's own pipeline class: a repo's `custom_pipelines` entry would otherwise ask for trust_remote_code.
    classifier = pipeline(
        TASK,
        model=model,
        processor=processor,
        pipeline_class=TvltAudioVisualClassificationPipeline,
        device=args.device,
    )
    if args.chunk_length is not None:
        outputs = classify_in_windows(args, classifier, clip, config)
    else:
        outputs = {"predictions": classifier(clip, top_k=args.top_k)}
    return {
        "video": args.video,
        "audio": args.audio,
        "model": args.model,
        "task": "classification",
        "problem_type": config.head_problem_type,
        **outputs,
    }


def _match(args, clip: dict, config) -> dict:
    from ..retrieval_tvlt import TvltAudioVisualMatcher

    if not config.task_matching:
        raise CommandError(
            f"--model {args.model} is a pre-training checkpoint without the matching head (task_matching is false) "
            "and without a classifier: nothing to predict."
        )
    matcher = TvltAudioVisualMatcher.from_pretrained(
        args.model, **hub_options(args.model, args.revision), device=args.device
    )
    if args.chunk_length is not None:
        outputs = match_in_windows(args, matcher, clip, config)
    else:
        outputs = {"match_score": matcher.score(clip)}
    return {
        "video": args.video,
        "audio": args.audio,
        "model": args.model,
        "task": "matching",
        **outputs,
    }


def _readable(result: dict) -> str:
    audio = result["audio"] or "its own audio track"
    lines = [f"{result['video']} + {audio}", f"model: {result['model']}"]
    if result.get("note"):
        lines.append(f"NOTE: {result['note']}")
    if result["task"] == "matching":
        if "windows" in result:
            return "\n".join(lines + window_lines(result))
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
    if "windows" in result:
        return "\n".join(lines + window_lines(result, kind))
    lines.append(f"{kind}:")
    lines += [f"  {str(prediction['label']):<{width}}  {prediction['score']:.4f}" for prediction in predictions]
    return "\n".join(lines)


__all__ = ["EXAMPLES", "HELP", "USAGE", "add_arguments", "run", "validate"]
