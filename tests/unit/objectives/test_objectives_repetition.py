"""UCF-RC anchor targets and loss against hand-worked numbers (DTRC/train_2stream.py:25-55, 183-198)."""

import math

import pytest
import torch

from tubelab.objectives.repetition import ANCHORS, BOX_WEIGHT, anchor_targets, repetition_loss


def test_constants_are_severes():
    assert ANCHORS == (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0) and BOX_WEIGHT == 50.0


def test_anchor_targets_by_hand():
    # gt 9 -> t = 10 frames; current A = 10: anchor lengths 5, 6.7, 8, 10, 12.5, 15, 20;
    # IoU = 0.5, 0.67, 0.8, 1, 0.8, 0.667, 0.5: all positive, the two ends exactly at the 0.5 threshold.
    # gt 4 -> t = 5 against A = 10: IoU 1, 0.746, 0.625, 0.5, 0.4, 0.333, 0.25 -> 1 1 1 1 0 0 0.
    # gt -1: unknown -> the whole row ignored.
    cls, box = anchor_targets(torch.tensor([9, 4, -1]), torch.tensor([10, 10, 10]))
    assert cls.dtype == torch.long and box.dtype == torch.float32
    assert cls.tolist() == [[1] * 7, [1, 1, 1, 1, 0, 0, 0], [-1] * 7]
    expected_0 = [math.log(10 / (a * 10)) for a in ANCHORS]
    expected_1 = [math.log(5 / (a * 10)) for a in ANCHORS[:4]] + [-1.0] * 3
    assert box[0].tolist() == pytest.approx(expected_0, abs=1e-6)
    assert box[1].tolist() == pytest.approx(expected_1, abs=1e-6)
    assert box[2].tolist() == [-1.0] * 7
    assert box[0, 0].item() == pytest.approx(math.log(2)) and box[0, 6].item() == pytest.approx(-math.log(2))


def test_anchor_targets_just_below_the_threshold_is_negative():
    # t = 10, A = 10.1: anchor 2.0 -> 20.2, IoU 0.495 < 0.5, negative; anchor 0.5 -> 5.05, IoU 0.505, positive
    cls, box = anchor_targets(torch.tensor([9]), torch.tensor([10.1]))
    assert cls[0, 6].item() == 0 and box[0, 6].item() == -1.0
    assert cls[0, 0].item() == 1 and box[0, 0].item() == pytest.approx(math.log(10 / 5.05), abs=1e-6)


def _by_hand(logits, target):
    """Per-entry CE of a 2-way softmax, by hand; mean over entries whose target is not -1."""
    terms = []
    for b in range(target.shape[0]):
        for a in range(target.shape[1]):
            if target[b, a] == -1:
                continue
            z0, z1 = logits[b, 0, a].item(), logits[b, 1, a].item()
            log_norm = math.log(math.exp(z0) + math.exp(z1))
            terms.append(log_norm - (z1 if target[b, a] == 1 else z0))
    return sum(terms) / len(terms)


def _smooth_l1(d):
    return 0.5 * d * d if abs(d) < 1 else abs(d) - 0.5


def test_loss_equals_a_by_hand_computation():
    torch.manual_seed(0)
    cls1, cls2 = torch.randn(2, 2, 7), torch.randn(2, 2, 7)
    box1, box2 = torch.randn(2, 7), torch.randn(2, 7)
    t1 = anchor_targets(torch.tensor([9, -1]), torch.tensor([10, 10]))
    t2 = anchor_targets(torch.tensor([4, 30]), torch.tensor([10, 12]))
    loss = repetition_loss(cls1, box1, cls2, box2, t1, t2)

    def box_term(pred, target):  # entries with target -1 add nothing, but all 14 count in the mean
        total = sum(_smooth_l1(pred[b, a].item() - target[b, a].item())
                    for b in range(2) for a in range(7) if target[b, a] != -1)
        return total / 14

    expected = (_by_hand(cls1, t1[0]) + _by_hand(cls2, t2[0])
                + 50 * (box_term(box1, t1[1]) + box_term(box2, t2[1])))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_negatives_add_zero_box_loss_but_count_in_the_mean():
    cls = torch.zeros(1, 2, 7)
    # t = 10, A = 20: anchors 0.5 (IoU 1) ... 1.0 (IoU 0.5) positive, 1.25.. 2.0 negative
    targets = anchor_targets(torch.tensor([9]), torch.tensor([20]))
    assert targets[0].tolist() == [[1, 1, 1, 1, 0, 0, 0]]
    box = torch.tensor([[math.log(10 / (a * 20)) + 0.1 for a in ANCHORS[:4]] + [5.0, -7.0, 3.0]])
    ignored = anchor_targets(torch.tensor([-1]), torch.tensor([20]))
    loss = repetition_loss(cls, box, cls, torch.zeros(1, 7), targets, ignored)
    ce = math.log(2)  # zero logits: each valid entry costs log 2; the right CE has no valid entry -> 0
    expected = ce + 50 * (4 * 0.5 * 0.1 ** 2 / 7)  # the 3 negatives count in the denominator 7
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_box_gradient_reaches_positives_only():
    box = torch.full((1, 7), 0.3, requires_grad=True)  # positive box targets: ln(10 / (a 20)) = 0, -0.29, ...
    targets = anchor_targets(torch.tensor([9]), torch.tensor([20]))
    repetition_loss(torch.zeros(1, 2, 7), box, torch.zeros(1, 2, 7), torch.zeros(1, 7), targets, targets).backward()
    assert (box.grad[0, :4] != 0).all() and (box.grad[0, 4:] == 0).all()


def test_all_ignored_gives_a_finite_loss_with_gradients():
    cls = torch.randn(2, 2, 7, requires_grad=True)
    box = torch.randn(2, 7, requires_grad=True)
    ignored = anchor_targets(torch.tensor([-1, -1]), torch.tensor([10, 10]))
    loss = repetition_loss(cls, box, cls, box, ignored, ignored)
    assert torch.isfinite(loss) and loss.item() == 0.0
    loss.backward()  # still attached to the graph (DDP needs every head parameter used)
    assert cls.grad is not None and torch.equal(cls.grad, torch.zeros_like(cls))
