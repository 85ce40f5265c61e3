"""One optimisation step of pretraining and of fine-tuning, as plain functions: a batch in, loss and stats out.

The Ray Train loops (pretrain.py, finetune.py) call them on batches from the data pipeline;
jobs/gpu_check.py and the benchmarks call them on their own batch sources. This module imports torch
and the science core only (no Ray, MLflow or Hydra), so it runs wherever torch runs.
Losses and stats come back as device tensors: the caller decides when to synchronise (`.item()`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tubelab.training import tasks
from tubelab.training.augment import colour_jitter, finetune_colour_jitter

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_model_input(clip: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (..., T, H, W, 3) -> uint8 (..., 3, T, H, W) on the device (normalisation comes after tubelets)."""
    return clip.to(device, non_blocking=True).movedim(-1, -4)


def normalize(clip: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr: bool = False) -> torch.Tensor:
    """uint8 or [0, 255] float (B, 3, T, H, W) RGB -> (x / 255 - mean) / std per channel (ImageNet's statistics
    unless given); with `bgr` the channels are then reversed (SlowFast's REVERSE_INPUT_CHANNEL, which SEVERE's
    Charades sets: reversed after normalising)."""
    mean = torch.tensor(mean, device=clip.device).view(1, 3, 1, 1, 1) * 255
    std = torch.tensor(std, device=clip.device).view(1, 3, 1, 1, 1) * 255
    x = (clip.float() - mean) / std
    return x.flip(1) if bgr else x


@dataclass(frozen=True)
class InputNorm:
    """A fine-tuning setting's input normalisation (setting.clip.mean, .std, .channels), callable like normalize."""
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    bgr: bool = False

    @classmethod
    def of(cls, clip) -> "InputNorm":
        return cls(tuple(clip.mean), tuple(clip.std), clip.channels == "bgr")

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        return normalize(clip, self.mean, self.std, self.bgr)


def _trainable(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def pretrain_step(model, optimizer: torch.optim.Optimizer, query: torch.Tensor, key: torch.Tensor, *, jitter,
                  generator: torch.Generator, autocast_dtype: torch.dtype | None = None,
                  memory_format: torch.memory_format = torch.contiguous_format,
                  grad_clip: float | None = None) -> tuple[torch.Tensor, dict]:
    """One MoCo step on a pair batch: uint8 (B, 3, T, H, W) query and key clips on the device, tubelets
    already pasted (tubelets.pairs.make_pair) -> colour jitter (one draw per pair), normalise, forward
    under autocast, backward, gradient clipping, optimiser step. `model(query, key)` returns (loss, stats)."""
    query, key = colour_jitter([query.float(), key.float()], jitter, generator)
    query, key = (normalize(x).contiguous(memory_format=memory_format) for x in (query, key))
    with torch.autocast(query.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        loss, stats = model(query, key)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(_trainable(optimizer), grad_clip)
    optimizer.step()
    return loss.detach(), stats


def finetune_input(clips: torch.Tensor, jitter, generator: torch.Generator | None,
                   memory_format: torch.memory_format = torch.contiguous_format, norm: InputNorm = InputNorm()
                   ) -> torch.Tensor:
    """uint8 (B, 3, T, H, W) training clips -> the model's input: SEVERE's colour jitter (`jitter`: strengths,
    None: none), normalised by `norm`, in `memory_format`. The training step and precise BN
    see the same inputs."""
    if jitter is not None:
        clips = finetune_colour_jitter(clips, jitter, generator)
    return norm(clips).contiguous(memory_format=memory_format)


def finetune_step(model, optimizer: torch.optim.Optimizer, clips: torch.Tensor, target: torch.Tensor, task: str, *,
                  autocast_dtype: torch.dtype | None = None,
                  memory_format: torch.memory_format = torch.contiguous_format,
                  jitter=None, generator: torch.Generator | None = None, norm: InputNorm = InputNorm()) -> torch.Tensor:
    """One supervised step: uint8 (B, 3, T, H, W) clips on the device and their targets -> colour jitter
    (`jitter`: SEVERE's (brightness, contrast, saturation, hue) strengths, drawn from `generator`; None: none),
    normalise (`norm`), forward under autocast, the task's loss in fp32, backward, optimiser step; returns the loss."""
    x = finetune_input(clips, jitter, generator, memory_format, norm)
    with torch.autocast(x.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        output = model(x)
    loss = tasks.loss(task, output.float(), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()
