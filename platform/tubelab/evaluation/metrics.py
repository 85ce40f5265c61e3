"""Evaluation metrics of the SEVERE settings, as pure functions.

Every function takes numpy arrays, torch tensors (any device/dtype; they are detached and copied to
host memory) or nested sequences, computes in float64, and returns a Python float. Bad inputs raise
ValueError naming the argument and the problem: wrong number of dimensions, mismatched lengths, empty
input, NaN or infinite values, labels that are not integers in range.

Percentages are in [0, 100]; the repetition error is a fraction (lower is better), as SEVERE prints it.
Argmax ties go to the lowest class index (numpy's argmax).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "clip_top1",
    "mean_class_accuracy",
    "mean_average_precision",
    "repetition_error",
    "off_by_one_accuracy",
]


# --------------------------------------------------------------------------------------------- inputs

def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch here
        t = x.detach().cpu()
        if t.is_floating_point():  # bfloat16 / float16 have no (or a lossy) numpy path
            t = t.double()
        return t.numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as e:  # ragged nested sequences
        raise ValueError(f"{name}: cannot be read as an array ({e})") from e


def _floats(x, name: str, ndim: int) -> np.ndarray:
    a = _to_numpy(x, name)
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimension(s), got shape {a.shape}")
    if a.size == 0 or a.shape[0] == 0:
        raise ValueError(f"{name}: empty input (shape {a.shape})")
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"{name}: expected numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        kind = "NaN" if np.isnan(a).any() else "infinite"
        raise ValueError(f"{name}: contains {int(bad.sum())} non-finite value(s) ({kind})")
    return a


def _class_ids(x, name: str, num_classes: int | None = None) -> np.ndarray:
    """A 1-D array of integer class ids (integer-valued floats accepted), optionally in [0, num_classes)."""
    a = _floats(x, name, 1)
    if (a != np.round(a)).any():
        raise ValueError(f"{name}: must hold integers")
    a = a.astype(np.int64)
    if num_classes is not None and (a.min() < 0 or a.max() >= num_classes):
        raise ValueError(f"{name}: class ids must be in [0, {num_classes}), got range [{a.min()}, {a.max()}]")
    return a


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("mismatched lengths: " + ", ".join(f"{k}={n}" for k, n in lengths.items()))


# ------------------------------------------------------------------------------------ classification

def clip_top1(logits, labels) -> float:
    """Clip@1: percentage of clips whose argmax over `logits` (N, C) equals `labels` (N,) in [0, C)."""
    lg = _floats(logits, "logits", 2)
    y = _class_ids(labels, "labels", lg.shape[1])
    _same_length(logits=lg, labels=y)
    return float(100.0 * np.mean(lg.argmax(axis=1) == y))


def mean_class_accuracy(pred, labels, num_classes: int) -> float:
    """Mean over the classes present in `labels` of per-class recall (correct / count), in %.

    `pred` is either predicted class ids (N,) or scores (N, num_classes), which are argmaxed. Classes
    that never occur in `labels` are left out of the mean (a recall over zero samples is undefined),
    even if they are predicted; predicting them still costs the recall of the true class.
    """
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive integer, got {num_classes!r}")
    p = _to_numpy(pred, "pred")
    if p.ndim == 2:
        scores = _floats(p, "pred", 2)
        if scores.shape[1] != num_classes:
            raise ValueError(f"pred: scores have {scores.shape[1]} columns, num_classes is {num_classes}")
        p = scores.argmax(axis=1)
    p = _class_ids(p, "pred", num_classes)
    y = _class_ids(labels, "labels", num_classes)
    _same_length(pred=p, labels=y)
    count = np.bincount(y, minlength=num_classes)
    correct = np.bincount(y[p == y], minlength=num_classes)
    present = count > 0
    return float(100.0 * np.mean(correct[present] / count[present]))


# --------------------------------------------------------------------------------------- multi-label

def _average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """AP of one class, as sklearn.metrics.average_precision_score: sum_n (R_n - R_{n-1}) * P_n.

    The thresholds are the distinct scores in decreasing order; at each, every sample scoring at least
    the threshold counts as predicted positive, so tied samples enter together (sklearn's tie rule).
    """
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], positive[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp, fp = tp[last_of_tie], fp[last_of_tie]
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def mean_average_precision(scores, targets) -> float:
    """mAP in % (Charades protocol): per-class average precision, averaged over classes with a positive.

    `scores` (N, C) are any real-valued scores (logits or probabilities: AP only uses their order);
    `targets` (N, C) are 0/1 (or bool) multi-label targets. Per class, AP is computed exactly like
    sklearn.metrics.average_precision_score (step-wise: sum over distinct score thresholds, in
    decreasing order, of (R_n - R_{n-1}) * P_n, with tied scores entering together). Classes with no
    positive in `targets` have undefined AP and are excluded; ValueError if no class has a positive.
    """
    s = _floats(scores, "scores", 2)
    t = _floats(targets, "targets", 2)
    if s.shape != t.shape:
        raise ValueError(f"mismatched shapes: scores {s.shape}, targets {t.shape}")
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError("targets: must be 0/1 (or bool)")
    t = t.astype(bool)
    classes = np.flatnonzero(t.any(axis=0))
    if len(classes) == 0:
        raise ValueError("targets: no class has a positive, mAP is undefined")
    return float(100.0 * np.mean([_average_precision(s[:, c], t[:, c]) for c in classes]))


# ------------------------------------------------------------------------------- repetition counting

def _counts(pred_counts, gt_counts) -> tuple[np.ndarray, np.ndarray]:
    p = _floats(pred_counts, "pred_counts", 1)
    g = _floats(gt_counts, "gt_counts", 1)
    _same_length(pred_counts=p, gt_counts=g)
    return p, g


def repetition_error(pred_counts, gt_counts) -> float:
    """UCF-RC error: mean over videos of |pred - gt| / gt, as a fraction (lower is better).

    Predicted counts are used as given (not rounded). ValueError if any ground-truth count is <= 0.
    """
    p, g = _counts(pred_counts, gt_counts)
    if (g <= 0).any():
        raise ValueError(f"gt_counts: {int((g <= 0).sum())} count(s) <= 0; the relative error needs gt > 0")
    return float(np.mean(np.abs(p - g) / g))


def off_by_one_accuracy(pred_counts, gt_counts) -> float:
    """Off-by-one accuracy: % of videos with |round(pred) - gt| <= 1.

    Predictions are rounded half up, floor(pred + 0.5) (so 2.5 -> 3, unlike Python's round-half-even);
    ground-truth counts are used as given. ValueError if any ground-truth count is negative.
    """
    p, g = _counts(pred_counts, gt_counts)
    if (g < 0).any():
        raise ValueError(f"gt_counts: {int((g < 0).sum())} negative count(s)")
    return float(100.0 * np.mean(np.abs(np.floor(p + 0.5) - g) <= 1))
