"""`tubelab severe checkpoint=URI`: every SEVERE setting of a suite as parallel Ray Tune trials -> the table.

Like a sweep, everything is composed and checked before Ray starts: the settings exist, the
checkpoint exists, the shards of every dataset are there (the synthetic proxy is generated).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import ray
import ray.tune
import yaml
from omegaconf import OmegaConf

from tubelab import config, resources
from tubelab.config import ConfigError, to_container
from tubelab.data import storage
from tubelab.data.storage import check_checkpoint
from tubelab.data.prepare import ensure_shards
from tubelab.reporting import severe_table
from tubelab.sweeps.run import check_setting, finetune_config, split_overrides
from tubelab.tracking import mlflow_runs
from tubelab.training import common
from tubelab.training.finetune import run_finetune

SCORE_PREFIX = "severe/"


def row_label(cfg) -> str:
    """`label=`, else the pretraining run's name: Ray Train writes <run name>/checkpoint_<timestamp>, so the
    folder above a checkpoint_* folder; else the checkpoint's folder name; "random init" without one."""
    if cfg.label:
        return str(cfg.label)
    if not cfg.checkpoint:
        return "random init"
    path = Path(str(cfg.checkpoint).split("://", 1)[-1].rstrip("/"))
    if path.name.startswith("checkpoint_") and path.parent.name:
        return path.parent.name
    return path.name


def severe_trial(params: dict, trials: list[dict]) -> None:
    trial = trials[params["index"]]
    ft = OmegaConf.create(trial["cfg"])
    run_id = mlflow_runs.start_run(ft, f"{trial['severe_id']} ({ft.setting.id})", kind="severe_setting",
                                   parent_run_id=trial["parent_run_id"],
                                   tags={"tubelab.severe_id": trial["severe_id"], "tubelab.severe": trial["name"]})
    try:
        mlflow_runs.log_params(ft, run_id, to_container(ft))
        result = run_finetune(ft, name=f"{trial['name']}-{trial['severe_id']}", run_id=run_id)
        score = float(result.metrics["score"])
        mlflow_runs.log_metrics(ft, run_id, {f"{SCORE_PREFIX}{trial['severe_id']}": score}, step=0)
    except BaseException:
        mlflow_runs.end_run(ft, run_id, "FAILED")
        raise
    mlflow_runs.end_run(ft, run_id)
    ray.tune.report({"score": score})


def run_severe(overrides: list[str]) -> dict:
    overrides, cards = config.split_card_overrides(overrides)
    base_overrides, setting_overrides = split_overrides(overrides)
    cfg = config.load("severe", base_overrides)
    storage.check_local_store(cfg)
    mlflow_runs.check_reachable(cfg)
    if cfg.suite not in cfg.suites:
        raise ConfigError(f"suite={cfg.suite!r} is not valid; choose one of: {', '.join(cfg.suites)}")
    suite = dict(cfg.suites[cfg.suite])
    valid = config.choices("setting")
    missing = [name for name in suite.values() if name not in valid]
    if missing:
        raise ConfigError(f"suite {cfg.suite!r} names settings that do not exist: {missing}; valid: {', '.join(valid)}")
    check_checkpoint(cfg)
    label = row_label(cfg)
    name = cfg.name or f"severe-{label}-{time.strftime('%Y%m%d-%H%M%S')}".replace(" ", "-")
    trials = []
    for severe_id, setting in suite.items():
        ft = finetune_config(cfg, setting, setting_overrides)
        ft["checkpoint"] = cfg.checkpoint
        trials.append({"cfg": ft, "severe_id": severe_id, "name": name})
    for dataset in sorted({t["cfg"]["setting"]["dataset"] for t in trials}):
        ensure_shards(cfg, dataset, cards.get(dataset, []))
    for t in trials:
        try:
            check_setting(OmegaConf.create(t["cfg"]))
        except ValueError as e:
            raise ConfigError(f"SEVERE {t['severe_id']} ({t['cfg']['setting']['id']}): {e}") from None
    plan = resources.init_ray(cfg.resources)
    parent = mlflow_runs.start_run(cfg, name, kind="severe", tags={
        "tubelab.severe": name, "tubelab.suite": cfg.suite, "tubelab.label": label,
        "checkpoint_uri": str(cfg.checkpoint)})
    mlflow_runs.log_text(cfg, parent, yaml.safe_dump(to_container(cfg), sort_keys=False), "config.yaml")
    for t in trials:
        t["parent_run_id"] = parent
    try:
        scores = _tune(cfg, trials, plan, name)
    except BaseException:
        mlflow_runs.end_run(cfg, parent, "FAILED")
        raise
    finally:
        ray.shutdown()
    ours = [severe_table.row(label, scores)]
    title = f"SEVERE ({cfg.suite}): {name}"
    markdown = severe_table.to_markdown(ours, title)
    print(f"\n{markdown}")
    mlflow_runs.log_metrics(cfg, parent, {f"{SCORE_PREFIX}{k}": v for k, v in scores.items() if math.isfinite(v)}, 0)
    if math.isfinite(ours[0]["mean"]):
        mlflow_runs.log_metrics(cfg, parent, {f"{SCORE_PREFIX}mean": ours[0]["mean"]}, 0)
    mlflow_runs.log_text(cfg, parent, markdown, "severe.md")
    mlflow_runs.log_text(cfg, parent, severe_table.to_csv(ours), "severe.csv")
    with tempfile.TemporaryDirectory() as d:
        mlflow_runs.log_artifact(cfg, parent, severe_table.plot(ours, Path(d) / "severe.png", title))
    failed = [k for k, v in scores.items() if not math.isfinite(v)]
    mlflow_runs.end_run(cfg, parent, "FAILED" if failed else "FINISHED")
    if failed:
        raise RuntimeError(f"SEVERE settings failed: {', '.join(failed)} (see the MLflow child runs of {name})")
    return ours[0]


def _tune(cfg, trials: list[dict], plan: resources.Plan, name: str) -> dict[str, float]:
    path, fs = common.storage_target(cfg, "tune")
    tuner = ray.tune.Tuner(
        ray.tune.with_resources(ray.tune.with_parameters(severe_trial, trials=trials),
                                {"cpu": cfg.resources.trial_driver_cpus}),
        param_space={"index": ray.tune.grid_search(list(range(len(trials))))},
        tune_config=ray.tune.TuneConfig(max_concurrent_trials=plan.max_concurrent_trials,
                                        trial_dirname_creator=lambda t: trials[t.config["index"]]["severe_id"]),
        run_config=ray.tune.RunConfig(name=name, storage_path=path, storage_filesystem=fs,
                                      failure_config=ray.tune.FailureConfig(max_failures=0)),
    )
    scores = {}
    for result in tuner.fit():
        severe_id = trials[result.config["index"]]["severe_id"]
        scores[severe_id] = float(result.metrics["score"]) if result.error is None and result.metrics else math.nan
    return scores
