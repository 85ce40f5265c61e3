"""Tubelet synthesis for tubelet-contrastive pretraining (Thoker et al., ICCV 2023).

A positive pair is two clips of different videos carrying the same synthetic moving patches
(tubelets), so motion is all they share. apply_tubelets draws the tubelets for a batch of pairs and
pastes them, batched in torch, on the clips' device.

    out = apply_tubelets(clips_a, clips_b, cfg, generator=torch.Generator().manual_seed(0))
    out.a, out.b      # (B, C, T, H, W), same dtype and device as the inputs
    out.params        # per-frame parameters, see TubeletOutput

Non-paper choices are documented in docs/tubelets.md and in the module docstrings.
"""

from dataclasses import dataclass, field

import torch

from .config import load_tubelet_config, validate_tubelet_config
from .overlay import paste
from .params import sample_params

__all__ = ["apply_tubelets", "TubeletOutput", "validate_tubelet_config", "load_tubelet_config"]


@dataclass
class TubeletOutput:
    """Overlaid clips and the parameters that made them, tubelets in paste order (largest first).

    params, each (B, N, T, ...) unless noted; pixels are continuous coordinates (pixel edges at
    integers) of the output frame:
      center (.., 2) x, y      size (.., 2) w, h of the patch box     angle degrees, clockwise
      shear (.., 2) sx, sy     scale size factor (1 unless transform=scale)
      opacity in [0, 1], 0 where inactive       active bool, the tubelet's frames
      per tubelet (B, N): source_frame (frame of clip A the patch is cut from), source_center and
      source_size (B, N, 2, the cut box), mask (0 rectangle, 1 ellipse, 2 rhombus), edge (soft-edge
      width in mask distance units; 1e-4 = hard edge).
    Empty for mode=video_contrast.
    """

    a: torch.Tensor
    b: torch.Tensor
    params: dict = field(default_factory=dict)


@torch.no_grad()
def apply_tubelets(clips_a, clips_b, cfg, generator=None):
    """Paste the same tubelets, cut from clips_a, into clips_a and clips_b.

    clips_a, clips_b: (B, C, T, H, W) uint8 or float, same shape, dtype and device; pair i is
    (clips_a[i], clips_b[i]) from two different videos. cfg: the `tubelet` config (dict or
    DictConfig). generator: torch.Generator for all random draws (on any device; parameters are drawn
    there and moved to the clips' device); None uses torch's global RNG.
    """
    if clips_a.shape != clips_b.shape or clips_a.dtype != clips_b.dtype or clips_a.device != clips_b.device:
        raise ValueError(f"clips_a and clips_b must match: got {tuple(clips_a.shape)} {clips_a.dtype} "
                         f"{clips_a.device} and {tuple(clips_b.shape)} {clips_b.dtype} {clips_b.device}")
    if clips_a.dim() != 5:
        raise ValueError(f"clips must be (B, C, T, H, W); got shape {tuple(clips_a.shape)}")
    B, C, T, H, W = clips_a.shape
    cfg = validate_tubelet_config(cfg, clip_shape=(C, T, H, W))
    if cfg["mode"] == "video_contrast":
        return TubeletOutput(clips_a, clips_b, {})
    params = sample_params(generator, cfg, B, T, H, W)
    params = {k: v.to(clips_a.device) for k, v in params.items()}
    a, b = paste(clips_a, clips_b, params)
    return TubeletOutput(a, b, params)
