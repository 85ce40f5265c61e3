"""Result tables: one row per grid point (repeats aggregated as mean +- std), one column per score."""

from __future__ import annotations

import math
import statistics


def aggregate(rows: list[dict], axes: list[str], scores: list[str]) -> list[dict]:
    """Group trial rows by their axis values; each score becomes mean, std and n over the repeats."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[a] for a in axes), []).append(row)
    out = []
    for key, members in groups.items():
        agg = dict(zip(axes, key))
        for s in scores:
            values = [m[s] for m in members if m.get(s) is not None and not math.isnan(m[s])]
            agg[s] = statistics.fmean(values) if values else float("nan")
            agg[f"{s}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            agg[f"{s}_n"] = len(values)
        out.append(agg)
    return out


def cell(row: dict, score: str) -> str:
    mean = row[score]
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.1f} ± {row[f'{score}_std']:.1f}" if row[f"{score}_n"] > 1 else f"{mean:.1f}"


def to_markdown(rows: list[dict], axes: list[str], scores: list[str]) -> str:
    header = axes + scores
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join([str(row[a]) for a in axes] + [cell(row, s) for s in scores]) + " |")
    return "\n".join(lines) + "\n"

