"""Cycle boundaries -> the official per-frame targets (label_interpolation_v1.m) and training sub-clips (ucf_aug.py)."""

import numpy as np
import pytest

from tubelab.data.cycles import cycle_offsets, draw_subclip


def test_regular_cycles_by_hand():
    nxt, pre = cycle_offsets([0, 4, 8, 12])
    # frames 0..12; a boundary belongs to the cycle it starts; the last cycle (8..12) has no next one
    assert nxt.tolist() == [4] * 8 + [-1] * 5
    assert pre.tolist() == [-1] * 4 + [4] * 9


def test_matlab_rounding_halves_away_from_zero():
    # cycles of 4 and 6 frames (differ by 2: still regular); next offset of p in 0..3 is p/4*6 + 4 - p
    nxt, pre = cycle_offsets([0, 4, 10])
    assert nxt[:4].tolist() == [4, 5, 5, 6]  # 4.5 -> 5 and 5.5 -> 6 (Python's round: 4 and 6)
    assert nxt[4:].tolist() == [-1] * 7
    # previous offset of p in 4..10: p - 0 - (p - 4) / 6 * 4 = 4, 4.33, 4.67, 5, 5.33, 5.67, 6
    assert pre[4:].tolist() == [4, 4, 5, 5, 5, 6, 6]


def test_irregular_neighbours_have_no_target():
    nxt, pre = cycle_offsets([0, 4, 12, 20])  # 4 vs 8 frames: more than 2 apart and a ratio above 1.3
    assert (nxt[:4] == -1).all() and (pre[4:12] == -1).all()
    assert nxt[4:12].tolist() == [8] * 8 and pre[12:].tolist() == [8] * 9


def test_offsets_land_on_the_same_phase():
    rng = np.random.default_rng(0)
    for _ in range(50):
        lengths = rng.integers(10, 13, size=rng.integers(2, 7))  # within 2 frames: all regular
        b = np.concatenate([[rng.integers(0, 5)], lengths]).cumsum()
        nxt, _ = cycle_offsets(b)
        for k in range(len(b) - 2):
            for p in range(b[k] + 1, b[k + 1]):  # inside cycle k
                target = p + nxt[p - b[0]]
                phase = (p - b[k]) / (b[k + 1] - b[k])
                assert abs((target - b[k + 1]) / (b[k + 2] - b[k + 1]) - phase) <= 0.5 / (b[k + 2] - b[k + 1]) + 1e-9


def test_bad_boundaries():
    with pytest.raises(ValueError, match="strictly increasing"):
        cycle_offsets([0, 4, 4])


def test_subclips_follow_the_official_draw():
    b = [10, 20, 31, 40, 52, 60]
    seen_counts, rng = set(), np.random.default_rng(1)
    for _ in range(2000):
        first, last, count = draw_subclip(b, rng, max_frames=300)
        seen_counts.add(count)
        assert b[0] <= first < last <= b[-1] and 2 <= count <= len(b)
        # the start lies in the cycle before the p-th boundary (or is b_0), p <= M-3
        assert first == b[0] or first <= b[len(b) - 3]
    assert seen_counts == set(range(2, len(b) + 1))  # the whole span is labelled M = N + 1, as the official
    first, last, _ = draw_subclip(list(range(0, 1000, 100)), np.random.default_rng(0), max_frames=50)
    assert last - first + 1 <= 50
    with pytest.raises(ValueError, match="at least 3"):
        draw_subclip([0, 5], rng, 300)
