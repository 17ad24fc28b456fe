"""Where `tvlt convert` reads and writes: SRC/DST checks, the DST lock, staging folders and the final move.

Standard library only: the command line runs these checks before it imports torch or transformers.

The rules (the `--help` text and docs/convert-and-publish.md state them too):

- SRC and DST never overlap: DST is not SRC, does not hold SRC and is not inside SRC, whatever the spelling (relative
  paths, `.`, `..`, symbolic links). DST is not the current directory nor one holding it, nor a symbolic link.
- An existing DST is used when it is an empty folder. `--force` replaces a non-empty DST only when it is a previous
  output of a conversion: every entry is a file a conversion writes (`REPO_FILE_NAMES`, the model shards, the TVLT
  code files `*_tvlt.py`) and its `config.json` maps `AutoConfig` to `configuration_tvlt.TvltConfig`. Anything else in
  DST (the user's own files, a `.git` folder, a 4.40.2 checkpoint) is refused, even with `--force`.
- One conversion at a time per DST: a lock file `.<name>.tvlt-convert.lock` beside DST is held (`flock`) from the
  checks to the final move; a second converter fails at once, naming the first.
- The repo is written in a staging folder `.<name>.partial-<random>` beside DST and renamed into place; the rename
  never replaces a non-empty folder, so a DST that appeared meanwhile is never lost. With `--force` the old output is
  renamed aside (`.<name>.replaced-<random>`) first and deleted after the move.
- Each staging or set-aside folder has an owner file beside it (`<folder>.owner`: pid, host, start time, DST). A run
  that holds the lock deletes the folders whose owner process is dead (a killed run's); a set-aside old output whose
  run died before the new one was in place is moved back to DST instead. Folders without an owner file are never
  deleted, only reported.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

from ..checkpoints.layout import PROCESSOR_CONFIG_FILES
from ..remote_code_tvlt import CODE_FILES
from .errors import ConversionError


try:  # POSIX; elsewhere the final rename still refuses a non-empty DST, but two runs are not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

logger = logging.getLogger(__name__)

# Files a conversion writes into DST, besides the TVLT code files (big models are saved in shards with an index)
REPO_FILE_NAMES = frozenset(
    {
        "config.json",
        "model.safetensors",
        "model.safetensors.index.json",
        "README.md",
        *PROCESSOR_CONFIG_FILES,
        *CODE_FILES,
    }
)
_WRITTEN_NAME = re.compile(r"model-\d+-of-\d+\.safetensors|[a-z0-9_]+_tvlt\.py")
# "owner/name": what a Hub model id looks like (a bare name is taken for a missing local path)
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

_STAGING, _REPLACED = "partial", "replaced"
_OWNER_SUFFIX = ".owner"
_MAX_CONFIG_BYTES = 1 << 20  # a previous output's config.json is a few KB


# ---- checks ---------------------------------------------------------------------------------------------------------


def check_source(src) -> Path | None:
    """The resolved local SRC (a file or folder), or `None` for a Hub repo id; an error for anything else."""
    path = Path(src).expanduser()
    if path.exists():
        if not (path.is_file() or path.is_dir()):
            raise ConversionError(f"SRC {src} is not a regular file or folder.")
        return path.resolve()
    if path.is_symlink():
        raise FileNotFoundError(f"SRC {src} is a symbolic link to nothing ({os.readlink(path)}).")
    if HUB_ID.match(str(src)):
        return None
    raise FileNotFoundError(f"SRC {src} is not an existing file or folder, nor a Hub repo id (owner/name).")


def check_paths(src, dst, force: bool) -> Path:
    """`check_destination` with SRC: also refuses overlapping paths and a SRC that is neither a path nor a Hub id."""
    return check_destination(dst, force, src=src)


def check_destination(dst, force: bool, src=None) -> Path:
    """
    Refuse a DST that cannot or may not be written (see the module docstring); return it resolved: its parent's real
    path plus its name, the one spelling every later step uses.
    """
    given = dst
    dst = Path(dst).expanduser()
    if str(given) in ("", ".", "..") or dst.name in ("", ".", ".."):
        shown = given if str(given) else "''"
        raise ConversionError(
            f"DST {shown} names a folder by `.` or `..`: give the path of the repo folder to create, e.g. "
            f"{os.path.join(str(given) or '.', 'tvlt-repo')}."
        )
    if dst.is_symlink():
        raise ConversionError(f"DST {given} is a symbolic link; give the path of a real folder (or of a new one).")
    parent = _existing_parent(dst, given)
    try:
        resolved = dst.parent.resolve() / dst.name
    except (OSError, RuntimeError) as error:  # e.g. a loop of symbolic links
        raise ConversionError(f"DST {given}: its path cannot be resolved ({error}).") from None
    if src is not None and Path(src).expanduser().exists():
        _check_overlap(src, given, resolved)
    _check_not_cwd(given, resolved)
    if resolved.exists() and not resolved.is_dir():
        raise ConversionError(f"DST {given} exists and is not a folder.")
    if resolved.is_dir():
        try:
            entries = sorted(os.listdir(resolved))
        except OSError as error:
            raise ConversionError(f"DST {given} cannot be read: {error.strerror or error}.") from None
        if entries:
            _check_replaceable(resolved, entries, given)
        if entries and not force:
            raise ConversionError(
                f"DST {given} exists and is not empty (a previous tvlt convert output); pass --force (force=True) "
                "to replace it."
            )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConversionError(
            f"DST {given}: {parent} is not writable (read-only or permission denied); choose another DST."
        )
    if src is not None:
        check_source(src)
    return resolved


def _existing_parent(dst: Path, given) -> Path:
    """The nearest existing folder above DST (created later if needed); an error if a file is in the way."""
    for parent in dst.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConversionError(f"DST {given}: {parent} is a file, not a folder.")
            return parent
    raise ConversionError(f"DST {given}: no existing folder above it.")  # pragma: no cover - / always exists


def _spellings(path) -> set[Path]:
    """A path as written (absolute, `..` folded) and as the file system resolves it (symbolic links followed)."""
    path = Path(path).expanduser()
    try:
        return {Path(os.path.abspath(path)), path.resolve()}
    except (OSError, RuntimeError) as error:  # e.g. a loop of symbolic links
        raise ConversionError(f"{path}: the path cannot be resolved ({error}).") from None


def _inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _check_overlap(src, given_dst, resolved_dst: Path) -> None:
    source = check_source(src)
    if source is None:  # a Hub repo id
        return
    destinations = _spellings(given_dst) | {resolved_dst}
    sources = _spellings(src) | {source}
    for s in sources:
        for d in destinations:
            if s == d:
                raise ConversionError(
                    f"DST {given_dst} is SRC {src}: tvlt convert writes a new folder and never replaces its source; "
                    "choose another DST."
                )
            if _inside(s, d):
                raise ConversionError(
                    f"SRC {src} is inside DST {given_dst}: writing DST would replace it; choose a DST outside SRC's "
                    "folder."
                )
            if _inside(d, s):
                raise ConversionError(f"DST {given_dst} is inside SRC {src}; choose a DST outside SRC.")


def _check_not_cwd(given, resolved: Path) -> None:
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the current folder was deleted
        return
    if _inside(cwd, resolved):
        raise ConversionError(
            f"DST {given} is the current directory or holds it: tvlt convert replaces DST as a whole; run it from "
            "outside DST."
        )


def is_written_name(name: str) -> bool:
    """Whether a conversion writes a file of this name into DST."""
    return name in REPO_FILE_NAMES or bool(_WRITTEN_NAME.fullmatch(name))


def _check_replaceable(folder: Path, entries: list[str], given) -> None:
    # we write regular files only: a folder or a link of a written name is not ours either
    foreign = [name for name in entries if not (is_written_name(name) and _is_plain_file(folder / name))]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ConversionError(
            f"DST {given} holds files tvlt convert does not write ({shown}); it replaces only a previous "
            "conversion's output, with --force. Move them away or choose another DST."
        )
    if not _is_tvlt_repo_config(folder / "config.json"):
        raise ConversionError(
            f"DST {given} is not empty and not a previous tvlt convert output (no config.json whose auto_map "
            "names configuration_tvlt.TvltConfig); only such an output is replaced, with --force. Move it away or "
            "choose another DST."
        )


def _is_plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _is_tvlt_repo_config(path: Path) -> bool:
    try:
        if path.is_symlink() or path.stat().st_size > _MAX_CONFIG_BYTES:
            return False
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    auto_map = content.get("auto_map") if isinstance(content, dict) else None
    target = auto_map.get("AutoConfig") if isinstance(auto_map, dict) else None
    return isinstance(target, str) and target.split("--")[-1] == "configuration_tvlt.TvltConfig"


# ---- one conversion per DST -----------------------------------------------------------------------------------------


def _lock_path(dst: Path) -> Path:
    return dst.parent / f".{dst.name}.tvlt-convert.lock"


def _owner_record(dst: Path, kind: str) -> dict:
    return {"kind": kind, "pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "dst": str(dst)}


def _describe_owner(record: dict) -> str:
    try:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record["started"])))
        return f"pid {int(record['pid'])} on {record['host']}, started {started}"
    except (KeyError, TypeError, ValueError):
        return "owner unknown"


@contextlib.contextmanager
def lock_destination(dst: Path):
    """
    Hold DST's lock file while converting into it; `ConversionError` at once if another process (or another thread)
    holds it. Without `fcntl` (Windows) nothing is locked.
    """
    dst = Path(dst)
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    _make_parent(dst)
    path = _lock_path(dst)
    while True:
        # never through a symbolic link: truncating the lock file must not truncate anything else
        fd = _open_writable(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, dst)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = _read_owner_fd(fd)
            os.close(fd)
            raise ConversionError(
                f"DST {dst} is being written by another tvlt convert ({_describe_owner(holder)}); wait for it to "
                "finish or choose another DST."
            ) from None
        # the previous holder may have removed the file between our open and our lock: lock the current file
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_owner_record(dst, "lock")).encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _read_owner_fd(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _make_parent(dst: Path) -> None:
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConversionError(
            f"DST {dst}: cannot create its folder {dst.parent}: {error.strerror or error}."
        ) from None


def _open_writable(path: Path, flags: int, dst: Path) -> int:
    try:
        return os.open(path, flags, 0o644)
    except OSError as error:
        raise ConversionError(f"DST {dst}: cannot write in {path.parent}: {error.strerror or error}.") from None


# ---- staging and the final move -------------------------------------------------------------------------------------


def _side_folder(dst: Path, kind: str) -> Path:
    """A new, unused name beside DST whose owner file is written first (so no unmarked folder of ours can exist)."""
    while True:
        folder = dst.parent / f".{dst.name}.{kind}-{secrets.token_hex(4)}"
        try:
            fd = os.open(folder.with_name(folder.name + _OWNER_SUFFIX), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        except OSError as error:
            raise ConversionError(f"DST {dst}: cannot write in {dst.parent}: {error.strerror or error}.") from None
        with os.fdopen(fd, "w") as owner:
            json.dump(_owner_record(dst, kind), owner)
        if not folder.exists():
            return folder
        _drop_owner(folder)


def _drop_owner(folder: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        folder.with_name(folder.name + _OWNER_SUFFIX).unlink()


def make_staging(dst: Path) -> Path:
    """A new, empty staging folder beside DST, with its owner file."""
    staging = _side_folder(dst, _STAGING)
    try:
        staging.mkdir()
    except OSError as error:
        _drop_owner(staging)
        raise ConversionError(f"DST {dst}: cannot write in {dst.parent}: {error.strerror or error}.") from None
    return staging


def discard(folder: Path) -> None:
    """Delete a staging or set-aside folder of this run, and its owner file."""
    shutil.rmtree(folder, ignore_errors=True)
    _drop_owner(folder)


def move_into_place(staging: Path, dst: Path, force: bool) -> None:
    """
    Rename the complete `staging` folder to DST. A missing or empty DST is taken; a non-empty one only with `force`
    and when it is a previous output, which is set aside first and deleted once the new one is in place.
    """
    if _rename_no_replace(staging, dst):
        return
    if not force:
        raise ConversionError(
            f"DST {dst} was created by another process during the conversion; it was left as it is and nothing was "
            "written (pass --force to replace a previous tvlt convert output)."
        )
    _check_replaceable(dst, sorted(os.listdir(dst)), dst)
    retired = _side_folder(dst, _REPLACED)
    os.rename(dst, retired)
    try:  # a file added to DST between the check and the rename is the user's: then keep DST as it was
        _check_replaceable(retired, sorted(os.listdir(retired)), dst)
    except ConversionError:
        os.rename(retired, dst)
        _drop_owner(retired)
        raise
    if not _rename_no_replace(staging, dst):
        os.rename(retired, dst)  # pragma: no cover - DST re-created within the instant between the two renames
        _drop_owner(retired)
        raise ConversionError(f"DST {dst} was created by another process during the conversion; nothing was written.")
    discard(retired)


def _rename_no_replace(staging: Path, dst: Path) -> bool:
    """Rename `staging` to DST unless DST is a non-empty folder (POSIX replaces only an empty one); True if done."""
    try:
        os.rename(staging, dst)
    except OSError as error:
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
        if not dst.is_dir() or any(dst.iterdir()):
            return False
        dst.rmdir()  # an empty folder, where rename does not replace it (Windows)
        os.rename(staging, dst)
    _drop_owner(staging)
    return True


def clean_stale_folders(dst: Path) -> None:
    """
    Delete the staging and set-aside folders of DST that a killed run left behind (call it holding DST's lock):
    only folders with an owner file naming DST and a process that no longer runs on this host.
    """
    try:
        names = os.listdir(dst.parent)
    except OSError:
        return
    side_folder = re.compile(rf"\.{re.escape(dst.name)}\.({_STAGING}|{_REPLACED})-[0-9a-f]+")
    unowned = []
    for name in sorted(names):
        if side_folder.fullmatch(name):
            if not (dst.parent / (name + _OWNER_SUFFIX)).is_file():
                unowned.append(name)
        elif name.endswith(_OWNER_SUFFIX) and side_folder.fullmatch(name[: -len(_OWNER_SUFFIX)]):
            _clean_one(dst.parent / name[: -len(_OWNER_SUFFIX)], dst)
    if unowned:
        logger.warning(
            "Left alone in %s: %s (named like tvlt convert's staging folders, but without an owner file; delete them "
            "yourself if they are leftovers).",
            dst.parent,
            ", ".join(unowned),
        )


def _clean_one(folder: Path, dst: Path) -> None:
    owner_file = folder.with_name(folder.name + _OWNER_SUFFIX)
    try:
        if owner_file.is_symlink() or owner_file.stat().st_size > 4096:
            return
        record = json.loads(owner_file.read_text(encoding="utf-8"))
        pid, host, kind, recorded_dst = int(record["pid"]), record["host"], record["kind"], record["dst"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if recorded_dst != str(dst) or kind not in (_STAGING, _REPLACED):
        return
    if host != socket.gethostname():
        logger.warning("Left alone: %s (made by a tvlt convert on host %s, which may still run).", folder, host)
        return
    if _process_alive(pid):
        return
    if folder.is_symlink():
        return
    if folder.is_dir():
        if kind == _REPLACED and not dst.exists():
            # the run died between setting the old output aside and moving the new one in: put the old one back
            os.rename(folder, dst)
            logger.warning("Restored %s from %s (a killed tvlt convert --force had set it aside).", dst, folder.name)
        else:
            logger.warning("Removing %s, left by a tvlt convert that was killed (pid %d).", folder, pid)
            shutil.rmtree(folder, ignore_errors=True)
    if not folder.exists():
        owner_file.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except OSError:  # pragma: no cover - e.g. Windows without the pid
        return False
    return True


__all__ = [
    "HUB_ID",
    "REPO_FILE_NAMES",
    "check_destination",
    "check_paths",
    "check_source",
    "clean_stale_folders",
    "discard",
    "is_written_name",
    "lock_destination",
    "make_staging",
    "move_into_place",
]
