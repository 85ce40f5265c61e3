"""`tubelab report sweep=NAME_OR_RUN_ID`: a sweep's table rebuilt from MLflow alone."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from tubelab import config
from tubelab.config import ConfigError
from tubelab.reporting import tables
from tubelab.sweeps.trial import SCORE_PREFIX
from tubelab.tracking import mlflow_runs


def find_parent(client: MlflowClient, experiment_id: str, sweep: str):
    runs = client.search_runs([experiment_id], f"tags.`tubelab.sweep` = '{sweep}' and tags.`tubelab.kind` = 'sweep'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if runs:
        return runs[0]
    try:
        return client.get_run(sweep)
    except Exception:
        raise ConfigError(f"no sweep named or with run id {sweep!r} in experiment {experiment_id}; "
                          f"list sweeps in the MLflow UI (`tubelab ui`)") from None


def sweep_rows(client: MlflowClient, experiment_id: str, parent_id: str) -> tuple[list[dict], list[str], list[str]]:
    children = client.search_runs([experiment_id], f"tags.`{mlflow_runs.PARENT_TAG}` = '{parent_id}'",
                                  max_results=10000)
    axes = sorted({k[len("grid."):] for c in children for k in c.data.params if k.startswith("grid.")})
    scores = sorted({k[len(SCORE_PREFIX):] for c in children for k in c.data.metrics if k.startswith(SCORE_PREFIX)})
    rows = []
    for c in children:
        if c.info.status != "FINISHED":
            continue
        row = {a: c.data.params.get(f"grid.{a}", "") for a in axes}
        row.update({s: c.data.metrics.get(SCORE_PREFIX + s, float("nan")) for s in scores})
        rows.append(row)
    return rows, axes, scores


def report(overrides: list[str]) -> str:
    sweep = [o.split("=", 1)[1] for o in overrides if o.startswith("sweep=")]
    if not sweep:
        raise ConfigError("which sweep? pass sweep=NAME_OR_RUN_ID (the sweep name printed by `tubelab sweep`)")
    cfg = config.load("pretrain", [o for o in overrides if not o.startswith("sweep=")])
    client, exp = mlflow_runs.client(cfg), mlflow_runs.experiment_id(cfg)
    parent = find_parent(client, exp, sweep[0])
    rows, axes, scores = sweep_rows(client, exp, parent.info.run_id)
    table = tables.aggregate(rows, axes, scores)
    return f"{parent.info.run_name} ({len(rows)} finished trials)\n\n" + tables.to_markdown(table, axes, scores)
