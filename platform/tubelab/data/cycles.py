"""Repetition cycles (UCFRep, SEVERE's UCF-RC): boundaries in frames -> the counting model's targets and clips.

A video's annotation is its cycle boundaries b_0 < b_1 < ... < b_N (N repetitions). The official counting
code (Zhang et al., CVPR 2020, as SEVERE runs it) never sees them directly: it trains on two per-frame
arrays made from them by `utils/label_interpolation_v1.m` and on random sub-clips drawn between them by
`datasets/ucf_aug.py make_dataset`. Both are here, in frames of the video as the shards hold it.
Citations: docs/severe_ucf_rc.md (UP/ = the upstream code, RC/ = SEVERE's Repetition-Counting/).
"""

from __future__ import annotations

import numpy as np

MIN_BOUNDARIES = 3  # two repetitions: the official loader drops annotations with fewer (RC/datasets/ucf_aug.py:105)
IRREGULAR_FRAMES, IRREGULAR_RATIO = 2, 1.3  # neighbouring cycles this different have no offset target (.m:56-79)


def frames_of(times, fps: float) -> np.ndarray:
    """Boundary times (seconds from the shard video's first frame) -> frame indices at `fps`, rounded."""
    return np.rint(np.asarray(times, dtype=np.float64) * fps).astype(np.int64)


def _matlab_round(x: float) -> int:
    return int(np.floor(abs(x) + 0.5) * np.sign(x))  # MATLAB's round: halves away from zero


def _irregular(a: int, b: int) -> bool:
    return max(a, b) - min(a, b) > IRREGULAR_FRAMES and max(a, b) / min(a, b) > IRREGULAR_RATIO


def cycle_offsets(bounds) -> tuple[np.ndarray, np.ndarray]:
    """(offset_next, offset_pre), int32 arrays over frames b_0..b_N (index p - b_0): the distance from frame p
    to its phase-matched frame in the next (previous) cycle, -1 in the last (first) cycle and where the two
    cycles' lengths differ by more than 2 frames and a ratio of 1.3. A boundary frame takes the value of the
    cycle it starts (the later cycle overwrites it). UP/utils/label_interpolation_v1.m:47-79, MATLAB rounding."""
    b = [int(x) for x in bounds]
    if len(b) < 2 or any(y <= x for x, y in zip(b, b[1:])):
        raise ValueError(f"cycle boundaries must be at least two strictly increasing frames, got {b}")
    n = b[-1] - b[0] + 1
    nxt, pre = np.full(n, -1, np.int32), np.full(n, -1, np.int32)
    for k in range(len(b) - 1):
        seg_m = b[k + 1] - b[k]
        for p in range(b[k], b[k + 1] + 1):
            i = p - b[0]
            nxt[i] = pre[i] = -1
            if k + 2 < len(b) and not _irregular(seg_m, seg_r := b[k + 2] - b[k + 1]):
                nxt[i] = _matlab_round((p - b[k]) / seg_m * seg_r + b[k + 1] - p)
            if k > 0 and not _irregular(seg_m, seg_l := b[k] - b[k - 1]):
                pre[i] = _matlab_round(p - b[k - 1] - (p - b[k]) / seg_m * seg_l)
    return nxt, pre


def draw_subclip(bounds, rng: np.random.Generator, max_frames: int) -> tuple[int, int, int]:
    """(first, last, count) of one training sub-clip, in frames: RC/datasets/ucf_aug.py:132-161. A start
    boundary index p in 0..M-3 and an end index q in p+2..M (M boundaries); the clip starts at b_0 for p = 0,
    else anywhere in [b_{p-1}, b_p]; ends at b_N for q = M, else anywhere in [b_{q-1}, b_q]; at most
    `max_frames` long (the official sample_duration, 300). count = q - p, as the official code labels it
    (one too many for the whole span; not reduced by the length cut): only the training logs and the state
    initialisation's fallback read it."""
    b = [int(x) for x in bounds]
    m = len(b)
    if m < MIN_BOUNDARIES:
        raise ValueError(f"a training sub-clip needs at least {MIN_BOUNDARIES} cycle boundaries, got {m}")
    p = int(rng.integers(0, m - 2))          # random.randint(0, M-3), inclusive
    q = int(rng.integers(p + 2, m + 1))      # random.randint(p+2, M)
    first = b[0] if p == 0 else int(rng.integers(b[p - 1], b[p] + 1))
    last = b[-1] if q == m else int(rng.integers(b[q - 1], b[q] + 1))
    return first, min(last, first + max_frames - 1), q - p
