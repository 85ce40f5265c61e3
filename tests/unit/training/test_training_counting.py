"""The UCF-RC training episode: state initialisation, the state update and one batch's optimiser steps
(DTRC/train_2stream.py:57-275)."""

import pytest
import torch

from tubelab.models import r2plus1d_tiny
from tubelab.models.repetition import attach_head
from tubelab.training import counting
from tubelab.training.steps import normalize


def _random_batch(gen, batch=64):
    n_frames = torch.randint(2, 301, (batch,), generator=gen)
    counts = torch.randint(1, 12, (batch,), generator=gen)
    offset_next = torch.randint(-1, 60, (batch, 1), generator=gen)  # frame 0 only is read; -1 = unknown
    return n_frames, counts, offset_next


def test_init_states_are_valid_and_the_right_segment_copies_the_left():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        n_frames, counts, offset_next = _random_batch(gen)
        states = counting.init_states(n_frames, counts, offset_next, gen)
        assert states.dtype == torch.long and states.shape == (64, 3)
        lp, mp, rp = states.unbind(1)
        assert (lp >= 0).all() and (lp <= mp).all()
        assert (rp > 0).all() and (rp < n_frames).all()
        assert torch.equal(rp, mp + (mp - lp + 1))


def test_init_states_start_inside_the_reference_cycle():
    # offset_next[0] = 29: the reference cycle is frames 0..28, so lp = int(U x 29) < 29 unless a fallback sets 0
    gen = torch.Generator().manual_seed(1)
    states = counting.init_states(torch.full((500,), 300), torch.full((500,), 10), torch.full((500, 1), 29), gen)
    assert (states[:, 0] < 29).all() and len(set(states[:, 0].tolist())) > 20
    # the hypothesised lengths cover the three branches: about 14..58 frames, and the eval grid's 9..114
    lengths = states[:, 1] - states[:, 0] + 1
    assert lengths.min() <= 16 and lengths.max() >= 100


