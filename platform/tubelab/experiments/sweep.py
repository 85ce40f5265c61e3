"""`tubelab sweep ablation=NAME`: plan (experiments.plan), check (experiments.checks), then launch: the
parent MLflow run, de-duplication against finished trials, and the trials on Ray Tune.

Returns what ran; the caller renders the report (reporting.sweep_report) from MLflow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import ray
import yaml

from tubelab import resources
from tubelab.config import ConfigError, to_container
from tubelab.data import storage
from tubelab.data.prepare import ensure_shards
from tubelab.experiments.checks import check_checkpoints, check_clips, content_hashes, trial_datasets
from tubelab.experiments.fingerprint import code_version, trial_fingerprint
from tubelab.experiments.plan import SweepPlan
from tubelab.experiments.trial import run_params, run_trial, start_trial_run
from tubelab.experiments.tune import run_trials
from tubelab.reporting import cluster_timeline
from tubelab.tracking import mlflow_runs, schema


@dataclass
class SweepOutcome:
    plan: SweepPlan
    parent_run_id: str
    errors: list[str]          # one line per trial that failed in this launch


def resumable_sweep(cfg, plan: SweepPlan):
    """The parent run `--resume` continues: the sweep named `name=`, else the newest unfinished sweep of
    this ablation, else its newest finished one (nothing to run: its table again), so that a job script
    may always pass --resume."""
    client, exp = mlflow_runs.client(cfg), mlflow_runs.experiment_id(cfg)
    query = f"tags.`tubelab.kind` = 'sweep' and tags.`tubelab.ablation` = '{plan.ablation}'"
    if cfg.name:
        query += f" and tags.`tubelab.sweep` = '{cfg.name}'"
    runs = client.search_runs([exp], query, order_by=["attributes.start_time DESC"], max_results=20)
    if not runs:
        what = f"named {cfg.name!r}" if cfg.name else "earlier"
        raise ConfigError(f"--resume: no {what} sweep of ablation {plan.ablation!r} in {mlflow_runs.tracking_uri(cfg)}; "
                          f"run without --resume to start one (or pass name=SWEEP_NAME as printed by `tubelab sweep`)")
    unfinished = [r for r in runs if r.info.status != "FINISHED"]
    if not cfg.name and not unfinished:
        print(f"--resume: every sweep of ablation {plan.ablation!r} finished; the newest is "
              f"{runs[0].data.tags['tubelab.sweep']!r}")
    return runs[0] if cfg.name else (unfinished or runs)[0]


def finished_trial(cfg, fingerprint: str, parent_id: str | None = None):
    """The newest finished trial run with this fingerprint (within one sweep if `parent_id`), or None."""
    query = f"tags.`tubelab.kind` = 'trial' and tags.`tubelab.fingerprint` = '{fingerprint}' and attributes.status = 'FINISHED'"
    if parent_id:
        query += f" and tags.`{mlflow_runs.PARENT_TAG}` = '{parent_id}'"
    runs = mlflow_runs.client(cfg).search_runs([mlflow_runs.experiment_id(cfg)], query,
                                               order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def link_reused(cfg, trial: dict, source) -> None:
    """A child run of this sweep standing for a finished run of another sweep: its config and scores,
    and a link (`tubelab.reused_from`) to where they were measured."""
    run_id = start_trial_run(cfg, trial, extra_tags={"tubelab.reused_from": source.info.run_id,
                                                     "tubelab.reused_from_sweep": source.data.tags.get("tubelab.sweep", "")})
    mlflow_runs.log_params(cfg, run_id, {**run_params(trial["cfg"]), "grid": trial["point"]})
    scores = {k: v for k, v in source.data.metrics.items() if k.startswith(schema.SCORE_PREFIX)}
    mlflow_runs.log_metrics(cfg, run_id, scores, step=0)
    mlflow_runs.end_run(cfg, run_id)


def cluster_shape() -> str:
    total = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return f"{nodes} node(s), {total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs"


def check_sweep(plan: SweepPlan, cards: dict[str, list[str]], resume: bool) -> SweepPlan:
    """Check everything the plan (experiments.plan.plan_sweep) could not before Ray starts: the stores, the
    checkpoints, the shards (`cards`: each dataset card's overrides); adds each trial's identity."""
    base = plan.base
    storage.check_local_store(base)
    mlflow_runs.check_reachable(base)
    check_checkpoints(plan)
    if not resume and base.name and mlflow_runs.find_run(base, base.name, "sweep") is not None:
        raise ConfigError(f"a sweep named {base.name!r} already exists in {mlflow_runs.tracking_uri(base)}; pass "
                          f"--resume to continue it (only unfinished trials run), or choose another name=")
    names = sorted({n for t in plan.trials for n in trial_datasets(t)})
    for name in names:
        ensure_shards(base, name, cards.get(name, []))
    check_clips(plan)
    hashes = content_hashes(base, names)
    code = code_version()
    for t in plan.trials:
        t["fingerprint"] = trial_fingerprint(t["cfg"], t["settings"], {n: hashes[n] for n in trial_datasets(t)}, code)
        t["tags"] = {"tubelab.fingerprint": t["fingerprint"], "tubelab.code_version": code,
                     **{f"tubelab.data.{n}": hashes[n] for n in trial_datasets(t)}}
    plan.tags = {"tubelab.code_version": code, **{f"tubelab.data.{n}": h for n, h in hashes.items()}}
    return plan


def start_parent(plan: SweepPlan) -> str:
    base = plan.base
    ablation = to_container(base.ablation)
    parent = mlflow_runs.start_run(base, plan.name, kind="sweep", tags={
        "tubelab.sweep": plan.name, "tubelab.ablation": plan.ablation, "tubelab.reproduces": str(ablation.get("reproduces")),
        "tubelab.trials": str(len(plan.trials)), **plan.tags})
    mlflow_runs.log_params(base, parent, {"ablation": {k: v for k, v in ablation.items() if k != "paper"},
                                          "overrides": " ".join(plan.overrides)})
    mlflow_runs.log_text(base, parent, yaml.safe_dump(to_container(base), sort_keys=False), "config.yaml")
    mlflow_runs.log_text(base, parent, yaml.safe_dump(ablation, sort_keys=False), "ablation.yaml")
    return parent


def record_timeline(cfg, parent: str, address: str) -> None:
    """The nodes the autoscaler launched for the sweep, on its parent run (reporting.cluster_timeline); a
    finished sweep does not fail over it."""
    try:
        print(cluster_timeline.log_timeline(cfg, parent, address))
    except Exception as e:  # the State API needs the dashboard (ray[default]); a sweep's results do not
        print(f"timeline: not recorded ({type(e).__name__}: {str(e)[:300]}); `tubelab report sweep=NAME "
              f"resources.address=DASHBOARD_URL` records it later")


def run_sweep(plan: SweepPlan, cards: dict[str, list[str]], resume: bool = False) -> SweepOutcome:
    launched = time.time()  # data preparation may already ask the cluster for nodes
    plan = check_sweep(plan, cards, resume)
    base = plan.base
    if resume:
        parent_run = resumable_sweep(base, plan)
        plan.name, parent = parent_run.data.tags["tubelab.sweep"], parent_run.info.run_id
    todo, done, sources = [], 0, {}
    for i, t in enumerate(plan.trials):
        if resume and finished_trial(base, t["fingerprint"], parent) is not None:
            done += 1
        elif base.reuse and (source := finished_trial(base, t["fingerprint"])) is not None:
            sources[i] = source
        else:
            todo.append(i)
    # Ray only when something trains (its checks still come before any run is made); a sweep whose trials are
    # all finished or reused reads MLflow and prints its table
    res_plan = resources.init_ray(base.resources) if todo else None
    if not resume:
        parent = start_parent(plan)
    for i, t in enumerate(plan.trials):
        t["sweep"], t["parent_run_id"] = plan.name, parent
        if i in sources:
            link_reused(base, t, sources[i])
    counts = (f"sweep {plan.name}: {len(plan.trials)} trials ({plan.ablation}): {len(todo)} to run, "
              f"{len(sources)} reused from earlier sweeps, {done} already finished")
    print(f"{counts}; {res_plan.describe()}" if todo else counts)
    untouched = resume and not todo and parent_run.info.status == "FINISHED"  # keeps its end time
    if resume and not untouched:
        mlflow_runs.client(base).update_run(parent, status="RUNNING")
    errors = []
    try:
        if todo:
            cluster = resources.cluster_address(base.resources)
            mlflow_runs.set_tags(base, parent, {"tubelab.cluster": cluster_shape(),
                                                cluster_timeline.LAUNCHED_TAG: f"{launched:.3f}"})
            # A resumed sweep is a new Tune experiment over the unfinished trials only; Ray Train resumes each
            # trial's pretraining from its checkpoints by run name.
            tune_name = f"{plan.name}-resume-{time.strftime('%Y%m%d-%H%M%S')}" if resume else plan.name
            results = run_trials(base, run_trial, plan.trials, todo, name=tune_name, what="sweep", plan=res_plan,
                                 dirname=lambda i: f"trial-{i:03d}")
            errors = [f"{plan.trials[r.config['index']]['label']}: {type(r.error).__name__}: {str(r.error)[-500:]}"
                      for r in results if r.error is not None]
            if cluster:
                record_timeline(base, parent, cluster)
    except BaseException:
        mlflow_runs.end_run(base, parent, "FAILED")
        raise
    finally:
        ray.shutdown()  # the workers' last log lines arrive now, not after the table
    if not untouched:
        mlflow_runs.end_run(base, parent, "FAILED" if errors else "FINISHED")
    return SweepOutcome(plan, parent, errors)
