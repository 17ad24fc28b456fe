"""`convert_checkpoint`: SRC to a self-contained remote-code repo folder DST, optionally pushed to the Hub."""

import logging
from dataclasses import dataclass
from pathlib import Path

from .errors import ConversionError
from .hub import default_commit_message, push_repo
from .original import OriginalOptions
from .paths import check_destination, check_paths, clean_stale_folders, lock_destination
from .repo import write_locked
from .sources import LoadedCheckpoint, load_checkpoint


logger = logging.getLogger(__name__)


@dataclass
class ConversionResult:
    checkpoint: LoadedCheckpoint
    destination: Path
    commit_url: str | None = None


def convert_checkpoint(
    src,
    dst,
    *,
    force: bool = False,
    original_options: OriginalOptions | None = None,
    revision: str | None = None,
    push_to_hub: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
) -> ConversionResult:
    """
    Convert SRC (a transformers-format TVLT folder or Hub repo id, or an original research checkpoint file) into the
    repo folder DST, and upload DST to the Hub repo `push_to_hub` when given.

    See `load_checkpoint` for `original_options` and `revision`, `write_repo` for DST and `force`, `push_repo` for
    `private`, `commit_message` and `token`.
    """
    # refuse a taken or overlapping DST before reading a possibly large SRC, and hold DST for the whole run
    dst = check_paths(src, dst, force)
    with lock_destination(dst):
        clean_stale_folders(dst)
        check_destination(dst, force, src=src)
        checkpoint = load_checkpoint(str(src), original_options=original_options, revision=revision)
        destination = write_locked(checkpoint, dst, force=force, repo_id=push_to_hub)
    commit_url = None
    if push_to_hub:
        try:
            commit_url = push_repo(
                destination,
                push_to_hub,
                private=private,
                commit_message=commit_message or default_commit_message(checkpoint.source),
                token=token,
            )
        except ConversionError as error:
            raise ConversionError(f"{destination} is written and complete, but {error}") from error
    return ConversionResult(checkpoint=checkpoint, destination=destination, commit_url=commit_url)


__all__ = ["ConversionResult", "convert_checkpoint"]
