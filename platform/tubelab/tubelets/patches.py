"""What a tubelet looks like: box size, mask shape, soft edge, and its RGBA texture.

Sizes follow the released RandomRegionSampler: scale s and aspect r give w = s*sqrt(r),
h = s/sqrt(r), each side jittered by exp(U(-j, j)) and clipped to the frame. Scales are pixels at
`reference_width` (112, the paper's crop) and are multiplied by W / reference_width, so the
paper's numbers apply at any resolution.

The mask is drawn in patch coordinates u in [-1, 1]^2 (distance d = |u|/2 under the max, L2 or L1
norm for rectangle, ellipse, rhombus) as in the released pick_alphas: alpha = 1 inside d < 0.5, and
with a soft edge alpha falls linearly from 1 at a turning point U(0.30, 0.45) to 0 at d = 0.5.

The texture is premultiplied (rgb * alpha, alpha): bilinear sampling of premultiplied colour gives
correct edges when the patch is later rotated or sheared (no dark fringe from the zero padding).
"""

import torch
import torch.nn.functional as F

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


def mask_alpha(u, kind, edge):
    """Alpha in [0, 1] at patch coordinates u (K or 1, R, R, 2) for masks kind (K,), edge (K,)."""
    ax, ay = u[..., 0].abs(), u[..., 1].abs()
    kind = kind.view(-1, 1, 1)
    d = torch.where(kind == 0, torch.maximum(ax, ay),
                    torch.where(kind == 1, torch.sqrt(ax * ax + ay * ay), ax + ay)) / 2
    return ((0.5 - d) / edge.view(-1, 1, 1)).clamp(0, 1)


def textures(frames, center, size, kind, edge, res):
    """Premultiplied RGBA textures (K, C + 1, res, res) of the source boxes.

    frames (K, C, H, W) float: the frame each patch is cut from; center, size (K, 2) pixels, the box
    lies inside the frame. The texture spans the box: texel (i, j) sits at u = ((2j+1)/res - 1, ...).
    """
    H, W = frames.shape[-2:]
    frame_wh = torch.tensor([W, H], dtype=frames.dtype, device=frames.device)
    eye = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]], dtype=frames.dtype, device=frames.device)
    u = F.affine_grid(eye, (1, 1, res, res), align_corners=False)  # (1, res, res, 2) texel centres
    grid = u * (size / frame_wh)[:, None, None] + (2 * center / frame_wh - 1)[:, None, None]
    rgb = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
    alpha = mask_alpha(u, kind, edge).unsqueeze(1)
    return torch.cat([rgb * alpha, alpha], 1)
