"""Pixels of apply_tubelets: identical overlays on both clips, alpha, dtypes, shapes, seeds, geometry."""

import numpy as np
import pytest
import torch

from tubelab.tubelets import apply_tubelets, load_tubelet_config
from tubelab.tubelets.overlay import paste
from tubelab.tubelets.params import sample_params
from tubelab.tubelets.patches import mask_image
from tubelab.tubelets.reference import _mask as reference_mask, reference_paste


def clips(shape, seed, dtype=torch.uint8):
    x = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    return x if dtype == torch.uint8 else x.to(dtype)


def run(a, b, seed=0, **overrides):
    return apply_tubelets(a, b, load_tubelet_config(**overrides), torch.Generator().manual_seed(seed))


def alpha_of(a, seed=0, **overrides):
    """Total alpha per pixel (B, T, H, W): with b = a + 10 the pair differs by exactly 10 * (1 - alpha)."""
    out = run(a, a + 10, seed, **overrides)
    return 1 - (out.b - out.a)[:, 0] / 10, out


@pytest.mark.parametrize("transform", ["none", "scale", "shear", "rotation"])
def test_both_clips_carry_the_same_overlay(transform):
    a, b = clips((4, 3, 16, 64, 80), 1, torch.float32), clips((4, 3, 16, 64, 80), 2, torch.float32)
    alpha, _ = alpha_of(a, transform=transform)
    assert alpha.min() >= -1e-4 and alpha.max() <= 1 + 1e-4 and alpha.max() > 0.5
    out = run(a, b, transform=transform)
    # out = frame * (1 - alpha) + overlay: the overlay left after removing each clip's frame is shared.
    keep = (1 - alpha).unsqueeze(1)
    assert torch.allclose(out.a - a * keep, out.b - b * keep, atol=1e-2)


def test_opaque_pixels_are_identical_in_uint8():
    a, b = clips((4, 3, 16, 48, 64), 3), clips((4, 3, 16, 48, 64), 4)
    cfg = dict(opacity=[1.0, 1.0], soft_edge_prob=0.0)
    alpha, _ = alpha_of(a.float(), **cfg)
    out = run(a, b, **cfg)
    opaque = (alpha == 1).unsqueeze(1).expand_as(a)
    assert opaque.float().mean() > 0.05
    assert torch.equal(out.a[opaque], out.b[opaque])
    assert torch.equal(out.a[alpha.unsqueeze(1).expand_as(a) < 1e-4], a[alpha.unsqueeze(1).expand_as(a) < 1e-4])


@pytest.mark.parametrize("shape", [(2, 3, 8, 48, 64), (2, 3, 16, 112, 112), (2, 3, 32, 128, 171)])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_any_resolution_length_and_dtype(shape, dtype):
    a, b = clips(shape, 5, dtype), clips(shape, 6, dtype)
    if dtype == torch.float32:
        a, b = a / 255, b / 255
    out = run(a, b)
    for x in (out.a, out.b):
        assert x.shape == a.shape and x.dtype == dtype and x.device == a.device
        assert not x.float().isnan().any()
    assert not torch.equal(out.a, a) and not torch.equal(out.b, b)
    if dtype == torch.float32:
        assert out.a.min() >= 0 and out.a.max() <= 1
    B, N, T = shape[0], 2, shape[2]
    for key in ("center", "size", "shear"):
        assert out.params[key].shape == (B, N, T, 2)
    for key in ("angle", "opacity", "scale", "active"):
        assert out.params[key].shape == (B, N, T)


def test_matches_the_per_frame_oracle():
    cfg = load_tubelet_config(num_tubelets=3)
    for transform, (T, H, W) in [("rotation", (16, 112, 112)), ("shear", (8, 48, 64)), ("scale", (16, 128, 171))]:
        cfg["transform"] = transform
        p = sample_params(torch.Generator().manual_seed(1), cfg, 2, T, H, W)
        a, b = clips((2, 3, T, H, W), 7), clips((2, 3, T, H, W), 8)
        out_a, out_b = paste(a, b, p)
        for i in range(2):
            ref_a, ref_b = reference_paste(a[i].numpy(), b[i].numpy(), {k: v[i].numpy() for k, v in p.items()})
            for ours, ref in ((out_a[i], ref_a), (out_b[i], ref_b)):
                diff = np.abs(ours.numpy().astype(int) - ref.astype(int))
                assert (diff > 1).mean() < 1e-4, transform  # rounding only


def test_same_seed_same_output_different_seed_different():
    a, b = clips((3, 3, 16, 64, 64), 9), clips((3, 3, 16, 64, 64), 10)
    one, two, other = run(a, b, seed=4), run(a, b, seed=4), run(a, b, seed=5)
    assert torch.equal(one.a, two.a) and torch.equal(one.b, two.b)
    assert all(torch.equal(one.params[k], two.params[k]) for k in one.params)
    assert not torch.equal(one.a, other.a)


