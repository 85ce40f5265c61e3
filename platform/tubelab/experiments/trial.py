"""One sweep trial (a Ray Tune function trainable): pretrain -> each downstream fine-tune -> scores.

Everything the trial needs arrives resolved from the sweep driver (configs were composed and
validated there, before any cluster work). The trial owns its MLflow child run of the sweep's parent
run, and one nested run per stage (pretrain, each fine-tune). Runs are found again by name, so a
resumed sweep continues them instead of starting duplicates.
"""

from __future__ import annotations

import time
import traceback

import ray.tune
import yaml
from omegaconf import OmegaConf

from tubelab import resources
from tubelab.config import RANDOM_INIT  # checkpoint=random: fine-tune from random initialisation, no pretraining
from tubelab.evaluation import protocol
from tubelab.experiments.stages import finetune_stage, pretrain_stage
from tubelab.tracking import mlflow_runs
from tubelab.tracking.schema import SCORE_PREFIX


def run_params(trial_cfg: dict) -> dict:
    """A trial's resolved config as MLflow params; the ablation itself is on the sweep's parent run."""
    return {k: v for k, v in trial_cfg.items() if k != "ablation"}


def start_trial_run(cfg, trial: dict, extra_tags: dict | None = None) -> str:
    """The trial's child run, created or (same sweep and grid point) continued."""
    return mlflow_runs.start_run(
        cfg, f"{trial['sweep']}-{trial['slug']}", run_name=trial["label"], kind="trial",
        parent_run_id=trial["parent_run_id"], resume=True,
        tags={"tubelab.sweep": trial["sweep"], "tubelab.trial": trial["slug"], "tubelab.ablation": trial["ablation"],
              **trial["tags"], **(extra_tags or {})})


def stage_name(trial: dict, stage: str) -> str:
    return f"{trial['sweep']}-{trial['slug']}-{stage}"


def finished_stage(cfg, trial: dict, stage: str):
    """A stage that finished before this trial was interrupted: a resumed sweep does not redo it."""
    run = mlflow_runs.find_run(cfg, stage_name(trial, stage), "stage")
    return run if run is not None and run.info.status == "FINISHED" else None


def start_stage_run(cfg, trial: dict, parent_run_id: str, stage: str) -> str:
    return mlflow_runs.start_run(cfg, stage_name(trial, stage), run_name=stage, kind="stage",
                                 parent_run_id=parent_run_id, resume=True,
                                 tags={"tubelab.sweep": trial["sweep"], "tubelab.trial": trial["slug"]})


def pretrained_checkpoint(cfg, trial: dict, run_id: str) -> str | None:
    """The checkpoint the fine-tunes start from: pretrained here, given (`checkpoint=URI`), or none."""
    if cfg.get("checkpoint") == RANDOM_INIT:
        return None
    if cfg.get("checkpoint"):
        return str(cfg.checkpoint)
    if (done := finished_stage(cfg, trial, "pretrain")) is not None:
        return done.data.tags["checkpoint_uri"]
    stage = start_stage_run(cfg, trial, run_id, "pretrain")
    return pretrain_stage(cfg, stage, stage_name(trial, "pretrain"), run_params(trial["cfg"]))


def run_trial(params: dict, trials: list[dict]) -> None:
    trial = trials[params["index"]]
    cfg = OmegaConf.create(trial["cfg"])
    start = time.monotonic()
    run_id = start_trial_run(cfg, trial, {"tubelab.tune_trial_id": ray.tune.get_context().get_trial_id()})
    try:
        mlflow_runs.log_params(cfg, run_id, {**run_params(trial["cfg"]), "grid": trial["point"]})
        mlflow_runs.log_text(cfg, run_id, yaml.safe_dump(trial["cfg"], sort_keys=False), "config.yaml")
        uri = pretrained_checkpoint(cfg, trial, run_id)
        mlflow_runs.set_tags(cfg, run_id, {"checkpoint_uri": uri or RANDOM_INIT, **protocol.as_tags({
            s["setting"]["id"]: protocol.describe(OmegaConf.create(s["setting"])) for s in trial["settings"]})})
        scores = {}
        for setting in trial["settings"]:
            ft = {**setting, "checkpoint": uri}
            ft_cfg = OmegaConf.create(ft)
            s = ft_cfg.setting
            key = f"{s.id}/{s.metric}"
            if (done := finished_stage(cfg, trial, f"finetune-{s.id}")) is not None:
                scores[key] = done.data.metrics[SCORE_PREFIX + key]
                continue
            stage = start_stage_run(cfg, trial, run_id, f"finetune-{s.id}")
            scores[key] = finetune_stage(ft_cfg, stage, stage_name(trial, s.id), ft, SCORE_PREFIX + key)
        hours = (time.monotonic() - start) / 3600
        res = cfg.resources
        mlflow_runs.log_metrics(cfg, run_id, {
            **{f"{SCORE_PREFIX}{k}": v for k, v in scores.items()},
            "cost/cpu_hours": hours * resources.cpus_per_trial(res),
            "cost/gpu_hours": hours * res.train_workers * res.gpus_per_train_worker}, step=0)
    except BaseException:
        mlflow_runs.set_tags(cfg, run_id, {"error": traceback.format_exc()[-4000:]})
        mlflow_runs.end_run(cfg, run_id, "FAILED")
        raise
    mlflow_runs.end_run(cfg, run_id)
    ray.tune.report({**scores, "mlflow_run_id": run_id})
