"""argparse `type=` functions shared by the subcommands: a bad value becomes argparse's usage error (exit 2)."""

import argparse
import math


# media_tvlt.MAX_WINDOW_SECONDS (about 116 days), restated so that building the parser imports neither numpy nor the
# package's media code (tests/test_cli_predict.py checks that both agree): seconds become int64 timestamps and sample
# indices, which overflow far beyond it
MAX_SECONDS = 10_000_000


def option_group(parser: argparse.ArgumentParser, title: str):
    """The parser's `--help` group of this title, made on first use: commands that share argument helpers show the
    options under the same headings, in the order the command first asks for them."""
    groups = vars(parser).setdefault("tvlt_option_groups", {})  # argparse has no public lookup of its groups
    if title not in groups:
        groups[title] = parser.add_argument_group(title)
    return groups[title]


def _number(text: str, kind, expected: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int, "a non-negative integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def seconds(text: str) -> float:
    value = _number(text, float, "a number of seconds")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got {text!r}")
    if not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds from 0 to {MAX_SECONDS:,} (116 days), got {text!r}"
        )
    return value


def chunk_length(text: str) -> float | str:
    """Seconds per window (positive, finite) or "auto" (as long as the audio the model takes)."""
    if text == "auto":
        return text
    value = _number(text, float, "a positive number of seconds or 'auto'")
    if not 0 < value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds or 'auto', got {text!r}")
    return value


def ratio(text: str) -> float:
    value = _number(text, float, "a number between 0 and 1")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def seed(text: str) -> int:
    value = _number(text, int, "an integer")
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**63), got {text!r}")
    return value


__all__ = [
    "MAX_SECONDS",
    "chunk_length",
    "non_negative_int",
    "option_group",
    "positive_int",
    "ratio",
    "seconds",
    "seed",
]
