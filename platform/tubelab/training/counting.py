"""SEVERE's UCF-RC training episode: one loaded batch drives up to 11 optimiser steps while per-sample states
(lp, mp, rp) walk through each clip (docs/severe_ucf_rc.md §4; DTRC/train_2stream.py).

Torch only (no Ray, MLflow or Hydra). Python's `random` of the official code becomes draws from one
torch.Generator, so an episode is reproducible from its seed; the distributions are the official ones.
States are kept as Python ints, as the official numpy int arrays hold them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from tubelab.evaluation.counting import INIT_SCALES, MAX_SCALE, MIN_SCALE, MIN_SEGMENT
from tubelab.models.repetition import context_input
from tubelab.objectives.repetition import ANCHORS, anchor_targets, repetition_loss

# state_init draws from the evaluation's scale grid (DTRC/train_2stream.py:20-22) and a segment under
# MIN_SEGMENT frames "fails" (:70), as in the evaluation.
TRAIN_BOX_CLAMP = 2.0  # DTRC/train_2stream.py:209-210

State = tuple[int, int, int]


def _uniforms(generator: torch.Generator, *shape: int) -> list:
    return torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64).tolist()


def _randints(generator: torch.Generator, low: int, high: int, n: int) -> list[int]:
    """n draws of Python's random.randint(low, high): both ends included."""
    return torch.randint(low, high + 1, (n,), generator=generator, device=generator.device).tolist()


def _state_init(n_frames: int, count: int, next0: int, u_lp: float, u_magic: float, u_ratio: float,
                u_jitter: float, power: int, k: int) -> tuple[int, int]:
    """state_init (DTRC/train_2stream.py:74-106) on pre-drawn randomness; returns (lp, mp) truncated to ints as
    the caller's numpy int arrays store them (:158). `/` is Python 3 true division, as SEVERE runs it."""
    # Reference cycle [0, rp2]: the first frame's next-cycle offset, else the mean cycle length (:75-78).
    rp2 = n_frames / count - 1 if next0 == -1 else next0 - 1
    lp = int(u_lp * (rp2 + 1))  # uniform inside the reference cycle (:80)
    if u_magic < 0.25:  # GT x 2^U(-1, 1) (:83-85)
        seg_len = (rp2 + 1) * 2 ** ((u_ratio - 0.5) * 2)
    elif u_magic > 0.75:  # GT x (2^{-1,0,1} +- 0.05); the official seg_ratio == -2 branch is dead (:86-91)
        seg_len = (rp2 + 1) * (2 ** power + (u_jitter - 0.5) * 0.1)
    else:  # a scale of the evaluation grid; quirk: randint(0, 30) includes k = 30, one past the grid (:92-95)
        seg_len = n_frames * MIN_SCALE * (MAX_SCALE / MIN_SCALE) ** (k / (INIT_SCALES - 1))
    mp = max(lp + int(seg_len - 1), lp)  # (:97-98)
    if mp >= n_frames:  # (:100-101)
        lp, mp = 0, n_frames / count - 1
    if mp * 2 + 1 >= n_frames:  # the two cycles must fit (:103-104)
        lp, mp = 0, n_frames / 2 - 1
    return int(lp), int(mp)


def init_states(n_frames: torch.Tensor, counts: torch.Tensor, offset_next: torch.Tensor,
                generator: torch.Generator) -> torch.Tensor:
    """SEVERE's state initialisation for a batch (DTRC/train_2stream.py:74-106, 156-159) -> LongTensor (B, 3) of
    (lp, mp, rp) on the CPU, with the right segment as long as the left: rp = mp + (mp - lp + 1).

    n_frames, counts: (B,) clip lengths and count labels; offset_next: (B, T) next-cycle offsets (-1 unknown),
    of which only frame 0 is read. A draw is repeated until 0 < rp < n_frames (the official `while rp == 0 or
    rp >= sample_len`); for n_frames >= 2 the fallbacks make the first draw valid, and n_frames < 2 never is,
    so it is refused.
    """
    lengths, labels = n_frames.tolist(), counts.tolist()
    if min(lengths, default=2) < 2:
        raise ValueError(f"init_states needs clips of at least 2 frames, got n_frames={lengths}")
    firsts = offset_next[:, 0].tolist()
    states: list[State | None] = [None] * len(lengths)
    todo = list(range(len(lengths)))
    while todo:
        u = _uniforms(generator, len(todo), 4)
        powers = _randints(generator, -1, 1, len(todo))
        ks = _randints(generator, 0, INIT_SCALES, len(todo))
        for i, j in enumerate(todo):
            lp, mp = _state_init(lengths[j], labels[j], firsts[j], *u[i], powers[i], ks[i])
            rp = mp + (mp - lp + 1)
            if rp != 0 and rp < lengths[j]:
                states[j] = (lp, mp, rp)
        todo = [j for j in todo if states[j] is None]
    return torch.tensor(states, dtype=torch.long)


