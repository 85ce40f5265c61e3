"""What a fine-tune recipe can learn, without the platform around it: one process, no Ray cluster, no MLflow.

    python jobs/finetune_probe.py --shards DIR [--epochs 8] [--seed 1] [--init-seed 1000] [--input rgb]
                                  [--order blocks] [--buffer-batches 16] [--train-per-class 48]
                                  [--classes 6,7,8,9] [--flip] [--frames 8] [--stride 4] [--crop 32]
                                  [--clips-per-video 2] [--batch 16] [--optimizer adam] [--lr 1e-3] [--threads 1]

Reads a prepared single-label or counting dataset (the shard folder `tubelab prepare` wrote, through its
manifest.json), decodes each epoch's training clips with tubelab's ClipDecoder (the same clip draws as a
fine-tune with that seed: data.decode.clip_rng), trains `r2plus1d_tiny` (`--input`: conf/model/tiny.yaml's)
with tubelab's fine-tune step (the platform's normalisation) and prints test top-1 (counting: the repetition
error) of the centred clip after every epoch: a learning curve for recipe searches (docs/results.md "Proxy
recipe search", "Proxy SEVERE recipe search"), without validation carve or model selection.

--order: `random` draws each epoch's batches from a fresh permutation of all clips; `blocks` feeds them
as a deterministic fine-tune does (blocks of 8 videos in one seeded order every epoch, batches drawn
from a buffer of --buffer-batches batches, as training.common.train_batches). --init-seed: the torch
seed of the model's initialisation (a fine-tune's rank 0 uses seed * 1000: training.common.worker_seed).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tubelab.data import shards
from tubelab.data.batches import shuffled_batches
from tubelab.data.decode import ClipDecoder
from tubelab.data.pipeline import VIDEOS_PER_BLOCK
from tubelab.models import build_model
from tubelab.models.r2plus1d import INPUTS
from tubelab.evaluation import metrics
from tubelab.training import steps, tasks
from tubelab.training.common import SHUFFLE_BUFFER_BATCHES

COLUMNS = ("video_id", "video", "num_frames", "label", "count")


def read_split(url: str, split: str) -> tuple[dict[str, np.ndarray], str]:
    """A split of the shards `tubelab prepare` wrote at `url`, the ones its manifest names, as numpy columns,
    and the dataset's task (single_label or count)."""
    try:
        manifest = shards.read_manifest(url)
        table = shards.read_split(manifest, url, split, list(COLUMNS))
    except shards.ManifestError as e:
        raise SystemExit(str(e)) from None
    if manifest["task"] not in ("single_label", "count"):
        raise SystemExit(f"{url}: a {manifest['task']} dataset; the probe trains single_label and count tasks")
    rows = {k: np.array(table.column(k).to_pylist(), dtype=object) for k in COLUMNS}
    label = np.array([-1 if v is None else v for v in rows["label"]], dtype=np.int64)  # -1: the task has none
    return {**rows, "num_frames": rows["num_frames"].astype(np.int64), "label": label}, manifest["task"]


