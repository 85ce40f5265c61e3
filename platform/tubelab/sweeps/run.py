"""`tubelab sweep ablation=NAME`: expand the grid, validate every trial, run them with Ray Tune, tabulate.

Order matters: every trial config is composed and validated, and every dataset's shards checked,
before Ray starts or an MLflow run is created, so a typo costs seconds, not a cluster allocation.
"""

from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass

import ray
import ray.tune
import yaml
from omegaconf import DictConfig, OmegaConf

from tubelab import config, resources
from tubelab.config import ConfigError, to_container
from tubelab.data import shards, storage
from tubelab.data.storage import check_checkpoint
from tubelab.data.pipeline import check_splits, shard_url
from tubelab.data.prepare import ensure_shards
from tubelab.models import MODELS
from tubelab.reporting import sweep_report
from tubelab.sweeps.grid import GridPoint, expand, parse_label
from tubelab.sweeps.fingerprint import code_version, trial_fingerprint
from tubelab.sweeps.trial import SCORE_PREFIX, run_params, run_trial, start_trial_run
from tubelab.tracking import mlflow_runs
from tubelab.training.common import storage_target
from tubelab.tubelets import validate_tubelet_config

ABLATION_KEYS = {"description", "reproduces", "grid", "overrides", "downstream", "repeats", "paper"}


@dataclass
class SweepPlan:
    name: str
    ablation: str
    base: DictConfig
    points: list[GridPoint]
    trials: list[dict]         # per trial: resolved configs and identifiers, plain data
    scores: list[str]          # table columns, "<setting>/<metric>"


def split_overrides(overrides) -> tuple[list[str], list[str]]:
    """`setting.KEY=V` overrides go to every downstream setting; the rest to the sweep config."""
    setting = [o for o in overrides if o.startswith("setting.")]
    return [o for o in overrides if not o.startswith("setting.")], setting


def finetune_config(trial_cfg: DictConfig, setting_id: str, setting_overrides: list[str] = ()) -> dict:
    """A downstream setting's run config: the setting, with the trial's model, storage, tracking, resources."""
    setting = copy.deepcopy(_setting(setting_id, tuple(setting_overrides)))
    trial = to_container(trial_cfg)
    shared = {k: trial[k] for k in ("model", "storage", "tracking", "resources", "seed", "home")}
    return {"setting": setting, **shared, "name": None}


@functools.lru_cache(maxsize=256)
def _setting(setting_id: str, setting_overrides: tuple[str, ...]) -> dict:
    """Composing a config takes Hydra a good fraction of a second; a grid reuses the same settings."""
    return to_container(config.load("finetune", [f"setting={setting_id}", *setting_overrides]))["setting"]


def validate_run(cfg: DictConfig) -> None:
    """Value checks that Hydra's key checks cannot do; each error names the key and the fix."""
    if cfg.model.name not in MODELS:
        raise ConfigError(f"model.name={cfg.model.name!r} is not valid; choose one of: {', '.join(sorted(MODELS))}")
    clip = cfg.pretrain.clip
    try:
        validate_tubelet_config(cfg.tubelet, clip_shape=(3, clip.frames, clip.crop, clip.crop))
        if cfg.resources.address:
            resources.check(cfg.resources)  # the fit is checked once connected (init_ray)
        else:
            resources.plan(cfg.resources)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def plan_sweep(overrides: list[str]) -> SweepPlan:
    command_line, command_settings = split_overrides(overrides)
    base = config.load("sweep", command_line)
    ablation_name = base.choices.ablation
    ab = base.ablation
    unknown = set(ab.keys()) - ABLATION_KEYS
    if unknown:
        raise ConfigError(f"ablations/{ablation_name}.yaml has unknown keys {sorted(unknown)}; "
                          f"valid keys: {', '.join(sorted(ABLATION_KEYS))}")
    valid_settings = config.choices("setting")
    for sid in ab.downstream:
        if sid not in valid_settings:
            raise ConfigError(f"ablations/{ablation_name}.yaml: downstream setting {sid!r} does not exist; "
                              f"choose from: {', '.join(valid_settings)}")
        try:  # the command line's own setting.KEY=V, before the ablation's overrides are added
            finetune_config(base, sid, command_settings)
        except ConfigError as e:
            raise ConfigError(f"on the command line: {e}") from None
    points = expand(OmegaConf.to_container(ab.grid), ab.repeats, base.seed)
    name = base.name or f"{ablation_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    trials = []
    for p in points:
        sweep_overrides, setting_overrides = split_overrides([*overrides, *ab.overrides, *p.overrides])
        try:
            cfg = config.load("sweep", sweep_overrides)
            settings = [finetune_config(cfg, sid, setting_overrides) for sid in ab.downstream]
        except ConfigError as e:
            raise ConfigError(f"ablations/{ablation_name}.yaml, grid point {p.label}: {e}") from None
        validate_run(cfg)
        trials.append({"cfg": to_container(cfg), "label": p.label, "slug": p.slug, "point": p.point,
                       "sweep": name, "ablation": ablation_name, "settings": settings})
    for label in (ab.get("paper") or {}).get("rows") or {}:
        if not any(p.point == parse_label(str(label)) for p in points):
            raise ConfigError(f"ablations/{ablation_name}.yaml: paper row {label!r} matches no grid point; "
                              f"grid points: {', '.join(sorted({p.label for p in points}))}")
    scores = [f"{s['setting']['id']}/{s['setting']['metric']}" for s in trials[0]["settings"]]
    return SweepPlan(name, ablation_name, base, points, trials, scores)


