import pytest

from tubelab import config
from tubelab.training import common
from tubelab.training.pretrain import check_pretrain_config


@pytest.mark.parametrize("overrides,videos,message", [
    ([], 20, "cannot fill one step"),
    (["pretrain.moco.queue=100000"], 240, "pretrain.moco.queue=100000 is larger"),
    (["pretrain.stop_epoch=9"], 240, "stop_epoch=9 must be in 1..pretrain.epochs"),
])
def test_pretrain_config_checks(overrides, videos, message):
    with pytest.raises(ValueError, match=message):
        check_pretrain_config(config.load("pretrain", overrides), videos)


def test_cosine_lr():
    assert common.cosine_lr(0.1, 0.0) == pytest.approx(0.1)
    assert common.cosine_lr(0.1, 0.5) == pytest.approx(0.05)
    assert common.cosine_lr(0.1, 1.0) == pytest.approx(0.0)
