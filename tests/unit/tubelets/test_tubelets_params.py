"""Properties of the drawn tubelet parameters: motion, transforms, key frames, sizes, placement."""

import math

import pytest
import torch

from tubelab.tubelets import load_tubelet_config
from tubelab.tubelets.keyframes import interpolate, sample_key_frames
from tubelab.tubelets.params import sample_params
from tubelab.tubelets.trajectories import gaussian_smooth


def draw(batch=256, frames=16, height=112, width=112, seed=0, **overrides):
    cfg = load_tubelet_config(**overrides)
    return cfg, sample_params(torch.Generator().manual_seed(seed), cfg, batch, frames, height, width)


def test_no_motion_is_static_and_inside_the_frame():
    _, p = draw(motion="none", transform="none")
    c, half = p["center"], p["size"] / 2
    assert torch.equal(c, c[:, :, :1].expand_as(c))
    assert (c - half >= -1e-4).all() and (c + half <= 112 + 1e-4).all()


def test_linear_motion_has_constant_velocity_within_speed_bounds():
    cfg, p = draw(motion="linear", transform="none", linear_extent="speed")
    step = p["center"].diff(dim=2)
    assert torch.allclose(step, step[:, :, :1].expand_as(step), atol=1e-3)
    speed = step[:, :, 0].norm(dim=-1)
    low, high = cfg["linear_speed"]
    assert (speed >= low - 1e-4).all() and (speed <= high + 1e-4).all()  # 5 px * 15 frames fits in 112 px
    assert (p["center"] >= -1e-4).all() and (p["center"] <= 112 + 1e-4).all()


@pytest.mark.parametrize("linear_extent", ["matched", "speed"])
def test_linear_motion_slows_down_to_fit_long_clips(linear_extent):
    _, p = draw(frames=64, height=48, width=64, motion="linear", transform="none", linear_extent=linear_extent)
    step = p["center"].diff(dim=2)
    assert torch.allclose(step, step[:, :, :1].expand_as(step), atol=1e-3)
    assert (p["center"][..., 0] >= -1e-3).all() and (p["center"][..., 0] <= 64 + 1e-3).all()
    assert (p["center"][..., 1] >= -1e-3).all() and (p["center"][..., 1] <= 48 + 1e-3).all()


def per_axis_extents(p):
    c = p["center"].reshape(-1, p["center"].shape[2], 2)
    return (c.amax(1) - c.amin(1)).flatten()


def test_matched_linear_tubelets_span_what_nonlinear_ones_span_per_axis():
    """Table 3 must compare the kind of motion, not its size: linear_extent=matched gives straight, constant-
    velocity paths whose per-axis extents have the non-linear paths' distribution (within sampling error of
    4096 extents each); linear_extent=speed (the first choice) moves about half as far."""
    _, linear = draw(batch=2048, motion="linear", transform="none")
    _, nonlinear = draw(batch=2048, motion="nonlinear", transform="none", seed=1)
    step = linear["center"].diff(dim=2)
    assert torch.allclose(step, step[:, :, :1].expand_as(step), atol=1e-3)  # still a straight line
    a, b = per_axis_extents(linear), per_axis_extents(nonlinear)
    quantiles = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9])
    assert torch.allclose(a.quantile(quantiles), b.quantile(quantiles), atol=2.5)  # U(20, 90): 7 px apart
    assert abs(a.mean() - b.mean()) < 1.5 and 50 < b.mean() < 60
    _, speed = draw(batch=2048, motion="linear", transform="none", linear_extent="speed")
    assert per_axis_extents(speed).mean() < 0.6 * b.mean()
    directions = torch.atan2(step[:, :, 0, 1], step[:, :, 0, 0]).flatten()
    assert all(((directions > lo) & (directions < lo + math.pi / 2)).float().mean() > 0.2
               for lo in (-math.pi, -math.pi / 2, 0, math.pi / 2))  # every quadrant


def test_nonlinear_paths_bend_and_keep_the_reference_extents():
    _, p = draw(transform="none")
    c = p["center"].reshape(-1, 16, 2)
    chord = c[:, -1] - c[:, 0]
    normal = torch.stack([-chord[:, 1], chord[:, 0]], -1) / chord.norm(dim=-1, keepdim=True)
    off_line = ((c - c[:, :1]) * normal[:, None]).sum(-1).abs().amax(-1)
    assert (off_line > 1.0).float().mean() > 0.9  # a straight line would be 0
    extent = (c.amax(1) - c.amin(1)).amax(-1)
    assert (extent <= 90 + 1e-3).all() and (extent >= 20 * 0.5).all()
    assert (c >= -1e-4).all() and (c <= 112 + 1e-4).all()


def test_nonlinear_extent_scales_with_frame_width():
    _, p = draw(height=128, width=224, transform="none")
    c = p["center"].reshape(-1, 16, 2)
    extent = (c.amax(1) - c.amin(1)).amax(-1)
    assert extent.max() > 120 and (extent <= 180 + 1e-3).all()
    assert (c[..., 1] <= 128 + 1e-4).all()


def test_gaussian_smoothing_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    x = torch.rand(3, 48, dtype=torch.float64)
    expected = ndimage.gaussian_filter1d(x.numpy(), sigma=8, mode="reflect")
    assert torch.allclose(gaussian_smooth(x, 8.0), torch.from_numpy(expected), atol=1e-10)


