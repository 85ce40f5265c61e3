"""Downstream fine-tuning (or a linear probe) on Ray Train, as SEVERE defines its settings.

Model selection uses a validation split carved from the training split with the run's seed, never
the test split (the SEVERE reference code selects on test); `setting.val_fraction=0` trains on the whole
training split and scores the last epoch. The pretrained backbone is loaded strictly by default: every
missing or unexpected key fails the run, except the new classifier (`setting.strict_load`).
"""

from __future__ import annotations

import copy
import io
import json
import math

import ray.train
import torch
from omegaconf import OmegaConf
from ray.train.torch import TorchTrainer

from tubelab.data import storage
from tubelab.data.epoch_clock import new_epoch_clock
from tubelab.data.failures import new_failure_log
from tubelab.data.pipeline import (check_no_empty_class, clip_dataset, select_videos, shard_url, span_dataset,
                                   split_rows)
from tubelab.data.shards import read_manifest
from tubelab.evaluation.counting import count_videos, round_counts
from tubelab.models import build_model
from tubelab.models.batchnorm import global_batchnorm
from tubelab.models.checkpoint import load_backbone_state
from tubelab.models.repetition import attach_head
from tubelab.resources import per_worker_batch
from tubelab.tracking import mlflow_runs
from tubelab.tracking.predictions import log_predictions
from tubelab.training import common, counting, steps, tasks
from tubelab.training.precise_bn import update_bn_stats


def load_pretrained(model: torch.nn.Module, uri: str, endpoint_url: str | None = None, strict: bool = True) -> str:
    """Load a pretraining checkpoint's backbone. Strict (tubelab's default): only the new classifier may be
    missing, any other missing or unexpected key fails the run. Not strict (`setting.strict_load=false`, the
    SEVERE code's strict=False): missing and unexpected keys pass, and the summary still counts them."""
    fs, path = storage.filesystem(storage.join(uri, common.CHECKPOINT_FILE), endpoint_url)
    if not fs.exists(path):
        raise FileNotFoundError(f"no {common.CHECKPOINT_FILE} in checkpoint {uri!r}; pass the checkpoint directory "
                                f"a pretraining run reported (see the run's `checkpoint_uri` tag)")
    with fs.open(path, "rb") as f:
        state = torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)  # tensors and plain containers only
    allowed = {"allow_missing": ["fc.*"]} if strict else {"allow_missing": ["*"], "allow_unexpected": ["*"]}
    return load_backbone_state(model, state, **allowed).summary()


def lr_at(s, epoch: float) -> float:
    """The lr at a (fractional) epoch: a linear warm-up over `schedule.warmup_epochs`, then x `schedule.gamma` at
    each milestone epoch. The warm-up steps per epoch from lr / (warmup_epochs + 1); with `schedule.warmup_start_lr`
    it rises per step from that value to the lr at warmup_epochs (SlowFast's get_lr_at_epoch, SEVERE's Charades)."""
    sch = s.schedule
    if epoch < sch.warmup_epochs:
        start = sch.get("warmup_start_lr")
        if start is None:
            return s.optimizer.lr * (int(epoch) + 1) / (sch.warmup_epochs + 1)
        end = s.optimizer.lr * sch.gamma ** sum(sch.warmup_epochs >= m for m in sch.milestones)
        return start + (end - start) * epoch / sch.warmup_epochs
    return s.optimizer.lr * sch.gamma ** sum(epoch >= m for m in sch.milestones)


def make_optimizer(opt, net: torch.nn.Module) -> torch.optim.Optimizer:
    """The setting's optimiser over `net`'s trainable parameters. With `opt.bn_weight_decay` set (and not equal
    to `opt.weight_decay`), the BN layers' own parameters form a second group with that weight decay, as
    SlowFast's construct_optimizer groups them (BN.WEIGHT_DECAY, 0 in SEVERE's Charades)."""
    trainable = [p for p in net.parameters() if p.requires_grad]
    groups = [{"params": trainable}]
    if opt.bn_weight_decay is not None and opt.bn_weight_decay != opt.weight_decay:
        bn = {id(p) for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._NormBase)
              for p in m.parameters(recurse=False)}
        groups = [g for g in ({"params": [p for p in trainable if id(p) not in bn]},
                              {"params": [p for p in trainable if id(p) in bn], "weight_decay": opt.bn_weight_decay})
                  if g["params"]]
    if opt.name == "adam":
        return torch.optim.Adam(groups, lr=opt.lr, weight_decay=opt.weight_decay)
    if opt.name == "sgd":
        return torch.optim.SGD(groups, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay,
                               nesterov=opt.nesterov)
    raise ValueError(f"setting.optimizer.name={opt.name!r} is not valid; choose one of: adam, sgd")


