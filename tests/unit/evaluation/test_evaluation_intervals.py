"""Intervals against independent computations: scipy's bootstrap, the binomial closed form, toy pairs."""

import math

import numpy as np
import pytest
from scipy import stats

from tubelab.evaluation import intervals


def run(correct: np.ndarray, num_classes: int = 10, keys=None) -> dict:
    """Predictions of a classifier that is right exactly on `correct` (one-hot probabilities)."""
    n = len(correct)
    target = np.arange(n) % num_classes
    predicted = np.where(correct, target, (target + 1) % num_classes)
    prediction = np.eye(num_classes, dtype=np.float32)[predicted]
    keys = np.arange(n) if keys is None else keys
    return {"video_key": keys, "target": target, "prediction": prediction, "metric": "top1",
            "num_classes": num_classes}


def test_one_seed_interval_matches_scipy_bootstrap_and_the_closed_form():
    correct = np.random.default_rng(0).random(400) < 0.6
    score, low, high = intervals.score_interval([run(correct)], resamples=2000)
    assert score == pytest.approx(100 * correct.mean())
    ref = stats.bootstrap((100.0 * correct,), np.mean, method="percentile", n_resamples=4000,
                          random_state=1).confidence_interval
    assert low == pytest.approx(ref.low, abs=1.0) and high == pytest.approx(ref.high, abs=1.0)
    half = 100 * 1.96 * math.sqrt(correct.mean() * (1 - correct.mean()) / len(correct))
    assert high - low == pytest.approx(2 * half, rel=0.1)


def test_seeds_widen_the_interval_when_they_disagree():
    rng = np.random.default_rng(1)
    same = [run(rng.random(200) < 0.5) for _ in range(3)]
    apart = [run(rng.random(200) < p) for p in (0.2, 0.5, 0.8)]
    width = [(h - lo) for _, lo, h in (intervals.score_interval(same), intervals.score_interval(apart))]
    assert width[1] > 2 * width[0]


def test_paired_difference_cancels_what_both_rows_share():
    rng = np.random.default_rng(2)
    base = rng.random(300) < 0.5
    better = base.copy()
    better[np.flatnonzero(~base)[:30]] = True  # right on 30 more videos (10 points), same elsewhere
    shuffled = np.random.default_rng(3).permutation(300)  # the other run lists the same videos in another order
    other = run(better[shuffled], keys=np.arange(300)[shuffled])
    diff, low, high = intervals.paired_difference([run(base)], [other])
    assert diff == pytest.approx(10.0)
    assert 0 < low < diff < high  # outside noise
    unpaired_halfwidth = 100 * 1.96 * math.sqrt(2 * 0.25 / 300)  # two independent runs at p ~ 0.5
    assert high - low < unpaired_halfwidth  # pairing removes the shared noise
    same, low, high = intervals.paired_difference([run(base)], [run(base)])
    assert same == low == high == 0.0


def test_chance_levels():
    target = np.arange(100) % 10
    assert intervals.chance_level("top1", target, 10) == pytest.approx(10.0)
    assert intervals.chance_level("mean_class_accuracy", target, 10) == pytest.approx(10.0)
    multi = (np.random.default_rng(4).random((200, 5)) < np.array([0.1, 0.2, 0.3, 0.4, 0.5])).astype(np.float32)
    assert intervals.chance_level("map", multi, 5) == pytest.approx(100 * multi.mean(axis=0).mean(), abs=0.5)
    counts = np.array([2.0, 4.0, 6.0])  # constant 2: (0 + 2/4 + 4/6) / 3 = 7/18; the mean count 4: 8/18
    assert intervals.chance_level("repetition_error", counts, 0) == pytest.approx(7 / 18)
    counts = np.random.default_rng(5).integers(2, 9, 300).astype(np.float32)  # UCF-RC-like: 2..8 repetitions
    grid = np.linspace(0, 10, 2001)
    error = min(np.mean(np.abs(c - counts) / counts) for c in grid)
    assert intervals.chance_level("repetition_error", counts, 0) == pytest.approx(error, abs=1e-6)
    assert error < np.mean(np.abs(counts.mean() - counts) / counts) - 0.03  # below predicting the mean count
    obo = max(100 * np.mean(np.abs(np.floor(c + 0.5) - counts) <= 1) for c in grid)
    assert intervals.chance_level("obo", counts, 0) == pytest.approx(obo)
