"""The UCF-RC head and the 32-frame context input (DTRC/model.py; UP/utils/myutils.py:8-48)."""

import torch

from tubelab.models import r2plus1d_tiny
from tubelab.models.repetition import RepetitionHead, attach_head, context_indices, context_input
from tubelab.training.steps import normalize


def test_head_shapes_and_reshape_order():
    head = RepetitionHead(16)
    x = torch.randn(3, 16)
    cls1, box1, cls2, box2 = head(x)
    assert cls1.shape == cls2.shape == (3, 2, 7) and box1.shape == box2.shape == (3, 7)
    flat = head.fc_cls_1(x)  # official reshape(-1, 2, 7): outputs 0..6 negative, 7..13 positive logits
    assert torch.equal(cls1[:, 0], flat[:, :7]) and torch.equal(cls1[:, 1], flat[:, 7:])
    assert torch.equal(box2, head.fc_box_2(x))


def test_attach_head_gives_severes_checkpoint_keys_and_a_4_tuple():
    net = attach_head(r2plus1d_tiny())
    keys = net.state_dict().keys()
    for name in ("fc_cls_1", "fc_box_1", "fc_cls_2", "fc_box_2"):
        assert f"fc.{name}.weight" in keys and f"fc.{name}.bias" in keys
    assert net.state_dict()["fc.fc_cls_1.weight"].shape == (14, 128)
    assert "fc.weight" not in keys
    out = net.eval()(torch.randn(2, 3, 8, 16, 16))
    assert [tuple(o.shape) for o in out] == [(2, 2, 7), (2, 7), (2, 2, 7), (2, 7)]


def test_context_indices_by_hand_half_to_even():
    # state (20, 34, 49): left cycle 15 frames. Left span [20 - 15, 34] = [5, 34], step 30 / 15 = 2:
    # round(4.5 + 2j) with half-to-even -> 4 (clamped to 5), 6, 8, ..., 32, round(34.5) = 34.
    # Right span [35, 49 + (49 - 35 + 1)] = [35, 64]: round(34.5 + 2j) -> 34 (clamped to 35), 36, ..., 64;
    # 60, 62, 64 lie past a 60-frame video -> padding (-1).
    left = [5] + list(range(6, 35, 2))
    right = [35] + list(range(36, 59, 2)) + [-1, -1, -1]
    assert context_indices(20, 34, 49, 60) == left + right
    # Python 2's round (half away from zero) would give 5, 7, 9, ...: this is what Python 3 changes.


def test_context_indices_pads_before_the_video_and_truncates_float_states():
    # (3, 17, 32): left span [3 - 15, 17] = [-12, 17]: round(-12.5 + 2j) -> -12, -10, ..., -2, round(-0.5) = 0,
    # 2, ..., 16, round(17.5) = 18 clamped to 17. Right span [18, 32 + 15] = [18, 47]: 18, 20, ..., 46, 47.
    expected = [-1] * 6 + list(range(0, 17, 2)) + [17] + list(range(18, 47, 2)) + [47]
    assert context_indices(3, 17, 32, 60) == expected
    # a coarse-search state with floats: left start int(25.8 - 5.2) = 20, end 30, step 11 / 15;
    # right start int(31.0) = 31, end int(35.2 + 5.2) = 40, step 10 / 15 (rounded by hand from pos - 0.5 + j step)
    left = [20, 20, 21, 22, 22, 23, 24, 25, 25, 26, 27, 28, 28, 29, 30, 30]
    right = [31, 31, 32, 32, 33, 34, 34, 35, 36, 36, 37, 38, 38, 39, 40, 40]
    assert context_indices(25.8, 30.0, 35.2, 60) == left + right


def test_context_input_gathers_the_indexed_frames_and_pads_after_normalisation():
    n, t = 60, 64
    frames = torch.zeros(2, 3, t, 4, 4, dtype=torch.uint8)
    frames[:, 0] = torch.arange(t, dtype=torch.uint8).view(1, t, 1, 1)  # channel 0 = frame index
    frames[1, 1] = 200  # row 1 differs from row 0 in channel 1
    states = torch.tensor([[20, 34, 49], [3, 17, 32]])
    x = context_input(frames, torch.tensor([n, n]), states, normalize)
    assert x.shape == (2, 3, 32, 4, 4) and x.dtype == torch.float32
    mean, std = torch.tensor((0.485, 0.456, 0.406)) * 255, torch.tensor((0.229, 0.224, 0.225)) * 255
    for row, (lp, mp, rp) in enumerate(states.tolist()):
        for j, idx in enumerate(context_indices(lp, mp, rp, n)):
            pixel = x[row, :, j]
            if idx == -1:  # the ImageNet mean written into normalised space
                assert torch.equal(pixel, torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1).expand(3, 4, 4))
            else:
                raw = torch.tensor([idx, 200 if row else 0, 0], dtype=torch.float32)
                assert torch.allclose(pixel, ((raw - mean) / std).view(3, 1, 1).expand(3, 4, 4))
    # frames 60..63 exist in the tensor (zero padding of a longer batch) but lie past n_frames: never read
    assert (x[0, :, 29:] == torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1)).all()


def test_context_input_normalises_only_the_gathered_frames():
    calls = []

    def spy(clips):
        calls.append(tuple(clips.shape))
        return normalize(clips)

    context_input(torch.zeros(1, 3, 300, 2, 2, dtype=torch.uint8), [300], [(100, 120, 141)], spy)
    assert calls == [(1, 3, 32, 2, 2)]
