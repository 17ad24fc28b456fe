"""Converting TVLT checkpoints into self-contained remote-code repos (package-only: no Hub code file imports this).

Sources: transformers-format folders or Hub repos (4.40.2's layout, `model_type: "tvlt"`) and checkpoints of the
original research code (zinengtang/TVLT). The command line is `tvlt convert` (`tvlt.commands.convert`).
"""

import importlib


# public name -> its module, imported on first use (PEP 562) so that `tvlt convert --help` needs no torch
_EXPORTS = {
    "ConversionResult": "convert",
    "convert_checkpoint": "convert",
    "ConversionError": "errors",
    "push_repo": "hub",
    "MOSEI_EMOTIONS": "original",
    "OriginalOptions": "options",
    "check_destination": "paths",
    "check_paths": "paths",
    "write_repo": "repo",
    "LoadedCheckpoint": "sources",
    "load_checkpoint": "sources",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


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
