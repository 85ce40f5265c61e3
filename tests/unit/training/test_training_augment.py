import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image, ImageEnhance

from tubelab import config
from tubelab.training.augment import _hue_matrix, colour_jitter, finetune_colour_jitter


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


def test_contrast_multiplies_the_pixels_as_the_official_code_does():
    grey = torch.full((200, 3, 2, 4, 4), 100.0)
    only_contrast = dict(prob=1.0, brightness=0, saturation=0, hue_degrees=0)
    (about_mean,) = colour_jitter([grey], jitter_cfg(contrast_mode="about_mean", **only_contrast),
                                  torch.Generator().manual_seed(0))
    assert torch.allclose(about_mean, grey, atol=1e-3)  # a flat clip has no contrast to scale
    (multiplied,) = colour_jitter([grey], jitter_cfg(contrast_mode="multiply", **only_contrast),
                                  torch.Generator().manual_seed(0))
    factors = multiplied[:, 0, 0, 0, 0] / 100
    assert torch.allclose(multiplied, grey * factors.view(-1, 1, 1, 1, 1), atol=1e-3)  # one factor per clip
    assert factors.min() >= math.exp(-0.2) - 1e-4 and factors.max() <= math.exp(0.2) + 1e-4
    assert factors.std() > 0.05


def pil_jitter(frame: np.ndarray, op: int, factor: float) -> np.ndarray:
    """torchvision's PIL path (what SEVERE's video_transforms.ColorJitter calls), from Pillow directly."""
    img = Image.fromarray(frame)
    if op == 3:
        h, s, v = img.convert("HSV").split()
        h = Image.fromarray((np.asarray(h).astype(np.int16) + round(factor * 255)).astype(np.uint8), "L")
        return np.asarray(Image.merge("HSV", (h, s, v)).convert("RGB"))
    enhancer = [ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color][op]
    return np.asarray(enhancer(img).enhance(factor))


@pytest.mark.parametrize("op", [0, 1, 2, 3])
def test_finetune_jitter_matches_pillow_one_operation_at_a_time(op):
    """One of SEVERE's four jitters at a time (the other strengths 0: factor 1, hue 0) against Pillow's own
    ImageEnhance / HSV code on each frame; the same draw for every frame of a clip."""
    g = torch.Generator().manual_seed(1)
    clips = torch.randint(0, 256, (3, 3, 2, 12, 12), dtype=torch.uint8, generator=g)
    strengths = [0.0] * 4
    strengths[op] = [0.4, 0.4, 0.4, 0.2][op]
    out = finetune_colour_jitter(clips, strengths, torch.Generator().manual_seed(5))
    draws = torch.Generator().manual_seed(5)
    r = [torch.rand(3, generator=draws) for _ in range(4)]
    low, high = (-0.2, 0.2) if op == 3 else (0.6, 1.4)
    for i in range(3):
        factor = float(low + (high - low) * r[op][i])
        for t in range(2):
            frame = clips[i, :, t].permute(1, 2, 0).numpy()
            expected = pil_jitter(frame, op, factor).astype(float)
            got = out[i, :, t].permute(1, 2, 0).numpy()
            # Pillow rounds to uint8 between steps; its HSV has 256 hues, which moves dark pixels most
            mean_error, max_error = (2.0, 16.0) if op == 3 else (0.75, 4.5)
            assert np.abs(got - expected).mean() < mean_error and np.abs(got - expected).max() <= max_error


def test_finetune_jitter_draws_an_order_per_clip_and_stays_in_range():
    clips = torch.randint(0, 256, (64, 3, 2, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = finetune_colour_jitter(clips, [0.4, 0.4, 0.4, 0.2], torch.Generator().manual_seed(0))
    assert out.shape == clips.shape and out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 255
    assert not torch.allclose(out, clips.float(), atol=1)
    again = finetune_colour_jitter(clips, [0.4, 0.4, 0.4, 0.2], torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # the draws come from the generator only
