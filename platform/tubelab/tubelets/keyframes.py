"""Key frames and interpolation between them, batched.

As in the released code (CtP's dynamic_utils): the first and last frame are always key frames, plus
0, 1 or 2 inner ones (`key_frame_probs`) placed near even spacing with a jitter of a third of the
spacing. Between two key frames a value moves uniformly, accelerating or decelerating
(`interpolation_probs`, one draw per segment). Quantities that change by a random walk (rotation,
shear, scale) add U(-v*d, v*d) at each key frame, d = frames since the previous key frame.

Key frames are returned as a fixed-width tensor: unused slots repeat the last frame, so they form
zero-length segments that add nothing to a walk and are never selected by interpolation.
"""

import torch

from .draws import choice, uniform


def sample_key_frames(generator, shape, length, probs):
    """Sorted key frame indices (*shape, len(probs) + 1), float32; first 0, last length - 1."""
    inner = choice(generator, shape, probs).float()  # how many inner key frames
    slots = torch.arange(1, len(probs), dtype=torch.float32, device=inner.device)
    spacing = length / (inner + 1)
    jitter_range = torch.floor(spacing / 3).unsqueeze(-1)
    jitter = torch.floor(uniform(generator, shape + (len(slots),), -jitter_range, jitter_range))
    ticks = (torch.floor(spacing.unsqueeze(-1) * slots) + jitter).clamp(0, length - 1)
    ticks = torch.where(slots <= inner.unsqueeze(-1), ticks, torch.full_like(ticks, length - 1))
    first = torch.zeros(shape + (1,), device=inner.device)
    last = torch.full(shape + (1,), float(length - 1), device=inner.device)
    return torch.cat([first, ticks, last], -1).sort(-1).values


def interpolate(values, keys, kinds, length):
    """Values at key frames (*S, K) -> values at every frame (*S, length).

    kinds (*S, K - 1): per segment 0 = uniform, 1 = accelerating (f^2), 2 = decelerating (1-(1-f)^2).
    """
    t = torch.arange(length, dtype=keys.dtype, device=keys.device).expand(keys.shape[:-1] + (length,))
    seg = torch.searchsorted(keys[..., 1:].contiguous(), t.contiguous()).clamp(max=keys.shape[-1] - 2)
    k0, k1 = keys.gather(-1, seg), keys.gather(-1, seg + 1)
    v0, v1 = values.gather(-1, seg), values.gather(-1, seg + 1)
    f = ((t - k0) / (k1 - k0).clamp(min=1)).clamp(0, 1)
    kind = kinds.gather(-1, seg)
    f = torch.where(kind == 1, f * f, torch.where(kind == 2, 1 - (1 - f) ** 2, f))
    return v0 + (v1 - v0) * f


def random_walk(generator, shape, length, velocity, start, key_frame_probs, interpolation_probs,
                bounds=None):
    """Per-frame values (*shape, length) of a key-frame random walk starting at `start`.

    Key frames and interpolation kinds are drawn once per clip (shape[:-1]) and shared by its
    tubelets, as in the released code; the steps are drawn per tubelet. `bounds` clamps the values
    at key frames (the interpolation never leaves the interval between two of them).
    """
    clip_shape = shape[:-1] + (1,)
    keys = sample_key_frames(generator, clip_shape, length, key_frame_probs)
    kinds = choice(generator, clip_shape + (keys.shape[-1] - 1,), interpolation_probs)
    keys, kinds = keys.expand(shape + keys.shape[-1:]), kinds.expand(shape + kinds.shape[-1:])
    steps = uniform(generator, keys.shape[:-1] + (keys.shape[-1] - 1,), -1.0, 1.0) * velocity * keys.diff()
    values = start + torch.cat([torch.zeros_like(steps[..., :1]), steps.cumsum(-1)], -1)
    if bounds is not None:
        values = values.clamp(*bounds)
    return interpolate(values, keys, kinds, length)
