"""Downstream task types: what the head outputs, the loss, the targets, and the scores.

single_label: softmax classifier, cross-entropy; top1 is Video@1 (softmax averaged over the eval
  clips of each video), plus mean class accuracy.
multi_label (Charades): one logit per class, BCE; mAP over classes with a positive.
count (repetition counting): one output, the count, L1 loss; repetition error (lower is better) and
  off-by-one accuracy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tubelab.evaluation import metrics
from tubelab.tracking import schema

TASKS = ("single_label", "multi_label", "count")
METRICS = {"single_label": ("top1", "mean_class_accuracy"), "multi_label": ("map",),
           "count": ("repetition_error", "obo")}


def check(task: str, metric: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; tubelab knows {', '.join(TASKS)}")
    if metric not in METRICS[task]:
        raise ValueError(f"setting.metric={metric!r} does not fit a {task} dataset; choose one of: "
                         f"{', '.join(METRICS[task])}")


def head_size(task: str, num_classes: int) -> int:
    return 1 if task == "count" else num_classes


def targets(task: str, batch: dict, device: torch.device, class_map: torch.Tensor | None = None) -> torch.Tensor:
    """The training target of a batch: class index, multi-hot vector or count."""
    if task == "multi_label":
        return batch["multi_hot"].to(device)
    if task == "count":
        return batch["count"].to(device)
    label = batch["label"].to(device)
    return class_map.to(device)[label] if class_map is not None else label


def loss(task: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if task == "multi_label":
        return F.binary_cross_entropy_with_logits(output, target)
    if task == "count":
        return F.l1_loss(output.squeeze(-1), target)
    return F.cross_entropy(output, target)


AGGREGATES = ("mean", "max")


def video_outputs(task: str, outputs: torch.Tensor, aggregate: str = "mean") -> torch.Tensor:
    """(V, N, C) outputs of N views per video -> one prediction per video: the mean (Video@1) or the max
    (SEVERE's Charades test, `ENSEMBLE_METHOD: max`) of the views' probabilities (counts: of the counts)."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"setting.clip.aggregate={aggregate!r} is not valid; choose one of: {', '.join(AGGREGATES)}")
    if task == "single_label":
        views = outputs.softmax(dim=-1)
    elif task == "multi_label":
        views = outputs.sigmoid()
    else:
        views = outputs.squeeze(-1)
    return views.mean(dim=1) if aggregate == "mean" else views.amax(dim=1)


def scores(task: str, predictions: torch.Tensor, target: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Every metric of the task, from per-video predictions (video_outputs) and targets."""
    if task == "single_label":
        return {"top1": metrics.clip_top1(predictions, target),
                "mean_class_accuracy": metrics.mean_class_accuracy(predictions.argmax(1), target, num_classes)}
    if task == "multi_label":
        return {"map": metrics.mean_average_precision(predictions, target)}
    return {"repetition_error": metrics.repetition_error(predictions, target),
            "obo": metrics.off_by_one_accuracy(predictions, target)}


def better(metric: str, new: float, old: float | None) -> bool:
    if old is None:
        return True
    return new < old if metric in schema.LOWER_IS_BETTER else new > old
