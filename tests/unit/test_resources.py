import json
import os
import warnings

import pytest
import yaml
from omegaconf import OmegaConf

from tubelab import config, resources


def res(**kw):
    return OmegaConf.merge(config.load("pretrain", []).resources, kw)


def test_default_plan_fits_everything_of_a_trial_at_once():
    r = res()
    p = resources.plan(r)
    need = (r.trial_driver_cpus + r.train_workers * r.cpus_per_train_worker
            + r.decode_actors * r.cpus_per_decode_actor + resources.LISTING_CPUS + r.read_task_cpus)
    assert p.cpus_per_trial == pytest.approx(need)
    # The embedded cluster never declares fewer logical CPUs than one trial needs (the 2-core deadlock).
    assert p.logical_cpus >= need
    assert p.max_concurrent_trials >= 1


def test_concurrency_is_what_fits_the_cluster():
    r = res()
    need = resources.cpus_per_trial(r)
    assert resources.plan(r, cluster_cpus=need * 3.5).max_concurrent_trials == 3
    assert resources.plan(res(max_concurrent_trials=2), cluster_cpus=need * 10).max_concurrent_trials == 2


def test_cluster_too_small_fails_fast_with_the_numbers():
    with pytest.raises(ValueError, match=r"one trial needs .* CPUs .* but the cluster has 2"):
        resources.plan(res(), cluster_cpus=2)


@pytest.mark.parametrize("key,value", [("train_workers", 0), ("decode_actors", 0), ("read_task_cpus", -1),
                                       ("footer_reader_actors", 0)])
def test_bad_values(key, value):
    with pytest.raises(ValueError, match=f"resources.{key}"):
        resources.plan(res(**{key: value}))


def test_worker_env_sets_what_workers_lack_and_never_repeats_a_jobs_variable(monkeypatch):
    for var in (resources.FOOTER_ACTORS_ENV, "RAY_JOB_CONFIG_JSON_ENV_VAR", *config.MLFLOW_CREDENTIALS):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(config, "FROM_URI", set())
    monkeypatch.setattr(resources, "FROM_URI", config.FROM_URI)
    assert resources.worker_env(res(footer_reader_actors=3)) == {resources.FOOTER_ACTORS_ENV: "3"}
    monkeypatch.setenv(resources.FOOTER_ACTORS_ENV, "16")
    assert resources.worker_env(res(footer_reader_actors=3)) == {}  # the user's own setting wins
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
    assert resources.worker_env(res()) == {}  # the node's own environment: never copied into a runtime env
    config.FROM_URI.add("MLFLOW_TRACKING_PASSWORD")  # taken out of tracking.uri by config.load
    assert resources.worker_env(res()) == {"MLFLOW_TRACKING_PASSWORD": "pw"}
    job = {"runtime_env": {"env_vars": {"MLFLOW_TRACKING_PASSWORD": "pw"}}}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(job))  # a `ray job submit` that sets it
    assert resources.worker_env(res()) == {}


# Placement: which custom resources mark decode and train nodes is config (resources.*), not code.

def test_no_markers_by_default_so_the_embedded_run_is_unchanged():
    r = res()
    assert r.decode_node_resource is None and r.train_node_resource is None
    assert resources.placement(r, "decode") == {} and resources.placement(r, "train") == {}
    assert resources.markers(r) == {}


def test_markers_become_small_requests_of_decode_actors_and_train_workers():
    from tubelab.training.common import scaling_config

    r = res(decode_node_resource="decode_node", train_node_resource="train_node")
    assert resources.placement(r, "decode") == {"decode_node": resources.MARKER_AMOUNT}
    assert resources.placement(r, "train") == {"train_node": resources.MARKER_AMOUNT}
    assert 0 < resources.MARKER_AMOUNT <= 0.01  # pins placement; never what limits actors per node
    per_worker = scaling_config(r).resources_per_worker
    assert per_worker == {"CPU": r.cpus_per_train_worker, "train_node": resources.MARKER_AMOUNT}
    assert "train_node" not in scaling_config(res()).resources_per_worker


