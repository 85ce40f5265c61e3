"""A sweep's report, rebuilt from MLflow alone: our numbers beside the paper's, with the deltas.

Rows are grid points (repeats as mean +- std), columns the downstream settings. Where the ablation
declares the paper's numbers (`paper.rows` in ablations/*.yaml), each column gets ours, the paper's
and ours - paper, and a second table compares each row's change against the first row with the
paper's change: on the synthetic proxy the absolute numbers differ from the paper's by design, the
direction of each change is what should reproduce. Where the fine-tunes saved their per-video
predictions (tracking.predictions), each score gets a 95 % interval, each column its chance level and
each row its paired difference to the first row (evaluation.intervals). Markdown, CSV and a PNG go to
the parent run.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import yaml

from tubelab.evaluation import intervals, protocol
from tubelab.evaluation.severe import SETTINGS
from tubelab.reporting import severe_table, tables
from tubelab.tracking import mlflow_runs
from tubelab.tracking.predictions import load_predictions
from tubelab.tracking.schema import SCORE_PREFIX, override_value, parse_label

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PROXY_PREFIX = "proxy_"   # proxy_<id> stands for the benchmark setting <id> (conf/setting/_proxy.yaml)
MEAN = "severe_mean"


@dataclass
class SweepReport:
    markdown: str
    csv: str
    table: list[dict]
    finished: int
    reused: int
    axes: list[str] = field(default_factory=list)
    scores: list[str] = field(default_factory=list)
    with_paper: bool = False
    title: str = ""


def benchmark_id(score: str) -> str:
    """"proxy_ucf_1000/top1" -> "ucf_1000": the column of the paper's table a score stands for."""
    setting = score.split("/", 1)[0]
    return setting[len(PROXY_PREFIX):] if setting.startswith(PROXY_PREFIX) else setting


def sweep_rows(client, experiment_id: str, parent_id: str) -> tuple[list[dict], list[str], list[str], int, list]:
    """Finished child runs as rows: grid axes (params `grid.*`) and scores (metrics `score/*`); and the runs."""
    children = client.search_runs([experiment_id], f"tags.`{mlflow_runs.PARENT_TAG}` = '{parent_id}'",
                                  max_results=10000)
    finished = [c for c in children if c.info.status == "FINISHED"]
    axes = sorted({k[len("grid."):] for c in children for k in c.data.params if k.startswith("grid.")})
    scores = sorted({k[len(SCORE_PREFIX):] for c in children for k in c.data.metrics if k.startswith(SCORE_PREFIX)})
    rows = []
    for c in finished:
        row = {a: c.data.params.get(f"grid.{a}", "") for a in axes}
        row.update({s: c.data.metrics.get(SCORE_PREFIX + s, float("nan")) for s in scores})
        rows.append(row)
    reused = sum("tubelab.reused_from" in c.data.tags for c in finished)
    return rows, axes, scores, reused, finished


def stage_predictions(client, experiment_id: str, trial_run, setting_id: str) -> dict | None:
    """The per-video predictions of a trial's fine-tune on `setting_id` (of the run it was reused from)."""
    trial_id = trial_run.data.tags.get("tubelab.reused_from", trial_run.info.run_id)
    stages = client.search_runs([experiment_id], f"tags.`{mlflow_runs.PARENT_TAG}` = '{trial_id}' and "
                                f"attributes.run_name = 'finetune-{setting_id}'", max_results=5)
    return load_predictions(client, stages[0].info.run_id) if stages else None


def row_predictions(client, experiment_id: str, runs: list, axes: list[str], scores: list[str]) -> dict:
    """(row key, score) -> the per-video predictions of each seed of that row, where every seed saved them
    (older runs did not: those rows get no interval)."""
    members: dict[tuple, list] = {}
    for run in runs:
        members.setdefault(tuple(run.data.params.get(f"grid.{a}", "") for a in axes), []).append(run)
    for runs_ in members.values():
        runs_.sort(key=lambda r: int(r.data.params.get("seed", 0)))
    predictions: dict[tuple, list[dict]] = {}
    for key, runs_ in members.items():
        for s in scores:
            got = [stage_predictions(client, experiment_id, r, s.split("/", 1)[0]) for r in runs_]
            if got and all(g is not None for g in got):
                predictions[key, s] = got
    return predictions


def attach_intervals(table: list[dict], axes: list[str], scores: list[str], predictions: dict) -> None:
    """Each score's 95 % interval and its column's chance level."""
    for row in table:
        key = tuple(str(row[a]) for a in axes)
        for s in scores:
            if (key, s) in predictions:
                runs_ = predictions[key, s]
                _, row[f"{s}_lo"], row[f"{s}_hi"] = intervals.score_interval(runs_)
                row[f"{s}_chance"] = intervals.chance_level(runs_[0]["metric"], runs_[0]["target"],
                                                            runs_[0]["num_classes"])


