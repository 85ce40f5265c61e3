"""The SEVERE table from a real MLflow store: per-setting intervals and chance from the fine-tunes'
predictions, the Mean's interval, and paired differences between two checkpoints' rows."""

import math

import numpy as np

from tubelab import config
from tubelab.evaluation.severe import SETTINGS
from tubelab.reporting import severe_table
from tubelab.reporting.report import severe_report
from tubelab.tracking import mlflow_runs
from tubelab.tracking.schema import SEVERE_PREFIX
from tubelab.tracking.predictions import log_predictions


def predictions(setting: str, rng, skill: float) -> tuple[dict, float]:
    """Fake per-video predictions of one setting's metric, and the score they give."""
    keys = np.arange(120)
    if setting == "ucf_rc":
        target = rng.integers(2, 10, 120).astype(np.float32)
        pred = target * (1 + rng.normal(0, 1 - skill, 120)).astype(np.float32)
        return dict(task="count", metric="repetition_error", num_classes=0, video_key=keys, target=target,
                    prediction=pred), float(np.mean(np.abs(pred - target) / target))
    if setting == "charades":
        target = (rng.random((120, 5)) < 0.3).astype(np.float32)
        pred = (skill * target + rng.random((120, 5))).astype(np.float32)
        from tubelab.evaluation.metrics import mean_average_precision
        return dict(task="multi_label", metric="map", num_classes=5, video_key=keys, target=target,
                    prediction=pred), mean_average_precision(pred, target)
    target = keys % 10
    right = rng.random(120) < skill
    pred = np.eye(10, dtype=np.float32)[np.where(right, target, (target + 1) % 10)]
    return dict(task="single_label", metric="top1", num_classes=10, video_key=keys, target=target,
                prediction=pred), 100 * right.mean()


def severe_run(cfg, name: str, skill: float, seed: int) -> tuple[str, dict]:
    rng = np.random.default_rng(seed)
    parent = mlflow_runs.start_run(cfg, name, kind="severe", tags={"tubelab.severe": name, "tubelab.suite": "proxy"})
    scores = {}
    for s in SETTINGS:
        child = mlflow_runs.start_run(cfg, f"{name}-{s}", kind="severe_setting", parent_run_id=parent,
                                      tags={"tubelab.severe_id": s})
        p, scores[s] = predictions(s, rng, skill)
        log_predictions(cfg, child, **p)
    mlflow_runs.log_metrics(cfg, parent, {f"{SEVERE_PREFIX}{s}": v for s, v in scores.items()}, 0)
    return parent, scores


def test_severe_rows_get_intervals_chance_mean_interval_and_paired_differences(tmp_path, monkeypatch):
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path))
    cfg = config.load("finetune")
    client, exp = mlflow_runs.client(cfg), mlflow_runs.experiment_id(cfg)
    ours = []
    for label, skill in (("random init", 0.3), ("tubelets", 0.8)):
        parent, scores = severe_run(cfg, label, skill, seed=0)  # same seed: the same targets, paired
        ours.append(severe_table.attach_intervals(client, exp, parent, severe_table.row(label, scores)))
    severe_table.attach_differences(ours)
    first, second = ours
    for s in SETTINGS:
        assert first[f"{s}_lo"] <= first[s] <= first[f"{s}_hi"], s
        assert math.isfinite(first[f"{s}_chance"])
    assert first["gym99_chance"] == 10.0
    assert first["mean_lo"] < first["mean"] < first["mean_hi"]
    assert second["gym99_diff"] > 0 and second["gym99_diff_lo"] > 0  # 80 % vs 30 % right: far outside noise
    md = severe_table.to_markdown(ours, "SEVERE")
    assert f"| random init | {first['ssv2']:.1f} [{first['ssv2_lo']:.1f}, {first['ssv2_hi']:.1f}]" in md
    assert "| *chance* |" in md and "Paired difference against random init" in md


def test_report_of_severe_runs_names_their_suite(tmp_path, monkeypatch):
    """`tubelab report severe=a,b` keeps "(proxy)" in the heading, as `tubelab severe` prints it."""
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path))
    cfg = config.load("finetune")
    for label, skill in (("random init", 0.3), ("tubelets", 0.8)):
        severe_run(cfg, label, skill, seed=0)
    md = severe_report(cfg, ["random init", "tubelets"])
    assert md.splitlines()[0] == "### SEVERE (proxy): random init, tubelets"
    assert md.count("| random init |") >= 1 and md.count("| tubelets |") >= 2  # its row and its paired difference