@pytest.mark.parametrize("transform", ["none", "scale", "shear", "rotation"])
def test_transforms_stay_in_range_and_others_are_identity(transform):
    cfg, p = draw(transform=transform)
    angle, shear, scale = p["angle"], p["shear"], p["scale"]
    if transform == "rotation":
        assert (angle[..., 0] == 0).all() and angle.abs().max() > 10
        assert (angle.abs() <= cfg["rotation_velocity"] * 15 + 1e-3).all()
    else:
        assert (angle == 0).all()
    if transform == "shear":
        assert (shear[:, :, 0] == 0).all() and shear.abs().max() > 0.1
        assert (shear.abs() <= cfg["shear_velocity"] * 15 + 1e-5).all()
        kinds = {(bool(s[..., 0].any()), bool(s[..., 1].any())) for s in shear}  # x, y or xy per clip
        assert kinds == {(True, False), (False, True), (True, True)}
    else:
        assert (shear == 0).all()
    if transform == "scale":
        low, high = cfg["scale_range"]
        assert (scale[..., 0] == 1).all() and (scale >= low - 1e-6).all() and (scale <= high + 1e-6).all()
        assert scale.min() < 0.75 and scale.max() > 1.25
        assert torch.allclose(p["size"], p["size"][:, :, :1] * (scale / scale[:, :, :1]).unsqueeze(-1), rtol=1e-5)
    else:
        assert (scale == 1).all()


def test_key_frames_follow_the_released_distribution():
    keys = sample_key_frames(torch.Generator().manual_seed(0), (20000,), 16, [0.5, 0.3, 0.2])
    assert (keys[:, 0] == 0).all() and (keys[:, -1] == 15).all() and (keys.diff(dim=-1) >= 0).all()
    inner = torch.tensor([len(set(k.tolist())) - 2 for k in keys[:2000]])
    freq = torch.bincount(inner, minlength=3).float() / len(inner)
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.2]), atol=0.04)


def test_interpolation_kinds_match_the_released_code():
    values, keys = torch.tensor([[0.0, 5.0]]), torch.tensor([[0.0, 10.0]])
    uniform = interpolate(values, keys, torch.tensor([[0]]), 11)
    accelerate = interpolate(values, keys, torch.tensor([[1]]), 11)
    decelerate = interpolate(values, keys, torch.tensor([[2]]), 11)
    assert torch.allclose(uniform, torch.arange(11.0) * 0.5)
    assert torch.allclose(accelerate, torch.tensor([0, .05, .2, .45, .8, 1.25, 1.8, 2.45, 3.2, 4.05, 5.0]))
    assert torch.allclose(decelerate, 5 - accelerate.flip(-1))


def test_patch_sizes_follow_scales_aspects_and_jitter():
    cfg, p = draw(batch=2000, transform="none", height=64, width=224)
    w, h = p["size"][:, :, 0, 0], p["size"][:, :, 0, 1]
    s = (w * h).sqrt() * 112 / 224  # back at reference width
    jitter = math.exp(cfg["size_jitter"])
    assert s.min() >= 16 / jitter - 1e-3 and (s <= 64 * jitter + 1e-3).all()
    assert (w <= 224).all() and (h <= 64).all() and (h == 64).any()  # clipped to the frame
    assert (w / h).max() > 2 and (w / h).min() < 0.5


def test_masks_edges_and_opacity():
    cfg, p = draw(batch=4000)
    freq = torch.bincount(p["mask"].flatten(), minlength=3).float() / p["mask"].numel()
    assert torch.allclose(freq, torch.tensor(cfg["mask_probs"]), atol=0.03)
    assert abs((p["edge"] > 0.01).float().mean() - cfg["soft_edge_prob"]) < 0.03
    assert (p["opacity"] >= 0.8 - 1e-6).all() and (p["opacity"] <= 1.0 + 1e-6).all()


def test_larger_tubelets_come_first():
    _, p = draw(num_tubelets=3)
    area = (p["size"][..., 0] * p["size"][..., 1]).mean(-1)
    assert (area.diff(dim=1) <= 1e-3).all()


def test_short_tubelets_are_active_on_one_contiguous_span():
    _, p = draw(frames=16, length=6, num_tubelets=3)
    active = p["active"]
    assert (active.sum(-1) == 6).all()
    assert (active.int().diff(dim=-1).abs().sum(-1) <= 2).all()  # one on/off edge each side at most
    assert (p["opacity"][~active] == 0).all() and (p["opacity"][active] >= 0.8 - 1e-6).all()
    assert active.gather(2, p["source_frame"].unsqueeze(-1)).all()  # the patch comes from an active frame
    assert len(set(active.int().argmax(-1).flatten().tolist())) > 5  # random start


def test_source_box_lies_inside_the_frame():
    _, p = draw(height=48, width=64, transform="scale")
    c, half = p["source_center"], p["source_size"] / 2
    assert (c - half >= -1e-4).all() and (c[..., 0] + half[..., 0] <= 64 + 1e-4).all()
    assert (c[..., 1] + half[..., 1] <= 48 + 1e-4).all()