def check_clips(plan: SweepPlan) -> None:
    """Every trial's clips must fit the shards it reads (frames, crop), checked before Ray starts."""
    for t in plan.trials:
        cfg = OmegaConf.create(t["cfg"])
        try:
            check_splits(cfg, cfg.dataset.name, [cfg.pretrain.split], cfg.pretrain.clip)
            for s in t["settings"]:
                check_setting(OmegaConf.create(s))
        except ValueError as e:
            raise ConfigError(f"grid point {t['label']}: {e}") from None


def check_setting(ft) -> None:
    """A downstream setting's splits and clips against its shards."""
    s = ft.setting
    check_splits(ft, s.dataset, [s.train_split, s.eval_split], s.clip)


def content_hashes(cfg, names) -> dict[str, str]:
    """Each dataset's manifest content hash: part of a trial's identity (new data = new result)."""
    return {n: shards.read_manifest(shard_url(cfg, n), cfg.storage.get("endpoint_url"))["content_hash"]
            for n in sorted(set(names))}


def trial_datasets(trial: dict) -> list[str]:
    return [trial["cfg"]["dataset"]["name"], *(s["setting"]["dataset"] for s in trial["settings"])]


def resumable_sweep(cfg, plan: SweepPlan):
    """The parent run `--resume` continues: the sweep named `name=`, else the newest unfinished sweep of
    this ablation."""
    client, exp = mlflow_runs.client(cfg), mlflow_runs.experiment_id(cfg)
    query = f"tags.`tubelab.kind` = 'sweep' and tags.`tubelab.ablation` = '{plan.ablation}'"
    if cfg.name:
        query += f" and tags.`tubelab.sweep` = '{cfg.name}'"
    runs = client.search_runs([exp], query, order_by=["attributes.start_time DESC"], max_results=20)
    if not cfg.name:
        runs = [r for r in runs if r.info.status != "FINISHED"]
    if not runs:
        what = f"named {cfg.name!r}" if cfg.name else "unfinished"
        raise ConfigError(f"--resume: no {what} sweep of ablation {plan.ablation!r} in {mlflow_runs.tracking_uri(cfg)}; "
                          f"run without --resume to start one (or pass name=SWEEP_NAME as printed by `tubelab sweep`)")
    return runs[0]


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
    scores = {k: v for k, v in source.data.metrics.items() if k.startswith(SCORE_PREFIX)}
    mlflow_runs.log_metrics(cfg, run_id, scores, step=0)
    mlflow_runs.end_run(cfg, run_id)


def cluster_shape() -> str:
    total = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return f"{nodes} node(s), {total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs"


