"""The tracking server goes down mid-run: training's per-epoch logger keeps going, holds the metrics and
delivers them, in order and with their own timestamps, when the server is back; what never got through
by the last epoch is saved to a file and reported. A real `mlflow server` is stopped and restarted."""

import json
import time

from mlflow.tracking import MlflowClient

from services import free_port, start_mlflow_server, stop_group
from tubelab import config
from tubelab.tracking import mlflow_runs
from tubelab.training.common import RankZeroLogger


def test_metrics_logged_while_the_server_is_down_arrive_when_it_returns(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path / "home"))
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(var, "")  # set by the logger; undone after the test
        monkeypatch.delenv(var)
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    cfg = config.load("pretrain", ["tracking=server", f"tracking.uri={uri}", "tracking.experiment=outage"])
    server = start_mlflow_server(tmp_path, port)
    try:
        run_id = mlflow_runs.start_run(cfg, "outage", kind="pretrain")
        logger = RankZeroLogger(cfg, run_id, "pretrain", rank=0)
        logger.log({"loss": 1.0}, 0)

        stop_group(server)
        started = time.monotonic()
        logger.log({"loss": 0.9}, 1)
        logger.log({"loss": 0.8}, 2)
        assert time.monotonic() - started < 60  # seconds per epoch, not MLflow's minutes of retries
        assert [step for _, step, _ in logger.pending] == [1, 2]
        assert "MLflow unreachable" in capsys.readouterr().out

        server = start_mlflow_server(tmp_path, port)  # same port, same store
        logger.log({"loss": 0.7}, 3)
        assert logger.pending == []
        history = sorted((m.step, m.value, m.timestamp)
                         for m in MlflowClient(uri).get_metric_history(run_id, "pretrain/loss"))
        assert [(s, v) for s, v, _ in history] == [(0, 1.0), (1, 0.9), (2, 0.8), (3, 0.7)]
        stamps = [t for _, _, t in history]
        assert stamps == sorted(stamps)  # each epoch keeps the time it was measured

        stop_group(server)  # down again, and training ends before it returns
        logger.log({"loss": 0.6}, 4, last=True)
        saved = tmp_path / "home" / "undelivered-metrics" / f"{run_id}.json"
        assert [(e["step"], e["metrics"]) for e in json.loads(saved.read_text())] == [(4, {"pretrain/loss": 0.6})]
        out = capsys.readouterr().out
        assert f"misses the metrics of epoch(s) [4]" in out and str(saved) in out
    finally:
        stop_group(server)
