import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import tubelab
from tubelab.models import build_model, r2plus1d_18, r2plus1d_tiny
from tubelab.models.r2plus1d import DIFF_GAIN, frame_differences

CONF_DIR = Path(tubelab.__file__).parent / "conf" / "model"


def expected_shapes(num_classes, stem=(45, 64), widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)):
    """torchvision's r2plus1d_18 state dict, written from the architecture description (not from
    the model code): VideoResNet(BasicBlock, Conv2Plus1D, [2, 2, 2, 2], R2Plus1dStem)."""
    shapes = {}

    def conv(name, cout, cin, kernel):
        shapes[f"{name}.weight"] = (cout, cin, *kernel)

    def bn(name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{p}"] = (c,)
        shapes[f"{name}.num_batches_tracked"] = ()

    conv("stem.0", stem[0], 3, (1, 7, 7))
    bn("stem.1", stem[0])
    conv("stem.3", stem[1], stem[0], (3, 1, 1))
    bn("stem.4", stem[1])
    inplanes = stem[1]
    for i, (planes, n) in enumerate(zip(widths, blocks), start=1):
        for b in range(n):
            cin = inplanes if b == 0 else planes
            mid = cin * planes * 27 // (cin * 9 + 3 * planes)
            p = f"layer{i}.{b}"
            for conv_name, conv_in in (("conv1", cin), ("conv2", planes)):
                conv(f"{p}.{conv_name}.0.0", mid, conv_in, (1, 3, 3))
                bn(f"{p}.{conv_name}.0.1", mid)
                conv(f"{p}.{conv_name}.0.3", planes, mid, (3, 1, 1))
                bn(f"{p}.{conv_name}.1", planes)
            if b == 0 and (i > 1 or cin != planes):
                conv(f"{p}.downsample.0", planes, cin, (1, 1, 1))
                bn(f"{p}.downsample.1", planes)
        inplanes = planes
    shapes["fc.weight"] = (num_classes, widths[-1])
    shapes["fc.bias"] = (num_classes,)
    return shapes


def n_params(shapes):
    # BN running stats and counters are buffers, not parameters
    return sum(math.prod(s) for k, s in shapes.items()
               if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))


@pytest.fixture(scope="module")
def r18():
    return r2plus1d_18(num_classes=400)


def test_r2plus1d_18_state_dict_matches_torchvision(r18):
    sd = r18.state_dict()
    expected = expected_shapes(400)
    assert list(sd) == list(expected)  # same keys in torchvision's order
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert len(sd) == 224
    assert sum(p.numel() for p in r18.parameters()) == 31_505_325 == n_params(expected)


