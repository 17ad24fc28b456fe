"""`benchmarks/bench_manifest.py` runs (at a tiny size) and prints its table: one row per manifest size, numbers in
every column, the larger manifest compared with the first."""

import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT


@pytest.mark.slow
def test_the_manifest_benchmark_prints_a_row_per_size():
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_manifest.py"), "--rows", "16,40", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if re.match(r"\| \d", line)]
    assert [row.split("|")[1].strip() for row in rows] == ["16", "40"]
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert all(re.match(r"[\d.,]+", cell) for cell in cells), row
    assert re.search(r"\(\d+\.\d\dx\)", rows[1])  # the larger manifest against the first
