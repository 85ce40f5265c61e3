"""Sweep planning: an ablation's grid expanded into fully resolved trial configs, before anything runs.

Every trial config is composed and validated here, so a typo costs seconds, not a cluster allocation.
"""

from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

from tubelab import config, resources
from tubelab.config import ConfigError, to_container
from tubelab.experiments.grid import GridPoint, expand
from tubelab.models import MODELS
from tubelab.models.r2plus1d import INPUTS
from tubelab.objectives.moco import BATCHNORMS
from tubelab.training.augment import CONTRAST_MODES
from tubelab.training.tasks import AGGREGATES, METRICS
from tubelab.tracking.schema import parse_label
from tubelab.tubelets import validate_tubelet_config

ABLATION_KEYS = {"description", "reproduces", "baselines", "grid", "overrides", "downstream", "repeats", "paper"}


@dataclass
class SweepPlan:
    name: str
    ablation: str
    base: DictConfig
    points: list[GridPoint]
    trials: list[dict]         # per trial: resolved configs and identifiers, plain data
    scores: list[str]          # table columns, "<setting>/<metric>"
    tags: dict = field(default_factory=dict)       # set by checks: code version, dataset content hashes
    overrides: list[str] = field(default_factory=list)  # the command line, without card overrides


def split_overrides(overrides) -> tuple[list[str], list[str]]:
    """`setting.KEY=V` overrides go to every downstream setting; the rest to the sweep config."""
    setting = [o for o in overrides if o.startswith("setting.")]
    return [o for o in overrides if not o.startswith("setting.")], setting


def finetune_config(trial_cfg: DictConfig, setting_id: str, setting_overrides: list[str] = ()) -> dict:
    """A downstream setting's run config: the setting, with the trial's model, storage, tracking, resources."""
    setting = copy.deepcopy(_setting(setting_id, tuple(setting_overrides)))
    trial = to_container(trial_cfg)
    shared = {k: trial[k] for k in ("model", "storage", "tracking", "resources", "seed", "deterministic", "home")}
    ft = {"setting": setting, **shared, "name": None}
    validate_setting(OmegaConf.create(ft))
    return ft


def validate_setting(ft) -> None:
    """A fine-tune's value checks before Ray starts: the switches' values, and a total batch that splits
    evenly over the train workers."""
    s = ft.setting
    try:
        _choice("setting.batchnorm", s.batchnorm, ("global", "local"))
        _choice("setting.clip.aggregate", s.clip.aggregate, AGGREGATES)
        _choice("setting.clip.eval_crops", s.clip.eval_crops, (1, 3))
        _choice("setting.clip.labels", s.clip.labels, ("frames", "video"))
        _choice("setting.counting.method", s.counting.method, ("context", "clip"))
        _choice("setting.clip.channels", s.clip.channels, ("rgb", "bgr"))
        for key in ("mean", "std"):
            values = list(s.clip[key])
            if len(values) != 3 or (key == "std" and min(values) <= 0):
                raise ValueError(f"setting.clip.{key}={values} must be 3 numbers, one per RGB channel"
                                 + (", each above 0" if key == "std" else ""))
        if s.optimizer.nesterov and (s.optimizer.name != "sgd" or not s.optimizer.momentum):
            raise ValueError("setting.optimizer.nesterov=true needs setting.optimizer.name=sgd with a momentum above 0; "
                             "set setting.optimizer.nesterov=false")
        if s.precise_bn_batches and s.metric in METRICS["count"] and s.counting.method == "context":
            raise ValueError("setting.precise_bn_batches works on clips and the counting model "
                             "(setting.counting.method=context) has none; set setting.precise_bn_batches=0")
        resources.per_worker_batch(s.batch_size, ft.resources.train_workers, "setting.batch_size")
    except ValueError as e:
        raise ConfigError(f"setting {s.id}: {e}") from None


def _choice(key: str, value, choices) -> None:
    """An enum switch with a value its code does not know would otherwise fail inside a Ray worker."""
    if value not in choices:
        raise ValueError(f"{key}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


@functools.lru_cache(maxsize=256)
def _setting(setting_id: str, setting_overrides: tuple[str, ...]) -> dict:
    """Composing a config takes Hydra a good fraction of a second; a grid reuses the same settings."""
    return to_container(config.load("finetune", [f"setting={setting_id}", *setting_overrides]))["setting"]


def validate_run(cfg: DictConfig) -> None:
    """Value checks that Hydra's key checks cannot do; each error names the key and the fix."""
    if cfg.model.name not in MODELS:
        raise ConfigError(f"model.name={cfg.model.name!r} is not valid; choose one of: {', '.join(sorted(MODELS))}")
    if cfg.model.get("input", "rgb") not in INPUTS:
        raise ConfigError(f"model.input={cfg.model.input!r} is not valid; choose one of: {', '.join(INPUTS)}")
    clip = cfg.pretrain.clip
    try:
        validate_tubelet_config(cfg.tubelet, clip_shape=(3, clip.frames, clip.crop, clip.crop))
        _choice("pretrain.batchnorm", cfg.pretrain.batchnorm, BATCHNORMS)
        _choice("pretrain.colour_jitter.contrast_mode", cfg.pretrain.colour_jitter.contrast_mode, CONTRAST_MODES)
        resources.check_node_types(cfg.resources)
        if resources.per_worker_batch(cfg.pretrain.batch_size, cfg.resources.train_workers, "pretrain.batch_size") < 2:
            raise ValueError(f"pretrain.batch_size={cfg.pretrain.batch_size} over {cfg.resources.train_workers} "
                             f"train workers leaves under 2 clips per worker: tubelet pairs take their key clip "
                             f"from another row of the worker's batch; raise pretrain.batch_size")
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
    try:
        points = expand(OmegaConf.to_container(ab.grid), ab.repeats, base.seed,
                        OmegaConf.to_container(ab.get("baselines") or OmegaConf.create([])))
    except ValueError as e:
        raise ConfigError(f"ablations/{ablation_name}.yaml: {e}") from None
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
    # Paper rows must name grid points of the file (a typo would silently lose a row); a grid narrowed on the
    # command line (`ablation.grid.tubelet=[nonlinear]`) shows the paper rows of the points it runs.
    declared = expand(OmegaConf.to_container(OmegaConf.load(config.project_root() / "ablations" /
                                                            f"{ablation_name}.yaml").grid), 1, base.seed)
    for label in (ab.get("paper") or {}).get("rows") or {}:
        if not any(p.point == parse_label(str(label)) for p in [*declared, *points]):
            raise ConfigError(f"ablations/{ablation_name}.yaml: paper row {label!r} matches no grid point; "
                              f"grid points: {', '.join(sorted({p.label for p in [*declared, *points]}))}")
    scores = [f"{s['setting']['id']}/{s['setting']['metric']}" for s in trials[0]["settings"]]
    return SweepPlan(name, ablation_name, base, points, trials, scores, overrides=list(overrides))
