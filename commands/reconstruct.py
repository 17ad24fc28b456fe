"""`tvlt reconstruct VIDEO --model DIR_OR_ID --out recon.png`: picture TVLT's masked-autoencoder reconstruction."""

import argparse
import os
import sys

from ..checkpoints.loading import CLASSIFICATION, hub_options
from . import CommandError
from ._argtypes import option_group, ratio, seed
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
from ._picture_file import PICTURE_SUFFIXES_TEXT, check_picture_path, picture_format, refuse_directory, write_picture


HELP = (
    "Draw TVLT's masked autoencoding of a clip: its frames and spectrogram, the same with patches hidden, and the "
    "reconstruction of a pre-training checkpoint (one with its MAE decoder)."
)
USAGE = "VIDEO --model DIR_OR_ID --out PICTURE [--audio FILE] [options]"
EXAMPLES = [
    "tvlt reconstruct clip.mp4 --model tvlt-base --out recon.png",
    "tvlt reconstruct clip.mp4 --model tvlt-base --out recon.pdf --pixel-mask-ratio 0.9 --seed 1",
]
MASKING_OPTIONS = "masking"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for title in (WINDOW_OPTIONS, MASKING_OPTIONS, SOURCE_AND_DEVICE_OPTIONS):
        option_group(parser, title)  # the order of the headings in --help
    add_model_arguments(parser)
    add_clip_arguments(
        parser,
        default_start="0; in a clip longer than 1.5 times the model's audio, the start of its busiest stretch, which "
        "the command names",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="PICTURE",
        help=f"the picture to write; its extension picks the format ({PICTURE_SUFFIXES_TEXT})",
    )
    masking = option_group(parser, MASKING_OPTIONS)
    masking.add_argument("--seed", type=seed, default=0, help="seed of the random masking (default: 0)")
    masking.add_argument(
        "--pixel-mask-ratio",
        type=ratio,
        metavar="R",
        help="fraction of video patches to hide (default: the checkpoint's, 0.75 for TVLT-base)",
    )
    masking.add_argument(
        "--audio-mask-ratio",
        type=ratio,
        metavar="R",
        help="fraction of audio patches to hide (default: the checkpoint's, 0.15 for TVLT-base)",
    )


def validate(args: argparse.Namespace) -> None:
    check_clip_and_model_paths(args)
    args.picture_format = _check_out(args.out, {"VIDEO": args.video, "--audio": args.audio})


def run(args: argparse.Namespace) -> int:
    with quiet_transformers():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    out = args.out
    clip, config, kind = load_clip_and_checkpoint(args)
    if kind == CLASSIFICATION:
        raise CommandError(
            f"--model {args.model} is a fine-tuned classifier: its MAE decoder was not kept. Use a pre-training "
            "checkpoint (TvltForPreTraining, e.g. a converted ZinengTang/tvlt-base)."
        )
    if not config.task_mae:
        raise CommandError(f"--model {args.model} has no MAE decoder (task_mae is false): nothing to reconstruct.")
    for name in ("pixel_mask_ratio", "audio_mask_ratio"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))

    from ..inputs_tvlt import AudioVisualClip, TvltClipPreparer
    from ..modeling_tvlt import TvltForPreTraining
    from ..processing_tvlt import TvltProcessor
    from ._mae_picture import reconstruct, render

    with clip_and_model_errors(args):
        hub = hub_options(args.model, args.revision)
        processor = TvltProcessor.from_pretrained(args.model, **hub)
        model = TvltForPreTraining.from_pretrained(args.model, config=config, **hub).eval()
        if args.device:
            model = model.to(args.device)
        preparer = TvltClipPreparer(processor, config)
        if args.start is None and args.end is None:
            clip["start"], clip["end"] = _default_window(args, preparer.max_audio_seconds)
        inputs = preparer(AudioVisualClip.from_input(clip))

    reconstruction = reconstruct(
        model, processor.image_processor, inputs, seed=args.seed, audio_padding_value=preparer.audio_padding_value
    )
    audio = os.path.basename(args.audio) if args.audio else "its audio track"
    start = _seconds(clip["start"] or 0)
    window = f"{start}-{_seconds(clip['end'])} s" if clip["end"] is not None else f"from {start} s"
    title = (
        f"TVLT masked autoencoding - {os.path.basename(args.video)} ({window}) + {audio} - model {args.model} - "
        f"seed {args.seed}"
    )
    note = getattr(config, "tvlt_demo_note", None)  # set by examples/make_demo_checkpoint.py
    picture = render(reconstruction, title, notes=(f"NOTE: {note}",) if note else ())
    _save_picture(picture, out, args.picture_format)
    print(out)
    return 0


def _default_window(args: argparse.Namespace, span: float) -> tuple[float | None, float | None]:
    """The busiest span of a long clip (see `_window.py`), said on stderr; `(None, None)` (from 0 s) otherwise."""
    from ._window import CANDIDATES, busiest_window

    window = busiest_window(args.video, args.audio, span)
    if window is None:
        return None, None
    start, end = window
    print(
        f"tvlt reconstruct: {args.video} is longer than the {_seconds(span)} s the model takes: drawing "
        f"{_seconds(start)}-{_seconds(end)} s, the loudest and most moving of {CANDIDATES} evenly spaced windows; "
        "choose another with --start/--end.",
        file=sys.stderr,
    )
    return start, end


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f}".rstrip("0").rstrip(".")


def _check_out(out: str, inputs: dict | None = None) -> tuple[str, str]:
    """Pillow's format and mode for `--out`; a `CommandError` when the picture cannot be written there or would
    replace one of `inputs` (flag -> path)."""
    refuse_directory(out)
    picture = picture_format(out)
    check_picture_path(out, inputs or {})
    return picture


def _save_picture(picture, out: str, picture_format: tuple[str, str]) -> None:
    try:
        write_picture(picture, out, picture_format, quality=95)  # quality: the patch edges stay sharp in a JPEG
    except OSError as error:  # e.g. the disk is full, or the folder became read-only while the model ran
        raise CommandError(f"--out {out}: cannot write the picture ({error.strerror or error}).") from None


__all__ = ["EXAMPLES", "HELP", "USAGE", "add_arguments", "run", "validate"]