def test_inputs_are_not_modified():
    a, b = clips((2, 3, 8, 48, 64), 11), clips((2, 3, 8, 48, 64), 12)
    a0, b0 = a.clone(), b.clone()
    run(a, b)
    assert torch.equal(a, a0) and torch.equal(b, b0)


def test_video_contrast_returns_the_inputs():
    a, b = clips((2, 3, 8, 48, 64), 13), clips((2, 3, 8, 48, 64), 14)
    out = apply_tubelets(a, b, load_tubelet_config("video_contrast"))
    assert out.a is a and out.b is b and out.params == {}


def test_static_untransformed_patch_is_pasted_back_where_it_was_cut():
    a = clips((4, 3, 16, 64, 64), 15)
    out = run(a, clips((4, 3, 16, 64, 64), 16), motion="none", transform="none", num_tubelets=1,
              opacity=[1.0, 1.0], mask_probs=[1.0, 0.0, 0.0], soft_edge_prob=0.0)
    for i in range(4):
        t = int(out.params["source_frame"][i, 0])
        assert torch.equal(out.a[i, :, t], a[i, :, t])  # the patch covers its own source box
        assert not torch.equal(out.a[i], a[i])


def test_inactive_frames_are_untouched():
    a, b = clips((4, 3, 16, 48, 64), 17), clips((4, 3, 16, 48, 64), 18)
    out = run(a, b, length=5, num_tubelets=1)
    idle = ~out.params["active"][:, 0]  # (B, T)
    assert torch.equal(out.a.transpose(1, 2)[idle], a.transpose(1, 2)[idle])
    assert torch.equal(out.b.transpose(1, 2)[idle], b.transpose(1, 2)[idle])


def one_tubelet(angle=0.0, shear=(0.0, 0.0), size=(40.0, 10.0), H=64, W=64):
    """Params of a single opaque hard rectangle at the frame centre, one frame."""
    def t(x, dtype=torch.float32):
        return torch.tensor(x, dtype=dtype).view(1, 1, *torch.tensor(x).shape)
    return dict(center=t([[W / 2, H / 2]]), size=t([list(size)]), angle=t([angle]), shear=t([list(shear)]),
                opacity=t([1.0]), active=t([True], torch.bool), source_frame=t(0, torch.long),
                source_center=t([W / 2, H / 2]), source_size=t(list(size)), mask=t(0, torch.long),
                edge=t(1e-4))


def covered(p, H=64, W=64):
    """Pixel centres (x, y) the tubelet of p covers: a black patch pasted onto a white clip."""
    _, out = paste(torch.zeros(1, 3, 1, H, W), torch.full((1, 3, 1, H, W), 255.0), p)
    ys, xs = torch.nonzero(out[0, 0, 0] < 255, as_tuple=True)
    return xs.float() + 0.5, ys.float() + 0.5


def test_rotation_turns_clockwise_with_enlarged_bounds():
    xs, ys = covered(one_tubelet(angle=90.0))
    assert xs.max() - xs.min() == pytest.approx(9, abs=1) and ys.max() - ys.min() == pytest.approx(39, abs=1)
    xs, ys = covered(one_tubelet(angle=30.0))
    assert ((xs - xs.mean()) * (ys - ys.mean())).mean() > 0  # long axis points down-right on screen
    assert xs.max() - xs.min() > 35 and ys.max() - ys.min() > 25  # bounds grow, nothing cropped


def test_shear_slants_rows():
    xs, ys = covered(one_tubelet(shear=(0.5, 0.0), size=(20.0, 20.0)))
    top, bottom = xs[ys < 28].mean(), xs[ys > 36].mean()
    assert bottom - top > 4  # x' = x + 0.5 y
    assert len(xs) == pytest.approx(400, rel=0.05)  # shear keeps the area


def test_smaller_tubelet_is_pasted_over_the_larger():
    a = torch.zeros(1, 3, 1, 32, 32)
    a[..., :16, :] = 200.0  # the large patch is cut from the bright top half, the small from the dark
    p = one_tubelet(size=(30.0, 30.0), H=32, W=32)
    small = one_tubelet(size=(8.0, 8.0), H=32, W=32)
    p = {k: torch.cat([p[k], small[k]], 1) for k in p}
    p["source_center"][0, 0] = torch.tensor([16.0, 8.0])
    p["source_size"][0, 0] = torch.tensor([30.0, 16.0])
    p["source_center"][0, 1] = torch.tensor([16.0, 24.0])
    out, _ = paste(a, a.clone(), p)
    assert out[0, 0, 0, 16, 16] == 0 and out[0, 0, 0, 16, 4] == 200


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda_with_a_cuda_generator():
    a, b = clips((2, 3, 8, 48, 64), 19).cuda(), clips((2, 3, 8, 48, 64), 20).cuda()
    cfg = load_tubelet_config()
    out = apply_tubelets(a, b, cfg, torch.Generator("cuda").manual_seed(0))
    again = apply_tubelets(a, b, cfg, torch.Generator("cuda").manual_seed(0))
    assert out.a.device == a.device and out.a.dtype == torch.uint8 and torch.equal(out.a, again.a)
    cpu = apply_tubelets(a, b, cfg, torch.Generator().manual_seed(0))
    assert cpu.a.device == a.device


