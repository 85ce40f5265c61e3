"""Tubelet-contrast pretraining on Ray Train: decoded clips -> tubelets on the device -> MoCo-v2.

The loop around the plain step (training.steps.pretrain_step): pairs from tubelets.pairs, the data
shard, lr schedule, checkpoints and per-epoch metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import ray.train
import torch
from omegaconf import OmegaConf
from ray.train.torch import TorchTrainer

from tubelab.data.epoch_clock import new_epoch_clock
from tubelab.data.failures import new_failure_log
from tubelab.data.pipeline import clip_dataset, select_videos, split_rows
from tubelab.models import build_model
from tubelab.models.batchnorm import global_batchnorm
from tubelab.objectives.moco import MoCo
from tubelab.resources import per_worker_batch
from tubelab.tracking import mlflow_runs
from tubelab.training import common, steps
from tubelab.training.preview import log_preview
from tubelab.tubelets.pairs import make_pair

PRETRAIN_NUM_CLASSES = 1  # the classifier is dropped for pretraining; the backbone is what is saved


# A caller's replacement for the data shard: batch_source(batch_size=, clip_shape=, steps=, rank=, epoch=)
# returns one epoch of batches {"clip": uint8 (B, *clip_shape), "video_key": int64 (B,)}. The benchmark's
# in-memory baseline (jobs/benchmark_train.py) passes one; it is not part of a recipe.
BatchSource = Callable[..., Iterable[dict]]


def pretrain_loop(config: dict) -> None:
    cfg = OmegaConf.create(config["cfg"])
    p = cfg.pretrain
    device, rank, world = common.setup_worker(cfg)
    backbone = build_model(cfg.model, num_classes=PRETRAIN_NUM_CLASSES)
    per_worker = per_worker_batch(p.batch_size, world, "pretrain.batch_size")
    moco = MoCo(backbone, dim=p.moco.dim, queue=p.moco.queue, momentum=p.moco.momentum,
                temperature=p.moco.temperature, bn_splits=p.moco.bn_splits, batchnorm=p.batchnorm,
                fp32_logits=p.moco.fp32_logits)
    autocast_dtype, channels_last = common.device_features(p, device)
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    moco = moco.to(device, memory_format=memory_format)
    if p.batchnorm == "global":
        moco = global_batchnorm(moco, device)
    if p.compile:
        moco.encoder_q.compile()  # in place: state-dict keys stay those of the plain modules
        moco.encoder_k.compile()
    model = ray.train.torch.prepare_model(moco)
    params = [x for x in moco.parameters() if x.requires_grad]
    base_lr = common.scaled_lr(p.optimizer, p.batch_size)
    optimizer = torch.optim.SGD(params, lr=base_lr, momentum=p.optimizer.momentum,
                                weight_decay=p.optimizer.weight_decay)
    restored = common.restore(moco, optimizer, key="train_state")
    start = restored["epoch"] + 1 if restored else 0
    logger = common.RankZeroLogger(cfg, config.get("run_id"), "pretrain", rank)
    generator = torch.Generator(device=device)
    shard = ray.train.get_dataset_shard("train")
    batch_source = config.get("batch_source")
    last = p.stop_epoch or p.epochs
    for epoch in range(start, last):
        lr = common.cosine_lr(base_lr, epoch / p.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        common.begin_epoch(config["epochs"], cfg.seed, rank, epoch, generator)  # tubelets, jitter, shuffle-BN
        timer, loss_sum, acc_sum, n_steps = common.EpochTimer(), 0.0, 0.0, 0
        if batch_source is None:
            batches = common.train_batches(shard, per_worker, cfg.seed, rank, epoch)
        else:  # the same steps fed by the caller's source (clip_shape: clips per row, T, H, W, 3)
            batches = batch_source(batch_size=per_worker, clip_shape=config["clip_shape"],
                                   steps=config["steps_per_epoch"], rank=rank, epoch=epoch)
        for batch in timer.batches(batches):
            clips = steps.to_model_input(batch["clip"], device)  # (B, K, 3, T, H, W)
            query, key, _ = make_pair(clips, batch["video_key"].to(device), cfg.tubelet, generator)
            if logger.enabled and epoch == start and n_steps == 0:
                log_preview(cfg, config["run_id"], query, key)
            loss, stats = steps.pretrain_step(model, optimizer, query, key, jitter=p.colour_jitter, generator=generator,
                                              autocast_dtype=autocast_dtype, memory_format=memory_format,
                                              grad_clip=p.optimizer.grad_clip)
            loss_sum, acc_sum, n_steps = loss_sum + loss.item(), acc_sum + stats["contrast_acc"].item(), n_steps + 1
            timer.step_done(query.shape[0] * world)
        if n_steps == 0:
            raise RuntimeError(f"worker {rank} got no full batch of {per_worker}: the split is too small for "
                               f"pretrain.batch_size {p.batch_size} over {world} workers")
        metrics = {"loss": loss_sum / n_steps, "contrast_acc": acc_sum / n_steps, "lr": lr, "epoch": epoch,
                   "steps": n_steps, **timer.summary(),
                   "decode_failures": common.check_decode_failures(config["failure_log"], config["videos"],
                                                                   p.clip.max_failed_fraction)}
        metrics.update(common.peak_memory_gb(device))
        logger.log({k: v for k, v in metrics.items() if k != "epoch"}, epoch, last=epoch + 1 == last)
        save = (epoch + 1) % p.checkpoint_every == 0 or epoch + 1 == last
        state = None
        if save:
            state = {"epoch": epoch, "train_state": moco.state_dict(), "optimizer": optimizer.state_dict(),
                     "model": moco.encoder_q.backbone.state_dict(), "config": config["cfg"]}
        common.report(metrics, rank, state)


def check_pretrain_config(cfg, videos: int) -> None:
    p = cfg.pretrain
    if videos < p.batch_size:
        raise ValueError(f"{videos} {p.split} videos cannot fill one step of pretrain.batch_size {p.batch_size} clips; "
                         f"lower pretrain.batch_size")
    keys_per_epoch = videos * p.clip.clips_per_video
    if p.moco.queue > keys_per_epoch:
        raise ValueError(f"pretrain.moco.queue={p.moco.queue} is larger than the {keys_per_epoch} keys of one epoch "
                         f"({videos} videos x {p.clip.clips_per_video} clips): most of the first epoch would contrast "
                         f"against random vectors; lower pretrain.moco.queue")
    if p.stop_epoch is not None and not 0 < p.stop_epoch <= p.epochs:
        raise ValueError(f"pretrain.stop_epoch={p.stop_epoch} must be in 1..pretrain.epochs ({p.epochs})")


def run_pretrain(cfg, name: str, run_id: str | None = None, *,
                 batch_source: BatchSource | None = None) -> ray.train.Result:
    """Fit one pretraining run; rerunning with the same name resumes from its last checkpoint.

    `batch_source` (see BatchSource) replaces the data shard as the loop's batches; the dataset is
    still built and handed to the trainer, so everything else is the same run."""
    p = cfg.pretrain
    ids = None
    if p.data_fraction < 1:
        ids = select_videos(split_rows(cfg, cfg.dataset.name, p.split), fraction=p.data_fraction, seed=cfg.seed)
        if run_id:
            mlflow_runs.log_text(cfg, run_id, json.dumps({"fraction": p.data_fraction, "seed": cfg.seed, "ids": ids}),
                                 "data/pretrain_videos.json")
    if run_id:
        seeds = [common.worker_seed(cfg.seed, r) for r in range(cfg.resources.train_workers)]
        mlflow_runs.set_tags(cfg, run_id, {"worker_seeds": seeds})
    failure_log, epochs = new_failure_log(), new_epoch_clock(cfg.resources.train_workers)
    clips_per_row = 2 if cfg.tubelet.mode == "video_contrast" else 1
    ds, manifest = clip_dataset(cfg, cfg.dataset.name, p.split, p.clip, mode="train", clips_per_row=clips_per_row,
                                seed=cfg.seed, video_ids=ids, failures=failure_log, epochs=epochs,
                                deterministic=cfg.deterministic)
    videos = len(ids) if ids is not None else manifest["splits"][p.split]["videos"]
    check_pretrain_config(cfg, videos)
    return common.fit(lambda: TorchTrainer(
        pretrain_loop,
        train_loop_config=common.loop_config(
            cfg, run_id=run_id, failure_log=failure_log, epochs=epochs, videos=videos,
            clip_shape=(clips_per_row, p.clip.frames, p.clip.crop, p.clip.crop, 3),
            steps_per_epoch=videos * p.clip.clips_per_video // p.batch_size,
            batch_source=batch_source),
        scaling_config=common.scaling_config(cfg.resources),
        run_config=common.run_config(cfg, name, num_to_keep=p.num_to_keep),
        datasets={"train": ds},
        dataset_config=common.data_config(cfg),
    ))
