"""Positive pairs for tubelet contrast: each clip of a batch is paired with a clip of ANOTHER video.

In tubelet mode the key clip of row i is the clip of the next row of the same (shuffled) batch that holds
another video, so query and key always come from two different videos and each decoded clip serves one
pair as query and another as key (half the decode cost of a second video per pair). In video-contrast
mode the decoder emits two clips per video and those form the pair.
"""

from __future__ import annotations

import torch

from . import apply_tubelets


def other_video_index(keys: torch.Tensor) -> torch.Tensor:
    """For each row, the nearest following row (cyclically) that holds a different video.

    Rows repeat a video when clip.clips_per_video > 1, so a plain roll could pair a video with itself.
    """
    n = keys.shape[0]
    idx = torch.full_like(keys, -1)
    for shift in range(1, n):
        cand = torch.roll(torch.arange(n, device=keys.device), -shift)
        ok = (idx < 0) & (keys[cand] != keys)
        idx[ok] = cand[ok]
        if bool((idx >= 0).all()):
            return idx
    raise RuntimeError("every clip of this batch comes from one video: tubelet pairs need two different videos; "
                       "raise pretrain.batch_size or lower pretrain.clip.clips_per_video")


def make_pair(clips: torch.Tensor, keys: torch.Tensor, tubelet_cfg, generator: torch.Generator):
    """(B, K, 3, T, H, W) uint8 clips and (B,) video keys -> (query, key) uint8 clips and the tubelet parameters."""
    if tubelet_cfg["mode"] == "video_contrast":
        return clips[:, 0], clips[:, 1], {}
    a = clips[:, 0]
    b = a[other_video_index(keys)]
    out = apply_tubelets(a, b, tubelet_cfg, generator=generator)
    return out.a, out.b, out.params
