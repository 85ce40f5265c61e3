"""Plots logged to MLflow: results people would rather look at than read."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def bar_chart(rows: list[dict], axes: list[str], scores: list[str], path: Path, title: str) -> Path:
    """Grouped bars: one group per score, one bar per grid point, error bars = std over repeats."""
    labels = [", ".join(f"{a}={r[a]}" for a in axes) or "base" for r in rows]
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(scores) * max(len(rows), 1)), 3.5))
    width = 0.8 / max(len(rows), 1)
    for i, (row, label) in enumerate(zip(rows, labels)):
        xs = [j + i * width for j in range(len(scores))]
        ax.bar(xs, [row[s] for s in scores], width, yerr=[row[f"{s}_std"] for s in scores], label=label, capsize=3)
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(scores))], scores)
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
