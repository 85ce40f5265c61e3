"""Targets and loss of SEVERE's UCF-RC repetition counting (Zhang et al., CVPR 2020, as forked by SEVERE).

Two heads each see 7 anchors: multiplicative factors on the current hypothesised cycle length A. An anchor
is positive when the ground-truth length is within a factor 2 of anchor x A, and then also regresses the
log ratio between the two, as an RPN does along time (docs/severe_ucf_rc.md §2.4, §3.3, §4.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ANCHORS = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0)  # RC/opts.py:187-191
IOU_THRESHOLD = 0.5  # iou_ubound = iou_lbound, so there is no ignore band (RC/opts.py:192-201)
BOX_WEIGHT = 50.0  # DTRC/train_2stream.py:196-197


def anchor_targets(gt: torch.Tensor, current: torch.Tensor,
                   anchors: tuple[float, ...] = ANCHORS) -> tuple[torch.Tensor, torch.Tensor]:
    """SEVERE's update_labels (DTRC/train_2stream.py:25-55) for a batch.

    gt: (B,) GT offsets as read from the label arrays, -1 = unknown (the caller also passes -1 for a read
    past the clip, :26-29); current: (B,) the current segment length A. With t = gt + 1 (an inclusive frame
    count), anchor k is positive iff min(t, a_k A) / max(t, a_k A) >= 0.5, with box target ln(t / (a_k A));
    negatives get box -1 (:45-50), unknown rows cls -1 and box -1 (:32-35). Computed in float64 like the
    official Python floats. Returns (cls LongTensor (B, A), box FloatTensor (B, A)).
    """
    t = (gt.to(torch.float64) + 1).unsqueeze(1)
    anchor_len = torch.tensor(anchors, dtype=torch.float64, device=gt.device) * current.to(torch.float64).unsqueeze(1)
    iou = torch.minimum(t, anchor_len) / torch.maximum(t, anchor_len)
    positive = iou >= IOU_THRESHOLD
    cls = positive.long()
    box = torch.where(positive, torch.log(t / anchor_len), -1.0)
    unknown = (gt == -1).unsqueeze(1)
    cls = cls.masked_fill(unknown, -1)
    box = box.masked_fill(unknown, -1.0)
    return cls, box.float()


def _classification(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CrossEntropyLoss(ignore_index=-1) on (B, 2, A) logits: the mean over non-ignored entries.

    Deviation: the official loss is NaN when every entry is ignored (0/0; docs §9 item 19); here such a term
    is 0 (a sum over no entries, still attached to the graph so DDP sees every head parameter used).
    """
    total = F.cross_entropy(logits, target, ignore_index=-1, reduction="sum")
    return total / (target != -1).sum().clamp(min=1)


def _regression(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SmoothL1Loss (mean over all B x A entries) where entries with target -1 take the detached prediction as
    target: they add zero loss but still count in the mean (DTRC/train_2stream.py:183-189)."""
    target = torch.where(target == -1, pred.detach(), target)
    return F.smooth_l1_loss(pred, target)


def repetition_loss(cls1: torch.Tensor, box1: torch.Tensor, cls2: torch.Tensor, box2: torch.Tensor,
                    targets1: tuple[torch.Tensor, torch.Tensor],
                    targets2: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """CE_left + CE_right + 50 (SmoothL1_left + SmoothL1_right) (DTRC/train_2stream.py:196-198), in fp32.

    cls*: (B, 2, A) logits, box*: (B, A) log-ratio predictions of the left (previous-cycle) and right
    (next-cycle) heads; targets*: (cls, box) from anchor_targets. A CE term with no valid target gives 0
    instead of the official NaN (see _classification).
    """
    (t_cls1, t_box1), (t_cls2, t_box2) = targets1, targets2
    loss_cls = _classification(cls1.float(), t_cls1) + _classification(cls2.float(), t_cls2)
    loss_box = _regression(box1.float(), t_box1) + _regression(box2.float(), t_box2)
    return loss_cls + BOX_WEIGHT * loss_box
