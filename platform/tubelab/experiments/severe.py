"""`tubelab severe checkpoint=URI`: every SEVERE setting of a suite as parallel Ray Tune trials.

Like a sweep, everything is composed and checked before Ray starts: the settings exist, the
checkpoint exists, the shards of every dataset are there (the synthetic proxy is generated).
Returns the scores; the caller renders the table (reporting.severe_table).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import ray
import ray.tune
import yaml
from omegaconf import OmegaConf

from tubelab import config, resources
from tubelab.config import ConfigError, to_container
from tubelab.data import storage
from tubelab.data.prepare import ensure_shards
from tubelab.data.storage import check_checkpoint
from tubelab.evaluation import protocol
from tubelab.experiments.checks import check_setting
from tubelab.experiments.plan import finetune_config, split_overrides
from tubelab.experiments.stages import finetune_stage
from tubelab.experiments.tune import run_trials
from tubelab.tracking import mlflow_runs
from tubelab.tracking.schema import SEVERE_PREFIX


@dataclass
class SevereOutcome:
    cfg: object
    name: str
    label: str
    parent_run_id: str
    scores: dict[str, float]   # SEVERE id -> score; NaN where the setting failed
    protocol: str              # the table's protocol line (evaluation.protocol.caption)


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
    score = finetune_stage(ft, run_id, f"{trial['name']}-{trial['severe_id']}", to_container(ft),
                           f"{SEVERE_PREFIX}{trial['severe_id']}")
    ray.tune.report({"score": score})


def run_severe(overrides: list[str]) -> SevereOutcome:
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
    protocols = {t["severe_id"]: protocol.describe(OmegaConf.create(t["cfg"]["setting"])) for t in trials}
    plan = resources.init_ray(cfg.resources)
    parent = mlflow_runs.start_run(cfg, name, kind="severe", tags={
        "tubelab.severe": name, "tubelab.suite": cfg.suite, "tubelab.label": label,
        "checkpoint_uri": str(cfg.checkpoint), **protocol.as_tags(protocols)})
    mlflow_runs.log_text(cfg, parent, yaml.safe_dump(to_container(cfg), sort_keys=False), "config.yaml")
    for t in trials:
        t["parent_run_id"] = parent
    try:
        results = run_trials(cfg, severe_trial, trials, list(range(len(trials))), name=name, what="severe",
                             plan=plan, dirname=lambda i: trials[i]["severe_id"])
        scores = {}
        for result in results:
            severe_id = trials[result.config["index"]]["severe_id"]
            ok = result.error is None and result.metrics
            scores[severe_id] = float(result.metrics["score"]) if ok else math.nan
    except BaseException:
        mlflow_runs.end_run(cfg, parent, "FAILED")
        raise
    finally:
        ray.shutdown()
    mlflow_runs.log_metrics(cfg, parent, {f"{SEVERE_PREFIX}{k}": v for k, v in scores.items() if math.isfinite(v)}, 0)
    mlflow_runs.end_run(cfg, parent, "FINISHED" if all(map(math.isfinite, scores.values())) else "FAILED")
    return SevereOutcome(cfg, name, label, parent, scores, protocol.caption(protocols.items()))
