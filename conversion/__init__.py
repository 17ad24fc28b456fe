"""Converting TVLT checkpoints into self-contained remote-code repos (package-only: no Hub code file imports this).

Sources: transformers-format folders or Hub repos (4.40.2's layout, `model_type: "tvlt"`) and checkpoints of the
original research code (zinengtang/TVLT). The command line is `tvlt convert` (`tvlt.commands.convert`).
"""

from .convert import ConversionResult, convert_checkpoint
from .errors import ConversionError
from .hub import push_repo
from .original import MOSEI_EMOTIONS, OriginalOptions
from .paths import check_destination, check_paths
from .repo import write_repo
from .sources import LoadedCheckpoint, load_checkpoint


__all__ = [
    "ConversionError",
    "ConversionResult",
    "LoadedCheckpoint",
    "MOSEI_EMOTIONS",
    "OriginalOptions",
    "check_destination",
    "check_paths",
    "convert_checkpoint",
    "load_checkpoint",
    "push_repo",
    "write_repo",
]
