"""UCF-RC whole-video inference (UP/val_2stream.py:118-323) with an oracle and with constant models."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tubelab.evaluation.counting import count_videos, round_counts
from tubelab.objectives.repetition import ANCHORS
from tubelab.training.steps import IMAGENET_MEAN, IMAGENET_STD, normalize

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1) * 255
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1) * 255
REAL = 255  # channel 1 of every real frame; a padding frame reads about 142 there


def _videos(specs):
    """(L, P) pairs -> uint8 (B, 3, T, 2, 2) spans zero-padded to the longest: channel 0 = the frame index,
    channel 1 = REAL, channel 2 = the video's period P (what an ideal network would perceive)."""
    t = max(n for n, _ in specs)
    frames = torch.zeros(len(specs), 3, t, 2, 2, dtype=torch.uint8)
    for b, (n, period) in enumerate(specs):
        frames[b, 0, :n] = torch.arange(n, dtype=torch.uint8).view(n, 1, 1)
        frames[b, 1, :n] = REAL
        frames[b, 2, :n] = period
    return frames, torch.tensor([n for n, _ in specs])


def _half_length(index, real):
    """The segment length behind one 16-frame half: its frames spread over 2 segment lengths, so
    length = ((last - first) x 15 / (j_last - j_first) + 1) / 2 from the first and last real frames."""
    js = real.nonzero().flatten().tolist()
    if len(js) < 2:
        return None
    span = (index[js[-1]] - index[js[0]]).item() * 15 / (js[-1] - js[0])
    return (span + 1) / 2


class Oracle(torch.nn.Module):
    """Reads which frames it got, estimates the current left and right segment lengths A, and answers what a
    perfectly trained network would: every anchor positive, most confidently the one whose a_k A is nearest P,
    with box ln(P / (a_k A)) (the update_labels target; count_videos clamps it to [-0.5, 0.5])."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        raw = (x[:, :, :, 0, 0] * STD + MEAN).round()  # (B, 3, 32) pixel values
        outputs = [[], [], [], []]
        for row in raw:
            real = row[1] == REAL
            period = row[2][real][0].item()
            for head, half in enumerate((slice(0, 16), slice(16, 32))):
                length = _half_length(row[0][half], real[half]) or period  # unreadable: keep the length
                ratio = torch.tensor([math.log(period / (a * length)) for a in ANCHORS])
                outputs[2 * head].append(torch.stack([torch.zeros(7), 10.0 - ratio.abs()]))
                outputs[2 * head + 1].append(ratio)
        return tuple(torch.stack(o) for o in outputs)


@pytest.mark.parametrize("specs", [[(120, 12), (200, 20), (150, 25), (240, 16)], [(90, 30)]])
def test_oracle_counts_length_over_period_in_74_forward_passes(specs):
    frames, n_frames = _videos(specs)
    oracle = Oracle()
    counts = count_videos(oracle, frames, n_frames, normalize)
    assert oracle.calls == 74
    assert counts.dtype == torch.float64 and counts.shape == (len(specs),)
    # The official int truncations leave every segment within a frame of P (a length of P (1 - 1e-7) truncates
    # to P - 1), so the count lies between L / (P + 1) and L / (P - 1); rounded, it is L / P.
    for count, (n, period) in zip(counts.tolist(), specs):
        assert n / (period + 1) <= count <= n / (period - 1), (count, n, period)
    assert round_counts(counts).tolist() == [n / p for n, p in specs]


class Constant(torch.nn.Module):
    """The same answer for every input: anchor 1.0 (index 3) the most positive, every box `box`."""

    def __init__(self, box):
        super().__init__()
        self.box, self.calls = box, 0

    def forward(self, x):
        self.calls += 1
        cls = torch.zeros(x.shape[0], 2, 7)
        cls[:, 1, 3] = 5.0
        box = torch.full((x.shape[0], 7), self.box)
        return cls, box, cls, box


def test_constant_model_keeps_the_first_admissible_coarse_scale():
    # Equal scores everywhere: the strict ">" keeps the first half-length s_k = 0.03 L (0.35 / 0.03)^(k / 29)
    # with s_k >= 4. L = 100: s_3 = 3.868, s_4 = 4.210 -> m = int(4.210) = 4; L = 50: s_11 = 3.81, s_12 = 4.146
    # -> m = 4. Box 0 at anchor 1.0 never changes a length: the refinement gives round(2 + 2) = 4 and every
    # position keeps left = right = m + 1 = 5 frames. Positions whose 4-cycle window fits count L / 5.
    model = Constant(0.0)
    counts = count_videos(model, *_videos([(100, 1), (50, 1)]), normalize)
    assert model.calls == 74
    assert counts.tolist() == pytest.approx([20.0, 10.0])


def test_constant_growing_model_falls_back_to_the_midpoint_length():
    # Box 5 is clamped to 0.5: every hypothesis grows by e^0.5 = 1.6487. L = 60, s_k = 1.8 x 1.0884^k:
    # coarse: s_3 e^0.5 = 3.83 < 4, s_4 e^0.5 = 4.165 -> m = 4. Refinement, m <- round(m/2 + m e^0.5 / 2):
    # 4 -> round(5.297) = 5 -> round(6.622) = 7 -> round(9.271) = 9 -> round(11.919) = 12.
    # Propagation only grows the 13-frame segments (up to L/2 = 30), so every final segment is at least
    # (13 + 21.4) / 2 > 15 frames and no position's window (2 x left + 2 x right <= 60) fits: the count falls
    # back to L / (m + 1) = 60 / 13.
    model = Constant(5.0)
    counts = count_videos(model, *_videos([(60, 1)]), normalize)
    assert model.calls == 74
    assert counts.item() == pytest.approx(60 / 13)


def _reference_indices(state, n):
    """update_inputs_2stream's frame choice, written out again: 16 rounded positions over each context span."""
    lp, mp, rp = state
    spans = [(int(lp - (mp - lp + 1)), int(mp))]
    start = int(mp + 1)
    spans.append((start, int(rp + (rp - start + 1))))
    out = []
    for a, b in spans:
        for j in range(16):
            p = int(max(a, min(b, round(a - 0.5 + j * (b - a + 1) / 15))))
            out.append(p if 0 <= p < n else None)
    return out


