"""Config composition: groups, unknown keys and values fail early with the valid choices listed."""

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

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


def test_mlflow_uri_credentials_move_to_the_environment(monkeypatch):
    for var in config.MLFLOW_CREDENTIALS:
        monkeypatch.setenv(var, "")  # undone after the test: load() sets them
    cfg = config.load("sweep", ["tracking=server", "tracking.uri=https://alice:s3cr3t-pw@mlflow.example.com:5000/"])
    assert cfg.tracking.uri == "https://mlflow.example.com:5000/"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice" and os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cr3t-pw"
    assert "s3cr3t-pw" not in OmegaConf.to_yaml(cfg)


def test_the_same_uri_from_the_environment_is_cleaned_too(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://bob:pw-from-env@127.0.0.1:5000")
    for var in config.MLFLOW_CREDENTIALS:
        monkeypatch.setenv(var, "")
    cfg = config.load("sweep", ["tracking=server"])
    assert cfg.tracking.uri == "http://127.0.0.1:5000" and os.environ["MLFLOW_TRACKING_PASSWORD"] == "pw-from-env"


@pytest.mark.parametrize("override,match", [
    ("+storage.aws_secret_access_key=abc", "looks like a secret"),
    ("+tracking.token=abc", "looks like a secret"),
    ("storage.url=s3://AKIAKEY:secret@bucket/x", "storage.url holds a URL with credentials"),
])
def test_secrets_in_config_are_refused_with_where_to_put_them(override, match):
    with pytest.raises(config.ConfigError, match=match) as e:
        config.load("sweep", [override])
    assert "environment" in str(e.value)
