"""Ablation grids: the ablation's baseline points, then the cartesian product of its axes, times its repeats
(seeds). A baseline (e.g. `{checkpoint: random}`, no pretraining) is a row the grid is compared with, so it
comes first: the reports' paired differences are against the first row."""

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


def expand(grid: dict, repeats: int, base_seed: int, baselines: list | tuple = ()) -> list[GridPoint]:
    if repeats < 1:
        raise ValueError(f"ablation.repeats must be >= 1, got {repeats}")
    axes = list(grid.items())
    for axis, values in axes:
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"ablation.grid.{axis} must be a non-empty list of values, got {values!r}")
    if not isinstance(baselines, (list, tuple)):
        raise ValueError(f"ablation.baselines must be a list of override mappings, e.g. [{{checkpoint: random}}]; "
                         f"got {baselines!r}")
    for b in baselines:
        if not isinstance(b, dict) or not b or set(b) & set(grid):
            raise ValueError(f"each of ablation.baselines must be a non-empty mapping of overrides on keys that are "
                             f"not grid axes ({', '.join(grid)}), e.g. {{checkpoint: random}}; got {b!r}")
    combos = [{k: override_value(v) for k, v in b.items()} for b in baselines]
    combos += [{axis: override_value(v) for (axis, _), v in zip(axes, combo)}
               for combo in itertools.product(*[values for _, values in axes])]
    points = []
    for point in combos:
        for r in range(repeats):
            seed = base_seed + r
            overrides = [f"{k}={v}" for k, v in point.items()] + [f"seed={seed}"]
            points.append(GridPoint(point, seed, overrides))
    return points
