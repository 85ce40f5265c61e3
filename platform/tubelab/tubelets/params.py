"""All per-tubelet and per-frame parameters of one batch, drawn in one place.

A tubelet of `length` L <= T frames starts at a random frame (0 when L = T); outside its frames it is
inactive (opacity 0) and its geometry is held at the nearest active frame. Opacity is U(opacity)
per key frame, interpolated uniformly (released pick_alphas). The patch is cut from clip A at a
random active frame, at that frame's box; tubelab shifts that box inside the frame where the
released code clipped it (and so squeezed the patch). Tubelets are sorted by mean box area,
largest first, which is also the order they are pasted in (a small one is never hidden under a
large one).
"""

import torch

from .draws import uniform
from .keyframes import interpolate, sample_key_frames
from .patches import sample_box_sizes, sample_masks
from .trajectories import sample_centers
from .transforms import sample_transforms


def sample_params(generator, cfg, batch, frames, height, width):
    """dict of tensors for B = batch clips of `frames` frames at height x width (see __init__)."""
    shape = (batch, cfg["num_tubelets"])
    length = frames if cfg["length"] is None else cfg["length"]
    base = sample_box_sizes(generator, cfg, shape, height, width)
    center = sample_centers(generator, cfg, base, length, height, width)  # (B, N, L, 2)
    angle, shear, scale = sample_transforms(generator, cfg, shape, length)

    keys = sample_key_frames(generator, shape, length, cfg["key_frame_probs"])
    kinds = torch.zeros(keys.shape[:-1] + (keys.shape[-1] - 1,), dtype=torch.long, device=keys.device)
    opacity = interpolate(uniform(generator, keys.shape, *cfg["opacity"]), keys, kinds, length)
    mask, edge = sample_masks(generator, cfg, shape)

    # Place the L tubelet frames in the clip's T frames.
    start = torch.floor(uniform(generator, shape, 0.0, frames - length + 1.0)).long().clamp(max=frames - length)
    offset = torch.arange(frames, device=start.device) - start.unsqueeze(-1)  # (B, N, T)
    active = (offset >= 0) & (offset < length)
    local = offset.clamp(0, length - 1)
    p = dict(center=_at(center, local), angle=_at(angle, local), shear=_at(shear, local),
             scale=_at(scale, local), opacity=_at(opacity, local) * active, active=active)
    p["size"] = base.unsqueeze(2) * p["scale"].unsqueeze(-1)

    src = start + torch.floor(uniform(generator, shape, 0.0, float(length))).long().clamp(max=length - 1)
    frame = torch.tensor([width, height], dtype=torch.float32, device=base.device)
    idx = src.view(shape + (1, 1)).expand(shape + (1, 2))
    src_size = torch.minimum(p["size"].gather(2, idx).squeeze(2), frame)
    src_center = p["center"].gather(2, idx).squeeze(2).clamp(min=src_size / 2)
    src_center = torch.minimum(src_center, frame - src_size / 2)
    p.update(source_frame=src, source_center=src_center, source_size=src_size, mask=mask, edge=edge)

    order = (p["size"][..., 0] * p["size"][..., 1]).mean(-1).argsort(-1, descending=True)  # (B, N)
    return {k: v.gather(1, order.view(shape + (1,) * (v.dim() - 2)).expand_as(v)) for k, v in p.items()}


def _at(x, local):
    """x (B, N, L, ...) at tubelet frame local (B, N, T) -> (B, N, T, ...)."""
    index = local.view(local.shape + (1,) * (x.dim() - 3)).expand(local.shape + x.shape[3:])
    return x.gather(2, index)
