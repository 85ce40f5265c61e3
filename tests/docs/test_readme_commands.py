"""README.md's and infra/README.md's commands that no other test runs, run as written (tests/documented.py)
with only the overrides that keep them fast appended: fine-tuning my_run's checkpoint by a relative path,
the tubelet preview, the real SEVERE suite before `prepare`, the quick benchmarks and the Ray token command."""

import os
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from documented import ROOT, documented
from tiny import TINY_FINETUNE, TINY_PRETRAIN

pytestmark = pytest.mark.slow


def run(argv, home, cwd=None, timeout=600, **env):
    return subprocess.run(argv, env={**os.environ, "TUBELAB_HOME": str(home), **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_finetune_a_checkpoint_by_a_relative_path(my_run):
    """Relative to the cwd (made absolute before Ray starts: the workers run elsewhere). The absolute form runs
    in tests/e2e/test_severe_e2e.py (eight fine-tunes of my_run's checkpoint)."""
    relative = my_run.checkpoint.relative_to(my_run.home)
    out = ok(run([*documented("README.md", ".venv/bin/tubelab finetune setting=synthetic checkpoint=<checkpoint dir>",
                              {"<checkpoint dir>": str(relative)}), "name=ft-relative", *TINY_FINETUNE],
                 my_run.home, cwd=my_run.home))
    (line,) = [ln for ln in out.splitlines() if ln.startswith("synthetic top1: ")]
    assert 0 <= float(line.removeprefix("synthetic top1: ")) <= 100
    client = MlflowClient(f"sqlite:///{my_run.home / 'mlflow.db'}")
    (ft,) = client.search_runs([client.get_experiment_by_name("tubelab").experiment_id],
                               "tags.`tubelab.name` = 'ft-relative'")
    assert ft.info.status == "FINISHED" and ft.data.params["checkpoint"] == str(my_run.checkpoint)


def test_tubelet_preview_writes_a_png_and_a_gif(my_run):
    out = ok(run([*documented("README.md", ".venv/bin/tubelab tubelets preview tubelet=linear"), *TINY_PRETRAIN],
                 my_run.home))
    paths = [Path(line) for line in out.splitlines() if line.startswith(str(my_run.home / "previews"))]
    assert sorted(p.suffix for p in paths) == [".gif", ".png"] and all(p.stat().st_size > 1000 for p in paths)
    assert all("tubelet-linear-" in p.name for p in paths)


def test_the_real_suite_before_prepare_says_to_prepare(my_run, tmp_path):
    proc = run(documented("README.md", ".venv/bin/tubelab severe checkpoint=<dir> suite=real model=r2plus1d_18",
                          {"<dir>": str(my_run.checkpoint)}), tmp_path, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "no manifest.json" in line and "tubelab prepare" in line


def test_make_bench_quick(tmp_path):
    out = ok(run([*documented("README.md", "make bench"), "ARGS=--quick"], tmp_path, cwd=ROOT, timeout=900))
    for bench in ("benchmark_data.py", "benchmark_train.py", "benchmark_tubelets.py"):
        assert f"== jobs/{bench}" in out
    assert "data-stall ratio (pipeline / in-memory): " in out


def test_ray_get_auth_token_writes_the_token(tmp_path):
    proc = run(documented("infra/README.md", "ray get-auth-token --generate"), tmp_path, HOME=str(tmp_path),
               timeout=120)
    token = (tmp_path / ".ray" / "auth_token").read_text().strip()
    assert ok(proc).strip().endswith(token) and len(token) >= 32