def context_counting(s, task: str) -> bool:
    """Repetition counting with SEVERE's counting model (setting.counting.method=context), not a clip's regression."""
    return task == "count" and s.counting.method == "context"


def evaluate(net: torch.nn.Module, dataset, task: str, num_classes: int, batch_size: int, device: torch.device,
             class_map: torch.Tensor | None, autocast_dtype: torch.dtype | None = None,
             aggregate: str = "mean", whole_videos: bool = False,
             norm: steps.InputNorm = steps.InputNorm()) -> tuple[dict, dict]:
    """Every metric of the task over a whole split (each video's views aggregated by `aggregate`; with
    `whole_videos`, the counting model's count of each annotated span, rounded half to even as the official
    code does before its error), and the per-video predictions behind them (video_key, target, prediction
    arrays: tracking.predictions)."""
    net.eval()
    predictions, targets, keys = [], [], []
    with torch.no_grad():
        for batch in dataset.iter_torch_batches(batch_size=batch_size):
            if whole_videos:
                frames = steps.to_model_input(batch["clip"], device)  # (B, 3, T, H, W)
                counts = count_videos(net, frames, batch["n_frames"], norm, autocast_dtype=autocast_dtype)
                predictions.append(round_counts(counts).cpu())
                targets.append(batch["count"].float())
                keys.append(batch["video_key"].cpu())
                continue
            clips = steps.to_model_input(batch["clip"], device)  # (B, N, 3, T, H, W)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
                out = net(norm(clips.flatten(0, 1))).unflatten(0, clips.shape[:2]).float()
            predictions.append(tasks.video_outputs(task, out, aggregate).cpu())
            targets.append(tasks.targets(task, batch, torch.device("cpu"), class_map))
            keys.append(batch["video_key"].cpu())
    if not predictions:
        raise RuntimeError("the evaluation split yielded no videos (all failed to decode?)")
    prediction, target = torch.cat(predictions), torch.cat(targets)
    per_video = {"video_key": torch.cat(keys).numpy(), "target": target.numpy(), "prediction": prediction.numpy()}
    return {**tasks.scores(task, prediction, target, num_classes), "videos": float(len(target))}, per_video


def precise_bn(net: torch.nn.Module, dataset, n: int, batch_size: int, device: torch.device, jitter, generator,
               autocast_dtype: torch.dtype | None, memory_format: torch.memory_format,
               norm: steps.InputNorm = steps.InputNorm()) -> int:
    """The BN statistics of `net` recomputed over `n` training batches as the training step sees them (colour
    jitter included), before an evaluation (setting.precise_bn_batches; training.precise_bn)."""
    def inputs():
        for batch in dataset.iter_torch_batches(batch_size=batch_size):
            yield steps.finetune_input(steps.to_model_input(batch["clip"][:, 0], device), jitter, generator,
                                       memory_format, norm)

    with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        return update_bn_stats(net, inputs(), n)


