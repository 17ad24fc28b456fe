"""`benchmarks/gpu_check.py` runs where CI can: on the CPU, at tiny width, every row has numbers or "n/a: reason",
and a device output off by more than the parity tolerance is a FAIL with exit status 1 (after the table)."""

import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT


SCRIPT = REPO_ROOT / "benchmarks" / "gpu_check.py"
SMALL = ["--device", "cpu", "--size", "tiny", "--skip-compile", "--batch-sizes", "1,2", "--repeats", "1"]


def run_check(*arguments: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *SMALL, *arguments], capture_output=True, text=True, timeout=600
    )
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in result.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| check ")
    ]
    return result, rows


@pytest.mark.slow
def test_every_check_runs_on_the_cpu_with_numbers_or_a_reason(tmp_path):
    out = tmp_path / "table.md"
    result, rows = run_check("--clips", "4", "--out", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checks = {row[0] for row in rows}
    assert {"fp32 parity: device vs CPU", "bfloat16 drift", "float16 drift", "attention", "torch.compile"} <= checks
    assert {"forward", "batch job"} <= checks
    for check, setting, result_text, _ms, _memory, verdict in rows:
        assert verdict in ("PASS", "FAIL", "n/a", "-"), verdict
        # a measurement has a number; a row without one says why
        assert re.search(r"\d", result_text) or result_text.startswith("n/a: "), (check, setting, result_text)
    parity = [row for row in rows if row[0] == "fp32 parity: device vs CPU"]
    assert len(parity) == 3 and all(row[5] == "PASS" for row in parity)
    assert len([row for row in rows if row[0] == "forward"]) == 4  # batch 1 and 2, fp32 and bfloat16
    job = [row for row in rows if row[0] == "batch job"]
    assert len(job) == 3 and "clips/s" in job[0][2] and "job / limit" in job[1][2]
    assert out.read_text().strip().endswith(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_device_output_off_by_more_than_the_tolerance_fails():
    result, rows = run_check("--skip-job", "--perturb", "1e-3")
    assert result.returncode == 1
    parity = [row for row in rows if row[0] == "fp32 parity: device vs CPU"]
    assert parity and all(row[5] == "FAIL" for row in parity)
    assert "check(s) FAIL: fp32 parity" in result.stdout


def test_without_a_cuda_device_the_script_says_which_option_to_pass():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gpu_check.py: torch sees no CUDA device here; pass --device cpu to run the checks on the CPU"
    ]
