"""What `tvlt predict` and `tvlt reconstruct` share: the clip and model arguments, and telling checkpoints apart."""

import argparse
import contextlib
import os
import re

from . import CommandError
from ._argtypes import seconds


CLASSIFICATION = "classification"
PRETRAINING = "pretraining"

_CLASSIFICATION_ARCHITECTURES = {"TvltForAudioVisualClassification"}
_PRETRAINING_ARCHITECTURES = {"TvltForPreTraining"}
# a Hub repo id: "name" or "owner/name" (what huggingface_hub accepts)
_REPO_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")


def add_clip_arguments(parser: argparse.ArgumentParser, batch: bool = False) -> None:
    """VIDEO, --audio, --start, --end. With `batch`, VIDEO may be several inputs of a batch job (a list)."""
    if batch:
        parser.add_argument(
            "video",
            nargs="+",
            metavar="VIDEO",
            help="a video file (mp4, mkv, webm, avi, mov, ...); with --out, a batch job: video files, folders, glob "
            "patterns (quoted) or CSV/JSONL manifests (columns video, audio, start, end, id)",
        )
    else:
        parser.add_argument("video", metavar="VIDEO", help="a video file (mp4, mkv, webm, avi, mov, ...)")
    parser.add_argument(
        "--audio",
        metavar="FILE",
        help="the audio to use instead of the video's own track (a wav/flac/mp3/... file, or another video's track); "
        "needed when the video has no sound",
    )
    parser.add_argument(
        "--start", type=seconds, metavar="S", help="start of the time window read from the files (default: 0)"
    )
    parser.add_argument(
        "--end",
        type=seconds,
        metavar="S",
        help="end of the time window (default: start + as much audio as the model takes, ~24 s for TVLT-base)",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR_OR_ID",
        help="a TVLT checkpoint: a local folder (e.g. made by `tvlt convert`) or a Hub repo id",
    )
    parser.add_argument("--revision", help="branch, tag or commit of a Hub repo (default: main)")
    parser.add_argument("--device", help="where to run the model, e.g. cpu, cuda, cuda:1 (default: cuda if available)")


def check_device(device: str | None) -> None:
    """A `CommandError` for a `--device` torch cannot use here (before minutes of loading)."""
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise CommandError(f"--device {device}: {error}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"--device {device}: torch sees no CUDA device on this machine; use --device cpu.")


def check_clip_arguments(args: argparse.Namespace) -> dict:
    """The clip as the pipeline takes it, after checking the files (one-line errors)."""
    from ..inputs_tvlt import check_audio_file, check_video_file, check_window

    check_video_file(args.video)
    if args.audio is not None:
        check_audio_file(args.audio)
    try:
        check_window(args.start, args.end, "--start/--end")
    except ValueError:
        raise CommandError(f"--end ({args.end}) must be after --start ({args.start}).") from None
    clip = {"video": args.video, "start": args.start, "end": args.end}
    if args.audio is not None:
        clip["audio"] = args.audio
    return clip


def load_tvlt_config(model: str, revision: str | None = None):
    """The checkpoint's `TvltConfig`; a `CommandError` naming what is wrong with `--model` otherwise."""
    from transformers import AutoConfig

    if os.path.exists(model):
        if not os.path.isdir(model):
            raise CommandError(
                f"--model {model} is a file; expected a checkpoint folder (with config.json) or a Hub id."
            )
        if not os.path.isfile(os.path.join(model, "config.json")):
            raise CommandError(f"--model {model} has no config.json: it is not a transformers checkpoint folder.")
    elif not _REPO_ID.match(model) or model.startswith((".", "~")):
        raise CommandError(f"--model {model}: no such checkpoint folder.")
    try:
        config = AutoConfig.from_pretrained(model, revision=revision)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = "it" if os.path.isdir(model) else "it is not a local folder, and the Hub"
        raise CommandError(f"--model {model}: cannot load its config ({where} says: {first_line})") from None
    if getattr(config, "model_type", None) != "tvlt":
        raise CommandError(f"--model {model} is not a TVLT checkpoint (model_type {config.model_type!r}).")
    return config


def checkpoint_kind(config) -> str:
    """`CLASSIFICATION` (a fine-tuned head) or `PRETRAINING` (matching head and/or MAE decoder)."""
    architectures = set(config.architectures or [])
    if architectures & _CLASSIFICATION_ARCHITECTURES:
        return CLASSIFICATION
    if architectures & _PRETRAINING_ARCHITECTURES:
        return PRETRAINING
    if not architectures and any(label != f"LABEL_{i}" for i, label in config.id2label.items()):
        return CLASSIFICATION  # an old config without `architectures`, but with labels
    if not architectures:
        return PRETRAINING
    raise CommandError(
        f"the checkpoint's architecture ({', '.join(sorted(architectures))}) has neither a classifier nor the "
        "pre-training heads."
    )


@contextlib.contextmanager
def clip_and_model_errors(args: argparse.Namespace):
    """Turn the expected failures of reading the clip and loading the checkpoint into one-line command errors."""
    from ..inputs_tvlt import MissingAudioError

    try:
        yield
    except MissingAudioError:
        raise CommandError(f"{args.video} has no audio track; give the audio with --audio FILE.") from None
    except ImportError as error:  # PyAV missing: its message says how to install it
        raise CommandError(str(error)) from None
    except OSError as error:
        if isinstance(error, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
            raise
        text = str(error).strip()
        raise CommandError(f"--model {args.model}: {text.splitlines()[0] if text else type(error).__name__}") from None


@contextlib.contextmanager
def quiet_transformers():
    """Keep the command's output readable: no progress bars, only transformers' and the Hub client's errors (TVLT's
    own warnings stay). Restores the previous settings on exit."""
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging

    verbosity, hub_verbosity = logging.get_verbosity(), hub_logging.get_verbosity()
    progress_bar = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    hub_logging.set_verbosity_error()  # e.g. its retry messages while the Hub cannot be reached
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        hub_logging.set_verbosity(hub_verbosity)
        if progress_bar:
            logging.enable_progress_bar()


__all__ = [
    "CLASSIFICATION",
    "PRETRAINING",
    "add_clip_arguments",
    "add_model_arguments",
    "check_clip_arguments",
    "check_device",
    "checkpoint_kind",
    "load_tvlt_config",
    "quiet_transformers",
]
