"""`tvlt reconstruct VIDEO --model DIR_OR_ID --out recon.png`: picture TVLT's masked-autoencoder reconstruction."""

import argparse
import os

from . import CommandError
from ._argtypes import ratio, seed
from ._checkpoints import (
    CLASSIFICATION,
    PRETRAINING,
    add_clip_arguments,
    add_model_arguments,
    check_clip_arguments,
    check_device,
    check_model_weights,
    checkpoint_kind,
    clip_and_model_errors,
    load_tvlt_config,
    quiet_transformers,
)


HELP = (
    "Draw a PNG of TVLT's masked autoencoding of a clip: the input frames and spectrogram, the same with patches "
    "hidden, and the pre-training model's reconstruction (needs a pre-training checkpoint with its MAE decoder)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_arguments(parser)
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, metavar="PNG", help="the picture to write (a .png path)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the random masking (default: 0)")
    parser.add_argument(
        "--pixel-mask-ratio",
        type=ratio,
        metavar="R",
        help="fraction of video patches to hide (default: the checkpoint's, 0.75 for TVLT-base)",
    )
    parser.add_argument(
        "--audio-mask-ratio",
        type=ratio,
        metavar="R",
        help="fraction of audio patches to hide (default: the checkpoint's, 0.15 for TVLT-base)",
    )


def run(args: argparse.Namespace) -> int:
    with quiet_transformers():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    clip = check_clip_arguments(args)
    check_device(args.device)
    out = _check_out(args.out)
    config = load_tvlt_config(args.model, args.revision)
    if checkpoint_kind(config) == CLASSIFICATION:
        raise CommandError(
            f"--model {args.model} is a fine-tuned classifier: its MAE decoder was not kept. Use a pre-training "
            "checkpoint (TvltForPreTraining, e.g. a converted ZinengTang/tvlt-base)."
        )
    if not config.task_mae:
        raise CommandError(f"--model {args.model} has no MAE decoder (task_mae is false): nothing to reconstruct.")
    check_model_weights(args.model, args.revision, config, PRETRAINING)
    for name in ("pixel_mask_ratio", "audio_mask_ratio"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))

    from ..inputs_tvlt import AudioVisualClip, TvltClipPreparer
    from ..modeling_tvlt import TvltForPreTraining
    from ..processing_tvlt import TvltProcessor
    from ._mae_picture import reconstruct, render

    with clip_and_model_errors(args):
        processor = TvltProcessor.from_pretrained(args.model, revision=args.revision)
        model = TvltForPreTraining.from_pretrained(args.model, config=config, revision=args.revision).eval()
        if args.device:
            model = model.to(args.device)
        preparer = TvltClipPreparer(processor, config)
        inputs = preparer(AudioVisualClip.from_input(clip))

    reconstruction = reconstruct(
        model, processor.image_processor, inputs, seed=args.seed, audio_padding_value=preparer.audio_padding_value
    )
    audio = os.path.basename(args.audio) if args.audio else "its audio track"
    title = (
        f"TVLT masked autoencoding - {os.path.basename(args.video)} + {audio} - model {args.model} - seed {args.seed}"
    )
    note = getattr(config, "tvlt_demo_note", None)  # set by examples/make_demo_checkpoint.py
    render(reconstruction, title, notes=(f"NOTE: {note}",) if note else ()).save(out, format="PNG")
    print(out)
    return 0


def _check_out(out: str) -> str:
    if os.path.isdir(out):
        raise CommandError(f"--out {out} is a directory; give the path of the PNG file to write.")
    if not out.lower().endswith(".png"):
        raise CommandError(f"--out {out}: the picture is a PNG; give a path ending in .png.")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise CommandError(f"--out {out}: the folder {parent} does not exist.")
    return out


__all__ = ["HELP", "add_arguments", "run"]
