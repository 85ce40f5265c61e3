"""Overrides that make commands small enough for the test suite: tiny synthetic videos, tiny clips, few
epochs. Shared by the tests that run whole commands."""

from pathlib import Path

from omegaconf import OmegaConf

from tubelab import config
from tubelab.data.indexers import INDEXERS
from tubelab.data.prepare import encode_sequential, shard_index, source_dir

TINY_VIDEOS = ["dataset.generator.num_frames=32", "dataset.generator.width=64", "dataset.generator.height=48",
               "dataset.encode.short_side=48"]
# The pretraining of tests/conftest.py's `my_run` (40 videos, 2 clips each: 10 steps of 8 clips, 4 per worker on 2).
TINY_PRETRAIN = ["dataset.generator.train_per_class=4", "dataset.generator.test_per_class=1", *TINY_VIDEOS,
                 "pretrain.batch_size=8", "pretrain.clip.crop=40", "pretrain.clip.clips_per_video=2",
                 "pretrain.moco.queue=32"]
# A fine-tune of the synthetic setting on my_run's dataset (the same card, so its shards are reused).
TINY_FINETUNE = [f"card.synthetic.{o.removeprefix('dataset.')}" for o in TINY_PRETRAIN if o.startswith("dataset.")] + [
    "setting.epochs=1", "setting.batch_size=8", "setting.clip.crop=40", "setting.clip.clips_per_video=1"]


def tiny_sweep(pretrain_epochs: int) -> list[str]:
    return [
        "dataset.generator.train_per_class=2",
        "dataset.generator.test_per_class=1",
        *TINY_VIDEOS,
        f"pretrain.epochs={pretrain_epochs}",
        "pretrain.batch_size=8",  # totals: 4 per worker on the embedded default's 2
        "pretrain.clip.crop=40",
        "pretrain.clip.clips_per_video=1",
        "pretrain.moco.queue=16",
        "setting.epochs=1",
        "setting.batch_size=8",
        "setting.clip.crop=40",
        "setting.clip.clips_per_video=1",
    ]


# A shard folder made without Ray (jobs/gpu_check.py's kit, jobs/finetune_probe.py's input): 1 + 1 videos per class.
KIT_VIDEOS = ["dataset=synthetic", "dataset.generator.train_per_class=1", "dataset.generator.test_per_class=1",
              "dataset.generator.num_frames=40", "dataset.generator.width=64", "dataset.generator.height=48",
              "dataset.encode.short_side=48"]


# The same for the counting proxy (synthetic_count): 6 + 2 clips of 2..4 repetitions.
KIT_COUNTS = ["dataset=synthetic_count", "dataset.generator.train=6", "dataset.generator.test=2",
              "dataset.generator.max_count=4", "dataset.generator.num_frames=40", "dataset.generator.width=64",
              "dataset.generator.height=48", "dataset.encode.short_side=48"]


def make_kit(tmp_path, monkeypatch, videos: list[str] = KIT_VIDEOS) -> Path:
    """A kit like `make gpu-kit` makes (shards/ with manifest.json), small, and without Ray."""
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path / "home"))
    cfg = config.load("prepare", videos)
    index = INDEXERS[cfg.dataset.format](source_dir(cfg), **cfg.dataset.index)
    shard_index(index, str(tmp_path / "kit" / "shards"), card=OmegaConf.to_container(cfg.dataset, resolve=True),
                shard_max_mb=cfg.shard_max_mb, max_bad_fraction=0.0, encoder=encode_sequential)
    return tmp_path / "kit"
