"""Ablation grids: the cartesian product of an ablation's axes, times its repeats (seeds)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from tubelab.tracking.schema import override_value, point_label


@dataclass(frozen=True)
class GridPoint:
    point: dict[str, str]      # axis -> value, e.g. {"tubelet": "no_motion"}
    seed: int
    overrides: list[str]       # Hydra overrides that make this trial's config

    @property
    def label(self) -> str:
        return point_label(self.point)

    @property
    def slug(self) -> str:
        """Filesystem- and run-name-safe id, stable across reruns (resume relies on it)."""
        text = "_".join(f"{k}-{v}" for k, v in self.point.items()) or "base"
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{text}_seed-{self.seed}")


def expand(grid: dict, repeats: int, base_seed: int) -> list[GridPoint]:
    if repeats < 1:
        raise ValueError(f"ablation.repeats must be >= 1, got {repeats}")
    axes = list(grid.items())
    for axis, values in axes:
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"ablation.grid.{axis} must be a non-empty list of values, got {values!r}")
    points = []
    for combo in itertools.product(*[values for _, values in axes]):
        point = {axis: override_value(v) for (axis, _), v in zip(axes, combo)}
        for r in range(repeats):
            seed = base_seed + r
            overrides = [f"{k}={v}" for k, v in point.items()] + [f"seed={seed}"]
            points.append(GridPoint(point, seed, overrides))
    return points
