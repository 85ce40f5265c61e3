"""The SEVERE benchmark's eight settings, their summary Mean, and published reference rows.

Scores are in the units the papers print: top-1 / mAP in % for seven settings and, for UCF-RC, the
repetition error e = mean |pred - gt| / gt as a fraction (lower is better). The paper's "Mean" first
converts UCF-RC to (1 - e) * 100 and then averages the eight numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["SETTINGS", "DISPLAY", "ERROR_SETTINGS", "severe_mean", "ReferenceRow", "REFERENCE_ROWS"]

# Column order of the SEVERE tables (SIGMA paper, ECCV 2024; tubelet contrast, ICCV 2023).
SETTINGS: tuple[str, ...] = ("ssv2", "gym99", "ucf_1000", "gym_1000", "fx_s1", "ub_s1", "ucf_rc", "charades")

DISPLAY: dict[str, str] = {
    "ssv2": "SSv2",
    "gym99": "Gym99",
    "ucf_1000": "UCF (10^3)",
    "gym_1000": "Gym (10^3)",
    "fx_s1": "FX-S1",
    "ub_s1": "UB-S1",
    "ucf_rc": "UCF-RC",
    "charades": "Charades",
}

# Settings whose score is an error (a fraction, lower is better: tracking.schema.LOWER_IS_BETTER's
# repetition_error), not a percentage.
ERROR_SETTINGS: frozenset[str] = frozenset({"ucf_rc"})


def severe_mean(scores: Mapping[str, float]) -> float:
    """The SEVERE Mean: average of the eight settings with UCF-RC's error e converted to (1 - e) * 100.

    `scores` must be keyed by exactly the ids in SETTINGS; UCF-RC is given as its error e (a fraction,
    e.g. 0.150), the others in % (in [0, 100]). ValueError on missing ids, unknown ids, or values that
    are not finite real numbers, negative, or (for the % settings) above 100.
    """
    if not isinstance(scores, Mapping):
        raise ValueError(f"scores: expected a mapping of setting id -> score, got {type(scores).__name__}")
    missing = [s for s in SETTINGS if s not in scores]
    unknown = sorted(str(k) for k in scores if k not in SETTINGS)
    problems = []
    if missing:
        problems.append(f"missing setting(s) {missing}")
    if unknown:
        problems.append(f"unknown setting(s) {unknown}")
    if problems:
        raise ValueError("; ".join(problems) + f"; valid ids: {list(SETTINGS)}")
    converted = []
    for s in SETTINGS:
        v = scores[s]
        if isinstance(v, (bool, str, bytes)):
            raise ValueError(f"{s}: expected a number, got {v!r}")
        try:
            v = float(v)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{s}: expected a number, got {scores[s]!r}") from e
        if not math.isfinite(v):
            raise ValueError(f"{s}: score must be finite, got {v}")
        if v < 0:
            raise ValueError(f"{s}: score must be >= 0, got {v}")
        if s in ERROR_SETTINGS:
            converted.append((1.0 - v) * 100.0)
        else:
            if v > 100:
                raise ValueError(f"{s}: a percentage must be <= 100, got {v}")
            converted.append(v)
    return sum(converted) / len(converted)


@dataclass(frozen=True)
class ReferenceRow:
    """One published SEVERE row: the method, where it was printed, its eight scores and printed Mean."""

    method: str
    source: str
    scores: Mapping[str, float]  # keyed by SETTINGS; ucf_rc as an error fraction
    mean: float  # as printed (rounded to 0.1)


_SIGMA = "SIGMA (ECCV 2024), SEVERE table"
_TUBELET = "Tubelet contrast (ICCV 2023), SEVERE table"


def _row(method: str, source: str, values: tuple[float, ...], mean: float) -> ReferenceRow:
    if len(values) != len(SETTINGS):
        raise ValueError(f"{method}: {len(values)} values for {len(SETTINGS)} settings")
    return ReferenceRow(method, source, MappingProxyType(dict(zip(SETTINGS, values))), mean)


# Values in SETTINGS order: SSv2, Gym99, UCF 10^3, Gym 10^3, FX-S1, UB-S1, UCF-RC (error), Charades.
REFERENCE_ROWS: tuple[ReferenceRow, ...] = (
    _row("SVT", _SIGMA, (59.5, 62.3, 83.9, 18.5, 35.4, 55.1, 0.421, 35.5), 51.0),
    _row("MVD", _SIGMA, (70.0, 82.5, 66.7, 17.5, 31.3, 50.5, 0.184, 16.1), 52.1),
    _row("VideoMAE", _SIGMA, (68.6, 86.6, 74.6, 25.9, 42.8, 65.3, 0.172, 12.6), 57.4),
    _row("MGMAE", _SIGMA, (68.9, 87.2, 77.2, 24.0, 33.7, 79.5, 0.181, 17.9), 58.8),
    _row("SIGMA-MLP", _SIGMA, (69.8, 87.4, 80.2, 26.8, 46.0, 79.7, 0.178, 20.1), 61.5),
    _row("SIGMA-DINO", _SIGMA, (70.9, 89.7, 84.1, 28.0, 55.1, 79.9, 0.169, 23.3), 64.3),
    _row("Tubelet contrast (Mini-Kinetics)", _TUBELET, (59.4, 92.2, 65.5, 48.0, 78.3, 90.9, 0.150, 9.0), 66.0),
    _row("Tubelet contrast (Kinetics-400)", _TUBELET, (60.2, 92.8, 65.7, 47.0, 80.1, 91.0, 0.150, 10.3), 66.5),
)
