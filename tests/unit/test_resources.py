import pytest
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


@pytest.mark.parametrize("key,value", [("train_workers", 0), ("decode_actors", 0), ("read_task_cpus", -1)])
def test_bad_values(key, value):
    with pytest.raises(ValueError, match=f"resources.{key}"):
        resources.plan(res(**{key: value}))
