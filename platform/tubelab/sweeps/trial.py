"""One sweep trial (a Ray Tune function trainable): pretrain -> each downstream fine-tune -> scores.

Everything the trial needs arrives resolved from the sweep driver (configs were composed and
validated there, before any cluster work); the trial owns its MLflow child run.
"""

from __future__ import annotations

import traceback

import ray.tune
import yaml
from omegaconf import OmegaConf

from tubelab.config import to_container
from tubelab.data import storage
from tubelab.tracking import mlflow_runs
from tubelab.training.finetune import run_finetune
from tubelab.training.pretrain import run_pretrain

SCORE_PREFIX = "score/"  # MLflow metric names of the final downstream scores, e.g. score/synthetic/top1


def checkpoint_uri(cfg, checkpoint) -> str:
    """A Result checkpoint's path as a URI that any node can open."""
    url = storage.resolve(cfg.storage.url)
    if storage.is_local(url):
        return checkpoint.path
    return f"{url.split('://', 1)[0]}://{checkpoint.path}"


def run_trial(params: dict, trials: list[dict]) -> None:
    trial = trials[params["index"]]
    cfg = OmegaConf.create(trial["cfg"])
    run_id = mlflow_runs.start_run(cfg, trial["label"], kind="trial", parent_run_id=trial["parent_run_id"],
                                   tags={"tubelab.sweep": trial["sweep"], "tubelab.trial": trial["slug"],
                                         "tubelab.ablation": trial["ablation"],
                                         "tubelab.tune_trial_id": ray.tune.get_context().get_trial_id()})
    try:
        mlflow_runs.log_params(cfg, run_id, {**to_container(cfg), "grid": trial["point"]})
        mlflow_runs.log_text(cfg, run_id, yaml.safe_dump(trial["cfg"], sort_keys=False), "config.yaml")
        base = f"{trial['sweep']}-{trial['slug']}"
        pre = run_pretrain(cfg, name=f"{base}-pretrain", run_id=run_id)
        uri = checkpoint_uri(cfg, pre.checkpoint)
        mlflow_runs.set_tags(cfg, run_id, {"checkpoint_uri": uri})
        scores = {}
        for setting in trial["settings"]:
            ft_cfg = OmegaConf.create({**setting, "checkpoint": uri})
            s = ft_cfg.setting
            result = run_finetune(ft_cfg, name=f"{base}-{s.id}", run_id=run_id)
            scores[f"{s.id}/{s.metric}"] = float(result.metrics["score"])
        mlflow_runs.log_metrics(cfg, run_id, {f"{SCORE_PREFIX}{k}": v for k, v in scores.items()}, step=0)
    except BaseException:
        mlflow_runs.set_tags(cfg, run_id, {"error": traceback.format_exc()[-4000:]})
        mlflow_runs.end_run(cfg, run_id, "FAILED")
        raise
    mlflow_runs.end_run(cfg, run_id)
    ray.tune.report({**scores, "mlflow_run_id": run_id})
