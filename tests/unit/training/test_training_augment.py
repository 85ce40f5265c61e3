import torch
from omegaconf import OmegaConf

from tubelab import config
from tubelab.training.augment import _hue_matrix, colour_jitter


def jitter_cfg(**kw):
    return OmegaConf.merge(config.load("pretrain", []).pretrain.colour_jitter, kw)


def clips(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 4, 8, 8, generator=g) * 255


def test_probability_zero_is_identity():
    x = clips()
    (y,) = colour_jitter([x], jitter_cfg(prob=0.0), torch.Generator().manual_seed(0))
    assert torch.allclose(x, y, atol=1e-3)


def test_both_clips_of_a_pair_get_the_same_draw():
    a, b = clips(0), clips(1)
    ja, jb = colour_jitter([a, a.clone()], jitter_cfg(prob=1.0), torch.Generator().manual_seed(3))
    assert torch.equal(ja, jb)
    # ... and the draw differs between pairs: rows are not all shifted alike.
    (only,) = colour_jitter([torch.full_like(b, 128)], jitter_cfg(prob=1.0, contrast=0, saturation=0, hue_degrees=0),
                            torch.Generator().manual_seed(3))
    shifts = (only - 128).mean(dim=(1, 2, 3, 4))
    assert shifts.abs().max() <= 32 + 1e-4 and shifts.std() > 5


def test_roughly_prob_of_pairs_are_changed_and_output_stays_in_range():
    x = clips(n=2000)
    (y,) = colour_jitter([x], jitter_cfg(), torch.Generator().manual_seed(0))
    changed = ((y - x).abs().amax(dim=(1, 2, 3, 4)) > 1e-3).float().mean().item()
    assert 1 - 0.8 ** 4 - 0.05 < changed < 1 - 0.8 ** 4 + 0.05  # any of four jitters, each p = 0.2
    assert y.min() >= 0 and y.max() <= 255


def test_hue_rotation_keeps_gray_and_is_invertible():
    m = _hue_matrix(torch.tensor([24.0, -24.0]))
    gray = torch.full((3,), 100.0)
    assert torch.allclose(m[0] @ gray, gray, atol=1e-3)
    assert torch.allclose(m[0] @ m[1], torch.eye(3), atol=1e-4)
