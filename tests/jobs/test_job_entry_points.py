"""jobs/*.py, the `ray job submit` entry points, are the CLI's commands: each answers --help as that command
(jobs/sweep.py runs for real in tests/e2e/test_cluster_submit_e2e.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", ["prepare", "pretrain", "finetune", "sweep", "severe"])
def test_each_job_is_its_command(command, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "jobs" / f"{command}.py"), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: tubelab {command} ")
