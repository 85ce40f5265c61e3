"""MoCo-v2 on clip pairs: query encoder, momentum key encoder, a queue of negatives, InfoNCE.

In tubelet contrast the pair is two clips of DIFFERENT videos carrying the same tubelets; in the
video-contrast baseline it is two clips of the same video. The objective is the same; the queue
receives the keys of all workers.

BatchNorm (`batchnorm`):
- "global" (the official tubelet-contrast config, `syncbn = True`): both encoders' BN layers are
  converted to global BN by the caller (models.batchnorm), so statistics are those of the whole batch
  on every worker count. The official code still batch-shuffles the keys, but under SyncBN a shuffle
  changes no statistic, so here keys are computed on the batch as it is.
- "shuffle" (MoCo-v2's own recipe): per-worker BN; under DDP keys are computed with batch-shuffle BN
  (gather, permute, scatter) so BN statistics cannot reveal which key belongs to which query; with one
  worker the key batch is shuffled and its BN computed over `bn_splits` chunks (split BN).

`fp32_logits`: the similarities (batch x (1 + queue)) and the loss are computed in fp32 even under a
bf16 autocast (bf16 keeps 8 bits of mantissa: logits of up to 1/T = 5 lose the second decimal). The
official code runs fp32 throughout, so this only matters with `precision: bf16`.
"""

from __future__ import annotations

import contextlib
import copy

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from tubelab.models.heads import ProjectionHead


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def gather(x: torch.Tensor) -> torch.Tensor:
    if not _distributed():
        return x
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out)


class Encoder(nn.Module):
    def __init__(self, backbone: nn.Module, dim: int):
        super().__init__()
        backbone.fc = nn.Identity()  # unused in pretraining; an unused trainable layer breaks DDP
        self.backbone = backbone
        self.head = ProjectionHead(backbone.feature_dim, backbone.feature_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_features(x))


BATCHNORMS = ("global", "shuffle")


class MoCo(nn.Module):
    def __init__(self, backbone: nn.Module, dim: int = 128, queue: int = 16384, momentum: float = 0.999,
                 temperature: float = 0.2, bn_splits: int = 2, batchnorm: str = "shuffle", fp32_logits: bool = True):
        super().__init__()
        if batchnorm not in BATCHNORMS:
            raise ValueError(f"batchnorm={batchnorm!r} is not valid; choose one of: {', '.join(BATCHNORMS)}")
        self.momentum, self.temperature, self.bn_splits = momentum, temperature, bn_splits
        self.batchnorm, self.fp32_logits = batchnorm, fp32_logits
        self.encoder_q = Encoder(backbone, dim)
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for p in self.encoder_k.parameters():
            p.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(queue, dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _momentum_update(self) -> None:
        for q, k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            k.mul_(self.momentum).add_(q.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        keys = gather(keys)
        n, size = keys.shape[0], self.queue.shape[0]
        idx = (self.queue_ptr + torch.arange(n, device=keys.device)) % size
        self.queue[idx] = keys[-size:] if n > size else keys
        self.queue_ptr.copy_((self.queue_ptr + n) % size)

    @torch.no_grad()
    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        if self.batchnorm == "global":
            return self.encoder_k(x)
        if not _distributed():
            perm = torch.randperm(x.shape[0], device=x.device)
            chunks = x[perm].chunk(min(self.bn_splits, x.shape[0] // 2) or 1)
            return torch.cat([self.encoder_k(c) for c in chunks])[torch.argsort(perm)]
        # Batch-shuffle BN: compute keys on a random permutation of the global batch.
        x_all = gather(x)
        perm = torch.randperm(x_all.shape[0], device=x.device)
        dist.broadcast(perm, src=0)
        unperm = torch.argsort(perm)
        rank = dist.get_rank()
        mine = perm.view(dist.get_world_size(), -1)[rank]
        k = gather(self.encoder_k(x_all[mine]))
        return k[unperm.view(dist.get_world_size(), -1)[rank]]

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, dict]:
        q = self.encoder_q(query)
        with torch.no_grad():
            self._momentum_update()
            k = self._keys(key)
        fp32 = torch.autocast(q.device.type, enabled=False) if self.fp32_logits else contextlib.nullcontext()
        with fp32:
            if self.fp32_logits:
                q, k = q.float(), k.float()
            pos = (q * k).sum(dim=1, keepdim=True)
            neg = q @ self.queue.clone().detach().T
            logits = torch.cat([pos, neg], dim=1) / self.temperature
            labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
            loss = F.cross_entropy(logits, labels)
        self._enqueue(k)
        acc = (logits.argmax(dim=1) == 0).float().mean()
        return loss, {"contrast_acc": acc.detach()}
