"""How a tubelet's patch changes over time: none, scale, shear or rotation.

All three are key-frame random walks (see keyframes.py) that start at the identity:
- rotation: angle in degrees, change U(-v*d, v*d) with v = rotation_velocity (released: 6), d the
  frames between key frames. Positive angles turn clockwise on screen (y points down), as
  imutils.rotate_bound in the released code; patch and mask turn together, bounds enlarged.
- shear: factors (sx, sy), change U(-v*d, v*d) with v = shear_velocity (released: 0.066), one type
  per clip drawn uniformly from x, y, xy (x then y, as the released shear_image_xy). Each axis has
  its own key frames.
- scale: not in the released code (its size velocity is ~0). tubelab: a size factor that starts at
  1 and changes by U(-v*d, v*d) with v = scale_velocity at each key frame, clamped to scale_range.
  Defaults v = 0.033 and [0.5, 1.5]: over a 16-frame clip the walk can reach, but not pass, half or
  one and a half times the starting size; longer clips are held inside by the clamp.
A transform that is not selected stays at its identity (angle 0, shear 0, scale 1).
"""

import torch

from .draws import choice, device_of
from .keyframes import random_walk

SHEAR_TYPES = ("x", "y", "xy")


def sample_transforms(generator, cfg, shape, length):
    """angle (*shape, L), shear (*shape, L, 2) and scale (*shape, L) for tubelets of `shape`."""
    dev = device_of(generator)
    angle = torch.zeros(shape + (length,), device=dev)
    shear = torch.zeros(shape + (length, 2), device=dev)
    scale = torch.ones(shape + (length,), device=dev)
    walk = dict(key_frame_probs=cfg["key_frame_probs"], interpolation_probs=cfg["interpolation_probs"])
    if cfg["transform"] == "rotation":
        angle = random_walk(generator, shape, length, cfg["rotation_velocity"], 0.0, **walk)
    elif cfg["transform"] == "shear":
        kind = choice(generator, shape[:-1] + (1,), [1 / 3, 1 / 3, 1 / 3])  # x, y, xy per clip
        sx = random_walk(generator, shape, length, cfg["shear_velocity"], 0.0, **walk)
        sy = random_walk(generator, shape, length, cfg["shear_velocity"], 0.0, **walk)
        shear = torch.stack([sx * (kind != 1).unsqueeze(-1), sy * (kind != 0).unsqueeze(-1)], -1)
    elif cfg["transform"] == "scale":
        scale = random_walk(generator, shape, length, cfg["scale_velocity"], 1.0, **walk,
                            bounds=cfg["scale_range"])
    return angle, shear, scale


def patch_matrix(angle, shear):
    """Linear map (*, 2, 2) from patch offsets to frame offsets: rotation @ shear (y-shear of x-shear)."""
    rad = torch.deg2rad(angle)
    cos, sin = rad.cos(), rad.sin()
    sx, sy = shear[..., 0], shear[..., 1]
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    one = torch.ones_like(sx)
    shearing = torch.stack([torch.stack([one, sx], -1), torch.stack([sy, sx * sy + one], -1)], -2)
    return rotation @ shearing
