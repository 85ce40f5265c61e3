"""Colour jitter on the training device, batched: one parameter draw per pair, shared by both clips.

Reference recipe (tubelet-contrast.md): each jitter applied with p = 0.2; brightness +-32 (pixel
values), contrast x exp(+-0.2), saturation x exp(+-0.1), hue +-12. The reference's hue is on
OpenCV's 0-180 scale, so +-12 there is +-24 degrees here (tubelab's reading; documented in
docs/decisions.md). Applied in a fixed order: brightness, contrast, saturation, hue.
"""

from __future__ import annotations

import math

import torch

GRAY = (0.299, 0.587, 0.114)


def _draw(n: int, p: float, low: float, high: float, identity: float, generator, device) -> torch.Tensor:
    """n values: U(low, high) with probability p, else `identity`."""
    apply = torch.rand(n, generator=generator, device=generator.device) < p
    value = low + (high - low) * torch.rand(n, generator=generator, device=generator.device)
    return torch.where(apply, value, torch.full_like(value, identity)).to(device).view(n, 1, 1, 1, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(GRAY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _hue_matrix(degrees: torch.Tensor) -> torch.Tensor:
    """(n,) degrees -> (n, 3, 3) RGB hue rotation (rotation about the gray axis in YIQ space)."""
    rgb_to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                              device=degrees.device)
    yiq_to_rgb = torch.linalg.inv(rgb_to_yiq)
    theta = degrees * math.pi / 180
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.zeros(degrees.shape[0], 3, 3, device=degrees.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    return yiq_to_rgb @ rot @ rgb_to_yiq


def colour_jitter(clips: list[torch.Tensor], cfg, generator: torch.Generator) -> list[torch.Tensor]:
    """Jitter float [0, 255] clips (B, 3, T, H, W); every tensor of `clips` gets the same per-pair draw."""
    n, device = clips[0].shape[0], clips[0].device
    p = cfg.prob
    bright = _draw(n, p, -cfg.brightness, cfg.brightness, 0.0, generator, device)
    contrast = _draw(n, p, -cfg.contrast, cfg.contrast, 0.0, generator, device).exp()
    saturation = _draw(n, p, -cfg.saturation, cfg.saturation, 0.0, generator, device).exp()
    hue = _draw(n, p, -cfg.hue_degrees, cfg.hue_degrees, 0.0, generator, device).flatten()
    hue_m = _hue_matrix(hue)
    out = []
    for x in clips:
        x = x + bright
        mean = _gray(x).mean(dim=(2, 3, 4), keepdim=True)
        x = (x - mean) * contrast + mean
        g = _gray(x)
        x = (x - g) * saturation + g
        x = torch.einsum("nij,njthw->nithw", hue_m.to(x.dtype), x)
        out.append(x.clamp(0, 255))
    return out
