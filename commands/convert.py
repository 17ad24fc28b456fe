"""`tvlt convert SRC DST`: a TVLT checkpoint to a self-contained remote-code repo, optionally pushed to the Hub."""

import argparse
import contextlib
import logging
import sys

from ..conversion.options import OriginalOptions
from . import CommandError
from ._argtypes import positive_int
from ._clip_and_model import quiet_transformers


HELP = (
    "Convert a TVLT checkpoint (a transformers-format folder or Hub repo, or an original research checkpoint) into a "
    "self-contained repo that loads with trust_remote_code=True, and optionally push it to the Hub."
)
USAGE = "SRC DST [--force] [--push-to-hub REPO_ID] [options]"
EXAMPLES = [
    "tvlt convert ZinengTang/tvlt-base tvlt-base",
    "tvlt convert TVLT-MOSEI-EA.ckpt tvlt-mosei-ea --push-to-hub you/tvlt-mosei-ea",
    "tvlt convert my-4.40.2-finetune/ my-finetune --force",
]

_ORIGINAL_OPTIONS = ("num_attention_heads", "decoder_num_attention_heads", "num_frames", "spectrogram_length")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "src",
        metavar="SRC",
        help=(
            "a transformers-format TVLT folder (e.g. a 4.40.2 save_pretrained), a Hub repo id of one, or an original "
            "TVLT checkpoint (TVLT.ckpt, TVLT-MOSEI-SA.ckpt, TVLT-MOSEI-EA.ckpt, a Lightning checkpoint of the "
            "original training code)"
        ),
    )
    parser.add_argument(
        "dst",
        metavar="DST",
        help="the repo folder to write: new or empty, outside SRC (staged beside it, then renamed into place)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace DST if it is an earlier tvlt convert output (a DST holding any other file is refused)",
    )
    hub = parser.add_argument_group("Hub")
    hub.add_argument("--revision", help="branch, tag or commit of a Hub repo SRC (default: main)")

    defaults = OriginalOptions()
    original = parser.add_argument_group(
        "original checkpoints",
        "what the weights of an original checkpoint cannot tell (defaults: the released models')",
    )
    original.add_argument(
        "--num-attention-heads",
        type=positive_int,
        metavar="N",
        help=f"attention heads per encoder layer (default: {defaults.num_attention_heads})",
    )
    original.add_argument(
        "--decoder-num-attention-heads",
        type=positive_int,
        metavar="N",
        help=f"attention heads per MAE decoder layer (default: {defaults.decoder_num_attention_heads})",
    )
    original.add_argument(
        "--num-frames",
        type=positive_int,
        metavar="N",
        help=f"maximum number of video frames: length of the temporal position table (default: {defaults.num_frames})",
    )
    original.add_argument(
        "--spectrogram-length",
        type=positive_int,
        metavar="N",
        help=(
            "maximum number of spectrogram frames: the audio position table keeps N / audio patch height entries "
            f"(default: {defaults.spectrogram_length})"
        ),
    )

    hub.add_argument(
        "--push-to-hub",
        metavar="REPO_ID",
        help="upload DST to this Hub model repo (created if needed), with the token of `hf auth login` or HF_TOKEN",
    )
    hub.add_argument("--private", action="store_true", help="create the Hub repo as private")
    hub.add_argument("--commit-message", help="message of the upload commit")


@contextlib.contextmanager
def _progress_on_stderr():
    """Show the converter's progress lines on stderr for the duration of the command."""
    logger = logging.getLogger(__package__.rsplit(".", 1)[0])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("tvlt convert: %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


def validate(args: argparse.Namespace) -> None:
    from ..conversion.paths import check_paths  # standard library only

    if not args.push_to_hub:
        given = [
            flag for flag, value in (("--private", args.private), ("--commit-message", args.commit_message)) if value
        ]
        if given:
            raise CommandError(
                f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} --push-to-hub REPO_ID."
            )
    # SRC/DST checks come first, before the heavy imports of the conversion (torch, transformers)
    check_paths(args.src, args.dst, args.force)


def run(args: argparse.Namespace) -> int:
    from ..conversion import convert_checkpoint

    given_options = {name: getattr(args, name) for name in _ORIGINAL_OPTIONS if getattr(args, name) is not None}
    # our progress lines only: no transformers progress bars ("Writing model shards") or load reports
    with _progress_on_stderr(), quiet_transformers():
        result = convert_checkpoint(
            args.src,
            args.dst,
            force=args.force,
            original_options=OriginalOptions(**given_options) if given_options else None,
            revision=args.revision,
            push_to_hub=args.push_to_hub,
            private=args.private,
            commit_message=args.commit_message,
        )
    print(result.destination)
    if result.commit_url:
        print(result.commit_url)
    return 0


__all__ = ["EXAMPLES", "HELP", "USAGE", "add_arguments", "run", "validate"]