def decode(decoder: ClipDecoder, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = [decoder({k: v[i:i + 16] for k, v in rows.items()}) for i in range(0, len(rows["label"]), 16)]
    return {k: np.concatenate([o[k] for o in out]) for k in ("clip", "label", "count")}


def epoch_batches(clips: dict[str, np.ndarray], batch: int, order: str, seed: int, epoch: int, rows_per_block: int,
                  buffer_batches: int = SHUFFLE_BUFFER_BATCHES):
    if order == "blocks":  # as a deterministic fine-tune: one block order for every epoch
        blocks = [{k: v[b:b + rows_per_block] for k, v in clips.items()}
                  for b in range(0, len(clips["label"]), rows_per_block)]
        blocks = [blocks[i] for i in np.random.default_rng(seed).permutation(len(blocks))]
        yield from shuffled_batches(blocks, batch, buffer_batches * batch, np.random.default_rng([seed, 0, epoch]))
        return
    perm = np.random.default_rng([seed, epoch]).permutation(len(clips["label"]))
    for i in range(0, len(perm) - batch + 1, batch):
        yield {k: torch.from_numpy(v[perm[i:i + batch]]) for k, v in clips.items()}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", required=True)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--train-per-class", type=int, default=None, help="the first N training videos of each class")
    p.add_argument("--classes", type=lambda v: [int(c) for c in v.split(",")], default=None,
                   help="a class subset, e.g. 6,7,8,9 (as setting.classes: remapped to 0..k-1)")
    p.add_argument("--flip", action="store_true", help="random left-right flip of training clips (setting.clip.flip)")
    p.add_argument("--seed", type=int, default=0, help="clip draws and batch order")
    p.add_argument("--init-seed", type=int, default=None, help="model initialisation (default: --seed)")
    p.add_argument("--order", choices=["random", "blocks"], default="random")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--stride", type=int, default=4)
    p.add_argument("--crop", type=int, default=32)
    p.add_argument("--clips-per-video", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--input", choices=sorted(INPUTS), default="rgb_diff", help="the model's input (conf/model/tiny.yaml)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam", help="sgd: momentum 0.9")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; with more than one the curve's last digits vary with the process's memory "
                        "layout (docs/recipes.md 'Seeds and determinism'), as a train worker's with cpus_per_train_worker > 1")
    p.add_argument("--buffer-batches", type=int, default=SHUFFLE_BUFFER_BATCHES,
                   help="--order blocks: the shuffle buffer, in batches (default: the train loops')")
    return p


def main() -> None:
    a = parser().parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(a.threads)
    (train, task), (test, _) = read_split(a.shards, "train"), read_split(a.shards, "test")
    target = "count" if task == "count" else "label"
    if a.classes:
        remap = np.full(max(int(train["label"].max()), int(test["label"].max()), *a.classes) + 1, -1)
        remap[a.classes] = np.arange(len(a.classes))
        train, test = ({k: v[remap[s["label"]] >= 0] for k, v in s.items()} for s in (train, test))
        train["label"], test["label"] = remap[train["label"]], remap[test["label"]]
    if a.train_per_class:
        keep = np.concatenate([np.flatnonzero(train["label"] == c)[:a.train_per_class] for c in np.unique(train["label"])])
        train = {k: v[np.sort(keep)] for k, v in train.items()}
    num_classes = int(max(train["label"].max(), test["label"].max())) + 1
    print(f"{len(train['label'])} train and {len(test['label'])} test videos, "
          + ("counts" if task == "count" else f"{num_classes} classes"))
    geometry = dict(frames=a.frames, strides=[a.stride], crop=a.crop)
    test_clips = decode(ClipDecoder(**geometry, mode="eval"), test)
    decoder = ClipDecoder(**geometry, rows_per_video=a.clips_per_video, mode="train", seed=a.seed, flip=a.flip)
    torch.manual_seed(a.seed if a.init_seed is None else a.init_seed)
    net = build_model({"name": "r2plus1d_tiny", "input": a.input}, num_classes=tasks.head_size(task, num_classes))
    optimizer = (torch.optim.Adam(net.parameters(), lr=a.lr) if a.optimizer == "adam"
                 else torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9))
    for epoch in range(a.epochs):
        start = time.time()
        decoder.epoch = epoch
        net.train()
        batches = epoch_batches(decode(decoder, train), a.batch, a.order, a.seed, epoch,
                                rows_per_block=VIDEOS_PER_BLOCK * a.clips_per_video, buffer_batches=a.buffer_batches)
        losses = [steps.finetune_step(net, optimizer, b["clip"][:, 0].movedim(-1, -4), b[target], task).item()
                  for b in batches]
        net.eval()
        with torch.no_grad():
            output = torch.cat([net(steps.normalize(torch.from_numpy(test_clips["clip"][i:i + 50, 0]).movedim(-1, -4)))
                                for i in range(0, len(test_clips["label"]), 50)])
        if task == "count":
            score = f"test repetition error {metrics.repetition_error(output.squeeze(-1), test_clips['count']):.3f}"
        else:
            score = f"test top-1 {100 * float(np.mean(output.argmax(1).numpy() == test_clips['label'])):.1f}"
        print(f"epoch {epoch + 1}: train loss {np.mean(losses):.3f}, {score} ({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
