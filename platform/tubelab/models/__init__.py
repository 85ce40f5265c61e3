"""Video backbones (torchvision-compatible R(2+1)D), heads and strict checkpoint loading."""

from tubelab.models.checkpoint import CheckpointMismatchError, CheckpointReadError, KeyReport, load_backbone_state
from tubelab.models.heads import ProjectionHead
from tubelab.models.r2plus1d import R2Plus1D, r2plus1d_18, r2plus1d_tiny

MODELS = {"r2plus1d_18": r2plus1d_18, "r2plus1d_tiny": r2plus1d_tiny}


def build_model(cfg, num_classes):
    """Backbone from the Hydra `model` group (conf/model/*.yaml): cfg["name"] picks the builder, cfg["input"]
    (default "rgb") what its stem sees (tubelab.models.r2plus1d.INPUTS)."""
    name = cfg["name"]
    if name not in MODELS:
        raise ValueError(f"unknown model name {name!r}; valid names: {', '.join(sorted(MODELS))}")
    return MODELS[name](num_classes=num_classes, input=cfg.get("input", "rgb"))


__all__ = ["MODELS", "build_model", "R2Plus1D", "r2plus1d_18", "r2plus1d_tiny", "ProjectionHead",
           "load_backbone_state", "KeyReport", "CheckpointMismatchError",
           "CheckpointReadError"]