def test_r2plus1d_18_spot_shapes(r18):
    sd = r18.state_dict()
    assert sd["stem.0.weight"].shape == (45, 3, 1, 7, 7)
    assert sd["stem.3.weight"].shape == (64, 45, 3, 1, 1)
    # midplanes per block: 64->64: 144, 64->128: 230, 128->128: 288, ..., 512->512: 1152
    mids = {"layer1.0": 144, "layer1.1": 144, "layer2.0": 230, "layer2.1": 288, "layer3.0": 460,
            "layer3.1": 576, "layer4.0": 921, "layer4.1": 1152}
    for block, mid in mids.items():
        assert sd[f"{block}.conv1.0.0.weight"].shape[0] == mid
        assert sd[f"{block}.conv2.0.1.running_var"].shape == (mid,)
    assert sd["layer2.0.conv1.0.0.weight"].shape == (230, 64, 1, 3, 3)
    assert sd["layer2.0.conv1.0.3.weight"].shape == (128, 230, 3, 1, 1)
    assert sd["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1, 1)
    assert r18.layer2[0].downsample[0].stride == (2, 2, 2)
    assert "layer1.0.downsample.0.weight" not in sd
    assert sd["fc.weight"].shape == (400, 512)
    assert r18.feature_dim == 512


def test_r2plus1d_18_num_classes():
    m = r2plus1d_18(num_classes=101)
    assert m.fc.weight.shape == (101, 512)
    assert sum(p.numel() for p in m.parameters()) == n_params(expected_shapes(101))


def test_r2plus1d_18_forward(r18):
    r18.eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        feats = r18.forward_features(x)
        logits = r18(x)
    assert feats.shape == (1, 512)
    assert torch.allclose(logits, r18.fc(feats))


def test_torchvision_init(r18):
    assert torch.all(r18.stem[1].weight == 1) and torch.all(r18.stem[1].bias == 0)
    assert torch.all(r18.fc.bias == 0)
    assert abs(r18.fc.weight.std().item() - 0.01) < 0.001
    w = r18.layer4[1].conv2[0][0].weight  # kaiming fan_out: std = sqrt(2 / (out * k))
    fan_out = w.shape[0] * w[0, 0].numel()
    assert abs(w.std().item() / math.sqrt(2 / fan_out) - 1) < 0.05


def test_tiny_shares_the_layout():
    m = r2plus1d_tiny(num_classes=10)
    expected = expected_shapes(10, stem=(8, 8), widths=(8, 32, 64, 128), blocks=(1, 1, 1, 1))
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == expected
    assert sum(p.numel() for p in m.parameters()) == n_params(expected)
    assert m.feature_dim == 128
    assert set(m.state_dict()) <= set(expected_shapes(10))  # every tiny key is an R18 key


def test_tiny_forward_backward():
    m = r2plus1d_tiny(num_classes=10)
    x = torch.randn(2, 3, 8, 64, 64)
    assert m.forward_features(x).shape == (2, 128)
    out = m(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_channels_last_and_bf16_autocast():
    torch.manual_seed(0)
    m = r2plus1d_tiny(num_classes=10).eval()
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        ref = m(x)
        m_cl = m.to(memory_format=torch.channels_last_3d)
        out_cl = m_cl(x.to(memory_format=torch.channels_last_3d))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf16 = m_cl(x.to(memory_format=torch.channels_last_3d))
    assert torch.allclose(out_cl, ref, atol=1e-4, rtol=1e-3)
    assert out_bf16.dtype == torch.bfloat16
    assert torch.allclose(out_bf16.float(), ref, atol=0.05 * ref.abs().max().item() + 1e-3)

    m.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = m(x.to(memory_format=torch.channels_last_3d)).float().sum()
    loss.backward()
    assert torch.isfinite(m.stem[0].weight.grad).all()


def test_build_model_from_hydra_configs():
    tiny = build_model(OmegaConf.load(CONF_DIR / "tiny.yaml"), num_classes=7)
    assert tiny.feature_dim == 128 and tiny.fc.out_features == 7 and tiny.input == "rgb_diff"
    cfg = OmegaConf.load(CONF_DIR / "r2plus1d_18.yaml")
    assert cfg.name == "r2plus1d_18" and build_model(cfg, num_classes=400).input == "rgb"  # the paper's
    assert build_model({"name": "r2plus1d_18"}, num_classes=400).feature_dim == 512


def test_build_model_unknown_name():
    with pytest.raises(ValueError, match="r2plus1d_18, r2plus1d_tiny"):
        build_model({"name": "r3d_18"}, num_classes=10)


def test_rgb_diff_input_sees_the_frames_and_their_differences():
    x = torch.randn(2, 3, 5, 8, 8)
    x[:, :, 3] = x[:, :, 2]  # a still frame: no difference
    both = frame_differences(x)
    assert both.shape == (2, 6, 5, 8, 8)
    assert torch.equal(both[:, :3], x)
    assert torch.all(both[:, 3:, 0] == 0) and torch.all(both[:, 3:, 3] == 0)
    assert torch.allclose(both[:, 3:, 4], DIFF_GAIN * (x[:, :, 4] - x[:, :, 3]))


def test_tiny_rgb_diff_keeps_the_keys_and_widens_the_stem_only():
    rgb, diff = r2plus1d_tiny(10), build_model({"name": "r2plus1d_tiny", "input": "rgb_diff"}, num_classes=10)
    shapes = {k: tuple(v.shape) for k, v in diff.state_dict().items()}
    assert shapes == {**{k: tuple(v.shape) for k, v in rgb.state_dict().items()}, "stem.0.weight": (8, 6, 1, 7, 7)}
    clip = torch.randn(2, 3, 8, 32, 32)
    assert diff(clip).shape == (2, 10)
    diff.eval()
    with torch.no_grad():  # blind to the frames themselves, the stem still tells a still clip from a moving one
        diff.stem[0].weight[:, :3] = 0
        still = clip[:, :, :1].expand_as(clip)
        assert torch.allclose(diff.forward_features(still), diff.forward_features(torch.zeros_like(clip)))
        assert not torch.allclose(diff.forward_features(still), diff.forward_features(clip))
    with pytest.raises(ValueError, match="model input 'flow' is not valid; choose one of: rgb, rgb_diff"):
        r2plus1d_tiny(10, input="flow")