def _reference_counts(model, frames, n_frames):
    """A plain transcription of the official whole-video loop (UP/val_2stream.py:87-318) on numpy int arrays,
    which truncate on assignment as the official ones do; independent of tubelab.evaluation.counting."""
    sample_len = n_frames.numpy()
    batch = len(sample_len)
    pad = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)

    def forward(states):
        x = torch.zeros(batch, 3, 32, *frames.shape[-2:])
        for j, state in enumerate(states):
            for t, p in enumerate(_reference_indices(state, sample_len[j])):
                x[j, :, t] = pad if p is None else normalize(frames[j:j + 1, :, p:p + 1])[0, :, 0]
        cls1, box1, cls2, box2 = model(x)
        return (F.softmax(cls1, dim=1), box1.clamp(-0.5, 0.5), F.softmax(cls2, dim=1), box2.clamp(-0.5, 0.5))

    def best_scale(prob, box, j):
        top, scale = -1e6, -1
        for k in range(7):
            if prob[j][1][k] > top:
                top, scale = prob[j][1][k], math.exp(box[j][k]) * ANCHORS[k]
        return scale

    max_mp, max_score = np.zeros(batch, dtype=np.int64), np.full(batch, -1e6)
    for k in range(30):
        level = (0.35 / 0.03) ** (float(k) / 29)
        prob, box, _, _ = forward([[L / 2 - L * 0.03 * level, L / 2, L / 2 + L * 0.03 * level + 1] for L in sample_len])
        for j, L in enumerate(sample_len):
            cand = L * 0.03 * level * (math.exp(box[j][3]) * 1.0)
            if prob[j][1][3] > max_score[j] and cand >= 4 and cand < L / 2:
                max_score[j], max_mp[j] = prob[j][1][3], cand
    for _ in range(4):
        prob, box, _, _ = forward([[L / 2 - m, L / 2, L / 2 + m + 1] for L, m in zip(sample_len, max_mp)])
        for j, L in enumerate(sample_len):
            max_score[j] = -1e6
            cand = max_mp[j] * (math.exp(box[j][3]) * 1.0)
            if prob[j][1][3] > max_score[j] and cand >= 4 and cand < L / 2:
                max_mp[j] = round(float(max_mp[j] * 0.5) + float(cand * 0.5))

    shape = (batch, 5, 32)
    mp, lp_l, lp_r, rp_l, rp_r = (np.zeros(shape, dtype=np.int64) for _ in range(5))
    for j, L in enumerate(sample_len):
        for q in range(32):
            mp[j, 0, q] = int(float(L) / 33.0 * (q + 0.5))
            lp_l[j, 0, q] = lp_r[j, 0, q] = mp[j, 0, q] - max_mp[j]
            rp_l[j, 0, q] = rp_r[j, 0, q] = mp[j, 0, q] + max_mp[j] + 1
    load, save = np.zeros((3, batch), dtype=np.int64), np.zeros((3, batch), dtype=np.int64)
    for l1 in range(1, 5):
        steps = 2 ** (4 - l1)
        pos = -steps
        for l2 in range(2 ** l1):
            pos += 2 * steps
            for l3 in range({1: 4, 2: 2}.get(l1, 1)):
                for j in range(batch):
                    if l3 == 0:
                        load[:, j] = (round(float(lp_l[j, l1 - 1, pos] + lp_r[j, l1 - 1, pos]) / 2),
                                      mp[j, l1 - 1, pos], round(float(rp_l[j, l1 - 1, pos] + rp_r[j, l1 - 1, pos]) / 2))
                    else:
                        load[:, j] = (round(float(save[0, j]) * 0.5 + float(load[0, j]) * 0.5), save[1, j],
                                      round(float(save[2, j]) * 0.5 + float(load[2, j]) * 0.5))
                p1, b1, p2, b2 = forward([load[:, j].tolist() for j in range(batch)])
                for j, L in enumerate(sample_len):
                    lp, m, rp = load[:, j]
                    seg1 = min(max(4, (m - lp + 1) * best_scale(p1, b1, j)), L / 2)
                    seg2 = min(max(4, (rp - m) * best_scale(p2, b2, j)), L / 2)
                    save[:, j] = (int(m - seg1 + 1), m, int(m + seg2))
                    if (m - save[0, j] + 1) < 4 or (save[2, j] - m) < 4:
                        save[0, j], save[2, j] = lp, rp
            for j in range(batch):
                l_seg = float(save[0, j]) * 0.5 + float(load[0, j]) * 0.5
                r_seg = float(save[2, j]) * 0.5 + float(load[2, j]) * 0.5
                for s in range(-steps, steps):
                    q = pos + s
                    mp[j, l1, q] = mp[j, l1 - 1, q]
                    near, far = (lp_r, lp_l), (rp_r, rp_l)
                    own, other = (0, 1) if s < 0 else (1, 0)
                    lp_own, lp_other = near[own], near[other]
                    rp_own, rp_other = far[own], far[other]
                    lp_own[j, l1, q] = mp[j, l1 - 1, q] + (l_seg - mp[j, l1 - 1, pos])
                    rp_own[j, l1, q] = mp[j, l1 - 1, q] + (r_seg - mp[j, l1 - 1, pos])
                    end = l2 == 0 if s < 0 else l2 == 2 ** l1 - 1
                    source = l1 if (l1 <= 2 or l1 == 4 or end) else l1 - 1
                    (lp_other[j, l1, q], rp_other[j, l1, q]) = (
                        (lp_own[j, l1, q], rp_own[j, l1, q]) if source == l1 else
                        (lp_other[j, l1 - 1, q], rp_other[j, l1 - 1, q]))

    counts = []
    for j, L in enumerate(sample_len):
        lefts, rights = [], []
        for q in range(32):
            lp = round(float(lp_l[j, 4, q] + lp_r[j, 4, q]) / 2)
            rp = round(float(rp_l[j, 4, q] + rp_r[j, 4, q]) / 2)
            if int(lp - (mp[j, 4, q] - lp + 1)) >= 0 and int(rp + (rp - mp[j, 4, q])) < L:
                lefts.append(1.0 / float(mp[j, 4, q] - lp + 1))
                rights.append(1.0 / float(rp - mp[j, 4, q]))
        if not lefts:
            counts.append(float(L) / float(max_mp[j] + 1))
        else:
            counts.append(float(L) * float(sum(lefts) * 0.5 + sum(rights) * 0.5) / float(len(lefts)))
    return counts


