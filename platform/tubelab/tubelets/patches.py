"""What a tubelet looks like: box size, mask shape and soft edge.

Sizes follow the released RandomRegionSampler: scale s and aspect r give w = s*sqrt(r),
h = s/sqrt(r), each side jittered by exp(U(-j, j)) and clipped to the frame. Scales are pixels at
`reference_width` (112, the paper's crop) and are multiplied by W / reference_width, so the
paper's numbers apply at any resolution.

The mask is drawn in patch coordinates u in [-1, 1]^2 (distance d = |u|/2 under the max, L2 or L1
norm for rectangle, ellipse, rhombus) as in the released pick_alphas: alpha = 1 inside d < 0.5, and
with a soft edge alpha falls linearly from 1 at a turning point U(0.30, 0.45) to 0 at d = 0.5.
"""

import torch

from .draws import choice, pick, uniform

MASKS = ("rectangle", "ellipse", "rhombus")
SOFT_EDGE_TURNING = (0.30, 0.45)  # released code's constants
HARD_EDGE = 1e-4  # edge width that makes the linear ramp a step


def sample_box_sizes(generator, cfg, shape, height, width):
    """(w, h) in pixels, (*shape, 2)."""
    s = pick(generator, shape, cfg["patch_scales"]) * (width / cfg["reference_width"])
    r = pick(generator, shape, cfg["aspect_ratios"])
    wh = torch.stack([s * r.sqrt(), s / r.sqrt()], -1)
    wh = wh * uniform(generator, shape + (2,), -cfg["size_jitter"], cfg["size_jitter"]).exp()
    limit = torch.tensor([width, height], dtype=torch.float32, device=wh.device)
    return torch.minimum(wh.clamp(min=1.0), limit)


def sample_masks(generator, cfg, shape):
    """Mask shape index into MASKS and edge width (in units of d), each of `shape`."""
    kind = choice(generator, shape, cfg["mask_probs"])
    soft = uniform(generator, shape, 0.0, 1.0) < cfg["soft_edge_prob"]
    edge = 0.5 - uniform(generator, shape, *SOFT_EDGE_TURNING)
    return kind, torch.where(soft, edge, torch.full_like(edge, HARD_EDGE))


def mask_alpha(ux, uy, kind, edge):
    """Alpha in [0, 1] at patch coordinates (ux, uy); all arguments broadcast. 0 outside the box."""
    ax, ay = ux.abs(), uy.abs()
    d = torch.where(kind == 0, torch.maximum(ax, ay), torch.where(kind == 1, torch.sqrt(ax * ax + ay * ay), ax + ay))
    return ((1 - d) / (2 * edge)).clamp(0, 1)  # d / 2 is the released code's distance to the centre


def mask_image(center, size, kind, edge, height, width):
    """Alpha (*S, height, width) at the pixel centres of a frame for boxes center, size (*S, 2)."""
    x = torch.arange(width, device=center.device) + 0.5
    y = torch.arange(height, device=center.device) + 0.5
    ux = (x - center[..., :1]) / (size[..., :1] / 2)  # (*S, width)
    uy = (y - center[..., 1:]) / (size[..., 1:] / 2)  # (*S, height)
    return mask_alpha(ux.unsqueeze(-2), uy.unsqueeze(-1), kind[..., None, None], edge[..., None, None])