def action_step(state: State, scale_left: float, scale_right: float, step: int,
                n_frames: int) -> tuple[State, bool, bool]:
    """The training state update (DTRC/train_2stream.py:57-72): advance mp by `step` and rescale the left and
    right segment lengths by the chosen anchor x exp(box); no clamping here (the evaluation's copy clamps).
    Returns (new state, done: mp >= n_frames, fail: a segment shorter than 4 frames)."""
    lp, mp, rp = state
    left = (mp - lp + 1) * scale_left
    right = (rp - mp) * scale_right
    mp = int(mp + step)
    lp = int(mp - left + 1)
    rp = int(mp + right)
    return (lp, mp, rp), mp >= n_frames, (mp - lp + 1) < MIN_SEGMENT or (rp - mp) < MIN_SEGMENT


def _scales(cls: torch.Tensor, box: torch.Tensor) -> list[float]:
    """Per sample: the anchor with the highest positive probability (the first on ties, like the official strict
    `>` scan) and its scale exp(box) x anchor, box clamped to [-2, 2] (DTRC/train_2stream.py:209-233)."""
    probs = F.softmax(cls.detach().float(), dim=1)[:, 1]
    k = probs.argmax(dim=1, keepdim=True)
    box = box.detach().float().clamp(-TRAIN_BOX_CLAMP, TRAIN_BOX_CLAMP).gather(1, k).squeeze(1)
    return [math.exp(b) * ANCHORS[i] for b, i in zip(box.tolist(), k.squeeze(1).tolist())]


def _targets(states: list[State], lengths: list[int], pre: list[list[int]], nxt: list[list[int]],
             device: torch.device) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Left: label_pre[mp] against A = mp - lp + 1; right: label_next[mp + 1] against A = rp - mp; a read past
    the clip is unknown (DTRC/train_2stream.py:170-177, 26-29)."""
    gt_left, gt_right, len_left, len_right = [], [], [], []
    for (lp, mp, rp), n, p, q in zip(states, lengths, pre, nxt):
        gt_left.append(p[mp] if mp < n else -1)
        gt_right.append(q[mp + 1] if mp + 1 < n else -1)
        len_left.append(mp - lp + 1)
        len_right.append(rp - mp)
    left = anchor_targets(torch.tensor(gt_left, device=device), torch.tensor(len_left, device=device))
    right = anchor_targets(torch.tensor(gt_right, device=device), torch.tensor(len_right, device=device))
    return left, right


def episode(model, optimizer: torch.optim.Optimizer, frames: torch.Tensor, n_frames: torch.Tensor,
            offset_next: torch.Tensor, offset_pre: torch.Tensor, counts: torch.Tensor, *,
            normalize: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator, max_steps: int = 11,
            autocast_dtype: torch.dtype | None = None,
            memory_format: torch.memory_format = torch.contiguous_format,
            stop: Callable[[bool], bool] | None = None) -> dict:
    """One loaded batch's episode (docs §4.3; DTRC/train_2stream.py:156-159, 163-275).

    frames: uint8 (B, 3, T, H, W) sub-clips, zero-padded to T; n_frames, counts: (B,); offset_next, offset_pre:
    (B, T) long, -1 padded. Each step builds the 32-frame inputs from the states, computes the targets, runs the
    forward under autocast and the loss in fp32, and takes one optimiser step (:164-207). The states then move:
    mp advances by int(max(n_frames / U(5, 20), 1)) (:214-215) and the segments rescale by the predicted scales
    (action_step, :57-72); a failed (< 4 frames) or done (mp >= n_frames) sample is re-initialised (:240-246).
    The episode stops when every sample has been done once or after `max_steps` steps (early_stop = 10 gives at
    most 11; :16, 257-258). The official running count estimate only feeds training logs and is left out.
    `model(x)` returns (cls1, box1, cls2, box2) (a DDP wrapper is fine); the caller sets train mode. With several
    workers `stop(done)` says whether all of them are done (training.common.all_workers), so that each step's
    gradient sync has every worker.
    Returns {"loss": the mean loss over the steps (a device tensor), "steps": the number of steps}.
    """
    batch = frames.shape[0]
    lengths = n_frames.tolist()
    pre, nxt = offset_pre.tolist(), offset_next.tolist()
    states: list[State] = [tuple(s) for s in init_states(n_frames, counts, offset_next, generator).tolist()]
    done_once = [False] * batch
    losses = []
    for _ in range(max_steps):
        x = context_input(frames, lengths, states, normalize).contiguous(memory_format=memory_format)
        targets = _targets(states, lengths, pre, nxt, frames.device)
        enabled = autocast_dtype is not None
        with torch.autocast(x.device.type, dtype=autocast_dtype or torch.float32, enabled=enabled):
            cls1, box1, cls2, box2 = model(x)
        loss = repetition_loss(cls1, box1, cls2, box2, *targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())

        left, right = _scales(cls1, box1), _scales(cls2, box2)
        magic = _uniforms(generator, batch)
        restart = []
        for j in range(batch):
            step = int(max(lengths[j] / (5 + magic[j] * 15), 1))
            states[j], done, fail = action_step(states[j], left[j], right[j], step, lengths[j])
            done_once[j] = done_once[j] or done
            if done or fail:
                restart.append(j)
        if restart:
            fresh = init_states(n_frames[restart], counts[restart], offset_next[restart], generator).tolist()
            for j, s in zip(restart, fresh):
                states[j] = tuple(s)
        if (stop or bool)(all(done_once)):  # `stop`: whether every train worker's episode is done (they step together)
            break
    return {"loss": torch.stack(losses).mean(), "steps": len(losses)}
