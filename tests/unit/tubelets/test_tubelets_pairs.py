import pytest
import torch

from tubelab.tubelets import load_tubelet_config
from tubelab.tubelets.pairs import make_pair, other_video_index


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
    tub = load_tubelet_config("default")
    q, k, params = make_pair(clips, keys, tub, torch.Generator().manual_seed(0))
    assert q.shape == k.shape == (4, 3, 8, 32, 32) and q.dtype == torch.uint8
    assert params["center"].shape[:3] == (4, 2, 8)
    vc = {**tub, "mode": "video_contrast"}
    q, k, params = make_pair(clips, keys, vc, torch.Generator().manual_seed(0))
    assert torch.equal(q, clips[:, 0]) and torch.equal(k, clips[:, 1]) and params == {}
