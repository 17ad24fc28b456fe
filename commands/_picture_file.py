"""The picture file a command writes to `--out` (`tvlt reconstruct`, `tvlt predict --out timeline.png`): the checks of
its path made before any work, and the atomic write. Standard library only (each command picks Pillow's format)."""

import contextlib
import os
import stat
import tempfile

from . import CommandError


def refuse_directory(out: str) -> None:
    if os.path.isdir(out):
        raise CommandError(f"--out {out} is a directory; give the path of the picture to write.")


def check_picture_path(out: str, inputs: dict) -> None:
    """One-line `CommandError`s when the picture cannot be written at `out`, or would replace one of `inputs` (flag ->
    path, e.g. `{"VIDEO": ..., "--audio": ...}`) or something that is not a regular file."""
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise CommandError(f"--out {out}: the folder {folder} does not exist.")
    if os.path.lexists(out) and not os.path.isfile(out):
        raise CommandError(f"--out {out} exists and is not a regular file; give another path.")
    for flag, path in inputs.items():
        if path is not None and os.path.exists(out) and os.path.exists(path) and os.path.samefile(out, path):
            raise CommandError(f"--out {out} is the {flag} file: it would be overwritten; give another path.")
    try:  # the picture is written there at the end, through a temporary file: find out now if that cannot be
        handle, probe = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(out)}.", suffix=".tmp")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise CommandError(f"--out {out}: cannot write in {folder} ({error.strerror or error}).") from None


def write_picture(image, out: str, picture_format: str, **options) -> None:
    """Write the Pillow `image` to `out` through a temporary file beside it and an atomic rename: a failed write leaves
    an existing file whole. `options` go to `image.save` (e.g. `quality`)."""
    folder = os.path.dirname(os.path.abspath(out))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(out)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            image.save(file, format=picture_format, **options)
        os.chmod(temporary, _mode_for(out))
        os.replace(temporary, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _mode_for(path: str) -> int:
    """The permissions a replaced file keeps; a new one gets the usual ones (0o666 less the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


__all__ = ["check_picture_path", "refuse_directory", "write_picture"]
