"""`tvlt predict --chunk-length S --stride S --out timeline.png`: a long clip read in windows, a result per window and
their mean, printed and drawn over time.

The arguments are checked here before torch or transformers are imported; the windows are those of the
`audio-visual-classification` pipeline (`chunk_length_s`/`stride_length_s`), also for the matching score of
pre-training checkpoints.
"""

import argparse
import math
import os

from . import CommandError
from ._argtypes import chunk_length, option_group, seconds
from ._clip_and_model import AUDIO_SPAN_TEXT
from ._picture_file import check_picture_path, picture_format, refuse_directory


AUTO = "auto"  # inputs_tvlt.CHUNK_LENGTH_AUTO, restated: importing inputs_tvlt imports torch


LONG_CLIP_OPTIONS = "long clips, read in windows"


def add_timeline_arguments(parser: argparse.ArgumentParser) -> None:
    """--out (a timeline picture or a batch job's folder) among the main options; --chunk-length, --stride, --hop."""
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="PICTURE (.png, .jpg, .webp, .pdf, ...): draw the scores over time, reading the clip in windows "
        "(replaces PICTURE); RESULTS.parquet or RESULTS.jsonl: a batch job's results folder, resumed when re-run",
    )
    windows = option_group(parser, LONG_CLIP_OPTIONS)
    windows.add_argument(
        "--chunk-length",
        type=chunk_length,
        metavar="S|auto",
        help=f"read the clip in windows of S seconds, a result per window and their mean; at most {AUDIO_SPAN_TEXT} "
        "(auto: that span; the default with --out PICTURE)",
    )
    overlap = windows.add_mutually_exclusive_group()
    overlap.add_argument(
        "--hop",
        type=seconds,
        metavar="S",
        help="seconds from one window's start to the next (default: the chunk length: windows side by side); e.g. "
        "--chunk-length 10 --hop 5",
    )
    overlap.add_argument(
        "--stride",
        type=seconds,
        metavar="S",
        help="or: seconds each window shares with each neighbour, as stride_length_s of the speech-recognition "
        "pipeline (less than half the chunk length): --chunk-length 10 --stride 2.5 is --hop 5",
    )


def check_timeline_arguments(args: argparse.Namespace) -> None:
    """One-line `CommandError`s for `--chunk-length`/`--hop`/`--stride`/`--out`, before anything heavy is imported.
    `--out` without `--chunk-length` means `--chunk-length auto`; a `--hop` becomes the stride it means once the chunk
    length is known (here, or from the model for auto)."""
    if args.out is not None:
        _check_out(args)
        if args.chunk_length is None:
            args.chunk_length = AUTO
    flag = "--hop" if args.hop is not None else "--stride" if args.stride is not None else None
    if flag is None:
        return
    if args.chunk_length is None:
        raise CommandError(f"{flag} needs --chunk-length (or --out PICTURE): it spaces the windows of a long clip.")
    if args.chunk_length != AUTO:
        _settle_overlap(args, args.chunk_length, f"--chunk-length {args.chunk_length:g}")


def classify_in_windows(args: argparse.Namespace, classifier, clip: dict, config) -> dict:
    """The classification fields of `tvlt predict`'s result for a clip read in windows; draws `--out`."""
    _check_against_model(args, classifier.clip_preparer)
    result = classifier(clip, top_k=None, chunk_length_s=args.chunk_length, stride_length_s=_stride_length_s(args))
    windows = result["windows"]
    problem_type = config.head_problem_type
    top_k = None if problem_type == "regression" else args.top_k
    fields = _window_fields(args)
    fields["windows"] = [
        {"start": window["start"], "end": window["end"], "predictions": window["predictions"][:top_k]}
        for window in windows
    ]
    fields["predictions"] = result["aggregate"][:top_k]
    if args.out is not None:
        from ._timeline_picture import Timeline

        labels = [item["label"] for item in fields["predictions"]]
        scores = [{item["label"]: item["score"] for item in window["predictions"]} for window in windows]
        series = {label: [window_scores[label] for window_scores in scores] for label in labels}
        kind = {
            "regression": "predicted values (regression head)",
            "multi_label_classification": "label probabilities (multi-label: independent sigmoids)",
        }.get(problem_type, "label probabilities (softmax)")
        timeline = Timeline(
            windows=[(window["start"], window["end"]) for window in windows],
            series=series,
            title="",
            subtitle=kind,
            value_name="predicted value" if problem_type == "regression" else "probability",
            probabilities=problem_type != "regression",
            more_labels=len(result["aggregate"]) - len(labels),
            best=[window["predictions"][0]["label"] for window in windows]
            if problem_type == "single_label_classification"
            else None,
        )
        _draw(args, timeline, config, fields)
    return fields


