"""The two stages every experiment is made of, each inside an MLflow run the caller started: pretraining
(-> a checkpoint URI) and a downstream fine-tune (-> its score). Written once; `tubelab pretrain` and
`tubelab finetune`, a sweep trial and each SEVERE setting call them. A stage that fails ends its run
FAILED (KILLED on Ctrl-C), never leaving it RUNNING.
"""

from __future__ import annotations

import contextlib

from tubelab.data import storage
from tubelab.evaluation import protocol
from tubelab.tracking import mlflow_runs
from tubelab.training.finetune import run_finetune
from tubelab.training.pretrain import run_pretrain


def checkpoint_uri(cfg, checkpoint) -> str:
    """A Ray Train Result checkpoint's path as a URI that any node can open."""
    url = storage.resolve(cfg.storage.url)
    if storage.is_local(url):
        return checkpoint.path
    return f"{url.split('://', 1)[0]}://{checkpoint.path}"


@contextlib.contextmanager
def ended_on_failure(cfg, run_id: str):
    """The run ends FAILED (KILLED on Ctrl-C) when the block raises."""
    try:
        yield
    except BaseException as e:
        mlflow_runs.end_run(cfg, run_id, "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise


def pretrain_stage(cfg, run_id: str, name: str, params: dict) -> str:
    """Pretrain under Ray Train run `name` (the same name resumes), tracked in MLflow run `run_id`: params,
    per-epoch metrics, the `checkpoint_uri` tag; ends the run and returns the checkpoint URI."""
    with ended_on_failure(cfg, run_id):
        mlflow_runs.log_params(cfg, run_id, params)
        result = run_pretrain(cfg, name=name, run_id=run_id)
        uri = checkpoint_uri(cfg, result.checkpoint)
        mlflow_runs.set_tags(cfg, run_id, {"checkpoint_uri": uri})
    mlflow_runs.end_run(cfg, run_id)
    return uri


def finetune_stage(cfg, run_id: str, name: str, params: dict, score_metric: str) -> float:
    """Fine-tune `cfg.setting` under Ray Train run `name`, tracked in MLflow run `run_id`: params, per-epoch
    metrics, the test score as metric `score_metric` (tracking.schema); ends the run and returns the score."""
    with ended_on_failure(cfg, run_id):
        mlflow_runs.log_params(cfg, run_id, params)
        mlflow_runs.set_tags(cfg, run_id, {protocol.TAG: protocol.describe(cfg.setting)})
        result = run_finetune(cfg, name=name, run_id=run_id)
        score = float(result.metrics["score"])
        mlflow_runs.log_metrics(cfg, run_id, {score_metric: score}, step=0)
    mlflow_runs.end_run(cfg, run_id)
    return score
