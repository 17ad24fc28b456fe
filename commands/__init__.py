"""Subcommands of the `tvlt` command line (package-only code: never imported by the Hub code files)."""

# `tvlt <name>` runs `tvlt.commands.<name>.run`
SUBCOMMANDS = ["convert", "predict", "reconstruct", "embed"]


class CommandError(Exception):
    """An expected failure of a subcommand: printed as one line on stderr, exit code 2."""


__all__ = ["SUBCOMMANDS", "CommandError"]
