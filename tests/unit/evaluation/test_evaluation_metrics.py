"""Metrics against hand-computed values and against independent reference implementations.

The references are plain Python loops written here (classification) and scikit-learn's
average_precision_score (mAP), never the functions under test.
"""

import numpy as np
import pytest
import torch

from tubelab.evaluation.metrics import (
    clip_top1,
    mean_average_precision,
    mean_class_accuracy,
    off_by_one_accuracy,
    repetition_error,
)

SEEDS = [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------------- loop references

def _argmax(row):
    best = 0
    for j in range(1, len(row)):
        if row[j] > row[best]:
            best = j
    return best


def loop_clip_top1(logits, labels):
    return 100.0 * sum(_argmax(list(r)) == int(y) for r, y in zip(logits, labels)) / len(labels)


def loop_mean_class_accuracy(pred, labels):
    recalls = []
    for c in sorted(set(int(y) for y in labels)):
        idx = [i for i, y in enumerate(labels) if int(y) == c]
        recalls.append(sum(int(pred[i]) == c for i in idx) / len(idx))
    return 100.0 * sum(recalls) / len(recalls)


# --------------------------------------------------------------------------------------- clip top-1

def test_clip_top1_hand():
    logits = [[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.1, 0.2, 0.3], [5.0, 0.0, 0.0]]
    labels = [0, 1, 2, 1]  # last one wrong
    assert clip_top1(logits, labels) == 75.0
    assert clip_top1(np.array(logits), np.array(labels)) == 75.0
    assert clip_top1(torch.tensor(logits, dtype=torch.bfloat16), torch.tensor(labels)) == 75.0
    assert isinstance(clip_top1(torch.tensor(logits), torch.tensor(labels)), float)


@pytest.mark.parametrize("seed", SEEDS)
def test_clip_top1_random(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 200)), int(rng.integers(2, 12))
    logits, labels = rng.normal(size=(n, c)), rng.integers(0, c, size=n)
    assert clip_top1(logits, labels) == pytest.approx(loop_clip_top1(logits, labels), abs=1e-12)
    assert clip_top1(torch.from_numpy(logits), torch.from_numpy(labels)) == pytest.approx(
        loop_clip_top1(logits, labels), abs=1e-12)


# ---------------------------------------------------------------------------- mean class accuracy

def test_mean_class_accuracy_hand():
    labels = [0, 0, 0, 0, 1, 1, 2]
    pred = [0, 0, 0, 1, 1, 0, 3]  # recalls 3/4, 1/2, 0; class 3 is predicted but absent: excluded
    assert mean_class_accuracy(pred, labels, num_classes=4) == pytest.approx(100 * (0.75 + 0.5 + 0) / 3)
    scores = np.eye(4)[pred]  # (N, C) scores are argmaxed
    assert mean_class_accuracy(scores, labels, 4) == pytest.approx(100 * (0.75 + 0.5 + 0) / 3)
    assert mean_class_accuracy(torch.tensor(pred), torch.tensor(labels), 4) == pytest.approx(125 / 3)


@pytest.mark.parametrize("seed", SEEDS)
def test_mean_class_accuracy_random(seed):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 20))
    n = int(rng.integers(1, 100))
    labels = rng.integers(0, c, size=n)  # some classes usually absent
    pred = np.where(rng.random(n) < 0.5, labels, rng.integers(0, c, size=n))
    expected = loop_mean_class_accuracy(pred, labels)
    assert mean_class_accuracy(pred, labels, c) == pytest.approx(expected, abs=1e-12)
    scores = rng.normal(size=(n, c))
    assert mean_class_accuracy(scores, labels, c) == pytest.approx(
        loop_mean_class_accuracy(scores.argmax(axis=1), labels), abs=1e-12)


def test_mean_class_accuracy_errors():
    with pytest.raises(ValueError, match=r"labels: class ids must be in \[0, 3\)"):
        mean_class_accuracy([0, 1], [0, 3], 3)
    with pytest.raises(ValueError, match="pred: class ids"):
        mean_class_accuracy([0, -1], [0, 1], 3)
    with pytest.raises(ValueError, match="mismatched lengths"):
        mean_class_accuracy([0, 1, 2], [0, 1], 3)
    with pytest.raises(ValueError, match="columns"):
        mean_class_accuracy(np.zeros((2, 4)), [0, 1], 3)
    with pytest.raises(ValueError, match="num_classes"):
        mean_class_accuracy([0], [0], 0)
    with pytest.raises(ValueError, match="empty"):
        mean_class_accuracy([], [], 3)


