"""The `tubelet` config group: loading and validation.

Configs are the YAML files in tubelab/conf/tubelet/ (composed by Hydra as the group `tubelet`).
validate_tubelet_config checks one before any compute is spent and says what is wrong and how to fix
it: the key, the bad value, and the valid choices or range.
"""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "tubelet"

MODES = ("tubelet", "video_contrast")
MOTIONS = ("none", "linear", "nonlinear")
TRANSFORMS = ("none", "scale", "shear", "rotation")
LINEAR_EXTENTS = ("matched", "speed")
PROBS = {  # key -> what its entries are the probabilities of
    "key_frame_probs": "0, 1, 2, ... inner key frames",
    "interpolation_probs": "uniform, accelerating, decelerating",
    "mask_probs": "rectangle, ellipse, rhombus",
}
RANGES = ("nonlinear_extent", "linear_speed", "scale_range", "opacity")  # [low, high] pairs
KEYS = ("mode", "num_tubelets", "length", "motion", "transform", "reference_width", "patch_scales",
        "aspect_ratios", "size_jitter", "nonlinear_extent", "linear_extent", "linear_speed", "key_frame_probs",
        "interpolation_probs", "rotation_velocity", "shear_velocity", "scale_velocity", "scale_range",
        "mask_probs", "soft_edge_prob", "opacity")


def load_tubelet_config(name="default", **overrides):
    """Plain dict of conf/tubelet/<name>.yaml (on top of default.yaml, as Hydra composes it)."""
    cfg = OmegaConf.load(CONF_DIR / "default.yaml")
    if name != "default":
        cfg = OmegaConf.merge(cfg, OmegaConf.load(CONF_DIR / f"{name}.yaml"))
        cfg.pop("defaults", None)
    cfg = OmegaConf.to_container(cfg)
    cfg.update(overrides)
    return cfg


def validate_tubelet_config(cfg, clip_shape=None):
    """Raise ValueError on the first bad key; return the config as a plain dict.

    clip_shape (C, T, H, W), when given, also checks `length` and the patch scales against the clip.
    """
    cfg = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    missing = [k for k in KEYS if k not in cfg]
    unknown = sorted(k for k in cfg if k not in KEYS)
    if missing:
        raise ValueError(f"tubelet config is missing {', '.join(missing)}; start from "
                         f"conf/tubelet/default.yaml (keys: {', '.join(KEYS)})")
    if unknown:
        raise ValueError(f"tubelet config has unknown keys {', '.join(unknown)}; valid keys: {', '.join(KEYS)}")

    _choice(cfg, "mode", MODES)
    _choice(cfg, "motion", MOTIONS)
    _choice(cfg, "transform", TRANSFORMS)
    _choice(cfg, "linear_extent", LINEAR_EXTENTS)
    if not _is_int(cfg["num_tubelets"]) or cfg["num_tubelets"] < 1:
        _bad(cfg, "num_tubelets", "use an integer >= 1")
    frames = clip_shape[1] if clip_shape is not None else None
    if cfg["length"] is not None and (not _is_int(cfg["length"]) or cfg["length"] < 1
                                      or (frames is not None and cfg["length"] > frames)):
        limit = f"1..{frames} (the clip has {frames} frames)" if frames else ">= 1"
        _bad(cfg, "length", f"use null (the whole clip) or an integer in {limit}")
    if not _is_number(cfg["reference_width"]) or cfg["reference_width"] <= 0:
        _bad(cfg, "reference_width", "use a number > 0")
    for key in ("patch_scales", "aspect_ratios"):
        if not _is_list(cfg[key]) or not cfg[key] or not all(_is_number(v) and v > 0 for v in cfg[key]):
            _bad(cfg, key, "use a non-empty list of numbers > 0")
    for key in ("size_jitter", "rotation_velocity", "shear_velocity", "scale_velocity"):
        if not _is_number(cfg[key]) or cfg[key] < 0:
            _bad(cfg, key, "use a number >= 0")
    for key in RANGES:
        v = cfg[key]
        if not (_is_list(v) and len(v) == 2 and all(_is_number(x) for x in v) and 0 <= v[0] <= v[1]):
            _bad(cfg, key, "use [low, high] with 0 <= low <= high")
    if cfg["opacity"][1] > 1:
        _bad(cfg, "opacity", "use [low, high] with 0 <= low <= high <= 1")
    if not cfg["scale_range"][0] <= 1 <= cfg["scale_range"][1] or cfg["scale_range"][0] <= 0:
        _bad(cfg, "scale_range", "use [low, high] with 0 < low <= 1 <= high (the walk starts at 1)")
    for key, meaning in PROBS.items():
        v = cfg[key]
        if not (_is_list(v) and v and all(_is_number(x) and x >= 0 for x in v) and abs(sum(v) - 1) < 1e-6):
            total = f" (they sum to {sum(v):g})" if _is_list(v) and all(_is_number(x) for x in v) else ""
            _bad(cfg, key, f"use probabilities >= 0 of {meaning} that sum to 1{total}")
    if len(cfg["interpolation_probs"]) != 3 or len(cfg["mask_probs"]) != 3:
        key = "interpolation_probs" if len(cfg["interpolation_probs"]) != 3 else "mask_probs"
        _bad(cfg, key, f"use exactly 3 probabilities: {PROBS[key]}")
    if not _is_number(cfg["soft_edge_prob"]) or not 0 <= cfg["soft_edge_prob"] <= 1:
        _bad(cfg, "soft_edge_prob", "use a probability in [0, 1]")

    if clip_shape is not None:
        height, width = clip_shape[2], clip_shape[3]
        biggest = max(cfg["patch_scales"]) * width / cfg["reference_width"]
        if biggest > min(height, width):
            fit = min(height, width) * cfg["reference_width"] / width
            _bad(cfg, "patch_scales", f"the largest scale is {biggest:.0f} px on a {height}x{width} frame "
                 f"(scales are pixels at reference_width={cfg['reference_width']}); use scales <= {fit:g}")
    return cfg


def _bad(cfg, key, fix):
    raise ValueError(f"tubelet.{key}={cfg[key]!r} is not valid; {fix}")


def _choice(cfg, key, choices):
    if cfg[key] not in choices:
        _bad(cfg, key, f"choose one of: {', '.join(choices)}")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_list(v):
    return isinstance(v, (list, tuple))
