"""Downstream fine-tuning on Ray Train: a pretrained backbone + a new classifier, scored on a held-out split."""

from __future__ import annotations

import io
import json
import math

import ray.train
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from ray.train.torch import TorchTrainer

from tubelab.data import storage
from tubelab.data.decode import FailureLog
from tubelab.data.pipeline import clip_dataset, select_videos, shard_url, split_rows
from tubelab.data.shards import read_manifest
from tubelab.models import build_model
from tubelab.models.checkpoint import load_backbone_state
from tubelab.tracking import mlflow_runs
from tubelab.training import common


def load_pretrained(model: torch.nn.Module, uri: str, endpoint_url: str | None = None) -> str:
    """Strictly load a pretraining checkpoint's backbone; only the new classifier may be missing."""
    fs, path = storage.filesystem(storage.join(uri, common.CHECKPOINT_FILE), endpoint_url)
    if not fs.exists(path):
        raise FileNotFoundError(f"no {common.CHECKPOINT_FILE} in checkpoint {uri!r}; pass the checkpoint directory "
                                f"a pretraining run reported (see the run's `checkpoint_uri` tag)")
    with fs.open(path, "rb") as f:
        state = torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=False)
    return load_backbone_state(model, state, allow_missing=["fc.*"]).summary()


def evaluate(net: torch.nn.Module, dataset, batch_size: int, device: torch.device) -> dict[str, float]:
    """Top-1 over the whole eval split: softmax averaged over each video's clips (Video@1; with one
    centred clip per video it is clip top-1)."""
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in dataset.iter_torch_batches(batch_size=batch_size):
            clips = common.to_model_input(batch["clip"], device)  # (B, N, 3, T, H, W)
            logits = net(common.normalize(clips.flatten(0, 1))).unflatten(0, clips.shape[:2])
            probs = logits.softmax(dim=-1).mean(dim=1)
            correct += (probs.argmax(1).cpu() == batch["label"]).sum().item()
            total += batch["label"].shape[0]
    return {"top1": 100.0 * correct / max(total, 1), "eval_videos": total}


def finetune_loop(config: dict) -> None:
    cfg = OmegaConf.create(config["cfg"])
    s = cfg.setting
    device, rank, world = common.setup_worker(cfg)
    net = build_model(cfg.model, num_classes=config["num_classes"])
    if cfg.checkpoint:
        report = load_pretrained(net, cfg.checkpoint, cfg.storage.get("endpoint_url"))
        if rank == 0:
            print(f"finetune {s.id}: {report}")
    model = ray.train.torch.prepare_model(net)
    if s.optimizer.name == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=s.optimizer.lr, weight_decay=s.optimizer.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=s.optimizer.lr, momentum=0.9,
                                    weight_decay=s.optimizer.weight_decay)
    start = common.restore(net, optimizer, key="model")
    logger = common.RankZeroLogger(cfg, config.get("run_id"), f"finetune/{s.id}", rank)
    shard = ray.train.get_dataset_shard("train")
    for epoch in range(start, s.epochs):
        model.train()
        timer, loss_sum, correct, seen = common.EpochTimer(), 0.0, 0, 0
        batches = shard.iter_torch_batches(batch_size=s.batch_size, drop_last=True,
                                           local_shuffle_buffer_size=4 * s.batch_size)
        for batch in timer.batches(batches):
            x = common.normalize(common.to_model_input(batch["clip"][:, 0], device))
            y = batch["label"].to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * y.shape[0]
            correct += (logits.argmax(1) == y).sum().item()
            seen += y.shape[0]
            timer.step_done(y.shape[0] * world)
        metrics = {"loss": loss_sum / max(seen, 1), "train_top1": 100.0 * correct / max(seen, 1),
                   **timer.summary(),
                   "decode_failures": common.check_decode_failures(config["failure_log"], config["videos"],
                                                                   s.clip.max_failed_fraction),
                   **common.peak_memory_gb(device)}
        last = epoch + 1 == s.epochs
        if last and rank == 0:
            metrics.update(evaluate(net, ray.train.get_dataset_shard("eval"), s.batch_size, device))
        logger.log(metrics, epoch)
        state = {"epoch": epoch, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                 "config": config["cfg"]}
        common.report({**metrics, "epoch": epoch}, rank, state)


def run_finetune(cfg, name: str, run_id: str | None = None) -> ray.train.Result:
    """Fine-tune `cfg.checkpoint` (or a random init) on `cfg.setting`; the result's metrics hold the score."""
    s = cfg.setting
    ids = None
    if s.budget is not None:
        manifest = read_manifest(shard_url(cfg, s.dataset), cfg.storage.get("endpoint_url"))
        per_class = math.ceil(s.budget / len(manifest["classes"]))
        ids = select_videos(split_rows(cfg, s.dataset, s.train_split), per_class=per_class, seed=cfg.seed)
        if run_id:
            mlflow_runs.log_text(cfg, run_id, json.dumps({"budget": s.budget, "per_class": per_class,
                                                          "seed": cfg.seed, "ids": ids}),
                                 f"data/{s.id}_train_videos.json")
    failure_log = FailureLog.remote()
    train, manifest = clip_dataset(cfg, s.dataset, s.train_split, s.clip, mode="train", seed=cfg.seed,
                                   video_ids=ids, failures=failure_log)
    evaluation, _ = clip_dataset(cfg, s.dataset, s.eval_split, s.clip, mode="eval", seed=cfg.seed,
                                 failures=failure_log)
    videos = len(ids) if ids is not None else manifest["splits"][s.train_split]["videos"]
    needed = s.batch_size * cfg.resources.train_workers
    if videos * s.clip.clips_per_video < needed:
        raise ValueError(f"setting {s.id}: {videos} {s.train_split} videos cannot fill one step of {needed} clips; "
                         f"lower setting.batch_size or resources.train_workers")
    trainer = TorchTrainer(
        finetune_loop,
        train_loop_config=common.loop_config(cfg, run_id=run_id, num_classes=len(manifest["classes"]),
                                             failure_log=failure_log, videos=videos),
        scaling_config=common.scaling_config(cfg.resources),
        run_config=common.run_config(cfg, name, num_to_keep=1),
        datasets={"train": train, "eval": evaluation},
        dataset_config=ray.train.DataConfig(datasets_to_split=["train"]),
    )
    return trainer.fit()
