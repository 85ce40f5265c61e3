"""The `tubelet` config group: paper defaults, Hydra composition, validation messages."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tubelab.tubelets import load_tubelet_config, validate_tubelet_config
from tubelab.tubelets.config import CONF_DIR, KEYS

CLIP = (3, 16, 112, 112)


def test_default_is_the_paper_setting():
    cfg = validate_tubelet_config(load_tubelet_config(), CLIP)
    assert (cfg["mode"], cfg["num_tubelets"], cfg["length"]) == ("tubelet", 2, None)
    assert (cfg["motion"], cfg["transform"]) == ("nonlinear", "rotation")
    assert cfg["patch_scales"] == [16, 24, 28, 32, 48, 64] and cfg["reference_width"] == 112
    assert cfg["key_frame_probs"] == [0.5, 0.3, 0.2] and cfg["mask_probs"] == [0.5, 0.35, 0.15]
    assert set(cfg) == set(KEYS)


@pytest.mark.parametrize("name, expected", [
    ("default", {"motion": "nonlinear", "transform": "rotation", "mode": "tubelet"}),
    ("no_motion", {"motion": "none", "transform": "none", "mode": "tubelet"}),
    ("linear", {"motion": "linear", "transform": "none", "mode": "tubelet"}),
    ("video_contrast", {"mode": "video_contrast"}),
])
def test_hydra_composes_each_group_option(name, expected, tmp_path):
    (tmp_path / "primary.yaml").write_text(
        f"defaults:\n  - tubelet: {name}\n  - _self_\nhydra:\n  searchpath: [file://{CONF_DIR.parent}]\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base=None):
        cfg = compose(config_name="primary")
    tubelet = validate_tubelet_config(cfg.tubelet, CLIP)
    assert {k: tubelet[k] for k in expected} == expected
    assert tubelet == load_tubelet_config(name)  # the plain loader agrees with Hydra


def test_group_option_composes_directly_and_accepts_overrides():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="linear", overrides=["num_tubelets=3"])
    cfg = OmegaConf.to_container(cfg)
    assert validate_tubelet_config(cfg, CLIP)["num_tubelets"] == 3


@pytest.mark.parametrize("override, clip, words", [
    ({"motion": "zigzag"}, CLIP, ["tubelet.motion='zigzag'", "none, linear, nonlinear"]),
    ({"mode": "mixup"}, CLIP, ["tubelet.mode='mixup'", "tubelet, video_contrast"]),
    ({"transform": "warp"}, CLIP, ["tubelet.transform='warp'", "none, scale, shear, rotation"]),
    ({"num_tubelets": 0}, CLIP, ["tubelet.num_tubelets=0", "integer >= 1"]),
    ({"num_tubelets": 1.5}, CLIP, ["tubelet.num_tubelets=1.5", "integer >= 1"]),
    ({"length": 17}, CLIP, ["tubelet.length=17", "1..16"]),
    ({"length": 0}, CLIP, ["tubelet.length=0", "1..16"]),
    ({"patch_scales": [16, 200]}, CLIP, ["tubelet.patch_scales=[16, 200]", "use scales <= 112"]),
    ({"patch_scales": [16, 64]}, (3, 16, 32, 112), ["tubelet.patch_scales", "32x112", "use scales <= 32"]),
    ({"opacity": [0.9, 0.8]}, CLIP, ["tubelet.opacity=[0.9, 0.8]", "low <= high"]),
    ({"linear_speed": [-1, 5]}, CLIP, ["tubelet.linear_speed=[-1, 5]", "0 <= low"]),
    ({"rotation_velocity": -6}, CLIP, ["tubelet.rotation_velocity=-6", ">= 0"]),
    ({"scale_range": [1.2, 1.5]}, CLIP, ["tubelet.scale_range", "low <= 1 <= high"]),
    ({"key_frame_probs": [0.5, 0.3]}, CLIP, ["tubelet.key_frame_probs=[0.5, 0.3]", "sum to 1", "0.8"]),
    ({"mask_probs": [0.5, 0.5]}, CLIP, ["tubelet.mask_probs", "exactly 3", "rectangle, ellipse, rhombus"]),
    ({"interpolation_probs": [1.2, -0.1, -0.1]}, CLIP, ["tubelet.interpolation_probs", ">= 0"]),
    ({"soft_edge_prob": 2}, CLIP, ["tubelet.soft_edge_prob=2", "[0, 1]"]),
    ({"reference_width": 0}, CLIP, ["tubelet.reference_width=0", "> 0"]),
    ({"aspect_ratios": []}, CLIP, ["tubelet.aspect_ratios=[]", "non-empty"]),
])
def test_validation_names_key_value_and_fix(override, clip, words):
    with pytest.raises(ValueError) as error:
        validate_tubelet_config(load_tubelet_config(**override), clip)
    for word in words:
        assert word in str(error.value)


def test_validation_rejects_unknown_and_missing_keys():
    with pytest.raises(ValueError, match="unknown keys num_tubelet.*valid keys: mode"):
        validate_tubelet_config(load_tubelet_config(num_tubelet=2))
    cfg = load_tubelet_config()
    del cfg["opacity"]
    with pytest.raises(ValueError, match="missing opacity"):
        validate_tubelet_config(cfg)


def test_validation_accepts_a_dictconfig_and_every_shipped_file():
    for path in sorted(CONF_DIR.glob("*.yaml")):
        validate_tubelet_config(OmegaConf.create(load_tubelet_config(path.stem)), CLIP)
