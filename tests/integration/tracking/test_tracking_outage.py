"""The tracking server goes down mid-run: training's per-epoch logger keeps going, holds the metrics and
delivers them, in order and with their own timestamps, when the server is back; what never got through
by the last epoch is saved to a file and reported. The session's real `mlflow server` is reached through a
gate on its own port that closes (connection refused, every open connection cut: what a stopped server gives
the client) and opens again."""

import json
import time

from mlflow.tracking import MlflowClient

from services import PortGate
from tubelab import config
from tubelab.tracking import mlflow_runs
from tubelab.training.common import RankZeroLogger


def test_metrics_logged_while_the_server_is_down_arrive_when_it_returns(mlflow_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path / "home"))
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(var, "")  # set by the logger; undone after the test
        monkeypatch.delenv(var)
    gate = PortGate(("127.0.0.1", int(mlflow_server.rsplit(":", 1)[1])))
    uri = gate.url
    cfg = config.load("pretrain", ["tracking=server", f"tracking.uri={uri}", "tracking.experiment=outage"])
    try:
        run_id = mlflow_runs.start_run(cfg, "outage", kind="pretrain")
        logger = RankZeroLogger(cfg, run_id, "pretrain", rank=0)
        logger.log({"loss": 1.0}, 0)

        gate.close()
        started = time.monotonic()
        logger.log({"loss": 0.9}, 1)
        logger.log({"loss": 0.8}, 2)
        assert time.monotonic() - started < 60  # seconds per epoch, not MLflow's minutes of retries
        assert [step for _, step, _ in logger.pending] == [1, 2]
        assert "MLflow unreachable" in capsys.readouterr().out

        gate.open()  # the same server again, on the same address
        logger.log({"loss": 0.7}, 3)
        assert logger.pending == []
        history = sorted((m.step, m.value, m.timestamp)
                         for m in MlflowClient(uri).get_metric_history(run_id, "pretrain/loss"))
        assert [(s, v) for s, v, _ in history] == [(0, 1.0), (1, 0.9), (2, 0.8), (3, 0.7)]
        stamps = [t for _, _, t in history]
        assert stamps == sorted(stamps)  # each epoch keeps the time it was measured

        gate.close()  # down again, and training ends before it returns
        logger.log({"loss": 0.6}, 4, last=True)
        saved = tmp_path / "home" / "undelivered-metrics" / f"{run_id}.json"
        assert [(e["step"], e["metrics"]) for e in json.loads(saved.read_text())] == [(4, {"pretrain/loss": 0.6})]
        out = capsys.readouterr().out
        assert f"misses the metrics of epoch(s) [4]" in out and str(saved) in out
    finally:
        gate.close()
