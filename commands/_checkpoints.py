"""What `tvlt predict` and `tvlt reconstruct` share: the clip and model arguments, and telling checkpoints apart."""

import argparse
import contextlib
import os
import re

from ..conversion.errors import first_line
from ..conversion.paths import PROCESSOR_CONFIG_FILES
from ..remote_code_tvlt import CLASSIFIER_ARCHITECTURE, PRETRAINING_ARCHITECTURE
from . import CommandError
from ._argtypes import seconds


CLASSIFICATION = "classification"
PRETRAINING = "pretraining"

# a Hub repo id: "name" or "owner/name" (what huggingface_hub accepts)
_REPO_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")


def add_clip_arguments(parser: argparse.ArgumentParser, default_start: str = "0", batch: bool = False) -> None:
    """VIDEO, --audio, --start, --end. `default_start`: what `--help` says the window starts at without `--start`.
    With `batch`, VIDEO may be several inputs of a batch job (a list)."""
    if batch:
        parser.add_argument(
            "video",
            nargs="+",
            metavar="VIDEO",
            help="a video file (mp4, mkv, webm, avi, mov, ...); with --out RESULTS.parquet (or .jsonl), a batch job: "
            "video files, folders, glob patterns (quoted) or CSV/JSONL manifests (columns video, audio, start, end, "
            "id)",
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
        "--start",
        type=seconds,
        metavar="S",
        help=f"start of the time window read from the files (default: {default_start})",
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


def check_model_argument(model: str) -> None:
    """The torch-free checks of `--model`: an existing checkpoint folder with a config.json, or a Hub repo id."""
    if os.path.exists(model):
        if not os.path.isdir(model):
            raise CommandError(
                f"--model {model} is a file; expected a checkpoint folder (with config.json) or a Hub id."
            )
        if not os.path.isfile(os.path.join(model, "config.json")):
            raise CommandError(f"--model {model} has no config.json: it is not a transformers checkpoint folder.")
    elif not _REPO_ID.match(model) or model.startswith((".", "~")):
        raise CommandError(f"--model {model}: no such checkpoint folder.")


def load_tvlt_config(model: str, revision: str | None = None):
    """The checkpoint's `TvltConfig`; a `CommandError` naming what is wrong with `--model` otherwise."""
    from transformers import AutoConfig

    check_model_argument(model)
    local_files_only = False
    if not os.path.exists(model):  # a Hub id: say at once when the Hub cannot be reached and nothing is cached
        from ..conversion.errors import ConversionError
        from ..conversion.hub import read_from_cache_only

        try:
            local_files_only = read_from_cache_only(model, revision, f"--model {model}")
        except ConversionError as error:
            raise CommandError(str(error)) from None
    try:
        config = AutoConfig.from_pretrained(model, revision=revision, local_files_only=local_files_only)
    except (OSError, ValueError) as error:
        where = "it" if os.path.isdir(model) else "it is not a local folder, and the Hub"
        raise CommandError(f"--model {model}: cannot load its config ({where} says: {first_line(error)})") from None
    if getattr(config, "model_type", None) != "tvlt":
        raise CommandError(f"--model {model} is not a TVLT checkpoint (model_type {config.model_type!r}).")
    return config


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


def load_checkpoint(model: str, revision: str | None) -> tuple[object, str]:
    """`--model`'s config and its `checkpoint_kind`, after checking its weights against the config and that a local
    folder has the processor settings too (one-line `CommandError`s)."""
    config = load_tvlt_config(model, revision)
    kind = checkpoint_kind(config)
    check_model_weights(model, revision, config, kind)
    if os.path.isdir(model) and not any(os.path.isfile(os.path.join(model, name)) for name in PROCESSOR_CONFIG_FILES):
        raise CommandError(
            f"--model {model} has no processor settings ({' or '.join(PROCESSOR_CONFIG_FILES)}): save the processor "
            "the model was trained with next to it (`processor.save_pretrained(folder)`), or make the folder with "
            "`tvlt convert`."
        )
    return config, kind


def check_model_weights(model: str, revision: str | None, config, kind: str) -> None:
    """
    Compare `--model`'s config with the shapes and dtypes in its weight files before `from_pretrained` allocates
    anything (see `tvlt.conversion.preflight`): a code-running pickle, a wrong shape or dtype or an absurd config is a
    one-line `CommandError` naming the key or field.
    """
    from ..conversion.errors import ConversionError
    from ..conversion.preflight import check_checkpoint
    from ..modeling_tvlt import TvltForAudioVisualClassification, TvltForPreTraining

    model_class = TvltForAudioVisualClassification if kind == CLASSIFICATION else TvltForPreTraining
    try:
        check_checkpoint(model_class, config, _weight_files(model, revision), f"--model {model}")
    except ConversionError as error:
        raise CommandError(str(error)) from None


def _weight_files(model: str, revision: str | None) -> list:
    """The weight files `from_pretrained` reads: in the folder, or downloaded into the Hub cache (read from there)."""
    from pathlib import Path

    from ..conversion.errors import ConversionError
    from ..conversion.preflight import WEIGHT_FILES, find_weight_files, shard_names

    if os.path.isdir(model):
        return find_weight_files(Path(model))
    from transformers.utils import cached_file

    def fetch(name: str):
        try:
            path = cached_file(model, name, revision=revision, _raise_exceptions_for_missing_entries=False)
        except OSError as error:
            raise CommandError(f"--model {model}: cannot download {name}: {first_line(error)}") from None
        return Path(path) if path else None

    for name in WEIGHT_FILES:
        path = fetch(name)
        if path is None:
            continue
        if not name.endswith(".index.json"):
            return [path]
        shards = [fetch(shard) for shard in shard_names(path)]
        if None in shards:
            raise CommandError(f"--model {model}: {name} names shards the repo does not have.")
        return shards
    raise ConversionError(
        f"--model {model} has a config.json but no weights: expected one of {', '.join(WEIGHT_FILES)}."
    )


def checkpoint_kind(config) -> str:
    """`CLASSIFICATION` (a fine-tuned head) or `PRETRAINING` (matching head and/or MAE decoder)."""
    architectures = set(config.architectures or [])
    if CLASSIFIER_ARCHITECTURE in architectures:
        return CLASSIFICATION
    if PRETRAINING_ARCHITECTURE in architectures:
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
    "CLASSIFICATION",
    "PRETRAINING",
    "add_clip_arguments",
    "add_model_arguments",
    "check_clip_arguments",
    "check_clip_paths",
    "check_device",
    "check_model_argument",
    "check_model_weights",
    "checkpoint_kind",
    "load_tvlt_config",
    "quiet_transformers",
]
