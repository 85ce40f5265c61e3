"""An unreachable MLflow server is a clear error within seconds, before any cluster work."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from services import free_port
from tubelab.config import ConfigError
from tubelab.tracking import mlflow_runs


def cfg(uri):
    return OmegaConf.create({"tracking": {"uri": uri, "experiment": "tubelab"}, "home": "/tmp/unused"})


def test_closed_port_fails_fast_with_the_uri_but_not_its_password():
    uri = f"http://alice:s3cret-token@127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(ConfigError) as e:
        mlflow_runs.check_reachable(cfg(uri))
    assert time.monotonic() - start < 10
    message = str(e.value)
    assert "not reachable" in message and "//***@127.0.0.1" in message and "tracking=local" in message
    assert "s3cret-token" not in message


def test_a_local_store_needs_no_server(tmp_path):
    assert mlflow_runs.check_reachable(cfg(f"sqlite:///{tmp_path / 'mlflow.db'}")) is None  # no error, no probe


def test_sweep_cli_stops_before_ray_and_data_when_the_server_is_down(tmp_path):
    env_home = tmp_path / "home"
    start = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / "tubelab"), "sweep", "ablation=demo", "tracking=server",
                           f"tracking.uri=http://127.0.0.1:{free_port()}"], capture_output=True, text=True,
                          timeout=120, env={"TUBELAB_HOME": str(env_home), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "MLflow tracking server" in proc.stderr and "not reachable" in proc.stderr
    assert time.monotonic() - start < 60  # CLI start-up (imports) included; the check itself takes < 10 s
    assert not (env_home / "shards").exists()  # no data work happened


def test_a_submitted_job_records_the_commit_it_was_given(monkeypatch):
    monkeypatch.setenv("TUBELAB_GIT_COMMIT", "abc123")
    monkeypatch.setenv("TUBELAB_GIT_DIRTY", "false")
    assert mlflow_runs.git_state() == {"git_commit": "abc123", "git_dirty": "false"}
    monkeypatch.delenv("TUBELAB_GIT_COMMIT")
    assert len(mlflow_runs.git_state()["git_commit"]) == 40  # from this checkout's git
