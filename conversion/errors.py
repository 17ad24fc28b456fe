"""The converter's error: `tvlt.conversion.ConversionError`, the name users catch, is the checkpoint error itself (one
type for every checkpoint that cannot be used, converted or loaded; see `tvlt.checkpoints.errors`)."""

from ..checkpoints.errors import CheckpointError as ConversionError
from ..checkpoints.errors import first_line


__all__ = ["ConversionError", "first_line"]