def run_sweep(overrides: list[str], resume: bool = False) -> list[dict]:
    overrides, cards = config.split_card_overrides(overrides)
    plan = plan_sweep(overrides)
    base = plan.base
    storage.check_local_store(base)
    mlflow_runs.check_reachable(base)
    for t in plan.trials:
        try:
            check_checkpoint(OmegaConf.create(t["cfg"]))
        except ConfigError as e:
            raise ConfigError(f"grid point {t['label']}: {e}") from None
    if not resume and base.name and mlflow_runs.find_run(base, base.name, "sweep") is not None:
        raise ConfigError(f"a sweep named {base.name!r} already exists in {mlflow_runs.tracking_uri(base)}; pass "
                          f"--resume to continue it (only unfinished trials run), or choose another name=")
    names = sorted({n for t in plan.trials for n in trial_datasets(t)})
    for name in names:
        ensure_shards(base, name, cards.get(name, []))
    check_clips(plan)
    hashes = content_hashes(base, names)
    code = code_version()

    if resume:
        parent_run = resumable_sweep(base, plan)
        plan.name, parent = parent_run.data.tags["tubelab.sweep"], parent_run.info.run_id
        mlflow_runs.client(base).update_run(parent, status="RUNNING")
    for t in plan.trials:
        t["sweep"] = plan.name
        t["fingerprint"] = trial_fingerprint(t["cfg"], t["settings"], {n: hashes[n] for n in trial_datasets(t)}, code)
        t["tags"] = {"tubelab.fingerprint": t["fingerprint"], "tubelab.code_version": code,
                     **{f"tubelab.data.{n}": hashes[n] for n in trial_datasets(t)}}

    res_plan = resources.init_ray(base.resources)
    if not resume:
        ablation = to_container(base.ablation)
        parent = mlflow_runs.start_run(base, plan.name, kind="sweep", tags={
            "tubelab.sweep": plan.name, "tubelab.ablation": plan.ablation, "tubelab.code_version": code,
            "tubelab.reproduces": str(base.ablation.reproduces), "tubelab.trials": str(len(plan.trials)),
            **{f"tubelab.data.{n}": h for n, h in hashes.items()}})
        mlflow_runs.log_params(base, parent, {"ablation": {k: v for k, v in ablation.items() if k != "paper"},
                                              "overrides": " ".join(overrides)})
        mlflow_runs.log_text(base, parent, yaml.safe_dump(to_container(base), sort_keys=False), "config.yaml")
        mlflow_runs.log_text(base, parent, yaml.safe_dump(ablation, sort_keys=False), "ablation.yaml")
    mlflow_runs.set_tags(base, parent, {"tubelab.cluster": cluster_shape()})

    todo, done, reused = [], 0, 0
    for i, t in enumerate(plan.trials):
        t["parent_run_id"] = parent
        if finished_trial(base, t["fingerprint"], parent) is not None:
            done += 1
        elif base.reuse and (source := finished_trial(base, t["fingerprint"])) is not None:
            link_reused(base, t, source)
            reused += 1
        else:
            todo.append(i)
    print(f"sweep {plan.name}: {len(plan.trials)} trials ({plan.ablation}): {len(todo)} to run, "
          f"{reused} reused from earlier sweeps, {done} already finished; {res_plan.describe()}")
    errors = []
    try:
        if todo:
            errors = _tune(plan, res_plan, todo, resume)
    except BaseException:
        mlflow_runs.end_run(base, parent, "FAILED")
        raise
    finally:
        ray.shutdown()  # the workers' last log lines arrive now, not after the table
    result = sweep_report.build(base, parent)
    print(f"\n{plan.name} ({base.ablation.description})\n\n{result.markdown}")
    failed = len(plan.trials) - result.finished
    mlflow_runs.end_run(base, parent, "FAILED" if failed else "FINISHED")
    print(f"MLflow: parent run {parent} in {mlflow_runs.tracking_uri(base)} (`tubelab ui` to browse)")
    if failed:
        raise RuntimeError(f"{failed} of {len(plan.trials)} trials did not finish; rerun with --resume to run only "
                           f"those. " + "; ".join(errors))
    return result.table


class Progress(ray.tune.Callback):
    """One line per trial start/end: done / running / pending and an ETA from the finished trials."""

    def __init__(self, total: int, concurrency: int):
        self.total, self.concurrency = total, concurrency
        self.started: dict[str, float] = {}
        self.durations: list[float] = []

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.monotonic()
        self._print()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial)

    def _finish(self, trial):
        if trial.trial_id in self.started:
            self.durations.append(time.monotonic() - self.started.pop(trial.trial_id))
        self._print()

    def _print(self):
        done, running = len(self.durations), len(self.started)
        pending = self.total - done - running
        eta = "n/a"
        if self.durations:
            mean = sum(self.durations) / len(self.durations)
            eta = f"~{mean * (pending + running) / self.concurrency / 60:.0f} min"
        print(f"sweep progress: {done}/{self.total} done, {running} running, {pending} pending; ETA {eta}", flush=True)


def _tune(plan: SweepPlan, res_plan: resources.Plan, indices: list[int], resume: bool) -> list[str]:
    base = plan.base
    trainable = ray.tune.with_resources(ray.tune.with_parameters(run_trial, trials=plan.trials),
                                        {"cpu": base.resources.trial_driver_cpus})
    tune_path, tune_fs = storage_target(base, "tune")
    # A resumed sweep is a new Tune experiment over the unfinished trials only; Ray Train resumes each
    # trial's pretraining from its checkpoints by run name.
    tune_name = f"{plan.name}-resume-{time.strftime('%Y%m%d-%H%M%S')}" if resume else plan.name
    tuner = ray.tune.Tuner(
        trainable,
        param_space={"index": ray.tune.grid_search(indices)},
        tune_config=ray.tune.TuneConfig(max_concurrent_trials=res_plan.max_concurrent_trials,
                                        trial_dirname_creator=lambda t: f"trial-{t.config['index']:03d}"),
        run_config=ray.tune.RunConfig(name=tune_name, storage_path=tune_path, storage_filesystem=tune_fs,
                                      failure_config=ray.tune.FailureConfig(max_failures=0), verbose=0,
                                      callbacks=[Progress(len(indices), res_plan.max_concurrent_trials)]),
    )
    results = tuner.fit()  # a failed trial does not stop the others; the report counts what finished
    return [f"{plan.trials[r.config['index']]['label']}: {type(r.error).__name__}: {str(r.error)[-500:]}"
            for r in results if r.error is not None]
