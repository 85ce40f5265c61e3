import copy

from tubelab.experiments.fingerprint import code_version, trial_fingerprint

CFG = {"name": "a", "home": "/tmp/x", "seed": 0, "tubelet": {"motion": "linear"}, "ablation": {"description": "d"},
       "tracking": {"uri": None}, "storage": {"url": "s3://b"}, "resources": {"train_workers": 2, "address": None},
       "choices": {"ablation": "demo", "storage": "s3", "tracking": "local", "tubelet": "linear"}}
SETTINGS = [{"setting": {"id": "proxy_ucf_1000", "epochs": 6}, "home": "/tmp/x"}]
DATA = {"synthetic": "abc"}


def fp(cfg=CFG, settings=SETTINGS, data=DATA, code="c1"):
    return trial_fingerprint(cfg, settings, data, code)


def test_same_experiment_same_fingerprint_whatever_its_name_place_or_ablation():
    other = copy.deepcopy(CFG)
    other.update(name="b", home="/elsewhere", ablation={"description": "another table"})
    other["storage"]["url"], other["resources"]["address"] = "/local", "ray://head:10001"
    other["resources"]["cluster_config"] = "infra/aws/cluster.yaml"  # checked before Ray starts, not a score input
    other["choices"].update(ablation="table3_motion", storage="local", tracking="server")  # the group choices too
    assert fp(other) == fp()


def test_anything_that_changes_scores_changes_the_fingerprint():
    base = fp()
    for change in (lambda c: c.update(seed=1), lambda c: c["tubelet"].update(motion="nonlinear"),
                   lambda c: c["choices"].update(tubelet="nonlinear"),
                   lambda c: c["resources"].update(train_workers=4)):
        cfg = copy.deepcopy(CFG)
        change(cfg)
        assert fp(cfg) != base
    assert fp(settings=[{"setting": {"id": "proxy_ucf_1000", "epochs": 7}}]) != base
    assert fp(data={"synthetic": "abd"}) != base
    assert fp(code="c2") != base


def test_code_version_is_stable_and_hex():
    assert code_version() == code_version() and len(code_version()) == 16
    int(code_version(), 16)
