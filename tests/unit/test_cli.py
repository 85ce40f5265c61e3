"""The CLI surface: every subcommand is listed, and bad overrides fail before Ray starts."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from documented import documented
from tubelab.cli import COMMANDS

TUBELAB = str(Path(sys.executable).parent / "tubelab")


def run(*args, home):
    env = {**os.environ, "TUBELAB_HOME": str(home), "TUBELAB_VERBOSE": "1"}  # verbose: Ray's start line shows
    return subprocess.run([TUBELAB, *args], capture_output=True, text=True, timeout=120, env=env)


def test_help_lists_every_subcommand(tmp_path):
    env = {**os.environ, "TUBELAB_HOME": str(tmp_path)}
    proc = subprocess.run(documented("README.md", ".venv/bin/tubelab --help"), capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0
    for name in ("prepare", "pretrain", "finetune", "sweep", "report", "ui", "bench", "tubelets"):
        assert name in COMMANDS and f"    {name}" in proc.stdout


@pytest.mark.parametrize("override,message", [
    ("ablation=nope", "unknown ablation 'nope'; choose one of: "),
    ("pretrain.epochz=2", "unknown config key 'pretrain.epochz'; valid keys under 'pretrain': "),
    ("tubelet.motion=zigzag", "tubelet.motion='zigzag' is not valid; choose one of: none, linear, nonlinear"),
    ("model.name=resnet", "model.name='resnet' is not valid; choose one of: r2plus1d_18, r2plus1d_tiny"),
    ("model.input=flow", "model.input='flow' is not valid; choose one of: rgb, rgb_diff"),
])
def test_bad_override_fails_before_ray_starts(tmp_path, override, message):
    start = time.monotonic()
    proc = run("sweep", override, home=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Started a local Ray instance" not in proc.stderr + proc.stdout
    assert not (tmp_path / "mlflow.db").exists()  # no MLflow run was created either
    assert time.monotonic() - start < 60


def test_an_unwritable_home_fails_before_ray_starts(tmp_path):
    (tmp_path / "a-file").write_text("x")
    proc = run("sweep", "ablation=demo", home=tmp_path / "a-file" / "home")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"cannot write to {tmp_path / 'a-file' / 'home'} (Not a directory), the folder of home" in proc.stderr
    assert "Traceback" not in proc.stderr and "Started a local Ray instance" not in proc.stderr + proc.stdout


def test_prepare_as_typed_exits_zero_and_names_the_report(tmp_path):
    """`tubelab prepare dataset=synthetic` (README), with a tiny generator appended: exit 0, shards written."""
    tiny = ["dataset.generator.train_per_class=1", "dataset.generator.test_per_class=1",
            "dataset.generator.num_frames=16", "dataset.generator.width=64", "dataset.generator.height=48",
            "dataset.encode.short_side=48"]
    env = {**os.environ, "TUBELAB_HOME": str(tmp_path)}
    proc = subprocess.run([*documented("README.md", ".venv/bin/tubelab prepare dataset=synthetic"), *tiny],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "content hash " in proc.stdout and "prepare_report.json" in proc.stdout
    manifests = list(tmp_path.rglob("manifest.json"))
    assert len(manifests) == 1 and (manifests[0].parent / "prepare_report.json").exists()


@pytest.mark.parametrize("argv", [["sweep", "ablation=demo", "--resume", "name=x", "seed=3"],
                                  ["sweep", "--resume", "ablation=demo", "name=x", "seed=3"],
                                  ["sweep", "ablation=demo", "name=x", "seed=3", "--resume"]])
def test_flags_and_overrides_in_any_order(argv, monkeypatch):
    """README shows `sweep ablation=table3_motion --resume`; overrides typed after the flag are overrides too."""
    from tubelab import cli

    seen = {}
    monkeypatch.setattr(cli, "cmd_sweep", lambda overrides, resume: seen.update(overrides=overrides, resume=resume))
    assert cli.main(argv) in (0, None)
    assert seen == {"overrides": ["ablation=demo", "name=x", "seed=3"], "resume": True}


def test_an_unknown_flag_is_a_usage_error(tmp_path):
    proc = run("sweep", "ablation=demo", "--fast", home=tmp_path)
    assert proc.returncode == 2 and "unrecognized arguments: --fast" in proc.stderr
