"""The one error type of the converter, and the line of a library's error that our one-line messages quote."""


class ConversionError(ValueError):
    """SRC is not a convertible TVLT checkpoint, or an option does not fit it; the message says what was found."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (libraries' messages can run to pages), or its type when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = ["ConversionError", "first_line"]
