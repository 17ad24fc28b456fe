"""`tvlt COMMAND --help`: a short usage line, the options most users need first, the rest under headings, and
examples that are real command lines of that subcommand."""

import importlib
import re
import shlex

import pytest

from tvlt.cli import build_parser
from tvlt.commands import SUBCOMMANDS


def help_text(*arguments: str, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        build_parser().parse_args([*arguments, "--help"])
    return capsys.readouterr().out


def sections(text: str) -> dict[str, list[str]]:
    """The help's sections by heading ("usage", "options", "examples", each group's title) -> their lines."""
    found, heading = {}, None
    for line in text.splitlines():
        if line.startswith("usage: "):
            heading = "usage"
            found[heading] = [line]
        elif line and not line.startswith(" ") and line.endswith(":"):
            heading = line[:-1]
            found[heading] = []
        elif heading is not None:
            found[heading].append(line)
    return found


def options_of(lines: list[str]) -> list[str]:
    return [match.group(1) for line in lines if (match := re.match(r"  (-[-\w]+)", line))]


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_help_shows_the_usual_call_the_main_options_and_examples(name, capsys, monkeypatch):
    module = importlib.import_module(f"tvlt.commands.{name}")
    found = sections(help_text(name, capsys=capsys, monkeypatch=monkeypatch))
    assert found["usage"][0] == f"usage: tvlt {name} {module.USAGE}"
    main_options = [option for option in options_of(found["options"]) if option != "-h"]
    assert 1 <= len(main_options) <= 6, main_options  # the few most users need; the rest under headings
    assert len(found) >= 4, list(found)  # usage, positional arguments or options, a heading, examples
    # the examples come whole (argparse would wrap them like prose), and are this subcommand's
    assert [line.strip() for line in found["examples"] if line.strip()] == module.EXAMPLES
    assert all(f"tvlt {name} " in example for example in module.EXAMPLES)


@pytest.mark.parametrize(
    "example",
    [(name, line) for name in SUBCOMMANDS for line in importlib.import_module(f"tvlt.commands.{name}").EXAMPLES],
)
def test_every_example_is_a_command_line_the_parser_takes(example):
    name, line = example
    words = shlex.split(line)
    words = words[words.index("tvlt") + 1 :]  # also under a launcher: `torchrun ... -m tvlt embed ...`
    args = build_parser().parse_args(words)  # an option that does not exist would exit here
    assert args.command == name


def test_the_top_level_help_gives_one_example_per_subcommand(capsys, monkeypatch):
    found = sections(help_text(capsys=capsys, monkeypatch=monkeypatch))
    examples = [line.strip() for line in found["examples"] if line.strip()]
    for name in SUBCOMMANDS:
        assert importlib.import_module(f"tvlt.commands.{name}").EXAMPLES[0] in examples
