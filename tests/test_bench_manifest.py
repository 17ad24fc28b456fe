"""`benchmarks/bench_manifest.py` runs (at a tiny size) and prints its table: one row per manifest size, numbers in
every column, the larger manifest compared with the first; its memory sampling survives a worker that exits while it
is sampled."""

import re
import subprocess
import sys
import time

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


def test_memory_of_a_process_that_exited_but_is_not_reaped_reads_as_zero(monkeypatch):
    # CI once failed here: a decoding worker exited between listing the job's children and reading its status, and
    # a zombie's /proc/PID/status has no VmRSS line
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    from _machine import proc_bytes

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while "State:\tZ" not in open(f"/proc/{child.pid}/status").read():
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        assert proc_bytes("VmRSS", child.pid) == 0
        assert proc_bytes("VmHWM", child.pid) == 0
        assert proc_bytes("Pss", child.pid, "smaps_rollup") == 0
    finally:
        child.wait()
    assert proc_bytes("VmRSS", child.pid) == 0  # reaped: no /proc entry at all
    with pytest.raises(RuntimeError, match="no NoSuchField in /proc/self/status"):
        proc_bytes("NoSuchField")  # a live process without the field is still a mistake in the caller
