"""Config composition: groups, unknown keys and values fail early with the valid choices listed."""

from pathlib import Path

import pytest

from tubelab import config
from tubelab.config import ConfigError


def test_sweep_config_composes_with_repo_groups():
    cfg = config.load("sweep", [])
    assert cfg.choices.ablation == "demo"
    assert cfg.dataset.name == "synthetic"
    assert cfg.model.name == "r2plus1d_tiny"
    assert list(cfg.ablation.downstream) == ["synthetic"]
    assert Path(cfg.home).is_absolute()
    assert cfg.storage.url == cfg.home


def test_home_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path / "state"))
    cfg = config.load("pretrain", [])
    assert cfg.home == str(tmp_path / "state")


def test_unknown_ablation_lists_valid_choices():
    with pytest.raises(ConfigError, match=r"unknown ablation 'nope'; choose one of: .*demo"):
        config.load("sweep", ["ablation=nope"])


def test_unknown_group_option_lists_valid_choices():
    with pytest.raises(ConfigError, match=r"unknown tubelet 'zigzag'; choose one of: default, linear, no_motion"):
        config.load("sweep", ["tubelet=zigzag"])


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        config.load("sweep", ["pretrain.epochz=3"])
    assert "'pretrain.epochz'" in str(e.value)
    assert "epochs" in str(e.value) and "batch_size" in str(e.value)


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match=r"unknown config key 'bogus'; valid keys at the top level: .*pretrain"):
        config.load("pretrain", ["bogus=1"])


def test_malformed_override():
    with pytest.raises(ConfigError, match="key=value"):
        config.load("sweep", ["ablation"])


def test_flatten_for_mlflow_params():
    assert config.flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None}) == {"a.b": 1, "a.c.d": [1, 2], "e": None}
