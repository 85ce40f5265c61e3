"""`tubelab sweep ablation=NAME`: expand the grid, validate every trial, run them with Ray Tune, tabulate.

Order matters: every trial config is composed and validated, and every dataset's shards checked,
before Ray starts or an MLflow run is created, so a typo costs seconds, not a cluster allocation.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import ray
import ray.tune
import yaml
from omegaconf import DictConfig, OmegaConf

from tubelab import config, resources
from tubelab.config import ConfigError, to_container
from tubelab.data.pipeline import check_splits
from tubelab.data.prepare import ensure_shards
from tubelab.models import MODELS
from tubelab.reporting import plots, tables
from tubelab.sweeps.grid import GridPoint, expand
from tubelab.sweeps.trial import run_trial
from tubelab.tracking import mlflow_runs
from tubelab.training.common import storage_target
from tubelab.tubelets import validate_tubelet_config

ABLATION_KEYS = {"description", "reproduces", "grid", "overrides", "downstream", "repeats"}


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
    setting = to_container(config.load("finetune", [f"setting={setting_id}", *setting_overrides]))["setting"]
    trial = to_container(trial_cfg)
    shared = {k: trial[k] for k in ("model", "storage", "tracking", "resources", "seed", "home")}
    return {"setting": setting, **shared, "name": None}


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
    base = config.load("sweep", split_overrides(overrides)[0])
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


def run_sweep(overrides: list[str]) -> list[dict]:
    overrides, cards = config.split_card_overrides(overrides)
    plan = plan_sweep(overrides)
    base = plan.base
    for name in sorted({base.dataset.name, *(s["setting"]["dataset"] for s in plan.trials[0]["settings"])}):
        ensure_shards(base, name, cards.get(name, []))
    check_clips(plan)
    res_plan = resources.init_ray(base.resources)
    print(f"sweep {plan.name}: {len(plan.trials)} trials ({plan.ablation}); {res_plan.describe()}")
    parent = mlflow_runs.start_run(base, plan.name, kind="sweep", tags={
        "tubelab.sweep": plan.name, "tubelab.ablation": plan.ablation,
        "tubelab.reproduces": str(base.ablation.reproduces), "tubelab.trials": str(len(plan.trials))})
    mlflow_runs.log_params(base, parent, {"ablation": to_container(base.ablation), "overrides": " ".join(overrides)})
    mlflow_runs.log_text(base, parent, yaml.safe_dump(to_container(base), sort_keys=False), "config.yaml")
    for t in plan.trials:
        t["parent_run_id"] = parent
    try:
        rows = _tune(plan, res_plan)
    except BaseException:
        mlflow_runs.end_run(base, parent, "FAILED")
        raise
    finally:
        ray.shutdown()  # the workers' last log lines arrive now, not after the table
    axes = list(plan.points[0].point) if plan.points else []
    table = tables.aggregate(rows, axes, plan.scores)
    markdown = tables.to_markdown(table, axes, plan.scores)
    print(f"\n{plan.name} ({base.ablation.description})\n\n{markdown}")
    mlflow_runs.log_text(base, parent, markdown, "results.md")
    mlflow_runs.log_text(base, parent, tables.to_csv(table, axes, plan.scores), "results.csv")
    with tempfile.TemporaryDirectory() as d:
        png = plots.bar_chart(table, axes, plan.scores, Path(d) / "results.png", title=plan.name)
        mlflow_runs.log_artifact(base, parent, png)
    failed = [r for r in rows if r.get("error")]
    mlflow_runs.end_run(base, parent, "FAILED" if failed else "FINISHED")
    print(f"MLflow: parent run {parent} in {mlflow_runs.tracking_uri(base)} (`tubelab ui` to browse)")
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(rows)} trials failed: " + "; ".join(r["error"] for r in failed))
    return table


def _tune(plan: SweepPlan, res_plan: resources.Plan) -> list[dict]:
    base = plan.base
    trainable = ray.tune.with_resources(ray.tune.with_parameters(run_trial, trials=plan.trials),
                                        {"cpu": base.resources.trial_driver_cpus})
    tune_path, tune_fs = storage_target(base, "tune")
    tuner = ray.tune.Tuner(
        trainable,
        param_space={"index": ray.tune.grid_search(list(range(len(plan.trials))))},
        tune_config=ray.tune.TuneConfig(max_concurrent_trials=res_plan.max_concurrent_trials,
                                        trial_dirname_creator=lambda t: f"trial-{t.config['index']:03d}"),
        run_config=ray.tune.RunConfig(name=plan.name, storage_path=tune_path, storage_filesystem=tune_fs,
                                      failure_config=ray.tune.FailureConfig(max_failures=0)),
    )
    results = tuner.fit()
    rows = []
    for result in results:
        trial = plan.trials[result.config["index"]]
        row = dict(trial["point"])
        if result.error is not None:
            row["error"] = f"{trial['label']}: {type(result.error).__name__}: {str(result.error)[-500:]}"
        for s in plan.scores:
            row[s] = result.metrics.get(s, float("nan")) if result.metrics else float("nan")
        rows.append(row)
    return rows
