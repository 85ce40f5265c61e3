"""Precise BatchNorm statistics: the running mean and variance recomputed with the final weights before an
evaluation, as the average over `n` training batches (SlowFast's BN.USE_PRECISE_STATS, fvcore's
update_bn_stats), instead of the moving average collected while the weights were still changing.

Runs on the one worker that evaluates, each BN layer on that worker's batch alone (no collectives: the other
workers are not there to join them); the average over batches of a batch's mean and unbiased variance does
not depend on how the global batch was split, so this is the same estimate as SlowFast's under SyncBN.
"""

from __future__ import annotations

import types
from collections.abc import Iterable

import torch
import torch.nn as nn

_BatchNorm = nn.modules.batchnorm._BatchNorm


def update_bn_stats(model: nn.Module, inputs: Iterable[torch.Tensor], n: int) -> int:
    """Overwrite every BN layer's running statistics with their average over the first `n` of `inputs`
    (model inputs, run in train mode without gradients); returns the number of batches used. Fewer than
    `n` batches is an error: the estimate would silently be a smaller one."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    saved = [(m, m.momentum) for m in layers]
    was_training = model.training
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # torch's cumulative average: after k batches, the mean of k batch statistics
        m.forward = types.MethodType(_BatchNorm.forward, m)  # this worker's batch, also for Sync/GlobalBatchNorm
    used = 0
    try:
        model.train()
        with torch.no_grad():
            for x in inputs:
                if used == n:
                    break
                model(x)
                used += 1
    finally:
        for m, momentum in saved:
            m.momentum = momentum
            del m.forward
        model.train(was_training)
    if used < n:
        raise RuntimeError(f"precise BN statistics need {n} training batches, the training split gave {used}; "
                           f"lower setting.precise_bn_batches")
    return used
