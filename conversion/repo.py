"""Writing a converted checkpoint as a self-contained remote-code repo folder, all at once or not at all."""

import json
import logging
from pathlib import Path

from safetensors import SafetensorError

from ..checkpoints.layout import PROCESSOR_CONFIG_FILES
from ..remote_code_tvlt import (
    CODE_FILES,
    copy_code_files,
    set_model_remote_code_entries,
    set_processor_remote_code_entries,
)
from .errors import ConversionError, first_line
from .model_card import render_model_card
from .paths import (
    check_destination,
    clean_stale_folders,
    discard,
    lock_destination,
    make_staging,
    move_into_place,
)
from .sources import LoadedCheckpoint


logger = logging.getLogger(__name__)


def write_repo(checkpoint: LoadedCheckpoint, dst, *, force: bool = False, repo_id: str | None = None) -> Path:
    """
    Write `checkpoint` into DST as a Hub repo: `model.safetensors`, `config.json` and the processor config with the
    full `auto_map`, the TVLT code files and a model card `README.md`.

    The repo is built in a staging folder next to DST and renamed into place when complete, so DST is never left
    half-written; a non-empty DST is replaced only with `force`, and only when it is a previous conversion's output
    (see `tvlt.conversion.paths`). A failure leaves DST as it was and removes the staging folder; an `OSError` while
    writing (disk full, permissions) becomes a one-line `ConversionError`.
    """
    dst = check_destination(dst, force)
    with lock_destination(dst):
        clean_stale_folders(dst)
        dst = check_destination(dst, force)  # again, now that no other tvlt convert can change it
        return write_locked(checkpoint, dst, force=force, repo_id=repo_id)


def write_locked(checkpoint: LoadedCheckpoint, dst: Path, *, force: bool, repo_id: str | None) -> Path:
    """`write_repo`'s work, for a caller that holds DST's lock and has checked DST under it (`convert_checkpoint`)."""
    staging = make_staging(dst)
    try:
        logger.info("Writing the weights and configs")
        checkpoint.model.save_pretrained(staging)
        checkpoint.processor.save_pretrained(staging)
        copy_code_files(staging)
        _complete_auto_maps(staging)
        (staging / "README.md").write_text(render_model_card(checkpoint, repo_id=repo_id), encoding="utf-8")
        move_into_place(staging, dst, force)
    except (OSError, SafetensorError) as error:  # disk full, permissions, ... (safetensors has its own type)
        discard(staging)
        reason = getattr(error, "strerror", None) or first_line(error)
        raise ConversionError(f"writing DST {dst} failed ({reason}); DST is left as it was.") from error
    except BaseException:
        discard(staging)
        raise
    logger.info("Wrote %s", dst)
    return dst


def _complete_auto_maps(folder: Path) -> None:
    # The save hooks of our classes write the full maps already; this keeps DST complete whatever processor classes
    # were saved, and is a no-op otherwise.
    _update_json(folder / "config.json", set_model_remote_code_entries)
    for name in PROCESSOR_CONFIG_FILES:
        if (folder / name).is_file():
            _update_json(folder / name, set_processor_remote_code_entries)
    missing = [name for name in CODE_FILES if not (folder / name).is_file()]
    if missing:
        raise ConversionError(f"internal error: code files {missing} were not written")


def _update_json(path: Path, update) -> None:
    content = json.loads(path.read_text(encoding="utf-8"))
    update(content)
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")


__all__ = ["write_locked", "write_repo"]
