"""The `tvlt` command line (also `python -m tvlt`): one subcommand per job, each in `tvlt.commands.<name>`.

The command line answers at once: `--help`, `--version` and every argument or file error come back before torch or
transformers is imported (seconds of start-up). A subcommand module therefore keeps this contract:

- At module level it imports only the standard library and torch-free modules (`tvlt.commands.*` helpers such as
  `_argtypes` and the path checks of `_clip_and_model`, `tvlt.checkpoints.loading`); torch, transformers,
  numpy-heavy code and the package's model and processor modules are imported inside `run`.
- `HELP`: one sentence. `USAGE`: the usage line's arguments, the ones most users give (argparse's own lists every
  option). `EXAMPLES`: working command lines, shown at the end of `--help`. `add_arguments(parser)`: argparse only;
  the options most users need on the parser itself, the rest in titled groups (`_argtypes.option_group`); `type=`
  functions (`_argtypes`) refuse bad values.
- `validate(args)` (optional): the torch-free checks of the arguments and the paths they name (exists, is a file or
  a folder, options that need each other, an output format, ...). It runs before anything heavy; put every check that
  can be made without torch, transformers or a media decoder here.
- `run(args) -> int`: the work. The CLI has registered TVLT with the transformers Auto classes just before calling
  it (`import tvlt` skips that when it is started by the command line, see `tvlt/__init__.py`). Checks that need the
  heavy libraries (`--device`, a file's content: a still image given as a video, a video without sound) come first.

Expected failures raise `CommandError` or `FileNotFoundError`/`NotADirectoryError`/`IsADirectoryError`/`ValueError`;
they are printed as one line on stderr with exit code 2, never as a traceback. `tests/test_cli_startup.py` checks that
building the parser, `--help`, `--version` and the argument and file errors import neither torch nor transformers.
"""

import argparse
import importlib
import os
import sys

from . import __version__
from .commands import SUBCOMMANDS, CommandError


class _ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line, like the command's other errors."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's wrapping, except for the examples at the end (`epilog`), whose command lines must stay whole."""

    def _fill_text(self, text, width, indent):
        if text.startswith(_EXAMPLES_TITLE):
            return text
        return super()._fill_text(text, width, indent)


_EXAMPLES_TITLE = "examples:"


def _examples(lines: list[str]) -> str:
    return "\n".join([_EXAMPLES_TITLE, *(f"  {line}" for line in lines)])


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="tvlt",
        description="TVLT (Textless Vision-Language Transformer) for transformers 5.x.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    first_examples = []
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"{__package__}.commands.{name}")
        subparser = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            usage=f"tvlt {name} {module.USAGE}",
            epilog=_examples(module.EXAMPLES),
            formatter_class=_HelpFormatter,
        )
        module.add_arguments(subparser)
        subparser.set_defaults(_validate=getattr(module, "validate", None), _run=module.run)
        first_examples.append(module.EXAMPLES[0])
    parser.epilog = _examples([*first_examples, "tvlt COMMAND --help    (more examples, every option)"])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args._validate is not None:
            args._validate(args)
        from . import _register_with_auto_classes

        _register_with_auto_classes()
        return int(args._run(args) or 0)
    except (CommandError, FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError) as error:
        print(f"tvlt {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tvlt {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`tvlt predict ... | head`): no traceback, and none at exit when Python flushes stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer whose pipe closed


__all__ = ["build_parser", "main"]
