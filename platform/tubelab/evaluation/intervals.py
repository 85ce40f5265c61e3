"""How sure a reported score is: 95 % intervals, paired differences and chance levels.

A score is computed from one fine-tune's per-video test predictions (tracking.predictions), or, for a
grid point with repeats, averaged over its seeds. Its interval is a percentile bootstrap that resamples
the seeds and, within each, the test videos, so it covers both sources of noise. A difference between
two rows is paired: each resample draws the same seeds (matched by seed) and the same test videos
(matched by video key) for both rows, so what the two share cancels. A difference whose interval holds
0 is within noise. Chance is the score of a predictor that ignores its input (the majority class, the
class prevalences, or the best constant count).
"""

from __future__ import annotations

import math

import numpy as np

from tubelab.evaluation import metrics

CONFIDENCE = 0.95
RESAMPLES = 1000


def metric_value(metric: str, prediction: np.ndarray, target: np.ndarray, num_classes: int) -> float:
    """One metric (in the units the tables print) from per-video predictions and targets."""
    if metric == "top1":
        return metrics.clip_top1(prediction, target)
    if metric == "mean_class_accuracy":
        return metrics.mean_class_accuracy(prediction, target, num_classes)
    if metric == "map":
        return metrics.mean_average_precision(prediction, target)
    if metric == "repetition_error":
        return metrics.repetition_error(prediction, target)
    if metric == "obo":
        return metrics.off_by_one_accuracy(prediction, target)
    raise ValueError(f"no interval for metric {metric!r}")


def chance_level(metric: str, target: np.ndarray, num_classes: int) -> float:
    """The metric of the best predictor that sees no video: the majority class (top1), any constant class
    (mean class accuracy), the class prevalences as scores (mAP), the best constant count (counting: for the
    relative error that is a 1/count-weighted median, well below the mean count when counts vary, so a model
    that learned to predict the mean has not beaten chance)."""
    n = len(target)
    if metric in ("top1", "mean_class_accuracy"):
        if metric == "mean_class_accuracy":
            return 100.0 / len(np.unique(target))
        constant = np.zeros((n, num_classes), np.float32)
        constant[:, np.bincount(target.astype(np.int64), minlength=num_classes).argmax()] = 1
        return metric_value(metric, constant, target, num_classes)
    if metric == "map":
        return metric_value(metric, np.tile(target.mean(axis=0), (n, 1)), target, num_classes)
    # Both count metrics are piecewise in the constant: the relative error is convex with its kinks at the
    # targets, off-by-one accuracy steps at integers, so the targets (and their neighbours) hold the best.
    counts = np.unique(target)
    candidates = np.unique(np.concatenate([counts - 1, counts, counts + 1])) if metric == "obo" else counts
    values = [metric_value(metric, np.full(n, c, np.float32), target, num_classes) for c in candidates]
    return min(values) if metric == "repetition_error" else max(values)


def bounds(values: np.ndarray) -> tuple[float, float]:
    """The central 95 % of bootstrap values (NaN draws, undefined resamples, left out)."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return math.nan, math.nan
    tail = 100 * (1 - CONFIDENCE) / 2
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def _scores(runs: list[dict], seeds: np.ndarray, videos: list[np.ndarray]) -> float:
    """Mean over the drawn seeds of the metric on each seed's drawn videos (NaN if one is undefined)."""
    values = []
    for s, v in zip(seeds, videos):
        run = runs[s]
        try:
            values.append(metric_value(run["metric"], run["prediction"][v], run["target"][v], run["num_classes"]))
        except ValueError:  # e.g. a resample with no positive of any class (mAP)
            return math.nan
    return float(np.mean(values))


def bootstrap_draws(runs: list[dict], resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """`resamples` bootstrap values of the mean score over `runs` (one predictions dict per seed)."""
    rng = np.random.default_rng(seed)
    draws = np.empty(resamples)
    for i in range(resamples):
        seeds = rng.integers(0, len(runs), len(runs))
        draws[i] = _scores(runs, seeds, [rng.integers(0, len(runs[s]["target"]), len(runs[s]["target"]))
                                         for s in seeds])
    return draws


def score_interval(runs: list[dict], resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """(score, low, high): the mean over `runs` (one per seed, each a predictions dict) and its interval."""
    point = _scores(runs, np.arange(len(runs)), [np.arange(len(r["target"])) for r in runs])
    return (point, *bounds(bootstrap_draws(runs, resamples, seed)))


def _aligned(a: dict, b: dict) -> tuple[dict, dict]:
    """Both runs restricted to the test videos they share, in one order (by video key)."""
    common = np.intersect1d(a["video_key"], b["video_key"])
    if len(common) == 0:
        raise ValueError("the two runs share no test video: a paired difference needs the same test set")

    def pick(run):
        order = np.argsort(run["video_key"])
        at = order[np.searchsorted(run["video_key"], common, sorter=order)]
        return {**run, "video_key": common, "target": run["target"][at], "prediction": run["prediction"][at]}

    return pick(a), pick(b)


def paired_difference(base: list[dict], other: list[dict], resamples: int = RESAMPLES,
                      seed: int = 0) -> tuple[float, float, float]:
    """(other - base, low, high) over the seeds both have (paired in order: same seed index) and the test
    videos each seed pair shares; every resample draws the same seeds and videos for both."""
    n = min(len(base), len(other))
    pairs = [_aligned(a, b) for a, b in zip(base[:n], other[:n])]
    a_runs, b_runs = [p[0] for p in pairs], [p[1] for p in pairs]
    everything = [np.arange(len(r["target"])) for r in a_runs]
    point = _scores(b_runs, np.arange(n), everything) - _scores(a_runs, np.arange(n), everything)
    rng = np.random.default_rng(seed)
    draws = np.empty(resamples)
    for i in range(resamples):
        seeds = rng.integers(0, n, n)
        videos = [rng.integers(0, len(a_runs[s]["target"]), len(a_runs[s]["target"])) for s in seeds]
        draws[i] = _scores(b_runs, seeds, videos) - _scores(a_runs, seeds, videos)
    return (point, *bounds(draws))