def match_in_windows(args: argparse.Namespace, matcher, clip: dict, config) -> dict:
    """The matching fields of `tvlt predict`'s result for a clip read in windows; draws `--out`."""
    from ..inputs_tvlt import AudioVisualClip

    _check_against_model(args, matcher.clip_preparer)
    spans = matcher.clip_preparer.chunk_windows(
        AudioVisualClip.from_input(clip), args.chunk_length, _stride_length_s(args)
    )
    scores = []
    for first in range(0, len(spans), matcher.batch_size):  # a batch of windows at a time: memory stays flat
        batch = [{**clip, "start": start, "end": end} for start, end in spans[first : first + matcher.batch_size]]
        scores += matcher.score(batch)
    fields = _window_fields(args)
    fields["windows"] = [
        {"start": start, "end": end, "match_score": score} for (start, end), score in zip(spans, scores)
    ]
    fields["match_score"] = sum(scores) / len(scores)
    if args.out is not None:
        from ._timeline_picture import Timeline

        timeline = Timeline(
            windows=spans,
            series={"audio-video match": scores},
            title="",
            subtitle="audio-video match probability (pre-training matching head)",
            value_name="match probability",
        )
        _draw(args, timeline, config, fields)
    return fields


def window_lines(result: dict, kind: str | None = None) -> list[str]:
    """The readable lines of a windowed result (`kind`: what the classification scores are)."""
    from ._timeline_picture import clock, clock_decimals

    windows = result["windows"]
    bounds = [time for window in windows for time in (window["start"], window["end"])]
    decimals, hours = clock_decimals(*bounds), bounds[-1] >= 3600

    def span(window) -> str:
        return f"{clock(window['start'], decimals, hours)}-{clock(window['end'], decimals, hours)}"

    lines = [_describe_windows(windows, result["stride_length_s"])]
    if kind is None:
        lines.append("audio-video match per window:")
        lines += [f"  {span(window)}  {window['match_score']:.4f}" for window in windows]
        lines.append(f"mean over the {len(windows)} windows: {result['match_score']:.4f}")
    else:
        lines.append(f"{kind}, per window:")
        for window in windows:
            scores = "  ".join(f"{item['label']} {item['score']:.4f}" for item in window["predictions"])
            lines.append(f"  {span(window)}  {scores}")
        lines.append(f"mean over the {len(windows)} windows:")
        width = max(len(str(item["label"])) for item in result["predictions"])
        lines += [f"  {str(item['label']):<{width}}  {item['score']:.4f}" for item in result["predictions"]]
    if result.get("timeline"):
        lines.append(f"timeline: {result['timeline']}")
    return lines


# -- helpers ----------------------------------------------------------------------------------------------------------


def _check_out(args: argparse.Namespace) -> None:
    """Checks `--out` before anything heavy; keeps Pillow's format in `args.picture_format` for the end."""
    out = args.out
    refuse_directory(out)
    try:
        args.picture_format = picture_format(out)
    except CommandError as error:  # not a picture: maybe meant as a batch job's results
        raise CommandError(f"{error} Or RESULTS.parquet / RESULTS.jsonl for a batch job's results.") from None
    check_picture_path(out, {"VIDEO": args.video, "--audio": args.audio})