def test_init_states_are_reproducible_from_the_generator_seed():
    args = _random_batch(torch.Generator().manual_seed(3))
    a = counting.init_states(*args, torch.Generator().manual_seed(7))
    b = counting.init_states(*args, torch.Generator().manual_seed(7))
    c = counting.init_states(*args, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_init_states_refuses_a_one_frame_clip():
    with pytest.raises(ValueError, match="at least 2 frames"):
        counting.init_states(torch.tensor([1]), torch.tensor([1]), torch.tensor([[-1]]), torch.Generator())


def test_state_init_branches_by_hand():
    # 300 frames, 10 cycles, first-frame offset 29 -> reference cycle [0, 29 - 1], 29 frames; U = 0.5 -> lp 14
    init = counting._state_init
    # U < 0.25: 29 x 2^((0.75 - 0.5) 2) = 41.01 frames -> mp = 14 + int(40.01) = 54
    assert init(300, 10, 29, 0.5, 0.1, 0.75, 0.0, 0, 0) == (14, 54)
    # U > 0.75: 29 x (2^-1 + (0 - 0.5) 0.1) = 13.05 -> mp = 14 + int(12.05) = 26
    assert init(300, 10, 29, 0.5, 0.9, 0.0, 0.0, -1, 0) == (14, 26)
    # otherwise the eval grid, and k = 30 is one past it: 300 x 0.03 x 11.667^(30/29) = 114.3 -> 14 + 113
    assert init(300, 10, 29, 0.5, 0.5, 0.0, 0.0, 0, 30) == (14, 127)
    # offset unknown: reference 40 / 4 = 10 frames, lp = int(0.95 x 10) = 9; grid k = 29 -> 0.35 x 40 = 14 frames,
    # mp = 9 + 13 = 22 (or 21) and 2 mp + 1 >= 40 -> fallback (0, int(40 / 2 - 1)) = (0, 19)
    assert init(40, 4, -1, 0.95, 0.5, 0.0, 0.0, 0, 29) == (0, 19)
    # a reference cycle longer than the clip: lp = int(0.9 x 60) = 54, mp >= 40 -> (0, int(40 / 4 - 1)) = (0, 9)
    assert init(40, 4, 60, 0.9, 0.1, 0.5, 0.0, 0, 0) == (0, 9)


def test_targets_read_the_previous_offset_at_mp_and_the_next_at_mp_plus_1():
    pre, nxt = [[-1] * 60, [-1] * 60], [[-1] * 60, [-1] * 60]
    pre[0][29], nxt[0][30] = 9, 4  # sample 0, state (20, 29, 39): left A = 10, right A = 10
    pre[1][59] = 9  # sample 1, state (50, 59, 69): mp + 1 = 60 is past the clip -> right ignored
    (cls1, _), (cls2, _) = counting._targets([(20, 29, 39), (50, 59, 69)], [60, 60], pre, nxt, torch.device("cpu"))
    assert cls1.tolist() == [[1] * 7, [1] * 7]  # t = 10 against A = 10: every anchor within a factor 2
    assert cls2.tolist() == [[1, 1, 1, 1, 0, 0, 0], [-1] * 7]  # t = 5 against A = 10


def test_action_step_by_hand():
    # left 10 frames x 1.25 = 12.5, right 10 x 0.8 = 8; mp 29 + 5 = 34: lp = int(34 - 12.5 + 1) = 22, rp = 42
    assert counting.action_step((20, 29, 39), 1.25, 0.8, 5, 60) == ((22, 34, 42), False, False)
    # left 10 x 0.3 = 3 frames: fail; mp = 64 >= 60: done
    assert counting.action_step((20, 29, 39), 0.3, 1.0, 35, 60) == ((62, 64, 74), True, True)
    # int() truncates toward zero: lp = int(2 - 10.5 + 1) = int(-7.5) = -7 (floor would give -8), rp = int(12.5)
    assert counting.action_step((-8, 1, 11), 1.05, 1.05, 1, 60) == ((-7, 2, 12), False, False)


def _clips(batch=2, n=60, period=10, size=32):
    """Sub-clips of a periodic video with its offset labels: next-cycle offsets known except in the last
    cycle, previous-cycle offsets except in the first (the .mat convention, docs §1.2)."""
    gen = torch.Generator().manual_seed(0)
    pattern = torch.randint(0, 256, (3, period, size, size), generator=gen, dtype=torch.uint8)
    frames = pattern.repeat(1, n // period, 1, 1).unsqueeze(0).repeat(batch, 1, 1, 1, 1)
    offset_next = torch.full((batch, n), period - 1)
    offset_next[:, n - period:] = -1
    offset_pre = torch.full((batch, n), period - 1)
    offset_pre[:, :period] = -1
    return frames, torch.full((batch,), n), offset_next, offset_pre, torch.full((batch,), n // period)


def test_episode_takes_one_optimiser_step_per_step_and_learns():
    torch.manual_seed(0)
    model = attach_head(r2plus1d_tiny()).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step_calls = []
    original_step = optimizer.step

    def counting_step(*args, **kwargs):
        step_calls.append(1)
        return original_step(*args, **kwargs)

    optimizer.step = counting_step
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frames, n_frames, offset_next, offset_pre, counts = _clips()
    out = counting.episode(model, optimizer, frames, n_frames, offset_next, offset_pre, counts,
                           normalize=normalize, generator=torch.Generator().manual_seed(0))
    assert 1 <= out["steps"] <= 11 and len(step_calls) == out["steps"]
    assert out["loss"].dtype == torch.float32 and out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    after = model.state_dict()
    assert not torch.equal(before["fc.fc_cls_1.weight"], after["fc.fc_cls_1.weight"])
    assert not torch.equal(before["layer1.0.conv1.0.0.weight"], after["layer1.0.conv1.0.0.weight"])


class _Stub(torch.nn.Module):
    """A constant answer (anchor 1.0 positive, box 0: the segments keep their length) that records its inputs."""

    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(()))
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        b = x.shape[0]
        cls = torch.zeros(b, 2, 7)
        cls[:, 1, 3] = 5.0
        return cls + self.bias, torch.zeros(b, 7) + self.bias, cls + self.bias, torch.zeros(b, 7) + self.bias


def test_episode_stops_after_max_steps_and_is_reproducible():
    frames, n_frames, offset_next, offset_pre, counts = _clips(batch=3, n=600, size=2)
    runs = []
    for _ in range(2):
        stub = _Stub()
        out = counting.episode(stub, torch.optim.SGD(stub.parameters(), lr=0.0), frames, n_frames, offset_next,
                               offset_pre, counts, normalize=normalize, generator=torch.Generator().manual_seed(5),
                               max_steps=3)
        runs.append(torch.stack(stub.inputs))
        # a fresh mp is at most 9 + int(600 x 0.35 x 11.67^(1/29)) < 240 and advances by at most 600 / 5 = 120
        # per step: no sample is done within 3 steps, so the episode runs to max_steps
        assert out["steps"] == 3 and len(stub.inputs) == 3
    assert torch.equal(runs[0], runs[1])


def test_episode_runs_until_every_worker_is_done():
    """With several workers `stop` reports whether all are done: a worker whose own samples are done keeps
    stepping (each step's gradient sync needs every worker) until `stop` says all are."""
    frames, n_frames, offset_next, offset_pre, counts = _clips(batch=2, n=40, size=2)  # short: done within steps

    def steps_with(stop):
        stub = _Stub()
        out = counting.episode(stub, torch.optim.SGD(stub.parameters(), lr=0.0), frames, n_frames, offset_next,
                               offset_pre, counts, normalize=normalize, generator=torch.Generator().manual_seed(2),
                               stop=stop)
        return out["steps"], len(stub.inputs)

    alone, _ = steps_with(None)
    assert alone < 11  # this worker's samples are done early
    asked = []

    def others_done_at_step_10(done):
        asked.append(done)
        return done and len(asked) >= 10

    assert steps_with(others_done_at_step_10) == (10, 10)
    assert asked[alone - 1] is True  # this worker was done at its own last step, and went on