@pytest.mark.parametrize("key,value", [("decode_node_resource", "CPU"), ("train_node_resource", "GPU"),
                                       ("train_node_resource", " "), ("cluster_cpus", 0)])
def test_bad_placement_values(key, value):
    with pytest.raises(ValueError, match=f"resources.{key}"):
        resources.check(res(**{key: value}))


def test_cluster_without_the_marker_fails_fast_unless_it_autoscales():
    r = res(decode_node_resource="decode_node", train_node_resource="train_node")
    need = resources.cpus_per_trial(r)
    fixed = {"CPU": need * 2, "decode_node": 1.0}  # no train node
    with pytest.raises(ValueError, match=r"train_node_resource='train_node' but no node of the cluster has that resource"):
        resources.check_cluster(r, fixed)
    ok = resources.check_cluster(r, {**fixed, "train_node": 2.0})
    assert ok.max_concurrent_trials == 2
    # Autoscaling from zero workers: a CPU-less head and no markers yet; plan for what it can grow to.
    grows = resources.check_cluster(res(decode_node_resource="decode_node", train_node_resource="train_node",
                                        cluster_cpus=need * 3), {"CPU": 0.0})
    assert grows.logical_cpus == int(need * 3) and grows.max_concurrent_trials == 3
    with pytest.raises(ValueError, match="one trial needs"):
        resources.check_cluster(res(cluster_cpus=1), {"CPU": 0.0})


def test_cluster_without_markers_plans_on_its_cpus_as_before():
    r = res()
    need = resources.cpus_per_trial(r)
    assert resources.check_cluster(r, {"CPU": need * 2.5}) == resources.plan(r, cluster_cpus=need * 2.5)
    with pytest.raises(ValueError, match="but the cluster has 0"):
        resources.check_cluster(r, {"CPU": 0.0})


@pytest.mark.parametrize("value, expected", [(None, False), ("0", False), ("", False), ("1", True)])
def test_verbose_reaches_the_workers_and_quiet_hides_only_library_noise(monkeypatch, value, expected):
    for name in ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "RAY_DATA_LOGGING_CONFIG"):
        monkeypatch.setenv(name, "")  # so that monkeypatch restores what hush() sets
        monkeypatch.delenv(name)
    if value is None:
        monkeypatch.delenv(resources.VERBOSE_ENV, raising=False)
    else:
        monkeypatch.setenv(resources.VERBOSE_ENV, value)
    assert resources.verbose() is expected
    assert (resources.worker_env(res()).get(resources.VERBOSE_ENV) == "1") is expected
    with pytest.warns(UserWarning, match="a warning of our own"):  # hush() filters by message, not wholesale
        resources.hush()  # (its filters end with this block)
        warnings.warn("a warning of our own")
    assert ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" in os.environ) is not expected
    assert ("RAY_DATA_LOGGING_CONFIG" in os.environ) is not expected


def test_quiet_ray_data_logging_is_ray_datas_default_with_a_warning_console():
    """conf/ray_data_logging.yaml must track the installed Ray Data's own config (a Ray upgrade that
    changes it fails here, not in a user's terminal)."""
    from ray.data._internal.logging import DEFAULT_CONFIG

    ours = yaml.safe_load(resources.RAY_DATA_LOGGING.read_text())
    assert ours["handlers"].pop("console")["level"] == "WARNING"
    theirs = {**DEFAULT_CONFIG, "handlers": {k: v for k, v in DEFAULT_CONFIG["handlers"].items() if k != "console"}}
    assert ours == theirs


def test_a_total_batch_is_split_evenly_over_the_workers_or_refused():
    assert resources.per_worker_batch(32, 4, "pretrain.batch_size") == 8
    assert resources.per_worker_batch(32, 1, "pretrain.batch_size") == 32
    with pytest.raises(ValueError) as e:
        resources.per_worker_batch(12, 5, "setting.batch_size")
    assert "setting.batch_size=12" in str(e.value) and "(1, 2, 3, 4, 6, 12)" in str(e.value)