def _settle_overlap(args: argparse.Namespace, chunk: float, chunk_text: str) -> None:
    """Check `--hop`/`--stride` against the chunk length and keep the stride in `args.stride` (the pipeline's
    `stride_length_s`: one rule for the windows, hop = chunk length - 2 x stride)."""
    if args.hop is not None:
        if not 0 < args.hop <= chunk:
            raise CommandError(
                f"--hop {args.hop:g} must be more than 0 and at most {chunk_text}: windows start every hop seconds "
                f"and hold chunk-length seconds, so a longer hop would skip part of the clip (e.g. --hop "
                f"{_seconds(chunk / 2)} for windows that overlap by half)."
            )
        # in whole microseconds, as the windows are cut: an odd overlap goes 1 us more to the right, so that the
        # windows start exactly every hop seconds instead of drifting by a microsecond each
        overlap_us = round(chunk * 1e6) - round(args.hop * 1e6)
        args.stride_length_s = (overlap_us // 2 / 1e6, (overlap_us - overlap_us // 2) / 1e6)
        args.stride = overlap_us / 2e6
    elif 2 * args.stride >= chunk:
        raise CommandError(
            f"--stride {args.stride:g} is what each window shares with each neighbour, so with {chunk_text} the "
            f"windows would not move on (they start every chunk-length - 2 x stride seconds): give a stride below "
            f"{_seconds(chunk / 2)}, or the step itself with --hop (e.g. --hop {_seconds(chunk / 2)})."
        )


def _check_against_model(args: argparse.Namespace, preparer) -> None:
    """What needs the model: windows no longer than the audio it takes, and a stride that leaves a step."""
    span = math.floor(preparer.max_audio_seconds * 1e6) / 1e6
    if args.chunk_length == AUTO:
        if args.stride is not None or args.hop is not None:
            _settle_overlap(args, span, f"--chunk-length auto ({span:.2f} s for this model)")
    elif args.chunk_length > span + 1e-6:
        raise CommandError(
            f"--chunk-length {args.chunk_length:g} is longer than the {span:.2f} s of audio this model takes; use at "
            "most that, or auto."
        )
    elif args.chunk_length < preparer.audio_patch_seconds:
        raise CommandError(
            f"--chunk-length {args.chunk_length:g} is shorter than the {preparer.audio_patch_seconds:.3f} s of audio "
            "that make one audio patch, the least a window holds."
        )


def _stride_length_s(args: argparse.Namespace):
    """What the pipeline takes: `--stride`, or the (left, right) overlap that `--hop` leaves."""
    return getattr(args, "stride_length_s", args.stride)


def _window_fields(args: argparse.Namespace) -> dict:
    return {"chunk_length_s": args.chunk_length, "stride_length_s": args.stride or 0.0}


def _describe_windows(windows: list[dict], stride: float) -> str:
    first = windows[0]
    length = first["end"] - first["start"]
    if len(windows) == 1:
        return f"1 window of {_seconds(length)} s (the whole clip is shorter than a window)"
    return f"{len(windows)} windows of {_seconds(length)} s, one every {_seconds(length - 2 * stride)} s"


def _seconds(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _draw(args: argparse.Namespace, timeline, config, fields: dict) -> None:
    from ._timeline_picture import render, save

    audio = os.path.basename(args.audio) if args.audio else "its audio track"
    timeline.title = f"TVLT timeline: {os.path.basename(args.video)} + {audio}"
    timeline.subtitle = (
        f"model {args.model}  ·  {timeline.subtitle}  ·  "
        f"{_describe_windows([{'start': s, 'end': e} for s, e in timeline.windows], args.stride or 0.0)}"
    )
    note = getattr(config, "tvlt_demo_note", None)  # set by examples/make_demo_checkpoint.py
    timeline.notes = (f"NOTE: {note}",) if note else ()
    try:
        save(render(timeline), args.out, args.picture_format)
    except OSError as error:  # e.g. the disk filled up while the windows were read
        raise CommandError(f"--out {args.out}: cannot write the picture ({error.strerror or error}).") from None
    fields["timeline"] = args.out


__all__ = [
    "LONG_CLIP_OPTIONS",
    "add_timeline_arguments",
    "check_timeline_arguments",
    "classify_in_windows",
    "match_in_windows",
    "window_lines",
]
