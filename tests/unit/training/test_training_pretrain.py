import pytest
import torch
from omegaconf import OmegaConf

from tubelab import config
from tubelab.training import common
from tubelab.training.pretrain import check_pretrain_config, make_pair, other_video_index


def test_pairs_always_come_from_two_different_videos():
    keys = torch.tensor([7, 7, 7, 3, 3, 9, 9, 9])  # rows repeat videos (clips_per_video > 1)
    idx = other_video_index(keys)
    assert (keys[idx] != keys).all()
    assert idx.tolist() == [3, 3, 3, 5, 5, 0, 0, 0]  # the nearest following row of another video, cyclic


def test_a_batch_of_one_video_is_an_error():
    with pytest.raises(RuntimeError, match="two different videos"):
        other_video_index(torch.tensor([4, 4, 4]))


def test_make_pair_modes():
    clips = torch.randint(0, 255, (4, 2, 3, 8, 32, 32), dtype=torch.uint8)
    keys = torch.arange(4)
    tub = config.load("pretrain", []).tubelet
    q, k, params = make_pair(clips, keys, tub, torch.Generator().manual_seed(0))
    assert q.shape == k.shape == (4, 3, 8, 32, 32) and q.dtype == torch.uint8
    assert params["center"].shape[:3] == (4, 2, 8)
    vc = OmegaConf.merge(tub, {"mode": "video_contrast"})
    q, k, params = make_pair(clips, keys, vc, torch.Generator().manual_seed(0))
    assert torch.equal(q, clips[:, 0]) and torch.equal(k, clips[:, 1]) and params == {}


@pytest.mark.parametrize("overrides,videos,message", [
    (["pretrain.batch_size=1"], 240, "batch_size must be >= 2"),
    ([], 20, "cannot fill one step"),
    (["pretrain.moco.queue=100000"], 240, "pretrain.moco.queue=100000 is larger"),
    (["pretrain.stop_epoch=9"], 240, "stop_epoch=9 must be in 1..pretrain.epochs"),
])
def test_pretrain_config_checks(overrides, videos, message):
    with pytest.raises(ValueError, match=message):
        check_pretrain_config(config.load("pretrain", overrides), videos)


def test_cosine_and_normalize():
    assert common.cosine_lr(0.1, 0.0) == pytest.approx(0.1)
    assert common.cosine_lr(0.1, 0.5) == pytest.approx(0.05)
    assert common.cosine_lr(0.1, 1.0) == pytest.approx(0.0)
    x = torch.full((1, 3, 1, 1, 1), 255, dtype=torch.uint8)
    expected = [(1 - m) / s for m, s in zip(common.IMAGENET_MEAN, common.IMAGENET_STD)]
    assert torch.allclose(common.normalize(x).flatten(), torch.tensor(expected))
    clip = torch.zeros(2, 1, 8, 16, 16, 3, dtype=torch.uint8)
    assert common.to_model_input(clip, torch.device("cpu")).shape == (2, 1, 3, 8, 16, 16)
