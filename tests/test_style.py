"""The repository is formatted and linted as pyproject.toml's `[tool.ruff]` says (119 columns, transformers' rules):
`ruff format .` and `ruff check --fix .` make a failure here go away."""

import subprocess
import sys

import pytest
from conftest import REPO_ROOT


def _ruff(*arguments: str) -> subprocess.CompletedProcess:
    # the ruff of the environment running the tests: the version setup.cfg pins
    return subprocess.run(
        [sys.executable, "-m", "ruff", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("arguments", [("format", "--check", "."), ("check", "--no-cache", ".")])
def test_the_tree_is_formatted_and_lint_free(arguments):
    result = _ruff(*arguments)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
