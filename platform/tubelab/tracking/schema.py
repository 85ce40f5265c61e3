"""The run schema: the names tubelab writes to MLflow and reads back (reports, resume, reuse).

One place, so a writer and a reader cannot drift apart: score metric prefixes, which metrics are
lower-is-better, and how a grid point is written as a label ("tubelet=linear, seed_axis=1").
"""

from __future__ import annotations

SCORE_PREFIX = "score/"    # a trial's final downstream scores: score/<setting>/<metric>, e.g. score/synthetic/top1
SEVERE_PREFIX = "severe/"  # a `tubelab severe` run's scores: severe/<SEVERE id>, e.g. severe/ucf_rc, severe/mean

# Metrics where a smaller value is better (model selection, tables); every other metric is higher-is-better.
LOWER_IS_BETTER = frozenset({"repetition_error"})


def override_value(value) -> str:
    """A YAML value as Hydra override syntax (how a grid value appears in labels and overrides)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    return str(value)


def point_label(point: dict[str, str]) -> str:
    """A grid point as its run label: {"a": "x", "b": "y"} -> "a=x, b=y" ("base" for the empty grid)."""
    return ", ".join(f"{k}={v}" for k, v in point.items()) or "base"


def parse_label(label: str) -> dict[str, str]:
    """The inverse of point_label: "a=x, b=y" -> {"a": "x", "b": "y"}."""
    if label == "base":
        return {}
    pairs = [part.split("=", 1) for part in label.split(", ")]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"{label!r} is not a grid-point label like 'tubelet=default, seed_axis=1'")
    return {k.strip(): v.strip() for k, v in pairs}
