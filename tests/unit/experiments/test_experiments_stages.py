import pytest

from tubelab import config
from tubelab.experiments import stages
from tubelab.tracking import mlflow_runs


def test_a_failing_stage_ends_its_mlflow_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path))
    cfg = config.load("finetune")
    run_id = mlflow_runs.start_run(cfg, "doomed", kind="finetune")
    with pytest.raises(RuntimeError, match="worker died"):
        with stages.ended_on_failure(cfg, run_id):
            raise RuntimeError("worker died")
    assert mlflow_runs.client(cfg).get_run(run_id).info.status == "FAILED"
