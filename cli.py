"""The `tvlt` command line (also `python -m tvlt`): one subcommand per job, each in `tvlt.commands.<name>`.

A subcommand module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`. Expected failures
(bad input, missing files, wrong checkpoints) raise `CommandError` or `FileNotFoundError`/`ValueError`; they are
printed as one line on stderr with exit code 2, never as a traceback.
"""

import argparse
import importlib
import sys

from .commands import SUBCOMMANDS, CommandError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tvlt",
        description="TVLT (Textless Vision-Language Transformer) for transformers 5.x.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"{__package__}.commands.{name}")
        subparser = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(subparser)
        subparser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (CommandError, FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError) as error:
        print(f"tvlt {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tvlt {args.command}: interrupted", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
