"""Writing a converted checkpoint as a self-contained remote-code repo folder, all at once or not at all."""

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ..remote_code_tvlt import (
    CODE_FILES,
    copy_code_files,
    set_model_remote_code_entries,
    set_processor_remote_code_entries,
)
from .errors import ConversionError
from .model_card import render_model_card
from .sources import LoadedCheckpoint


logger = logging.getLogger(__name__)

# processor config files a TVLT processor may write (transformers 5.x writes the first; 4.40.2 wrote the second)
PROCESSOR_CONFIG_FILES = ("processor_config.json", "preprocessor_config.json")


def check_destination(dst, force: bool) -> Path:
    """Refuse a DST that is a file, or a non-empty folder without `force`; return it as a path."""
    dst = Path(dst).expanduser()
    if dst.is_file() or (dst.exists() and not dst.is_dir()):
        raise ConversionError(f"DST {dst} exists and is not a folder.")
    if dst.is_dir() and any(dst.iterdir()) and not force:
        raise ConversionError(f"DST {dst} exists and is not empty; pass --force (force=True) to replace it.")
    return dst


def write_repo(checkpoint: LoadedCheckpoint, dst, *, force: bool = False, repo_id: str | None = None) -> Path:
    """
    Write `checkpoint` into DST as a Hub repo: `model.safetensors`, `config.json` and the processor config with the
    full `auto_map`, the TVLT code files and a model card `README.md`.

    The repo is built in a temporary folder next to DST and moved into place when complete, so DST is never left
    half-written; an existing non-empty DST is replaced only with `force`.
    """
    dst = check_destination(dst, force)
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    try:
        logger.info("Writing the weights and configs")
        checkpoint.model.save_pretrained(staging)
        checkpoint.processor.save_pretrained(staging)
        copy_code_files(staging)
        _complete_auto_maps(staging)
        (staging / "README.md").write_text(render_model_card(checkpoint, repo_id=repo_id), encoding="utf-8")
        _move_into_place(staging, dst)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
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


def _move_into_place(staging: Path, dst: Path) -> None:
    if not dst.exists():
        os.replace(staging, dst)
        return
    if not any(dst.iterdir()):
        dst.rmdir()
        os.replace(staging, dst)
        return
    # --force: swap the old folder out first, so a failure leaves either the old or the new repo in place
    retired = Path(tempfile.mkdtemp(prefix=f".{dst.name}.replaced-", dir=dst.parent))
    retired.rmdir()
    os.replace(dst, retired)
    try:
        os.replace(staging, dst)
    except BaseException:
        os.replace(retired, dst)
        raise
    shutil.rmtree(retired, ignore_errors=True)


__all__ = ["PROCESSOR_CONFIG_FILES", "check_destination", "write_repo"]
