"""Checks of a planned sweep against the world, before Ray starts: checkpoints, shards, clip geometry,
and the dataset content hashes that go into each trial's identity."""

from __future__ import annotations

from omegaconf import OmegaConf

from tubelab.config import ConfigError
from tubelab.data import shards
from tubelab.data.pipeline import check_splits, shard_url
from tubelab.data.storage import check_checkpoint
from tubelab.experiments.plan import SweepPlan


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


def check_checkpoints(plan: SweepPlan) -> None:
    """A trial's `checkpoint=` (the command line, the ablation or a grid axis) must exist."""
    for t in plan.trials:
        try:
            check_checkpoint(OmegaConf.create(t["cfg"]))
        except ConfigError as e:
            raise ConfigError(f"grid point {t['label']}: {e}") from None
