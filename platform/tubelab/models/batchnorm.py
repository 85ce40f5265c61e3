"""BatchNorm over the global batch of all train workers: the official recipes' SyncBN, on any device.

With per-worker BN a result depends on the cluster's shape (8 clips per BN on 4 workers, 16 on 2); with
global BN one step on 1 worker and on 2 workers computes the same loss and gradients from the same batch
(tests/unit/training/test_training_batch_equivalence.py). CUDA uses torch's SyncBatchNorm; torch's refuses
CPU tensors, so CPU workers (the embedded default, gloo) use GlobalBatchNorm below: the same statistics,
all-reduced through autograd. With one worker both are plain BatchNorm.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.nn.functional import all_reduce

# The autograd-aware all_reduce is marked deprecated in favour of functional collectives, which have no backward
# for all_reduce; it is the one that carries gradients to every worker's inputs.
warnings.filterwarnings("ignore", message="torch.distributed.nn.functional.all_reduce is deprecated")


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the batch over all workers (two all-reduces per call:
    the mean, then the centred sum of squares, which keeps the variance exact). Eval mode and one worker: as
    BatchNorm. Gradients flow through the statistics to every worker's inputs, as in SyncBatchNorm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _world() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        local = torch.cat([x.sum(dims), x.new_tensor([x.numel() / x.shape[1]])])
        total = all_reduce(local)
        n = total[-1]
        mean = total[:-1] / n
        centred = x - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / n
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
        return y


def global_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` with every BatchNorm layer normalising over the global batch (weights and buffers kept, so
    state-dict keys and checkpoints are unchanged). Call after moving the module to `device`."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        # the same Parameter and buffer objects: frozen stays frozen (MoCo's key encoder; a fresh, trainable weight
        # there is a parameter DDP waits for in vain, and then it averages no gradient at all)
        for name, p in module.named_parameters(recurse=False):
            setattr(new, name, p)
        for name, b in module.named_buffers(recurse=False):
            setattr(new, name, b)
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, global_batchnorm(child, device))
    return module
