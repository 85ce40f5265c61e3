"""SEVERE's UCF-RC counting model: the R(2+1)D backbone with a two-head anchor classifier and box regressor,
and the 32-frame "context" input it reads around a state (lp, mp, rp) (docs/severe_ucf_rc.md §2.2, §3).

A state holds the hypothesised previous cycle [lp, mp] and next cycle [mp+1, rp]. The input samples 16 frames
over the previous cycle plus one more cycle-length before it, and 16 over the next cycle plus one more after,
so its time resolution follows the hypothesised cycle length (the "scale-insensitive" part).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

HALF = 16  # basic_duration 32 = 16 left + 16 right (RC/opts.py:139-143; UP/utils/myutils.py:18)
LEFT_RATIO, RIGHT_RATIO = 1.0, 2.0  # l/r_context_ratio: one extra cycle on each side (RC/opts.py:144-153)
PAD_VALUE = (0.485, 0.456, 0.406)  # opt.mean = the ImageNet mean, the official padding value (RC/main.py:54)


class RepetitionHead(nn.Module):
    """DTRC/model.py:6-30: four linear layers on the same pooled feature. The 2A class outputs reshape
    row-major into (B, 2, A): the first A logits are "negative" for each anchor, the next A "positive"."""

    def __init__(self, in_dim: int, anchors: int = 7):
        super().__init__()
        self.anchors = anchors
        self.fc_cls_1 = nn.Linear(in_dim, 2 * anchors)
        self.fc_box_1 = nn.Linear(in_dim, anchors)
        self.fc_cls_2 = nn.Linear(in_dim, 2 * anchors)
        self.fc_box_2 = nn.Linear(in_dim, anchors)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, in_dim) -> (cls1 (B, 2, A), box1 (B, A), cls2 (B, 2, A), box2 (B, A)); 1 = left, 2 = right."""
        cls1 = self.fc_cls_1(x).reshape(-1, 2, self.anchors)
        cls2 = self.fc_cls_2(x).reshape(-1, 2, self.anchors)
        return cls1, self.fc_box_1(x), cls2, self.fc_box_2(x)


def attach_head(net: nn.Module, anchors: int = 7) -> nn.Module:
    """Replace the classifier `net.fc` by a RepetitionHead (DTRC/model.py:37), so `net(x)` returns the 4-tuple
    and the checkpoint keys are SEVERE's (`fc.fc_cls_1.weight`, ...). Returns `net`."""
    net.fc = RepetitionHead(net.feature_dim, anchors)
    return net


def _half_indices(pos: int, pos2: int, half: int, n_frames: int) -> list[int]:
    """`half` indices spread over [pos, pos2]: round(pos - 0.5 + j (pos2 - pos + 1) / (half - 1)) clamped to
    [pos, pos2] (UP/utils/myutils.py:22-25, 36-39); Python 3 round, i.e. half-to-even, as SEVERE runs it."""
    steps = (pos2 - pos + 1) * 1.0 / (half - 1)
    out = []
    for j in range(half):
        p = int(max(pos, min(pos2, round(pos - 0.5 + j * steps))))
        out.append(p if 0 <= p < n_frames else -1)  # outside the video: a padding frame (:28-29, 42-43)
    return out


def context_indices(lp: float, mp: float, rp: float, n_frames: int, half: int = HALF,
                    left_ratio: float = LEFT_RATIO, right_ratio: float = RIGHT_RATIO) -> list[int]:
    """The 2 * half frame indices update_inputs_2stream reads for state (lp, mp, rp) (UP/utils/myutils.py:8-48),
    -1 where it pads. The state may hold floats (the evaluation's coarse search passes them); int() truncates
    toward zero, as the official does.

    Left: [lp - (mp - lp + 1) left_ratio, mp] (:20-21). Right: [s, rp + (rp - s + 1)(right_ratio - 1)] with
    s = int(mp + 1) (:34-35): the right span is measured from the truncated start.
    """
    pos = int(lp - (mp - lp + 1) * left_ratio)
    left = _half_indices(pos, int(mp), half, n_frames)
    pos = int(mp + 1)
    right = _half_indices(pos, int(rp + (rp - pos + 1) * (right_ratio - 1)), half, n_frames)
    return left + right


def context_input(frames: torch.Tensor, n_frames: torch.Tensor | Sequence[int],
                  states: torch.Tensor | Sequence[Sequence[float]],
                  normalize: Callable[[torch.Tensor], torch.Tensor], *, half: int = HALF,
                  left_ratio: float = LEFT_RATIO, right_ratio: float = RIGHT_RATIO,
                  pad_value: tuple[float, float, float] = PAD_VALUE) -> torch.Tensor:
    """The network input for a batch of states: uint8 frames (B, 3, T, H, W), one (zero-padded) video or
    sub-clip per row; n_frames (B,); states (B, 3) of (lp, mp, rp), ints (floats where the official passes
    floats: give a float64 tensor or Python floats) -> float (B, 3, 2 * half, H, W).

    Only the indexed frames are gathered and normalised. Padded positions then get `pad_value` per channel in
    *normalised* space (UP/utils/myutils.py:11-14 fill opt.mean after Normalize; docs §9 item 9): a light grey,
    not black or the dataset mean.
    """
    rows = states.tolist() if isinstance(states, torch.Tensor) else states
    lengths = n_frames.tolist() if isinstance(n_frames, torch.Tensor) else n_frames
    index = torch.tensor([context_indices(*row, n, half, left_ratio, right_ratio) for row, n in zip(rows, lengths)],
                         device=frames.device)
    padded = index < 0
    batch = torch.arange(frames.shape[0], device=frames.device).unsqueeze(1)
    clips = frames.transpose(1, 2)[batch, index.clamp(min=0)].transpose(1, 2)  # (B, 3, 2 * half, H, W)
    x = normalize(clips)
    fill = torch.tensor(pad_value, dtype=x.dtype, device=x.device).view(1, 3, 1, 1, 1)
    return torch.where(padded.view(padded.shape[0], 1, -1, 1, 1), fill, x)
