"""The one error type of the converter."""


class ConversionError(ValueError):
    """SRC is not a convertible TVLT checkpoint, or an option does not fit it; the message says what was found."""


__all__ = ["ConversionError"]
