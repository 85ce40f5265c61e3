"""jobs/finetune_probe.py, the recipe-search tool behind docs/results.md: its batch orders cover each
clip once per epoch, and a run on real shards prints the same learning curve twice (its figures are
quoted as reproducible)."""

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from documented import shown_commands
from tiny import make_kit

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


def test_same_curve_twice_on_real_shards(tmp_path, monkeypatch):
    shards = make_kit(tmp_path, monkeypatch) / "shards"
    command = [sys.executable, str(ROOT / "jobs" / "finetune_probe.py"), "--shards", str(shards), "--epochs", "2",
               "--frames", "4", "--stride", "2", "--crop", "32", "--clips-per-video", "2", "--batch", "4"]
    runs = []
    for _ in range(2):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(re.sub(r"\(\d+ s\)", "", proc.stdout))
    assert runs[0].startswith("10 train and 10 test videos, 10 classes")
    curve = re.findall(r"epoch (\d): train loss ([\d.]+), test top-1 ([\d.]+)", runs[0])
    assert [e for e, _, _ in curve] == ["1", "2"]
    assert all(0 <= float(top1) <= 100 and float(loss) > 0 for _, loss, top1 in curve)
    assert runs[0] == runs[1]


def test_a_folder_without_shards_is_named(tmp_path):
    with pytest.raises(SystemExit, match=re.escape(f"no manifest.json at {tmp_path}")):
        probe.read_split(str(tmp_path), "train")


def test_the_probe_commands_docs_results_shows_parse():
    """docs/results.md quotes its figures with these lines (they need that search's shards to run)."""
    shown = [c for c in shown_commands("docs/results.md") if c.startswith("python jobs/finetune_probe.py ")]
    assert len(shown) >= 2
    for command in shown:
        args = probe.parser().parse_args(shlex.split(command)[2:])
        assert args.shards.endswith("/shards/synthetic") and args.order == "blocks"
