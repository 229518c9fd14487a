"""bench/gpu_check.py, the prepared GPU check: on a machine without CUDA it exits cleanly and says why; its pieces that
need no GPU (the suggested job limit, reading pytest's summary) are checked here too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402


def test_without_cuda_the_check_says_so_and_exits_cleanly() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: run bench/gpu_check.py itself")
    proc = subprocess.run([sys.executable, "bench/gpu_check.py", "--quick"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()  # one JSON line, nothing measured
    record = json.loads(line)
    assert record["figure"] == "gpu_check" and record["unit"] == "skipped"
    assert "No CUDA GPU" in record["reason"] and "bench/gpu_check.py" in record["reason"]
    assert record["reason"] in proc.stderr  # a person reading the terminal sees it too


def test_the_suggested_job_limit_is_the_fewest_runs_near_the_best_throughput() -> None:
    assert gpu_check.suggest_limit({1: 10.0, 2: 19.0, 4: 19.5}) == 2  # 19 is within 5% of 19.5
    assert gpu_check.suggest_limit({1: 10.0, 2: 12.0, 4: 20.0}) == 4
    assert gpu_check.suggest_limit({1: 30.0, 2: 25.0, 4: 20.0}) == 1  # sharing the GPU only slows it down
    with pytest.raises(ValueError, match="No throughput"):
        gpu_check.suggest_limit({})


def test_the_test_suite_summary_is_read_from_pytests_last_line() -> None:
    out = "....F\nFAILED tests/test_x.py::test_y - AssertionError\n2 failed, 530 passed, 4 skipped, 1 error in 81.2s\n"
    assert gpu_check.parse_pytest_summary(out) == {"passed": 530, "failed": 2, "errors": 1, "skipped": 4}
    assert gpu_check.parse_pytest_summary("537 passed in 300.0s") == {"passed": 537, "failed": 0, "errors": 0,
                                                                       "skipped": 0}
    assert gpu_check.parse_pytest_summary("no tests ran") == {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