class Scrambled(torch.nn.Module):
    """A fixed random linear map of the frames it sees: different states get different, often extreme answers
    (boxes beyond the clamp, failed updates), so every branch of the search is exercised."""

    def __init__(self, seed):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.weight = torch.randn(42, 96, generator=gen) * 0.3
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = x[:, :, :, 0, 0].flatten(1) @ self.weight.T
        return out[:, :14].reshape(-1, 2, 7), out[:, 14:21], out[:, 21:35].reshape(-1, 2, 7), out[:, 35:]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_match_a_plain_transcription_of_the_official_loop(seed):
    frames, n_frames = _videos([(64, 1), (101, 1), (250, 1)])
    frames[:, 1:] = torch.randint(0, 256, frames[:, 1:].shape, generator=torch.Generator().manual_seed(seed),
                                  dtype=torch.uint8)
    model = Scrambled(seed)
    counts = count_videos(model, frames, n_frames, normalize)
    assert model.calls == 74
    assert counts.tolist() == pytest.approx(_reference_counts(model, frames, n_frames), rel=1e-12)


def test_round_counts_is_half_to_even():
    counts = torch.tensor([2.5, 3.5, 2.4999, 0.5, 4.6], dtype=torch.float64)
    assert round_counts(counts).tolist() == [2.0, 4.0, 2.0, 0.0, 5.0]
