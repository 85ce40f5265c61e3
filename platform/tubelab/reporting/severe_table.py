"""The SEVERE table: rows = checkpoints (ours) and the papers' rows, columns = the eight settings + Mean."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tubelab.evaluation.severe import DISPLAY, ERROR_SETTINGS, REFERENCE_ROWS, SETTINGS, severe_mean  # noqa: E402
from tubelab.tracking import mlflow_runs  # noqa: E402


def row(label: str, scores: dict[str, float], source: str = "tubelab") -> dict:
    """A table row; the Mean only when all eight settings have a finite score."""
    complete = all(math.isfinite(scores.get(s, math.nan)) for s in SETTINGS)
    return {"label": label, "source": source, **{s: scores.get(s, math.nan) for s in SETTINGS},
            "mean": severe_mean({s: scores[s] for s in SETTINGS}) if complete else math.nan}


def reference_rows() -> list[dict]:
    """The papers' rows with their printed Means (the formula reproduces them within 0.1)."""
    return [{**row(r.method, dict(r.scores), source=r.source), "mean": r.mean} for r in REFERENCE_ROWS]


def _fmt(setting: str, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.3f}" if setting in ERROR_SETTINGS else f"{value:.1f}"


def to_markdown(ours: list[dict], title: str) -> str:
    head = ["", *[DISPLAY[s] + (" (err, lower better)" if s in ERROR_SETTINGS else "") for s in SETTINGS], "Mean"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in ours + reference_rows():
        name = r["label"] if r["source"] == "tubelab" else f"{r['label']} (paper, real data)"
        lines.append("| " + " | ".join([name, *[_fmt(s, r[s]) for s in SETTINGS], _fmt("mean", r["mean"])]) + " |")
    return "\n".join(lines) + "\n"


def to_csv(ours: list[dict]) -> str:
    cols = ["label", "source", *SETTINGS, "mean"]
    return "\n".join([",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in ours + reference_rows()]) + "\n"


def plot(ours: list[dict], path: Path, title: str) -> Path:
    """Grouped bars per setting for our rows (UCF-RC shown as (1 - error) x 100, as the Mean counts it)."""
    def shown(r, s):
        return (1 - r[s]) * 100 if s in ERROR_SETTINGS else r[s]

    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / max(len(ours), 1)
    for i, r in enumerate(ours):
        xs = [j + i * width for j in range(len(SETTINGS) + 1)]
        ax.bar(xs, [shown(r, s) for s in SETTINGS] + [r["mean"]], width, label=r["label"])
    labels = [DISPLAY[s] + (" (1-err)" if s in ERROR_SETTINGS else "") for s in SETTINGS] + ["Mean"]
    ax.set_xticks([j + width * (len(ours) - 1) / 2 for j in range(len(labels))], labels, fontsize=8)
    ax.set_ylabel("score (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def log_table(cfg, run_id: str, ours: list[dict], title: str) -> str:
    """The table as severe.md, severe.csv and severe.png artifacts of MLflow run `run_id`; returns the Markdown."""
    markdown = to_markdown(ours, title)
    mlflow_runs.log_text(cfg, run_id, markdown, "severe.md")
    mlflow_runs.log_text(cfg, run_id, to_csv(ours), "severe.csv")
    with tempfile.TemporaryDirectory() as d:
        mlflow_runs.log_artifact(cfg, run_id, plot(ours, Path(d) / "severe.png", title))
    return markdown
