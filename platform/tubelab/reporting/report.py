"""`tubelab report`: a sweep's table (sweep=NAME_OR_RUN_ID) or a SEVERE table (severe=NAME,...) rebuilt
from MLflow alone; with resources.address (the cluster's dashboard URL) also the sweep's scaling timeline."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from tubelab import config
from tubelab.config import ConfigError
from tubelab.evaluation import protocol
from tubelab.evaluation.severe import SETTINGS
from tubelab.reporting import cluster_timeline, severe_table, sweep_report
from tubelab.tracking import mlflow_runs
from tubelab.tracking.schema import SEVERE_PREFIX


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


def severe_report(cfg, names: list[str]) -> str:
    """Several `tubelab severe` runs as rows of one SEVERE table, logged to a new MLflow run."""
    client, exp = mlflow_runs.client(cfg), mlflow_runs.experiment_id(cfg)
    ours, suites, protocols = [], set(), []
    for name in names:
        runs = client.search_runs([exp], f"tags.`tubelab.severe` = '{name}' and tags.`tubelab.kind` = 'severe'",
                                  order_by=["attributes.start_time DESC"], max_results=1)
        if not runs:
            raise ConfigError(f"no `tubelab severe` run named {name!r} in experiment {exp}")
        m = runs[0].data.metrics
        suites.add(runs[0].data.tags.get("tubelab.suite", "suite unknown"))
        protocols += protocol.from_tags(runs[0].data.tags)
        scores = {s: m[f"{SEVERE_PREFIX}{s}"] for s in SETTINGS if f"{SEVERE_PREFIX}{s}" in m}
        row = severe_table.row(runs[0].data.tags.get("tubelab.label", name), scores)
        ours.append(severe_table.attach_intervals(client, exp, runs[0].info.run_id, row))
    severe_table.attach_differences(ours)
    run_id = mlflow_runs.start_run(cfg, f"report-{'-'.join(names)}", kind="report",
                                   tags={"tubelab.sources": ",".join(names)})
    # the suite in the heading, as `tubelab severe` prints it: proxy rows sit beside the paper's real-data rows
    title = f"SEVERE ({', '.join(sorted(suites))}): {', '.join(names)}"
    markdown = severe_table.log_table(cfg, run_id, ours, title, protocol.caption(protocols))
    mlflow_runs.end_run(cfg, run_id)
    return markdown


def report(overrides: list[str]) -> str:
    keys = {o.split("=", 1)[0]: o.split("=", 1)[1] for o in overrides if o.startswith(("sweep=", "severe="))}
    cfg = config.load("pretrain", [o for o in overrides if not o.startswith(("sweep=", "severe="))])
    if "severe" in keys:
        return severe_report(cfg, [n for n in keys["severe"].split(",") if n])
    if "sweep" not in keys:
        raise ConfigError("what to report? pass sweep=NAME_OR_RUN_ID (printed by `tubelab sweep`) or "
                          "severe=NAME[,NAME...] (printed by `tubelab severe`)")
    client, exp = mlflow_runs.client(cfg), mlflow_runs.experiment_id(cfg)
    parent = find_parent(client, exp, keys["sweep"])
    markdown = sweep_report.build(cfg, parent.info.run_id).markdown
    if cfg.resources.address:  # the cluster the sweep ran on: its scaling timeline, terminations included
        markdown += "\n" + cluster_timeline.log_timeline(cfg, parent.info.run_id, cfg.resources.address)
    return markdown
