"""Tracking against a real `mlflow server` over HTTP: parent/child runs, params, metrics, artifacts."""

import os
import subprocess
import urllib.request

from mlflow.tracking import MlflowClient

from documented import documented
from services import free_port, stop_group, wait_http
from tubelab import config
from tubelab.tracking import mlflow_runs


def test_runs_params_metrics_artifacts_over_http(mlflow_server, tmp_path, monkeypatch):
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path))
    cfg = config.load("sweep", ["tracking=server", f"tracking.uri={mlflow_server}", "tracking.experiment=http-test"])
    assert mlflow_runs.tracking_uri(cfg) == mlflow_server
    mlflow_runs.check_reachable(cfg)  # a running server passes the start-up check
    parent = mlflow_runs.start_run(cfg, "sweep-x", kind="sweep")
    child = mlflow_runs.start_run(cfg, "trial-0", kind="trial", parent_run_id=parent)
    mlflow_runs.log_params(cfg, child, config.to_container(cfg))
    for epoch, loss in enumerate([3.0, 2.5, 2.0]):
        mlflow_runs.log_metrics(cfg, child, {"pretrain/loss": loss}, step=epoch)
    mlflow_runs.log_text(cfg, parent, "| a |\n", "results.md")
    mlflow_runs.end_run(cfg, child)
    mlflow_runs.end_run(cfg, parent)

    client = MlflowClient(mlflow_server)
    run = client.get_run(child)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.params["pretrain.optimizer.lr"] == "0.01"
    assert run.data.params["tracking.uri"] == mlflow_server
    assert [m.value for m in sorted(client.get_metric_history(child, "pretrain/loss"), key=lambda m: m.step)] == [3.0, 2.5, 2.0]
    assert {a.path for a in client.list_artifacts(parent)} == {"results.md"}
    assert run.data.tags["git_commit"] and run.data.tags["ray_version"]
    assert mlflow_runs.last_step(cfg, child, "pretrain/loss") == 2
    # A rerun under the same name and kind continues the same run instead of starting another.
    assert mlflow_runs.start_run(cfg, "trial-0", kind="trial", resume=True) == child
    assert client.get_run(child).info.status == "RUNNING"
    assert mlflow_runs.start_run(cfg, "trial-0", kind="trial") != child


def test_tubelab_ui_serves_the_store_on_localhost(tmp_path):
    port = free_port()
    proc = subprocess.Popen([*documented("README.md", ".venv/bin/tubelab ui"), f"port={port}"], env={**os.environ, "TUBELAB_HOME": str(tmp_path)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, timeout=180)  # mlflow ui starts slowly on a loaded machine
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200 and b"MLflow" in r.read()
        assert (tmp_path / "mlflow.db").exists()  # the UI serves tubelab's own sqlite store
    finally:
        stop_group(proc)
