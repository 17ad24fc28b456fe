"""The one error type of checkpoint loading and conversion, and the line of a library's error that our one-line
messages quote."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded or converted, or an option that does not fit it; the message is one line
    that names the file, key or field and what was expected."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (libraries' messages can run to pages), or its type when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = ["CheckpointError", "first_line"]
