"""jobs/finetune_probe.py, the recipe-search tool behind docs/results.md: its batch orders cover each
clip once per epoch, a run on real shards prints the same learning curve twice (its figures are
quoted as reproducible), class subsets and counting data train."""

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from documented import shown_commands
from tiny import KIT_COUNTS, make_kit

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("finetune_probe", ROOT / "jobs" / "finetune_probe.py")
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


@pytest.mark.parametrize("order", ["random", "blocks"])
def test_each_clip_once_per_epoch_in_a_new_order(order):
    clips = {"clip": np.arange(48).reshape(48, 1), "label": np.arange(48) % 10}

    def epoch(e):
        return np.concatenate([b["clip"][:, 0].numpy() for b in probe.epoch_batches(clips, 8, order, seed=0, epoch=e,
                                                                                      rows_per_block=16)])

    first, second = epoch(0), epoch(1)
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(48))
    assert first.tolist() != second.tolist()
    assert first.tolist() == epoch(0).tolist()


def probe_run(shards: Path, *args: str, cwd: Path) -> str:
    command = [sys.executable, str(ROOT / "jobs" / "finetune_probe.py"), "--shards", str(shards), "--frames", "4",
               "--stride", "2", "--crop", "32", "--batch", "4", *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return re.sub(r"\(\d+ s\)", "", proc.stdout)


def test_same_curve_twice_on_real_shards(tmp_path, monkeypatch):
    shards = make_kit(tmp_path, monkeypatch) / "shards"
    runs = [probe_run(shards, "--epochs", "2", "--clips-per-video", "2", cwd=tmp_path) for _ in range(2)]
    assert runs[0].startswith("10 train and 10 test videos, 10 classes")
    curve = re.findall(r"epoch (\d): train loss ([\d.]+), test top-1 ([\d.]+)", runs[0])
    assert [e for e, _, _ in curve] == ["1", "2"]
    assert all(0 <= float(top1) <= 100 and float(loss) > 0 for _, loss, top1 in curve)
    assert runs[0] == runs[1]


def test_a_class_subset_is_remapped_and_flipped_clips_train(tmp_path, monkeypatch):
    """--classes 6,7,8,9 (UB-S1-like) keeps those classes' videos only, as labels 0..3."""
    shards = make_kit(tmp_path, monkeypatch) / "shards"
    out = probe_run(shards, "--epochs", "1", "--classes", "6,7,8,9", "--flip", cwd=tmp_path)
    assert out.startswith("4 train and 4 test videos, 4 classes")
    (top1,) = re.findall(r"epoch 1: train loss [\d.]+, test top-1 ([\d.]+)", out)
    assert float(top1) in (0.0, 25.0, 50.0, 75.0, 100.0)  # of 4 test videos


def test_counting_data_trains_a_count_head(tmp_path, monkeypatch):
    shards = make_kit(tmp_path, monkeypatch, KIT_COUNTS) / "shards"
    out = probe_run(shards, "--epochs", "2", cwd=tmp_path)
    assert out.startswith("6 train and 2 test videos, counts")
    errors = re.findall(r"epoch \d: train loss ([\d.]+), test repetition error ([\d.]+)", out)
    assert len(errors) == 2 and all(float(loss) > 0 and float(error) >= 0 for loss, error in errors)


def test_a_folder_without_shards_is_named(tmp_path):
    with pytest.raises(SystemExit, match=re.escape(f"no manifest.json at {tmp_path}")):
        probe.read_split(str(tmp_path), "train")


def test_the_probe_commands_docs_results_shows_parse():
    """docs/results.md quotes its figures with these lines (they need that search's shards to run)."""
    shown = [c for c in shown_commands("docs/results.md") if c.startswith("python jobs/finetune_probe.py ")]
    assert len(shown) >= 2
    for command in shown:
        args = probe.parser().parse_args(shlex.split(command)[2:])
        assert "/shards/synthetic" in args.shards and args.order == "blocks"
