import re

import pytest
import torch

from tubelab.models import (CheckpointMismatchError, CheckpointReadError, load_backbone_state,
                            r2plus1d_18, r2plus1d_tiny)


def assert_same_weights(a, b, skip=()):
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        if not any(k.startswith(s) for s in skip):
            assert torch.equal(sa[k], sb[k]), k


def save_tubelab_checkpoint(model, path, **meta):
    """The tubelab checkpoint layout: the backbone's state dict under "model" (as pretraining saves it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "meta": meta}, path)


def fresh_tiny(num_classes=10, seed=1):
    torch.manual_seed(seed)
    return r2plus1d_tiny(num_classes=num_classes)


def test_round_trip(tmp_path):
    src = fresh_tiny(seed=0)
    src.layer1[0].conv1[1].running_mean.fill_(0.5)  # buffers travel too
    path = tmp_path / "ckpt" / "backbone.pt"
    save_tubelab_checkpoint(src, path, epoch=3)
    assert torch.load(path, weights_only=True)["meta"] == {"epoch": 3}

    dst = fresh_tiny()
    report = load_backbone_state(dst, path)
    assert_same_weights(src, dst)
    assert len(report.loaded) == len(src.state_dict())
    assert not (report.missing or report.unexpected or report.mismatched or report.dropped)
    assert str(path) in report.summary()


def test_torchvision_format_state_dict():
    torch.manual_seed(0)
    src = r2plus1d_18()
    dst = r2plus1d_18()
    report = load_backbone_state(dst, src.state_dict())  # plain, as torchvision's .pth files
    assert len(report.loaded) == 224 and not report.renamed
    assert_same_weights(src, dst)
    report = load_backbone_state(dst, {"state_dict": src.state_dict(), "epoch": 5})
    assert len(report.loaded) == 224


def test_moco_prefixed_checkpoint():
    src = fresh_tiny(seed=0)
    backbone = {k: v for k, v in src.state_dict().items() if not k.startswith("fc.")}
    ckpt = {f"module.encoder_q.{k}": v for k, v in backbone.items()}
    ckpt.update({f"module.encoder_k.{k}": torch.zeros_like(v) for k, v in backbone.items()})
    # MoCo-v2 replaces encoder.fc with an MLP head: fc.0 / fc.2
    ckpt.update({"module.encoder_q.fc.0.weight": torch.randn(128, 128),
                 "module.encoder_q.fc.0.bias": torch.randn(128),
                 "module.encoder_q.fc.2.weight": torch.randn(64, 128),
                 "module.encoder_q.fc.2.bias": torch.randn(64),
                 "module.queue": torch.randn(64, 256), "module.queue_ptr": torch.zeros(1)})
    ckpt = {"epoch": 100, "arch": "r2plus1d", "state_dict": ckpt}

    dst = fresh_tiny()
    with pytest.raises(CheckpointMismatchError, match=r"allow_missing=\['fc\.\*'\]"):
        load_backbone_state(dst, ckpt)
    report = load_backbone_state(dst, ckpt, allow_missing=["fc.*"])
    assert_same_weights(src, dst, skip=("fc.",))
    assert report.missing == ["fc.weight", "fc.bias"]
    assert len(report.loaded) == len(backbone)
    assert "module.queue" in report.dropped and "module.encoder_q.fc.2.weight" in report.dropped
    assert sum(k.startswith("module.encoder_k.") for k in report.dropped) == len(backbone)
    assert f"encoder_k.* ({len(backbone)})" in report.summary()


def to_pyvrl(key):
    """torchvision name -> pyvrl (tubelet-contrast) name, the inverse of the loader's renaming."""
    for a, b in [(r"^stem\.0\.", "stem.conv_s."), (r"^stem\.1\.", "stem.bn_s."),
                 (r"^stem\.3\.", "stem.conv_t."), (r"^stem\.4\.", "stem.bn_t."),
                 (r"\.(conv[12])\.0\.0\.", r".\1.conv_s."), (r"\.(conv[12])\.0\.1\.", r".\1.bn_s."),
                 (r"\.(conv[12])\.0\.3\.", r".\1.conv_t."), (r"\.conv([12])\.1\.", r".bn\1."),
                 (r"\.downsample\.0\.", ".downsample.conv."),
                 (r"\.downsample\.1\.", ".downsample_bn.")]:
        key = re.sub(a, b, key)
    return key