def attach_differences(rows: list[dict], axes: list[str], scores: list[str], predictions: dict) -> None:
    """Each row's paired difference to the first of `rows` (same test videos and seeds)."""
    base_key = tuple(str(rows[0][a]) for a in axes)
    for row in rows[1:]:
        key = tuple(str(row[a]) for a in axes)
        for s in scores:
            if (key, s) in predictions and (base_key, s) in predictions:
                row[f"{s}_diff"], row[f"{s}_diff_lo"], row[f"{s}_diff_hi"] = intervals.paired_difference(
                    predictions[base_key, s], predictions[key, s])


def grid_rows(table: list[dict], axes: list[str], ablation: dict) -> list[dict]:
    """The rows of the grid proper, without the ablation's baselines (a baseline row sets no grid axis)."""
    grid = set(ablation.get("grid") or {})
    return [r for r in table if any(str(r[a]) for a in axes if a in grid)]


def load_ablation(client, run_id: str) -> dict:
    """The ablation a sweep ran (artifact ablation.yaml of the parent run); {} for older sweeps."""
    if not any(f.path == "ablation.yaml" for f in client.list_artifacts(run_id)):
        return {}
    with tempfile.TemporaryDirectory() as d:
        return yaml.safe_load(Path(client.download_artifacts(run_id, "ablation.yaml", d)).read_text()) or {}


def in_ablation_order(table: list[dict], axes: list[str], scores: list[str], ablation: dict):
    """Columns in the ablation's `downstream` order, rows in its order: baselines, then the grid (MLflow returns
    neither)."""
    downstream = [str(d) for d in ablation.get("downstream") or []]
    grid = {a: [override_value(v) for v in values] for a, values in (ablation.get("grid") or {}).items()}

    def column(score):
        setting = score.split("/", 1)[0]
        return (downstream.index(setting) if setting in downstream else len(downstream), score)

    baselines = [{k: override_value(v) for k, v in b.items()} for b in ablation.get("baselines") or []]

    def row(r):  # the baselines first, in their order; then the grid's order
        point = {a: str(r[a]) for a in axes if str(r[a])}
        if point in baselines:
            return (0, baselines.index(point))
        return (1, *(grid[a].index(str(r[a])) if str(r[a]) in grid.get(a, []) else len(grid.get(a, [])) for a in axes))

    return sorted(scores, key=column), sorted(table, key=row)


def attach_paper(table: list[dict], axes: list[str], scores: list[str], paper: dict) -> bool:
    """Add `<score>_paper` to each row from the ablation's paper rows; False if there are none."""
    rows = [(parse_label(str(label)), values) for label, values in ((paper or {}).get("rows") or {}).items()]
    if not rows:
        return False
    for row in table:
        point = {a: str(row[a]) for a in axes}
        values = next((v for p, v in rows if p == point), {})
        for s in scores:
            row[f"{s}_paper"] = float(values.get(benchmark_id(s), math.nan))
    return True


def attach_severe_mean(table: list[dict], scores: list[str]) -> list[str]:
    """With all eight SEVERE settings as columns, add their Mean as one more column."""
    by_id = {benchmark_id(s): s for s in scores}
    if not set(SETTINGS) <= set(by_id):
        return scores
    for row in table:
        row[MEAN] = severe_table.row("", {i: row[by_id[i]] for i in SETTINGS})["mean"]
        row[f"{MEAN}_std"], row[f"{MEAN}_n"] = 0.0, min(row[f"{s}_n"] for s in scores)
    return [*scores, MEAN]