def finetune_loop(config: dict) -> None:
    cfg = OmegaConf.create(config["cfg"])
    s, task, num_classes = cfg.setting, config["task"], config["num_classes"]
    class_map = torch.tensor(config["class_map"]) if config["class_map"] is not None else None
    device, rank, world = common.setup_worker(cfg)
    per_worker = per_worker_batch(s.batch_size, world, "setting.batch_size")
    autocast_dtype, channels_last = common.device_features(s, device)
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    net = build_model(cfg.model, num_classes=tasks.head_size(task, num_classes))
    net.dropout.p = s.head_dropout
    if cfg.checkpoint:
        report = load_pretrained(net, cfg.checkpoint, cfg.storage.get("endpoint_url"), strict=s.strict_load)
        if rank == 0:
            print(f"finetune {s.id}: {report}")
    whole_videos = context_counting(s, task)
    if whole_videos:
        attach_head(net)  # the counting model's heads replace the classifier (SEVERE's model.fc = Head)
    linear = s.protocol == "linear"
    if linear:  # a frozen backbone: only the classifier learns
        for name, p in net.named_parameters():
            p.requires_grad = name.startswith("fc.")
    net = net.to(device, memory_format=memory_format)
    if s.batchnorm == "global":
        net = global_batchnorm(net, device)
    model = ray.train.torch.prepare_model(net)
    optimizer = make_optimizer(s.optimizer, net)
    restored = common.restore(net, optimizer, key="model")
    start = restored["epoch"] + 1 if restored else 0
    best = restored["best"] if restored else None  # {"epoch", "value", "state"} of the best validation score
    logger = common.RankZeroLogger(cfg, config.get("run_id"), f"finetune/{s.id}", rank)
    shard = ray.train.get_dataset_shard("train")
    generator = torch.Generator(device=device)  # colour jitter
    jitter, norm = s.clip.colour_jitter, steps.InputNorm.of(s.clip)
    steps_per_epoch = max(1, config["videos"] * s.clip.clips_per_video // s.batch_size)  # for per-step warm-up
    for epoch in range(start, s.epochs):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(s, epoch)
        model.train()
        if linear:
            net.eval()  # frozen BN statistics too
        common.begin_epoch(config["epochs"], cfg.seed, rank, epoch, generator)
        timer, loss_sum, seen = common.EpochTimer(), 0.0, 0
        batches = common.train_batches(shard, per_worker, cfg.seed, rank, epoch)
        episode_steps = 0
        for i, batch in enumerate(timer.batches(batches)):
            if epoch < s.schedule.warmup_epochs and s.schedule.get("warmup_start_lr") is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(s, epoch + min(i / steps_per_epoch, 0.999))
            if whole_videos:  # one episode of up to counting.max_steps optimiser steps per batch
                x = steps.to_model_input(batch["clip"], device)
                out = counting.episode(model, optimizer, x, batch["n_frames"], batch["offset_next"].to(device),
                                       batch["offset_pre"].to(device), batch["count"], normalize=norm,
                                       generator=generator, max_steps=s.counting.max_steps,
                                       autocast_dtype=autocast_dtype, memory_format=memory_format,
                                       stop=(lambda done: common.all_workers(done, device)) if world > 1 else None)
                loss, episode_steps = out["loss"], episode_steps + out["steps"]
            else:
                x = steps.to_model_input(batch["clip"][:, 0], device)
                y = tasks.targets(task, batch, device, class_map)
                loss = steps.finetune_step(model, optimizer, x, y, task, autocast_dtype=autocast_dtype,
                                           memory_format=memory_format, jitter=jitter, generator=generator, norm=norm)
            loss_sum += loss.item() * x.shape[0]
            seen += x.shape[0]
            timer.step_done(x.shape[0] * world)
        metrics = {"loss": loss_sum / max(seen, 1), "lr": lr_at(s, epoch), **timer.summary(),
                   **({"episode_steps": episode_steps} if whole_videos else {}),
                   "decode_failures": common.check_decode_failures(config["failure_log"], config["videos"],
                                                                   s.clip.max_failed_fraction),
                   **common.peak_memory_gb(device)}
        last = epoch + 1 == s.epochs
        validate = config["has_val"] and ((epoch + 1) % s.eval_every == 0 or last)
        if rank == 0 and s.precise_bn_batches and not linear and (validate or last):
            metrics["precise_bn_batches"] = precise_bn(net, ray.train.get_dataset_shard("bn"), s.precise_bn_batches,
                                                       per_worker, device, jitter, generator, autocast_dtype,
                                                       memory_format, norm)
        if rank == 0 and validate:
            val, _ = evaluate(net, ray.train.get_dataset_shard("val"), task, num_classes, per_worker, device, class_map,
                              autocast_dtype, s.clip.aggregate, whole_videos, norm)
            metrics.update({f"val_{k}": v for k, v in val.items()})
            if tasks.better(s.metric, val[s.metric], best and best["value"]):
                best = {"epoch": epoch, "value": val[s.metric], "state": copy.deepcopy(net.state_dict())}
        if last and rank == 0:
            if best is not None:
                net.load_state_dict(best["state"])
            test, per_video = evaluate(net, ray.train.get_dataset_shard("eval"), task, num_classes, per_worker,
                                       device, class_map, autocast_dtype, s.clip.aggregate, whole_videos, norm)
            if config.get("run_id"):  # reports put intervals on the score from these (evaluation.intervals)
                log_predictions(cfg, config["run_id"], task=task, metric=s.metric,
                                num_classes=num_classes, **per_video)
            metrics.update({**{f"test_{k}": v for k, v in test.items()}, "score": test[s.metric],
                            "selected_epoch": best["epoch"] if best else epoch})
        logger.log(metrics, epoch, last=last)
        state = {"epoch": epoch, "model": net.state_dict(), "optimizer": optimizer.state_dict(), "best": best,
                 "config": config["cfg"]}
        common.report({**metrics, "epoch": epoch}, rank, state)


def split_videos(cfg, manifest: dict) -> dict:
    """Which videos train, validate and test, all reproducible from the seed; plus the class subset map."""
    s = cfg.setting
    classes = manifest["classes"]
    keep = set(s.classes) if s.classes is not None else None
    if keep is not None and not keep <= set(range(len(classes))):
        raise ValueError(f"setting.classes has indices outside 0..{len(classes) - 1}: {sorted(keep - set(range(len(classes))))}")

    def rows(split):
        return [r for r in split_rows(cfg, s.dataset, split) if keep is None or r["label"] in keep]

    train_rows = rows(s.train_split)
    task_has_classes = manifest["task"] == "single_label"
    if task_has_classes:
        check_no_empty_class(train_rows, sorted(keep) if keep is not None else range(len(classes)), classes,
                             f"the {s.train_split} split of {s.dataset!r}")
    val = select_videos(train_rows, fraction=s.val_fraction, seed=cfg.seed) if s.val_fraction else []
    rest = [r for r in train_rows if r["video_id"] not in set(val)]
    num_classes = len(keep) if keep is not None else len(classes)
    if s.budget is not None:
        # Tasks without classes (counting, multi-label) form one group: the budget is the number of videos.
        train = select_videos(rest, per_class=math.ceil(s.budget / max(num_classes if task_has_classes else 1, 1)),
                              seed=cfg.seed)
    else:
        train = sorted(r["video_id"] for r in rest)
    class_map = None
    if keep is not None:
        class_map = [-1] * len(classes)
        for new, old in enumerate(sorted(keep)):
            class_map[old] = new
    return {"train": train, "val": val, "test": sorted(r["video_id"] for r in rows(s.eval_split)),
            "num_classes": num_classes, "class_map": class_map}


def run_finetune(cfg, name: str, run_id: str | None = None) -> ray.train.Result:
    """Fine-tune `cfg.checkpoint` (or a random init) on `cfg.setting`; result.metrics["score"] is the test score."""
    s = cfg.setting
    manifest = read_manifest(shard_url(cfg, s.dataset), cfg.storage.get("endpoint_url"))
    task = manifest["task"]
    tasks.check(task, s.metric)
    if s.protocol not in ("finetune", "linear"):
        raise ValueError(f"setting.protocol={s.protocol!r} is not valid; choose one of: finetune, linear")
    videos = split_videos(cfg, manifest)
    if run_id:
        mlflow_runs.log_text(cfg, run_id, json.dumps({"seed": cfg.seed, "budget": s.budget, "val_fraction": s.val_fraction,
                                                      **{k: videos[k] for k in ("train", "val", "test")}}),
                             f"data/{s.id}_videos.json")
    failure_log, epochs = new_failure_log(), new_epoch_clock(cfg.resources.train_workers)

    def data(split, ids, mode):
        if context_counting(s, task):
            return span_dataset(cfg, s.dataset, split, s.counting, size=s.clip.crop, flip=s.clip.flip,
                                backend=s.clip.decoder, mode=mode, seed=cfg.seed, video_ids=ids,
                                failures=failure_log, epochs=epochs, deterministic=cfg.deterministic)
        return clip_dataset(cfg, s.dataset, split, s.clip, mode=mode, seed=cfg.seed, video_ids=ids,
                            failures=failure_log, epochs=epochs, deterministic=cfg.deterministic)[0]

    datasets = {"train": data(s.train_split, videos["train"], "train"),
                "eval": data(s.eval_split, videos["test"], "eval")}
    if videos["val"]:
        datasets["val"] = data(s.train_split, videos["val"], "eval")
    clips = len(videos["train"]) * (s.counting.subclips if context_counting(s, task) else s.clip.clips_per_video)
    if clips < s.batch_size:
        raise ValueError(f"setting {s.id}: {len(videos['train'])} training videos cannot fill one step of "
                         f"setting.batch_size {s.batch_size} clips; lower setting.batch_size")
    if s.precise_bn_batches and s.protocol == "finetune":  # the evaluating worker's own pass over train
        per_worker = per_worker_batch(s.batch_size, cfg.resources.train_workers, "setting.batch_size")
        if s.precise_bn_batches * per_worker > clips:
            raise ValueError(f"setting {s.id}: setting.precise_bn_batches={s.precise_bn_batches} batches of "
                             f"{per_worker} clips need {s.precise_bn_batches * per_worker} training clips, the "
                             f"training split gives {clips} per epoch; lower setting.precise_bn_batches")
        datasets["bn"] = data(s.train_split, videos["train"], "train")
    return common.fit(lambda: TorchTrainer(
        finetune_loop,
        train_loop_config=common.loop_config(cfg, run_id=run_id, task=task, num_classes=videos["num_classes"],
                                             class_map=videos["class_map"], has_val=bool(videos["val"]),
                                             failure_log=failure_log, epochs=epochs, videos=len(videos["train"])),
        scaling_config=common.scaling_config(cfg.resources),
        run_config=common.run_config(cfg, name, num_to_keep=1),
        datasets=datasets,
        dataset_config=common.data_config(cfg, split=["train"]),
    ))
