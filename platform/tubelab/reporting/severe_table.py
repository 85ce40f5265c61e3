"""The SEVERE table: rows = checkpoints (ours) and the papers' rows, columns = the eight settings + Mean."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tubelab.evaluation import intervals  # noqa: E402
from tubelab.evaluation.severe import DISPLAY, ERROR_SETTINGS, REFERENCE_ROWS, SETTINGS, severe_mean  # noqa: E402
from tubelab.tracking import mlflow_runs  # noqa: E402
from tubelab.tracking.predictions import load_predictions  # noqa: E402


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


def attach_intervals(client, experiment_id: str, severe_run_id: str, r: dict) -> dict:
    """Row `r` of `tubelab severe` run `severe_run_id` with each setting's 95 % interval and chance level
    (from its fine-tune's per-video predictions) and the Mean's interval (each bootstrap draw of the eight
    settings gives one Mean); settings without predictions are left without."""
    children = client.search_runs([experiment_id], f"tags.`{mlflow_runs.PARENT_TAG}` = '{severe_run_id}'",
                                  max_results=100)
    draws, r["predictions"] = {}, {}
    for child in children:
        sid = child.data.tags.get("tubelab.severe_id")
        p = load_predictions(client, child.info.run_id) if sid in SETTINGS else None
        if p is None:
            continue
        draws[sid], r["predictions"][sid] = intervals.bootstrap_draws([p]), [p]
        r[f"{sid}_lo"], r[f"{sid}_hi"] = intervals.bounds(draws[sid])
        r[f"{sid}_chance"] = intervals.chance_level(p["metric"], p["target"], p["num_classes"])
    if set(draws) == set(SETTINGS):
        means = []
        for b in range(intervals.RESAMPLES):
            try:
                means.append(severe_mean({s: draws[s][b] for s in SETTINGS}))
            except ValueError:  # an undefined resample
                continue
        r["mean_lo"], r["mean_hi"] = intervals.bounds(np.array(means))
    return r


def attach_differences(ours: list[dict]) -> None:
    """Each row after the first: per setting, the paired difference to the first row (same test videos)."""
    base = ours[0].get("predictions", {})
    for r in ours[1:]:
        for s, p in r.get("predictions", {}).items():
            if s in base:
                r[f"{s}_diff"], r[f"{s}_diff_lo"], r[f"{s}_diff_hi"] = intervals.paired_difference(base[s], p)


def _signed(setting: str, value: float) -> str:
    return f"{value:+.3f}" if setting in ERROR_SETTINGS else f"{value:+.1f}"


def _cell(r: dict, s: str) -> str:
    if math.isfinite(r.get(f"{s}_lo", math.nan)) and math.isfinite(r[s]):
        return f"{_fmt(s, r[s])} [{_fmt(s, r[f'{s}_lo'])}, {_fmt(s, r[f'{s}_hi'])}]"
    return _fmt(s, r[s])


def to_markdown(ours: list[dict], title: str, caption: str = "") -> str:
    """Our rows (with 95 % intervals where predictions give them), a chance line, the papers' rows, and
    the paired differences of our rows to the first one; `caption`: the protocol line under the title."""
    head = ["", *[DISPLAY[s] + (" (err, lower better)" if s in ERROR_SETTINGS else "") for s in SETTINGS], "Mean"]
    lines = [f"### {title}", "", *([caption, ""] if caption else []),
             "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in ours:
        lines.append("| " + " | ".join([r["label"], *[_cell(r, s) for s in SETTINGS], _cell(r, "mean")]) + " |")
    chance = {s: next((r[f"{s}_chance"] for r in ours if f"{s}_chance" in r), math.nan) for s in SETTINGS}
    if any(math.isfinite(v) for v in chance.values()):
        lines.append("| " + " | ".join(["*chance*", *[_fmt(s, chance[s]) for s in SETTINGS], ""]) + " |")
    for r in reference_rows():
        lines.append("| " + " | ".join([f"{r['label']} (paper, real data)", *[_fmt(s, r[s]) for s in SETTINGS],
                                        _fmt("mean", r["mean"])]) + " |")
    if len(ours) > 1 and any(f"{s}_diff" in r for r in ours[1:] for s in SETTINGS):
        lines += ["", f"Paired difference against {ours[0]['label']} (same test videos; (noise) = the 95 % "
                      f"interval holds 0):", "", "| " + " | ".join(head[:-1]) + " |",
                  "|" + "|".join("---" for _ in head[:-1]) + "|"]
        for r in ours[1:]:
            cells = []
            for s in SETTINGS:
                if f"{s}_diff" not in r:
                    cells.append("n/a")
                    continue
                low, high = r[f"{s}_diff_lo"], r[f"{s}_diff_hi"]
                noise = " (noise)" if low <= 0 <= high else ""
                cells.append(f"{_signed(s, r[f'{s}_diff'])} [{_signed(s, low)}, {_signed(s, high)}]{noise}")
            lines.append("| " + " | ".join([r["label"], *cells]) + " |")
    return "\n".join(lines) + "\n"


def to_csv(ours: list[dict]) -> str:
    cols = ["label", "source", *SETTINGS, "mean"]
    return "\n".join([",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in ours + reference_rows()]) + "\n"


def plot(ours: list[dict], path: Path, title: str) -> Path:
    """Grouped bars per setting for our rows (UCF-RC shown as (1 - error) x 100, as the Mean counts it)."""
    def shown(r, s, key=None):
        value = r.get(key or s, math.nan)
        return (1 - value) * 100 if s in ERROR_SETTINGS else value

    def error_bars(r):  # the 95 % intervals, as (below, above) the bar; 0 where there is none
        keys = [*SETTINGS, "mean"]
        lows = [shown(r, s, f"{s}_hi" if s in ERROR_SETTINGS else f"{s}_lo") for s in keys]
        highs = [shown(r, s, f"{s}_lo" if s in ERROR_SETTINGS else f"{s}_hi") for s in keys]
        values = [shown(r, s) for s in SETTINGS] + [r["mean"]]
        return [[max(v - lo, 0) if math.isfinite(lo) else 0 for v, lo in zip(values, lows)],
                [max(hi - v, 0) if math.isfinite(hi) else 0 for v, hi in zip(values, highs)]]

    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / max(len(ours), 1)
    for i, r in enumerate(ours):
        xs = [j + i * width for j in range(len(SETTINGS) + 1)]
        ax.bar(xs, [shown(r, s) for s in SETTINGS] + [r["mean"]], width, yerr=error_bars(r), capsize=2,
               label=r["label"])
    labels = [DISPLAY[s] + (" (1-err)" if s in ERROR_SETTINGS else "") for s in SETTINGS] + ["Mean"]
    ax.set_xticks([j + width * (len(ours) - 1) / 2 for j in range(len(labels))], labels, fontsize=8)
    ax.set_ylabel("score (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def log_table(cfg, run_id: str, ours: list[dict], title: str, caption: str = "") -> str:
    """The table as severe.md, severe.csv and severe.png artifacts of MLflow run `run_id`; returns the Markdown."""
    markdown = to_markdown(ours, title, caption)
    mlflow_runs.log_text(cfg, run_id, markdown, "severe.md")
    mlflow_runs.log_text(cfg, run_id, to_csv(ours), "severe.csv")
    with tempfile.TemporaryDirectory() as d:
        mlflow_runs.log_artifact(cfg, run_id, plot(ours, Path(d) / "severe.png", title))
    return markdown
