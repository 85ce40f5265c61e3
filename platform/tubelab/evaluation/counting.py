"""SEVERE's UCF-RC whole-video inference: the count of each video from 74 forward passes
(docs/severe_ucf_rc.md §5; UP/val_2stream.py:48-323, the upstream copy SEVERE runs).

1. Coarse search at the midpoint over 30 log-spaced half-lengths, head 1 / anchor 1.0 only (:118-145).
2. Four refinement passes at the midpoint, same anchor (:147-167).
3. 32 tracking positions with that length (:170-176).
4. Coarse-to-fine propagation over 4 levels with both heads and all anchors (:180-287).
5. count = L x mean over positions whose context fits the video of (1/left + 1/right) / 2; if none fits,
   L / (half-length + 1) (:290-318).

Positions and lengths are Python ints and floats with the official int truncations and Python 3
(half-to-even) rounding; the official numpy int arrays truncate toward zero on assignment, as int() does.
Torch only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from tubelab.models.repetition import LEFT_RATIO, RIGHT_RATIO, context_input
from tubelab.objectives.repetition import ANCHORS

MIN_SCALE, MAX_SCALE, INIT_SCALES = 0.03, 0.35, 30  # half-lengths 3%-35% of L (UP/val_2stream.py:21-23)
MERGE_LEVEL = 5  # 2^5 = 32 tracking positions, levels 1..4 refined (:18)
MERGE_W = 0.5  # blend of a refined state with the previous one (:19)
EVAL_BOX_CLAMP = 0.5  # (:134, 155, 219-220)
COARSE_ANCHOR = 3  # anchor 1.0, the only one the midpoint search reads (:138, 160)
REFINE_PASSES = 4  # (:147)
MIN_SEGMENT = 4  # (:33-34, 43)

Heads = tuple[tuple[list, list], tuple[list, list]]


def _forward(model, frames: torch.Tensor, lengths: list[int], states: list, normalize: Callable,
             autocast_dtype: torch.dtype | None) -> Heads:
    """One batched forward -> per head (positive probabilities (B, A), boxes clamped to [-0.5, 0.5] (B, A)) as
    Python floats; the official reads them the same way, one float32 value at a time."""
    x = context_input(frames, lengths, states, normalize)
    with torch.autocast(x.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        cls1, box1, cls2, box2 = model(x)
    return tuple((F.softmax(cls.float(), dim=1)[:, 1].tolist(),
                  box.float().clamp(-EVAL_BOX_CLAMP, EVAL_BOX_CLAMP).tolist())
                 for cls, box in ((cls1, box1), (cls2, box2)))


def _scale(probs: list[float], boxes: list[float]) -> float:
    """exp(box) x anchor of the anchor with the highest positive probability; the first on ties, like the
    official strict `>` scan (:223-240)."""
    k = max(range(len(probs)), key=probs.__getitem__)
    return math.exp(boxes[k]) * ANCHORS[k]


def _rescale(state: tuple[int, int, int], scale_left: float, scale_right: float,
             max_len: float) -> tuple[int, int]:
    """The evaluation's action_step with step 0 (:27-45): segment lengths rescaled and clamped to
    [4, L / min_cycles]; a failed update (a segment under 4 frames) keeps the old state (:251-253).
    Returns the new (lp, rp); mp does not move."""
    lp, mp, rp = state
    left = min(max(MIN_SEGMENT, (mp - lp + 1) * scale_left), max_len)
    right = min(max(MIN_SEGMENT, (rp - mp) * scale_right), max_len)
    new_lp, new_rp = int(mp - left + 1), int(mp + right)
    if (mp - new_lp + 1) < MIN_SEGMENT or (new_rp - mp) < MIN_SEGMENT:
        return lp, rp
    return new_lp, new_rp


def _midpoint_search(run: Callable[[list], Heads], lengths: list[int], max_len: list[float]) -> list[int]:
    """Steps 1-2 (:118-167): the half-length m (segments m + 1 long) at the video midpoint."""
    best, best_score = [0] * len(lengths), [-1e6] * len(lengths)
    for k in range(INIT_SCALES):
        power = (MAX_SCALE / MIN_SCALE) ** (k / (INIT_SCALES - 1))
        (probs, boxes), _ = run([(n / 2 - n * MIN_SCALE * power, n / 2, n / 2 + n * MIN_SCALE * power + 1)
                                 for n in lengths])
        for j, n in enumerate(lengths):
            candidate = n * MIN_SCALE * power * (math.exp(boxes[j][COARSE_ANCHOR]) * ANCHORS[COARSE_ANCHOR])
            score = probs[j][COARSE_ANCHOR]
            if score > best_score[j] and MIN_SEGMENT <= candidate < max_len[j]:
                best_score[j], best[j] = score, int(candidate)  # stored in an int array: truncated (:145)
    for _ in range(REFINE_PASSES):
        (probs, boxes), _ = run([(n / 2 - m, n / 2, n / 2 + m + 1) for n, m in zip(lengths, best)])
        for j, m in enumerate(best):
            # the official score test always passes here (its best score is reset to -1e6 each pass, :157)
            candidate = m * (math.exp(boxes[j][COARSE_ANCHOR]) * ANCHORS[COARSE_ANCHOR])
            if MIN_SEGMENT <= candidate < max_len[j]:
                best[j] = round(float(m * (1 - MERGE_W)) + float(candidate * MERGE_W))  # (:167)
    return best


def _propagate(run: Callable[[list], Heads], lengths: list[int], max_len: list[float], mp: list[list[int]],
               best: list[int]) -> tuple[list[list[int]], ...]:
    """Steps 3-4 (:170-287) -> the last level's (lp_l, lp_r, rp_l, rp_r) per video and position: the "from-left"
    and "from-right" estimates of each position's segment bounds. mp never changes across levels (the official
    copies it level to level), so it is one (B, 32) list."""
    positions = len(mp[0])
    lp_l = [[m - b for m in row] for row, b in zip(mp, best)]
    rp_l = [[m + b + 1 for m in row] for row, b in zip(mp, best)]
    lp_r, rp_r = [row[:] for row in lp_l], [row[:] for row in rp_l]
    for level in range(1, MERGE_LEVEL):
        steps = 2 ** (MERGE_LEVEL - level - 1)
        passes = 4 if level == 1 else 2 if level == 2 else 1  # (:188-193)
        new = [[[0] * positions for _ in lengths] for _ in range(4)]
        n_pos = 2 ** level
        for l2 in range(n_pos):
            pos = steps + 2 * steps * l2  # 8, 24 / 4, 12, 20, 28 / ... (:183-186)
            load = [(round(float(lp_l[j][pos] + lp_r[j][pos]) / 2), mp[j][pos],
                     round(float(rp_l[j][pos] + rp_r[j][pos]) / 2)) for j in range(len(lengths))]  # (:199-202)
            for p in range(passes):
                if p > 0:  # later passes start from the 50/50 blend of the last result and its input (:204-210)
                    load = [(round(float(s[0]) * MERGE_W + float(ld[0]) * (1.0 - MERGE_W)), ld[1],
                             round(float(s[2]) * MERGE_W + float(ld[2]) * (1.0 - MERGE_W)))
                            for s, ld in zip(save, load)]
                left, right = run(load)
                save = []
                for j in range(len(lengths)):
                    new_lp, new_rp = _rescale(load[j], _scale(left[0][j], left[1][j]),
                                              _scale(right[0][j], right[1][j]), max_len[j])
                    save.append((new_lp, load[j][1], new_rp))
            _spread(new, (lp_l, lp_r, rp_l, rp_r), mp, save, load, pos, steps, level,
                    first=l2 == 0, last=l2 == n_pos - 1)
        lp_l, lp_r, rp_l, rp_r = new
    return lp_l, lp_r, rp_l, rp_r


def _spread(new: list, old: tuple, mp: list[list[int]], save: list, load: list, pos: int, steps: int, level: int,
            first: bool, last: bool) -> None:
    """Copy the refined bounds at `pos`, blended 50/50 with their input (:261-262), as offsets from mp to the
    `steps` positions on each side (:264-287). Positions left of pos receive a "from-right" estimate, those
    from pos on a "from-left" one; the estimate of the other side is the same copy except at level 3 away
    from the ends, where it keeps the previous level's."""
    new_lp_l, new_lp_r, new_rp_l, new_rp_r = new
    lp_l, lp_r, rp_l, rp_r = old
    both = level <= 2 or level == MERGE_LEVEL - 1
    keep_left, keep_right = not (both or first), not (both or last)
    for j, ((s_lp, _, s_rp), (ld_lp, _, ld_rp)) in enumerate(zip(save, load)):
        l_seg = float(s_lp) * MERGE_W + float(ld_lp) * (1.0 - MERGE_W)
        r_seg = float(s_rp) * MERGE_W + float(ld_rp) * (1.0 - MERGE_W)
        centre = mp[j][pos]
        for q in range(pos - steps, pos):
            new_lp_r[j][q] = int(mp[j][q] + (l_seg - centre))
            new_rp_r[j][q] = int(mp[j][q] + (r_seg - centre))
            new_lp_l[j][q] = lp_l[j][q] if keep_left else new_lp_r[j][q]
            new_rp_l[j][q] = rp_l[j][q] if keep_left else new_rp_r[j][q]
        for q in range(pos, pos + steps):
            new_lp_l[j][q] = int(mp[j][q] + (l_seg - centre))
            new_rp_l[j][q] = int(mp[j][q] + (r_seg - centre))
            new_lp_r[j][q] = lp_r[j][q] if keep_right else new_lp_l[j][q]
            new_rp_r[j][q] = rp_r[j][q] if keep_right else new_rp_l[j][q]


