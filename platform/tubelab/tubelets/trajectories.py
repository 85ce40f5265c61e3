"""Where a tubelet's centre is in each of its frames: none, linear or non-linear motion.

Centres are continuous pixel coordinates (x, y) with pixel edges at integers, inside the frame.

- none: the centre stays where the box was placed (box fully inside the frame), the paper's
  "Tubelet generation" / "No motion" rows.
- nonlinear (the released code's only motion): 48 uniform random points per axis, Gaussian
  smoothing (sigma 8, scipy's 'reflect' boundary), min-max normalised, times an extent
  U(nonlinear_extent) pixels at reference width (released: randint(20, 90) at 112, doubled at 224;
  here drawn continuously and scaled by W / reference_width), placed at a random offset inside the
  frame, then resampled to the tubelet's length by linear interpolation. The extent is shared by
  both axes and capped by the frame's height for wide frames (the released code assumes square).
- linear (the paper's "Linear" row; the released code never wires it up): constant velocity along a
  straight line. `linear_extent`:
  - "matched" (default): the travel along each axis is U(nonlinear_extent) pixels at reference width,
    drawn per axis with a random sign, so a linear tubelet spans as much of the frame per axis as a
    non-linear one and Table 3 compares the kind of motion, not its size (tests/unit/tubelets:
    the per-axis extents of the two have the same distribution);
  - "speed": direction U(0, 2pi), speed U(linear_speed) pixels per frame ([1, 5]: 15-75 px over 16
    frames in all, but only ~29 px per axis on average against the non-linear ~55).
  When the path would not fit in the frame (long tubelets) it is shortened until it fits; the start is
  drawn so that the whole line is inside.
"""

import functools
import math

import torch

from .draws import uniform

NONLINEAR_POINTS = 48
NONLINEAR_SIGMA = 8.0


def gaussian_smooth(x, sigma):
    """1-D Gaussian filter along the last axis, like scipy.ndimage.gaussian_filter1d(mode='reflect').

    The filter is linear, so it is one matrix product with the (n, n) matrix that smooths unit vectors
    (built once per length, sigma, dtype and device).
    """
    return x @ _smoothing_matrix(x.shape[-1], float(sigma), x.dtype, x.device)


@functools.lru_cache(maxsize=16)
def _smoothing_matrix(n, sigma, dtype, device):
    radius = int(4 * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    src = (torch.arange(n).view(-1, 1) + torch.arange(-radius, radius + 1)) % (2 * n)  # (output, tap)
    src = torch.where(src >= n, 2 * n - 1 - src, src)  # half-sample symmetric extension
    matrix = torch.zeros(n, n, dtype=torch.float64)
    out = torch.arange(n).view(-1, 1).expand_as(src)
    matrix.index_put_((src.reshape(-1), out.reshape(-1)), kernel.repeat(n), accumulate=True)
    return matrix.to(dtype=dtype, device=device)


def sample_centers(generator, cfg, size, length, height, width):
    """Centres (B, N, length, 2) for boxes of `size` (B, N, 2) under cfg['motion']."""
    shape = size.shape[:-1]
    frame = torch.tensor([width, height], dtype=torch.float32, device=size.device)
    px = width / cfg["reference_width"]
    t = torch.arange(length, dtype=torch.float32, device=size.device) / max(length - 1, 1)

    if cfg["motion"] == "none":
        start = uniform(generator, shape + (2,), size / 2, frame - size / 2)
        return start.unsqueeze(-2).expand(shape + (length, 2)).contiguous()

    if cfg["motion"] == "linear":
        if cfg["linear_extent"] == "matched":
            sign = torch.where(uniform(generator, shape + (2,), 0.0, 1.0) < 0.5, -1.0, 1.0)
            travel = uniform(generator, shape + (2,), *cfg["nonlinear_extent"]) * px * sign
        else:
            speed = uniform(generator, shape, *cfg["linear_speed"]) * px
            heading = uniform(generator, shape, 0.0, 2 * math.pi)
            travel = torch.stack([heading.cos(), heading.sin()], -1) * (speed * (length - 1)).unsqueeze(-1)
        travel = travel * (frame / travel.abs().clamp(min=1e-6)).amin(-1, keepdim=True).clamp(max=1)
        start = uniform(generator, shape + (2,), (-travel).clamp(min=0), frame - travel.clamp(min=0))
        return start.unsqueeze(-2) + t.view(-1, 1) * travel.unsqueeze(-2)

    # nonlinear
    points = uniform(generator, shape + (2, NONLINEAR_POINTS), 0.0, 1.0)
    path = gaussian_smooth(points, NONLINEAR_SIGMA)
    low, high = path.amin(-1, keepdim=True), path.amax(-1, keepdim=True)
    path = (path - low) / (high - low).clamp(min=1e-6)
    extent = uniform(generator, shape, *cfg["nonlinear_extent"]) * px
    extent = torch.minimum(extent.unsqueeze(-1), frame)  # (B, N, 2)
    offset = uniform(generator, shape + (2,), 0.0, frame - extent)
    path = path * extent.unsqueeze(-1) + offset.unsqueeze(-1)  # (B, N, 2, P)
    pos = t * (NONLINEAR_POINTS - 1)
    i0 = pos.floor().long().clamp(max=NONLINEAR_POINTS - 2)
    w = pos - i0
    path = path[..., i0] * (1 - w) + path[..., i0 + 1] * w
    return path.transpose(-1, -2)
