"""Result tables: one row per grid point (repeats aggregated as mean +- std, or with a 95 % interval where
per-video predictions give one), one column per score, a chance line, paired differences to the first row."""

from __future__ import annotations

import math
import statistics

from tubelab.tracking.schema import LOWER_IS_BETTER


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


def fmt(score: str, value: float, signed: bool = False) -> str:
    """A number as the tables print it: errors (lower-is-better metrics, fractions) to 3 decimals, % to 1."""
    if not math.isfinite(value):
        return "n/a"
    digits = 3 if score.rsplit("/", 1)[-1] in LOWER_IS_BETTER else 1
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def cell(row: dict, score: str) -> str:
    """mean [95 % interval] where predictions gave one (evaluation.intervals), else mean ± std over repeats."""
    mean = row[score]
    if math.isnan(mean):
        return "n/a"
    if math.isfinite(row.get(f"{score}_lo", math.nan)):
        return f"{fmt(score, mean)} [{fmt(score, row[f'{score}_lo'])}, {fmt(score, row[f'{score}_hi'])}]"
    return f"{fmt(score, mean)} ± {fmt(score, row[f'{score}_std'])}" if row[f"{score}_n"] > 1 else fmt(score, mean)


def diff_cell(row: dict, score: str) -> str:
    """The paired difference to the first row with its interval; '(noise)' when the interval holds 0."""
    diff = row.get(f"{score}_diff", math.nan)
    if not math.isfinite(diff):
        return "n/a"
    low, high = row[f"{score}_diff_lo"], row[f"{score}_diff_hi"]
    noise = " (noise)" if low <= 0 <= high else ""
    return f"{fmt(score, diff, True)} [{fmt(score, low, True)}, {fmt(score, high, True)}]{noise}"


def chance_row(rows: list[dict], axes: list[str], scores: list[str]) -> str | None:
    """A table line with each column's chance level, if the rows carry one."""
    values = [next((r[f"{s}_chance"] for r in rows if f"{s}_chance" in r), math.nan) for s in scores]
    if not any(math.isfinite(v) for v in values):
        return None
    return "| " + " | ".join(["*chance*"] + [""] * (len(axes) - 1) + [fmt(s, v) for s, v in zip(scores, values)]) + " |"


def to_markdown(rows: list[dict], axes: list[str], scores: list[str]) -> str:
    header = axes + scores
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join([str(row[a]) for a in axes] + [cell(row, s) for s in scores]) + " |")
    if (chance := chance_row(rows, axes, scores)) is not None:
        lines.append(chance)
    return "\n".join(lines) + "\n"


def label(row: dict, axes: list[str]) -> str:
    """A row's name: its axis values ("no_motion"); a baseline row leaves the grid's axes blank."""
    return ", ".join(str(row[a]) for a in axes if str(row[a]) != "")


def differences_markdown(rows: list[dict], axes: list[str], scores: list[str], what: str = "the first row") -> str:
    """Each row against the first, paired on the same test videos and seeds ('' without predictions)."""
    if len(rows) < 2 or not any(f"{s}_diff" in r for r in rows[1:] for s in scores):
        return ""
    header = [" / ".join(axes) or "trial", *[f"{s} Δ [95 %]" for s in scores]]
    lines = [f"Paired difference against {what} ({label(rows[0], axes)}): same test videos and seeds; "
             f"(noise) = the interval holds 0.", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for row in rows[1:]:
        lines.append("| " + " | ".join([label(row, axes)] + [diff_cell(row, s) for s in scores]) + " |")
    return "\n".join(lines) + "\n"
