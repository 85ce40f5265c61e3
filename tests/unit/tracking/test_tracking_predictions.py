"""Per-video predictions round-trip through a real MLflow store, and a sweep report built from them shows
intervals, chance and the paired difference."""

import numpy as np

from tubelab import config
from tubelab.reporting import sweep_report
from tubelab.tracking import mlflow_runs
from tubelab.tracking.predictions import load_predictions, log_predictions


def fake_predictions(correct: np.ndarray, classes: int = 10) -> dict:
    target = np.arange(len(correct)) % classes
    predicted = np.where(correct, target, (target + 1) % classes)
    return {"video_key": np.arange(len(correct)) * 7 + 3, "target": target,
            "prediction": np.eye(classes, dtype=np.float32)[predicted]}


def test_predictions_round_trip_and_make_the_sweep_report_say_how_sure_it_is(tmp_path, monkeypatch):
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path))
    cfg = config.load("finetune")
    client = mlflow_runs.client(cfg)
    rng = np.random.default_rng(0)
    base = rng.random(200) < 0.3
    better = base | (rng.random(200) < 0.5)  # right wherever base is, and on about half of the rest
    parent = mlflow_runs.start_run(cfg, "sweep-x", kind="sweep")
    mlflow_runs.log_text(cfg, parent, "grid:\n  tubelet: [no_motion, nonlinear]\ndownstream: [synthetic]\n", "ablation.yaml")
    for tubelet, correct in (("no_motion", base), ("nonlinear", better)):
        trial = mlflow_runs.start_run(cfg, f"trial-{tubelet}", kind="trial", parent_run_id=parent)
        mlflow_runs.log_params(cfg, trial, {"grid": {"tubelet": tubelet}, "seed": 0})
        stage = mlflow_runs.start_run(cfg, f"x-{tubelet}-finetune", run_name="finetune-synthetic", kind="stage",
                                      parent_run_id=trial)
        log_predictions(cfg, stage, task="single_label", metric="top1", num_classes=10, **fake_predictions(correct))
        mlflow_runs.end_run(cfg, stage)
        mlflow_runs.log_metrics(cfg, trial, {"score/synthetic/top1": 100 * correct.mean()}, step=0)
        mlflow_runs.end_run(cfg, trial)

    got = load_predictions(client, stage)
    sent = fake_predictions(better)
    assert got["task"] == "single_label" and got["metric"] == "top1" and got["num_classes"] == 10
    for k in ("video_key", "target", "prediction"):
        assert np.array_equal(got[k], sent[k])
    assert load_predictions(client, parent) is None  # a run without predictions

    report = sweep_report.build(cfg, parent)
    assert "results.md" not in {a.path for a in client.list_artifacts(parent)}  # a report only reads
    sweep_report.publish(cfg, parent, report)
    assert {"results.md", "results.csv", "results.png"} <= {a.path for a in client.list_artifacts(parent)}
    rows = {r["tubelet"]: r for r in report.table}
    s = "synthetic/top1"
    assert rows["no_motion"][f"{s}_lo"] < 100 * base.mean() < rows["no_motion"][f"{s}_hi"]
    assert rows["no_motion"][f"{s}_chance"] == 10.0
    gain = 100 * (better.mean() - base.mean())
    assert abs(rows["nonlinear"][f"{s}_diff"] - gain) < 1e-9 and rows["nonlinear"][f"{s}_diff_lo"] > 0
    assert "*chance*" in report.markdown and "Paired difference against the first row (no_motion)" in report.markdown