def test_chunks_and_the_reused_workspace_do_not_change_the_output():
    # A pair's output depends on that pair only: the batch pasted whole or a clip at a time, with an
    # unrelated call in between, gives the same bytes.
    a, b = clips((6, 3, 16, 64, 96), 21), clips((6, 3, 16, 64, 96), 22)
    p = sample_params(torch.Generator().manual_seed(2), load_tubelet_config(num_tubelets=3), 6, 16, 64, 96)
    whole = paste(a, b, p)
    paste(clips((2, 3, 8, 200, 240), 23), clips((2, 3, 8, 200, 240), 24),
          sample_params(torch.Generator().manual_seed(3), load_tubelet_config(), 2, 8, 200, 240))
    singles = [paste(a[i:i + 1], b[i:i + 1], {k: v[i:i + 1] for k, v in p.items()}) for i in range(6)]
    pieces = [torch.cat([single[j] for single in singles]) for j in range(2)]
    assert torch.equal(whole[0], pieces[0]) and torch.equal(whole[1], pieces[1])


def test_views_and_other_dtypes_give_the_same_overlay():
    pairs = clips((4, 2, 3, 8, 48, 64), 25)  # (B, K, ...): the clips of a pair are strided views
    a, b = pairs[:, 0], pairs[:, 1]
    assert not a.is_contiguous()
    p = sample_params(torch.Generator().manual_seed(4), load_tubelet_config(), 4, 8, 48, 64)
    ref = paste(a.contiguous(), b.contiguous(), p)
    out = paste(a, b, p)
    assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1]) and out[0].is_contiguous()
    unit = paste(a.float() / 255, b.float() / 255, p)
    for dtype, tol in ((torch.float64, 1e-4), (torch.float16, 2e-3), (torch.bfloat16, 1e-2)):
        out = paste((a.float() / 255).to(dtype), (b.float() / 255).to(dtype), p)
        assert out[0].dtype == dtype
        assert torch.allclose(out[0].float(), unit[0], atol=tol) and torch.allclose(out[1].float(), unit[1], atol=tol)
    assert ((ref[0].float() - unit[0] * 255).abs() > 1).float().mean() < 1e-4  # uint8: the float result, rounded


def test_separable_mask_matches_mask_image():
    # The mask the engine warps (patches.mask_image) against the reference's own numpy mask.
    n = 60
    g = torch.Generator().manual_seed(5)
    center = torch.rand(n, 2, generator=g) * torch.tensor([64.0, 48.0])
    size = 4 + torch.rand(n, 2, generator=g) * 40
    kind = torch.arange(n) % 3
    edge = torch.where(torch.arange(n) % 2 == 0, torch.full((n,), 1e-4), 0.1 + torch.rand(n, generator=g) * 0.1)
    out = torch.from_numpy(np.stack([reference_mask(center[i].numpy(), size[i].numpy(), kind[i], edge[i].item(), 48, 64)
                                     for i in range(n)]))
    assert torch.allclose(out, mask_image(center, size, kind, edge, 48, 64), atol=1e-3)


@pytest.mark.parametrize("transform", ["none", "scale", "shear", "rotation"])
def test_float_clips_match_the_per_frame_oracle(transform):
    # Float clips are not rounded: the engine and the numpy reference agree to float32 precision
    # (measured at most ~0.007 on the 0-255 scale; 0.02 allowed).
    cfg = load_tubelet_config(num_tubelets=3, transform=transform)
    T, H, W = 8, 64, 80
    p = sample_params(torch.Generator().manual_seed(6), cfg, 2, T, H, W)
    a, b = clips((2, 3, T, H, W), 26, torch.float32), clips((2, 3, T, H, W), 27, torch.float32)
    out_a, out_b = paste(a, b, p)
    assert not torch.equal(out_a, a)
    for i in range(2):
        ref_a, ref_b = reference_paste(a[i].numpy(), b[i].numpy(), {k: v[i].numpy() for k, v in p.items()})
        assert np.abs(out_a[i].numpy() - ref_a).max() < 0.02 and np.abs(out_b[i].numpy() - ref_b).max() < 0.02


def test_covered_pixels_are_those_the_oracle_blends():
    # Pixels the engine changes are exactly the pixels with |u| <= 1 and alpha > 0 in the reference.
    p = sample_params(torch.Generator().manual_seed(8), load_tubelet_config(num_tubelets=2), 3, 8, 48, 64)
    a = torch.zeros(3, 3, 8, 48, 64)
    p["mask"].zero_()
    p["edge"].fill_(1e-4)  # hard rectangles: alpha is the opacity inside the box, up to the anti-aliased edge
    out, _ = paste(a, a + 100, p)
    for i in range(3):
        ref, _ = reference_paste(a[i].numpy(), (a[i] + 100).numpy(), {k: v[i].numpy() for k, v in p.items()})
        assert np.array_equal(out[i].numpy() != 0, ref != 0)
