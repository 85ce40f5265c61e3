"""Colour jitter on the training device, batched: one parameter draw per pair, shared by both clips.

Reference recipe (tubelet-contrast.md): each jitter applied with p = 0.2; brightness +-32 (pixel
values), contrast x exp(+-0.2), saturation x exp(+-0.1), hue +-12. The reference's hue is on
OpenCV's 0-180 scale, so +-12 there is +-24 degrees here (tubelab's reading; documented in
docs/decisions.md). Applied in a fixed order: brightness, contrast, saturation, hue. Contrast
(`contrast_mode`): "multiply" scales the pixel values by the factor, as the official RandomContrast
does; "about_mean" scales them about the clip's mean grey (tubelab's earlier reading, which keeps the
mean brightness).

`finetune_colour_jitter` is the other recipe: SEVERE's fine-tuning ColorJitter(0.4, 0.4, 0.4, 0.2).
"""

from __future__ import annotations

import math

import torch

GRAY = (0.299, 0.587, 0.114)
CONTRAST_MODES = ("multiply", "about_mean")


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
    if cfg.contrast_mode not in CONTRAST_MODES:
        raise ValueError(f"colour_jitter.contrast_mode={cfg.contrast_mode!r} is not valid; choose one of: "
                         f"{', '.join(CONTRAST_MODES)}")
    out = []
    for x in clips:
        x = x + bright
        if cfg.contrast_mode == "multiply":
            x = x * contrast
        else:
            mean = _gray(x).mean(dim=(2, 3, 4), keepdim=True)
            x = (x - mean) * contrast + mean
        g = _gray(x)
        x = (x - g) * saturation + g
        x = torch.einsum("nij,njthw->nithw", hue_m.to(x.dtype), x)
        out.append(x.clamp(0, 255))
    return out


def _hue_shift(x: torch.Tensor, shift: float) -> torch.Tensor:
    """[0, 1] RGB (3, ...) with its HSV hue moved by `shift` turns (PIL's adjust_hue, without its uint8 steps)."""
    r, g, b = x.unbind(0)
    maxc, minc = x.max(dim=0).values, x.min(dim=0).values
    v, delta = maxc, maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    d = delta.clamp_min(1e-12)
    h = torch.where(maxc == r, ((g - b) / d) % 6, torch.where(maxc == g, (b - r) / d + 2, (r - g) / d + 4)) / 6
    h = torch.where(delta > 0, h, torch.zeros_like(h))
    h = (h + shift) % 1.0
    k = lambda n: (n + h * 6) % 6  # noqa: E731  (the standard HSV -> RGB formula, one channel per n)
    return torch.stack([v - v * s * (torch.minimum(k(n), 4 - k(n)).clamp(0, 1)) for n in (5, 3, 1)])


def finetune_colour_jitter(clips: torch.Tensor, strengths, generator: torch.Generator) -> torch.Tensor:
    """SEVERE's fine-tuning ColorJitter(brightness, contrast, saturation, hue) on uint8 (B, 3, T, H, W) clips ->
    float [0, 255]. As its video_transforms.ColorJitter applies torchvision's PIL functions: one draw per clip
    for every frame of it, factors U[max(0, 1 - x), 1 + x] (hue U[-h, h] turns), the four applied in an order
    drawn per clip; brightness scales, contrast blends each frame with the mean of its own grey image,
    saturation blends with the grey image, hue rotates H in HSV; clipped to [0, 1] after each."""
    b, c, s, h = (float(x) for x in strengths)
    n, dev = clips.shape[0], generator.device

    def u(low, high):
        return (low + (high - low) * torch.rand(n, generator=generator, device=dev)).tolist()

    factors = [u(max(0.0, 1 - b), 1 + b), u(max(0.0, 1 - c), 1 + c), u(max(0.0, 1 - s), 1 + s), u(-h, h)]
    orders = [torch.randperm(4, generator=generator, device=dev).tolist() for _ in range(n)]
    w = torch.tensor(GRAY, device=clips.device).view(3, 1, 1, 1)
    out = []
    for i in range(n):
        x = clips[i].float() / 255
        for op in orders[i]:
            f = factors[op][i]
            if op == 0:
                x = x * f
            elif op == 1:
                mean = (x * w).sum(dim=0, keepdim=True).mean(dim=(2, 3), keepdim=True)  # per frame
                x = f * x + (1 - f) * mean
            elif op == 2:
                x = f * x + (1 - f) * (x * w).sum(dim=0, keepdim=True)
            else:
                x = _hue_shift(x, f)
            x = x.clamp(0, 1)
        out.append(x)
    return torch.stack(out) * 255