def _count(n_frames: int, mp: list[int], lp_l: list[int], lp_r: list[int], rp_l: list[int], rp_r: list[int],
           best: int) -> float:
    """Step 5 (:290-318) for one video, unrounded."""
    left = right = 0.0
    valid = 0
    for m, a, b, c, d in zip(mp, lp_l, lp_r, rp_l, rp_r):
        lp, rp = round(float(a + b) / 2), round(float(c + d) / 2)  # (:296-297)
        first = int(lp - (m - lp + 1) * LEFT_RATIO)
        last = int(rp + (rp - m) * (RIGHT_RATIO - 1))
        if first >= 0 and last < n_frames:  # the whole context window lies in the video (:299-301)
            left += 1.0 / float(m - lp + 1)
            right += 1.0 / float(rp - m)
            valid += 1
    if valid == 0 or left == 0 or right == 0:  # the official AverageMeter.avg == 0 test (:314-315)
        return float(n_frames) / float(best + 1)
    return float(n_frames) * float(left * 0.5 + right * 0.5) / float(valid)


@torch.no_grad()
def count_videos(model, frames: torch.Tensor, n_frames: torch.Tensor,
                 normalize: Callable[[torch.Tensor], torch.Tensor], *, min_cycles: int = 2,
                 autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """UNROUNDED counts (B,) float64 on the CPU of a batch of videos, from 74 forward passes (docs §5).

    frames: uint8 (B, 3, T, H, W), each row the annotated span of one video zero-padded to a common T (padded
    frames are never read); n_frames: (B,) each span's length L. `model(x)` returns (cls1, box1, cls2, box2) and
    should be in eval mode (the caller sets it, as :60 does). Runs under no_grad, which the official lacks
    (:133; docs §9 item 14): the results are the same. Every cycle-length hypothesis is kept within
    [4, L / min_cycles] (min_cycles = 2 for UCF-RC, :52-55). Round with round_counts (:323). float64, so that
    the half-to-even rounding sees the official Python float.
    """
    lengths = [int(n) for n in n_frames.tolist()]
    max_len = [n / min_cycles for n in lengths]

    def run(states: list) -> Heads:
        return _forward(model, frames, lengths, states, normalize, autocast_dtype)

    best = _midpoint_search(run, lengths, max_len)
    positions = 2 ** MERGE_LEVEL
    mp = [[int(float(n) / float(positions + 1) * (k + 0.5)) for k in range(positions)] for n in lengths]  # (:172)
    lp_l, lp_r, rp_l, rp_r = _propagate(run, lengths, max_len, mp, best)
    counts = [_count(n, *rows, b) for n, b, rows in zip(lengths, best, zip(mp, lp_l, lp_r, rp_l, rp_r))]
    return torch.tensor(counts, dtype=torch.float64)


def round_counts(counts: torch.Tensor) -> torch.Tensor:
    """The official `float(round(count))` (UP/val_2stream.py:323) under Python 3: round half to even, which is
    what torch.round does (2.5 -> 2, 3.5 -> 4)."""
    return torch.round(counts)
