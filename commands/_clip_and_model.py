"""What the commands that run a model share: the clip and model arguments, their torch-free checks, and the one-line
errors of reading a clip and loading `--model` (the loading itself is `tvlt.checkpoints.loading`)."""

import argparse
import contextlib
import os

from ..checkpoints.errors import first_line
from ..checkpoints.loading import check_model_argument, load_checkpoint
from . import CommandError
from ._argtypes import option_group, seconds


# The `--help` headings that several commands share (the options most users need stand under none)
WINDOW_OPTIONS = "time window"
SOURCE_AND_DEVICE_OPTIONS = "checkpoint source and device"
# what `--help` says of the audio a model takes: the window's default end and the longest `--chunk-length`
AUDIO_SPAN_TEXT = "the model's audio span: 23.78 s for TVLT-base, 2.98 s for the demo checkpoint"


def add_clip_arguments(parser: argparse.ArgumentParser, default_start: str = "0", batch: bool = False) -> None:
    """VIDEO, --audio, --start, --end. `default_start`: what `--help` says the window starts at without `--start`.
    With `batch`, VIDEO may be several inputs of a batch job (a list)."""
    if batch:
        parser.add_argument(
            "video",
            nargs="+",
            metavar="VIDEO",
            help="a video file (mp4, mkv, webm, avi, mov, ...); for a batch job: video files, folders, quoted glob "
            "patterns or CSV/JSONL manifests (columns video, audio, start, end, id)",
        )
    else:
        parser.add_argument("video", metavar="VIDEO", help="a video file (mp4, mkv, webm, avi, mov, ...)")
    parser.add_argument(
        "--audio",
        metavar="FILE",
        help="audio to use instead of the video's own track (a wav/flac/mp3/... file or another video); needed when "
        "the video has no sound",
    )
    window = option_group(parser, WINDOW_OPTIONS)
    window.add_argument(
        "--start",
        type=seconds,
        metavar="S",
        help=f"start of the window read from the files, in seconds (default: {default_start})",
    )
    window.add_argument(
        "--end", type=seconds, metavar="S", help=f"end of the window (default: start + {AUDIO_SPAN_TEXT})"
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model among the options most users need; --revision and --device under their heading."""
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR_OR_ID",
        help="a TVLT checkpoint: a local folder (e.g. made by `tvlt convert`) or a Hub repo id",
    )
    source_and_device = option_group(parser, SOURCE_AND_DEVICE_OPTIONS)
    source_and_device.add_argument("--revision", help="branch, tag or commit of a Hub repo (default: main)")
    source_and_device.add_argument(
        "--device", help="where to run the model, e.g. cpu, cuda, cuda:1 (default: cuda if available)"
    )


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


def check_clip_paths(args: argparse.Namespace) -> None:
    """The torch-free checks of the clip arguments (a subcommand's `validate`): the files exist, the window is ordered.
    (`--start`/`--end` values are checked by their argparse type.)"""
    from ..media_tvlt import check_media_file  # standard library and numpy only

    for flag, path, kind in (("VIDEO", args.video, "video"), ("--audio", args.audio, "audio")):
        if path is not None:
            try:
                check_media_file(path, kind)
            except (OSError, TypeError) as error:
                raise CommandError(f"{flag} {error}") from None
    if args.end is not None:
        if args.start is None and args.end == 0:
            raise CommandError("--end must be greater than 0 (the window starts at 0 s).")
        if args.start is not None and args.end <= args.start:
            raise CommandError(f"--end ({args.end}) must be after --start ({args.start}).")


def check_clip_arguments(args: argparse.Namespace) -> dict:
    """The clip as the pipeline takes it, after the library's checks of the files (one-line errors)."""
    from ..inputs_tvlt import check_audio_file, check_video_file

    check_video_file(args.video)
    if args.audio is not None:
        try:
            check_audio_file(args.audio)
        except OSError as error:  # no such file, a directory: the message names the file
            raise CommandError(f"--audio {error}") from None
    clip = {"video": args.video, "start": args.start, "end": args.end}
    if args.audio is not None:
        clip["audio"] = args.audio
    return clip


def check_clip_and_model_paths(args: argparse.Namespace) -> None:
    """The torch-free checks of a one-clip command's VIDEO, --audio, window and --model (its `validate`)."""
    check_clip_paths(args)
    check_model_argument(args.model)


def load_clip_and_checkpoint(args: argparse.Namespace) -> tuple[dict, object, str]:
    """The first steps of a one-clip command once torch may be imported, in the order their errors should come: the
    clip's files, `--device`, then `--model` (`load_checkpoint`). Returns the clip, the config and its kind."""
    clip = check_clip_arguments(args)
    check_device(args.device)
    return (clip, *load_checkpoint(args.model, args.revision))


@contextlib.contextmanager
def clip_and_model_errors(args: argparse.Namespace):
    """Turn the expected failures of reading the clip and loading the checkpoint into one-line command errors."""
    from ..inputs_tvlt import ClipAudioError, MissingAudioError

    try:
        yield
    except MissingAudioError:
        raise CommandError(f"{args.video} has no audio track; give the audio with --audio FILE.") from None
    except ClipAudioError as error:  # its message names the file; say which option gave it
        given_by_option = args.audio is not None and error.path == os.fspath(args.audio)
        raise CommandError(f"--audio {error}" if given_by_option else str(error)) from None
    except ImportError as error:  # PyAV missing: its message says how to install it
        raise CommandError(str(error)) from None
    except OSError as error:
        if isinstance(error, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
            raise
        raise CommandError(f"--model {args.model}: {first_line(error)}") from None


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
    "AUDIO_SPAN_TEXT",
    "SOURCE_AND_DEVICE_OPTIONS",
    "WINDOW_OPTIONS",
    "add_clip_arguments",
    "add_model_arguments",
    "check_clip_and_model_paths",
    "check_clip_arguments",
    "check_clip_paths",
    "check_device",
    "clip_and_model_errors",
    "load_clip_and_checkpoint",
    "quiet_transformers",
]
