"""The protocol line of a table: how the scored model was chosen and which recipe switches moved away from
SEVERE's fine-tuning; a table mixing protocols says so."""

from tubelab import config
from tubelab.evaluation import protocol


def setting(name: str, *overrides: str):
    return config.load("finetune", [f"setting={name}", *overrides]).setting


def test_a_severe_setting_as_shipped_and_the_switches_away_from_it():
    assert protocol.describe(setting("ucf101")) == "model selected on a 10 % validation split of train"
    assert protocol.describe(setting("ucf101", "setting.val_fraction=0")) == "last epoch, trained on all of train"
    assert protocol.describe(setting("ucf101", "setting.batchnorm=local", "setting.clip.colour_jitter=null",
                                     "setting.strict_load=false")) == (
        "model selected on a 10 % validation split of train; no colour jitter, per-worker BN, "
        "non-strict checkpoint loading")
    assert protocol.describe(setting("proxy_ssv2")).endswith("; no colour jitter, per-worker BN")


def test_charades_is_measured_against_slowfasts_recipe():
    """SEVERE runs Charades on SlowFast's code: no colour jitter there, precise BN statistics, clip labels
    from the frames; the description follows that recipe, not the action-recognition one."""
    assert protocol.describe(setting("charades")) == "model selected on a 10 % validation split of train"
    assert protocol.describe(setting("charades", "setting.clip.colour_jitter=[0.4,0.4,0.4,0.2]",
                                     "setting.precise_bn_batches=0", "setting.clip.labels=video",
                                     "setting.clip.channels=rgb", "setting.schedule.warmup_start_lr=null")) == (
        "model selected on a 10 % validation split of train; colour jitter [0.4, 0.4, 0.4, 0.2], "
        "video-level clip labels, no precise BN, RGB input, per-epoch warm-up")
    assert protocol.describe(setting("charades", "setting.clip.mean=[0.485,0.456,0.406]",
                                     "setting.clip.std=[0.229,0.224,0.225]", "setting.optimizer.nesterov=false",
                                     "setting.optimizer.bn_weight_decay=null")).endswith(
        "; ImageNet normalisation, no Nesterov, weight decay on BN")
    assert protocol.describe(setting("proxy_charades")).endswith(
        "; per-worker BN, no precise BN, RGB input, ImageNet normalisation")
    assert protocol.describe(setting("ucf101", "setting.clip.mean=[0.45,0.45,0.45]",
                                     "setting.clip.std=[0.225,0.225,0.225]")).endswith("; SlowFast normalisation")
    assert protocol.describe(setting("ucf101", "setting.clip.mean=[0.5,0.5,0.5]")).endswith(
        "; normalisation mean [0.5, 0.5, 0.5], std [0.229, 0.224, 0.225]")
    assert protocol.describe(setting("ucf101", "setting.clip.channels=bgr")).endswith("; BGR input")


def test_ucf_rc_is_measured_against_the_counting_codes_recipe():
    """UCF-RC runs on Zhang et al.'s counting code: no colour jitter there; the clip regression is a deviation."""
    assert protocol.describe(setting("ucf_rc")) == "model selected on a 10 % validation split of train"
    assert protocol.describe(setting("ucf_rc", "setting.counting.method=clip")).endswith(
        "; one clip's count regressed")
    assert protocol.describe(setting("proxy_ucf_rc")).endswith("; per-worker BN")


def test_a_caption_names_one_protocol_or_says_that_they_differ():
    same = protocol.describe(setting("ucf101"))
    assert protocol.caption([("ucf101", same), ("hmdb51", same)]) == f"Protocol: {same}."
    last = protocol.describe(setting("hmdb51", "setting.val_fraction=0"))
    mixed = protocol.caption([("ucf101", same), ("hmdb51", last), ("gym99", same)])
    assert mixed.startswith("Protocols differ between cells") and f"ucf101, gym99: {same}" in mixed
    assert f"hmdb51: {last}" in mixed
    assert "not recorded" in protocol.caption([])
    # one model selection, settings that differ from their own official recipes in different ways: no warning
    charades = protocol.describe(setting("charades", "setting.precise_bn_batches=0"))
    assert protocol.caption([("ucf101", same), ("charades", charades), ("hmdb51", same)]) == (
        "Protocol: model selected on a 10 % validation split of train; ucf101, hmdb51: as official | "
        "charades: no precise BN.")
    # one setting's runs under two protocols (a sweep column) is flagged even with one model selection
    jitterless = protocol.describe(setting("ucf101", "setting.clip.colour_jitter=null"))
    assert protocol.caption([("ucf101", same), ("ucf101", jitterless)]).startswith("Protocols differ between cells")
    tags = protocol.as_tags({"ucf101": same, "hmdb51": last})
    assert sorted(protocol.from_tags({**tags, "other": "x"})) == [("hmdb51", last), ("ucf101", same)]