def test_clip_top1_errors():
    with pytest.raises(ValueError, match="mismatched lengths"):
        clip_top1(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="logits: expected 2 dimension"):
        clip_top1(np.zeros(3), [0, 1, 0])
    with pytest.raises(ValueError, match="NaN"):
        clip_top1([[0.0, float("nan")]], [0])
    with pytest.raises(ValueError, match="infinite"):
        clip_top1([[0.0, float("inf")]], [0])
    with pytest.raises(ValueError, match="empty"):
        clip_top1(np.zeros((0, 2)), [])
    with pytest.raises(ValueError, match="labels: class ids"):
        clip_top1(np.zeros((1, 2)), [2])
    with pytest.raises(ValueError, match="labels: must hold integers"):
        clip_top1(np.zeros((1, 2)), [0.5])


# -------------------------------------------------------------------------------------------- mAP

def test_map_hand():
    scores = np.array([[0.9, 0.9, 0.3], [0.8, 0.5, 0.2], [0.7, 0.5, 0.1], [0.6, 0.1, 0.0]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
    # Class 0: thresholds .9 (P 1, R .5), .8 (P .5, R .5), .7 (P 2/3, R 1) -> AP = .5 + 0 + .5 * 2/3 = 5/6.
    # Class 1 (tie at .5 enters together): .9 (P 0, R 0), .5 (P 1/3, R .5), .1 (P 1/2, R 1) -> 5/12.
    # Class 2 has no positive: excluded.
    assert mean_average_precision(scores, targets) == pytest.approx(100 * (5 / 6 + 5 / 12) / 2)
    assert mean_average_precision(torch.tensor(scores), torch.tensor(targets).bool()) == pytest.approx(62.5)
    perfect = mean_average_precision([[1.0], [0.0]], [[1], [0]])
    assert perfect == 100.0


@pytest.mark.parametrize("seed", SEEDS)
def test_map_random_against_sklearn(seed):
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(5, 120)), int(rng.integers(2, 15))
    targets = (rng.random((n, c)) < rng.uniform(0.05, 0.5)).astype(int)
    targets[:, rng.choice(c, size=max(1, c // 4), replace=False)] = 0  # classes with no positive
    targets[rng.integers(n), 0] = 1  # at least one class with a positive
    scores = np.round(rng.normal(size=(n, c)), 1)  # rounding makes many ties
    if c > 2:
        scores[:, 1] = rng.integers(0, 3, size=n)  # heavy ties
    with_pos = [j for j in range(c) if targets[:, j].any()]
    expected = 100 * np.mean([average_precision_score(targets[:, j], scores[:, j]) for j in with_pos])
    assert mean_average_precision(scores, targets) == pytest.approx(expected, abs=1e-10)
    assert mean_average_precision(torch.from_numpy(scores), torch.from_numpy(targets)) == pytest.approx(
        expected, abs=1e-10)


def test_map_errors():
    with pytest.raises(ValueError, match="no class has a positive"):
        mean_average_precision(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="0/1"):
        mean_average_precision(np.zeros((2, 2)), [[1, 2], [0, 0]])
    with pytest.raises(ValueError, match="mismatched shapes"):
        mean_average_precision(np.zeros((3, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        mean_average_precision([[float("nan")], [0.0]], [[1], [0]])
    with pytest.raises(ValueError, match="empty"):
        mean_average_precision(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="2 dimension"):
        mean_average_precision([0.1, 0.2], [1, 0])


# ----------------------------------------------------------------------------- repetition counting

def test_repetition_error_hand():
    assert repetition_error([9, 12, 5], [10, 10, 4]) == pytest.approx((0.1 + 0.2 + 0.25) / 3)
    assert repetition_error(torch.tensor([9.0, 12.0, 5.0]), np.array([10, 10, 4])) == pytest.approx(0.55 / 3)
    assert repetition_error([3.0], [3]) == 0.0


def test_off_by_one_hand():
    # floor(pred + .5): 9.4 -> 9 (|9-10|=1 ok), 11.6 -> 12 (2, no), 5.5 -> 6 (2, no), 2.5 -> 3 (2, no;
    # round-half-even would give 2 and pass), 0.49 -> 0 (1 ok), 7 -> 7 (0 ok)
    assert off_by_one_accuracy([9.4, 11.6, 5.5, 2.5, 0.49, 7], [10, 10, 4, 1, 1, 7]) == pytest.approx(50.0)
    assert off_by_one_accuracy(torch.tensor([1.5]), torch.tensor([3])) == 100.0  # 1.5 -> 2


def test_counting_errors():
    with pytest.raises(ValueError, match="gt_counts: 1 count"):
        repetition_error([1, 2], [0, 2])
    with pytest.raises(ValueError, match="mismatched lengths"):
        repetition_error([1, 2], [1])
    with pytest.raises(ValueError, match="empty"):
        repetition_error([], [])
    with pytest.raises(ValueError, match="NaN"):
        repetition_error([float("nan")], [1])
    with pytest.raises(ValueError, match="NaN"):
        off_by_one_accuracy([1], [float("nan")])
    with pytest.raises(ValueError, match="negative"):
        off_by_one_accuracy([1], [-1])
    with pytest.raises(ValueError, match="mismatched lengths"):
        off_by_one_accuracy([1, 2], [1])
