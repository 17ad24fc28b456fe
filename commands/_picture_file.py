"""The picture file a command writes to `--out` (`tvlt reconstruct`, `tvlt predict --out timeline.png`): its format,
the checks of its path made before any work, and the atomic write. Pillow is imported only where a picture is made."""

import contextlib
import io
import os
import stat
import tempfile

from . import CommandError


# What `--help` and the errors name: the formats that suit a picture of patches and curves (any other extension
# Pillow writes works too, e.g. .bmp, .gif, .tiff, but most of its ~60 extensions are for scientific or legacy data)
PICTURE_SUFFIXES_TEXT = ".png (lossless), .jpg, .webp, .tiff or .pdf"
# A format that cannot hold RGB gets the first of these modes it takes (e.g. XBM: 1 bit)
_PICTURE_MODES = ("RGB", "P", "L", "1")


def picture_format(out: str) -> tuple[str, str]:
    """Pillow's format for the extension of `out` and the image mode it is written in, tried on a tiny image now
    rather than after the model has run; a one-line `CommandError` naming `--out` otherwise."""
    import PIL.Image

    extension = os.path.splitext(out)[1].lower()
    writable = {ext: fmt for ext, fmt in PIL.Image.registered_extensions().items() if fmt in PIL.Image.SAVE}
    if extension not in writable:
        raise CommandError(
            f"--out {out}: unknown picture format {extension or '(no extension)'}; give a file name ending in "
            f"{PICTURE_SUFFIXES_TEXT}."
        )
    fmt, errors = writable[extension], []
    for mode in _PICTURE_MODES:
        try:
            PIL.Image.new(mode, (8, 8)).save(io.BytesIO(), format=fmt)
        except Exception as error:  # noqa: BLE001 - each plugin fails in its own way (KeyError, OSError, ...)
            errors.append(error)
            continue
        return fmt, mode
    raise CommandError(f"--out {out}: Pillow cannot write {fmt} pictures here ({errors[0]}); use .png or .jpg.")


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


def write_picture(image, out: str, picture: tuple[str, str], **options) -> None:
    """Write the Pillow `image` to `out` in `picture` (the format and mode of `picture_format`) through a temporary
    file beside it and an atomic rename: a failed write leaves an existing file whole. `options` go to `image.save`
    (e.g. `quality`, which only the lossy writers read)."""
    picture_format, mode = picture
    if mode == "P":
        image = image.quantize(256)
    elif mode != image.mode:
        image = image.convert(mode)
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


__all__ = ["PICTURE_SUFFIXES_TEXT", "check_picture_path", "picture_format", "refuse_directory", "write_picture"]