def test_tubelet_contrast_pyvrl_checkpoint():
    src = fresh_tiny(seed=0)
    backbone = {to_pyvrl(k): v for k, v in src.state_dict().items() if not k.startswith("fc.")}
    assert "layer2.0.downsample_bn.running_var" in backbone and "layer1.0.bn2.weight" in backbone
    sd = {f"backbone.{k}": v for k, v in backbone.items()}
    sd.update({f"key_encoder.{k}": v for k, v in backbone.items()})
    for prefix in ("fc", "key_fc"):
        sd.update({f"{prefix}.0.weight": torch.randn(128, 128),
                   f"{prefix}.2.weight": torch.randn(8, 128)})
    sd.update({"queue": torch.randn(8, 32), "queue_ptr": torch.zeros(1, dtype=torch.long)})

    dst = fresh_tiny()
    report = load_backbone_state(dst, {"meta": {"epoch": 100}, "state_dict": sd},
                                 allow_missing=["fc.*"])
    assert_same_weights(src, dst, skip=("fc.",))
    renamed = report.renamed["backbone.layer2.0.downsample_bn.weight"]
    assert renamed == "layer2.0.downsample.1.weight"
    assert len(report.loaded) == len(backbone)
    assert not report.unexpected and not report.mismatched


def test_missing_fc_fails_unless_allowed():
    sd = {k: v for k, v in fresh_tiny(seed=0).state_dict().items() if not k.startswith("fc.")}
    with pytest.raises(CheckpointMismatchError) as err:
        load_backbone_state(fresh_tiny(), sd)
    msg = str(err.value)
    assert "fc.weight model (10, 128)" in msg and "fc.bias model (10,)" in msg
    assert "allow_missing=['fc.*']" in msg
    assert err.value.report.missing == ["fc.weight", "fc.bias"]

    dst = fresh_tiny()
    fc_before = dst.fc.weight.clone()
    report = load_backbone_state(dst, sd, allow_missing=["fc.*"])
    assert torch.equal(dst.fc.weight, fc_before)
    assert "missing (allowed): fc.weight, fc.bias" in report.summary()


def test_shape_mismatch_lists_both_shapes():
    sd = fresh_tiny(num_classes=10, seed=0).state_dict()
    dst = fresh_tiny(num_classes=5)
    with pytest.raises(CheckpointMismatchError) as err:
        load_backbone_state(dst, sd)
    msg = str(err.value)
    assert "fc.weight checkpoint (10, 128) vs model (5, 128)" in msg
    assert "fc.bias checkpoint (10,) vs model (5,)" in msg
    assert "allow_mismatched=['fc.*']" in msg
    report = load_backbone_state(dst, sd, allow_mismatched=["fc.*"])
    assert set(report.mismatched) == {"fc.weight", "fc.bias"}
    assert "fc.weight (10, 128) vs (5, 128)" in report.summary()
    assert dst.fc.weight.shape == (5, 128)


def test_unexpected_keys_fail_unless_allowed():
    sd = dict(fresh_tiny(seed=0).state_dict())
    sd["extra.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointMismatchError, match=r"extra.weight checkpoint \(3,\)"):
        load_backbone_state(fresh_tiny(), sd)
    report = load_backbone_state(fresh_tiny(), sd, allow_unexpected=["extra.*"])
    assert report.unexpected == ["extra.weight"]


def test_every_offending_key_is_listed():
    sd = {k: v for k, v in fresh_tiny(seed=0).state_dict().items() if not k.startswith("layer4.")}
    with pytest.raises(CheckpointMismatchError) as err:
        load_backbone_state(fresh_tiny(), sd)
    missing = [k for k in fresh_tiny().state_dict() if k.startswith("layer4.")
               and not k.endswith("num_batches_tracked")]
    assert all(k in str(err.value) for k in missing)
    assert "allow_missing=['layer4.*']" in str(err.value)


def test_old_checkpoint_without_num_batches_tracked_loads():
    sd = {k: v for k, v in fresh_tiny(seed=0).state_dict().items()
          if not k.endswith("num_batches_tracked")}
    report = load_backbone_state(fresh_tiny(), sd)
    assert report.missing and all(k.endswith("num_batches_tracked") for k in report.missing)


def test_truncated_file_gives_clear_error(tmp_path):
    path = tmp_path / "broken.pt"
    save_tubelab_checkpoint(fresh_tiny(seed=0), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointReadError, match=re.escape(str(path))):
        load_backbone_state(fresh_tiny(), path)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_backbone_state(fresh_tiny(), tmp_path / "nope.pt")