def _num(value: float, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def to_markdown(table: list[dict], axes: list[str], scores: list[str], with_paper: bool, title: str,
                caption: str = "") -> str:
    """`caption`: the protocol line under the title (evaluation.protocol.caption)."""
    label = " / ".join(axes) or "trial"
    lines = [f"### {title}", "", *([caption, ""] if caption else [])]
    if not with_paper:
        diffs = tables.differences_markdown(table, axes, scores)
        return "\n".join(lines) + "\n" + tables.to_markdown(table, axes, scores) + (f"\n{diffs}" if diffs else "")
    head = [label, *[f"{s} {part}" for s in scores for part in ("ours", "paper", "Δ")]]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in table:
        cells = [tables.label(row, axes)]
        for s in scores:
            paper = row.get(f"{s}_paper", math.nan)
            cells += [tables.cell(row, s), _num(paper), _num(row[s] - paper, signed=True)]
        lines.append("| " + " | ".join(cells) + " |")
    chance = [next((r[f"{s}_chance"] for r in table if f"{s}_chance" in r), math.nan) for s in scores]
    if any(math.isfinite(c) for c in chance):  # under each "ours" column
        lines.append("| *chance* | " + " | ".join(f"{tables.fmt(s, c)} | | " for s, c in zip(scores, chance)) + "|")
    if len(table) < 2:
        return "\n".join(lines) + "\n"
    first = table[0]
    name = tables.label(first, axes)
    lines += ["", f"Change against the first row ({name}), ours (paired, 95 % interval; (noise) = it holds 0) "
              f"vs the paper's:", ""]
    head = [label, *[f"{s} Δ ours / paper" for s in scores]]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in table[1:]:
        cells = [tables.label(row, axes)]
        for s in scores:
            ours = tables.diff_cell(row, s) if f"{s}_diff" in row else _num(row[s] - first[s], True)
            paper = row.get(f"{s}_paper", math.nan) - first.get(f"{s}_paper", math.nan)
            cells.append(f"{ours} / {_num(paper, True)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(table: list[dict], axes: list[str], scores: list[str], with_paper: bool) -> str:
    parts = ("", "_std", "_n", "_lo", "_hi", "_chance", "_diff", "_diff_lo", "_diff_hi") + (("_paper",) if with_paper
                                                                                         else ())
    cols = axes + [f"{s}{p}" for s in scores for p in parts]
    lines = [",".join(cols)]
    for row in table:
        lines.append(",".join(str(row.get(c, "")) for c in cols))
    return "\n".join(lines) + "\n"


def plot(table: list[dict], axes: list[str], scores: list[str], with_paper: bool, path: Path, title: str) -> Path:
    """One panel per column: our bars (the 95 % interval as error bars, else the std over repeats), the
    chance level as a dashed line and, where known, the paper's value as a marker."""
    labels = [tables.label(r, axes) or "trial" for r in table]
    fig, panels = plt.subplots(1, len(scores), figsize=(max(4.0, 3.2 * len(scores)), 3.6), squeeze=False)
    for ax, s in zip(panels[0], scores):
        xs = range(len(table))
        if all(math.isfinite(r.get(f"{s}_lo", math.nan)) for r in table):
            err = [[r[s] - r[f"{s}_lo"] for r in table], [r[f"{s}_hi"] - r[s] for r in table]]
        else:
            err = [r[f"{s}_std"] for r in table]
        ax.bar(xs, [r[s] for r in table], yerr=err, capsize=3, label="ours (95 % interval)")
        chance = next((r[f"{s}_chance"] for r in table if f"{s}_chance" in r), None)
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
        if with_paper:
            ax.plot(xs, [r.get(f"{s}_paper", math.nan) for r in table], "kx", markersize=8, label="paper")
        ax.set_xticks(list(xs), labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(s, fontsize=9)
    panels[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def build(cfg, parent_run_id: str) -> SweepReport:
    """Rebuild the report of one sweep from MLflow; reads only (publish() logs it)."""
    client, exp = mlflow_runs.client(cfg), mlflow_runs.experiment_id(cfg)
    parent = client.get_run(parent_run_id)
    rows, axes, scores, reused, runs = sweep_rows(client, exp, parent_run_id)
    ablation = load_ablation(client, parent_run_id)
    scores, table = in_ablation_order(tables.aggregate(rows, axes, scores), axes, scores, ablation)
    grid = []  # with baselines first, the grid rows are also compared among themselves (motion vs no motion)
    if table:
        predictions = row_predictions(client, exp, runs, axes, scores)
        attach_intervals(table, axes, scores, predictions)
        attach_differences(table, axes, scores, predictions)
        if ablation.get("baselines"):
            grid = [dict(r) for r in grid_rows(table, axes, ablation)]
            attach_differences(grid, axes, scores, predictions)
    with_paper = bool(table) and attach_paper(table, axes, scores, ablation.get("paper"))
    scores = attach_severe_mean(table, scores) if table else scores
    title = parent.info.run_name + (f": {ablation['description']}" if ablation.get("description") else "")
    caption = protocol.caption(pair for run in runs for pair in protocol.from_tags(run.data.tags))
    source = (ablation.get("paper") or {}).get("source")
    summary = (f"{len(rows)} finished trial(s), {reused} reused from earlier sweeps"
               + (f"; paper: {source}" if with_paper and source else ""))
    if not table:
        return SweepReport(f"### {title}\n\nno finished trials yet\n", "", table, 0, 0)
    markdown = to_markdown(table, axes, scores, with_paper, title, caption)
    if diffs := tables.differences_markdown(grid, axes, scores, "the first grid row"):
        markdown += f"\n{diffs}"
    markdown += f"\n{summary}\n"
    return SweepReport(markdown, to_csv(table, axes, scores, with_paper), table, len(rows), reused,
                       axes, scores, with_paper, title)


def publish(cfg, parent_run_id: str, report: SweepReport) -> None:
    """The report as results.md, results.csv and results.png artifacts of the sweep's parent run."""
    if not report.table:
        return
    mlflow_runs.log_text(cfg, parent_run_id, report.markdown, "results.md")
    mlflow_runs.log_text(cfg, parent_run_id, report.csv, "results.csv")
    with tempfile.TemporaryDirectory() as d:
        path = plot(report.table, report.axes, report.scores, report.with_paper, Path(d) / "results.png", report.title)
        mlflow_runs.log_artifact(cfg, parent_run_id, path)
