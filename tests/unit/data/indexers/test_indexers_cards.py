"""Every dataset card composes, names a registered indexer, and its `index:` binds to that indexer."""

import inspect
from pathlib import Path

import pytest

from tubelab import config
from tubelab.data.indexers import INDEXERS

CARDS = {  # card -> (format, index options)
    "ucf101": ("ucf101", {"split": 1}),
    "hmdb51": ("hmdb51", {"split": 1}),
    "kinetics400": ("kinetics", {"split_files": {"train": "annotations/train.csv", "val": "annotations/val.csv"},
                                 "subset": None}),
    "mini_kinetics": ("kinetics", {"split_files": {"train": "annotations/train.csv", "val": "annotations/val.csv"},
                                   "subset": "Mini-Kinetics-200"}),
    "ssv2": ("ssv2", {}),
    "gym99": ("finegym", {"subset": None}),
    "fx_s1": ("finegym", {"subset": "fx_s1"}),
    "ub_s1": ("finegym", {"subset": "ub_s1"}),
    "charades": ("charades", {}),
    "ucfrep": ("ucfrep", {"annotations": "annotations", "videos": "UCF-101", "first_frame": 1}),
}


def test_registry_keys():
    assert set(INDEXERS) == {"ucf101", "hmdb51", "kinetics", "ssv2", "finegym", "charades", "ucfrep"}


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card(name):
    ds = config.load("prepare", [f"dataset={name}"]).dataset
    assert ds.name == name and ds.source is None and "generator" not in ds  # real data: source= is required
    fmt, options = CARDS[name]
    assert ds.format == fmt and config.to_container(ds)["index"] == options
    inspect.signature(INDEXERS[ds.format]).bind("root", **ds.index)
    assert set(ds.encode) == {"short_side", "fps", "gop", "crf"} and ds.encode.short_side == 128
    assert ds.encode.gop == 8 and ds.encode.crf == 23 and ds.shard_max_videos > 0
    text = (config.project_root() / "datasets" / f"{name}.yaml").read_text()
    assert "source=" in text.split("\nname:")[0]  # the top comment says where source= must point


def test_card_options_reach_the_indexer(tmp_path, write_video):
    """The kinetics400 card's `index:` (an OmegaConf node, not a dict) drives the indexer as is."""
    ds = config.load("prepare", ["dataset=kinetics400"]).dataset
    (tmp_path / "annotations").mkdir()
    for split in ("train", "val"):
        (tmp_path / "annotations" / f"{split}.csv").write_text(
            f"label,youtube_id,time_start,time_end,split\nyoga,{split}_id_abc,0,10,{split}\n")
        write_video(tmp_path / split / "yoga" / f"{split}_id_abc_000000_000010.mp4")
    index = INDEXERS[ds.format](Path(tmp_path), **ds.index)
    assert index.problems == [] and index.classes == ["yoga"]
    assert [(r.split, r.label) for r in index.records] == [("train", 0), ("val", 0)]
