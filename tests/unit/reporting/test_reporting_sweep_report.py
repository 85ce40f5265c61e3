import math

import numpy as np
import pytest

from tubelab.evaluation.severe import SETTINGS, severe_mean
from tubelab.reporting import sweep_report, tables

SCORES = ["proxy_ucf_1000/top1", "proxy_gym_1000/top1"]
PAPER = {"source": "Table 3", "rows": {
    "tubelet=no_motion": {"ucf_1000": 48.2, "gym_1000": 28.2},
    "tubelet=nonlinear": {"ucf_1000": 62.0, "gym_1000": 45.6}}}


def table(rows):
    return tables.aggregate(rows, ["tubelet"], SCORES)


def test_benchmark_id_strips_the_proxy_prefix_and_metric():
    assert sweep_report.benchmark_id("proxy_ucf_1000/top1") == "ucf_1000"
    assert sweep_report.benchmark_id("ucf_1000/top1") == "ucf_1000"
    assert sweep_report.benchmark_id("synthetic/top1") == "synthetic"


def test_paper_numbers_attach_to_their_grid_points_only():
    t = table([{"tubelet": "no_motion", SCORES[0]: 10.0, SCORES[1]: 20.0},
               {"tubelet": "nonlinear", SCORES[0]: 30.0, SCORES[1]: 25.0},
               {"tubelet": "linear", SCORES[0]: 15.0, SCORES[1]: 21.0}])
    assert sweep_report.attach_paper(t, ["tubelet"], SCORES, PAPER)
    by = {r["tubelet"]: r for r in t}
    assert by["no_motion"][f"{SCORES[0]}_paper"] == 48.2 and by["nonlinear"][f"{SCORES[1]}_paper"] == 45.6
    assert math.isnan(by["linear"][f"{SCORES[0]}_paper"])  # the paper row is missing: n/a, not 0
    assert not sweep_report.attach_paper(t, ["tubelet"], SCORES, {})


def test_markdown_has_ours_paper_delta_and_changes_against_the_first_row():
    t = table([{"tubelet": "no_motion", SCORES[0]: 10.0, SCORES[1]: 20.0},
               {"tubelet": "no_motion", SCORES[0]: 14.0, SCORES[1]: 20.0},
               {"tubelet": "nonlinear", SCORES[0]: 30.0, SCORES[1]: 25.0}])
    sweep_report.attach_paper(t, ["tubelet"], SCORES, PAPER)
    md = sweep_report.to_markdown(t, ["tubelet"], SCORES, True, "t3")
    lines = [line for line in md.splitlines() if line.startswith("|")]
    assert lines[0] == ("| tubelet | proxy_ucf_1000/top1 ours | proxy_ucf_1000/top1 paper | proxy_ucf_1000/top1 Δ "
                        "| proxy_gym_1000/top1 ours | proxy_gym_1000/top1 paper | proxy_gym_1000/top1 Δ |")
    assert lines[2] == "| no_motion | 12.0 ± 2.8 | 48.2 | -36.2 | 20.0 ± 0.0 | 28.2 | -8.2 |"
    assert lines[3] == "| nonlinear | 30.0 | 62.0 | -32.0 | 25.0 | 45.6 | -20.6 |"
    # second table: nonlinear vs no_motion, ours +18.0 (30-12) against the paper's +13.8 (62.0-48.2)
    assert lines[-1] == "| nonlinear | +18.0 / +13.8 | +5.0 / +17.4 |"
    csv = sweep_report.to_csv(t, ["tubelet"], SCORES, True).splitlines()
    s = SCORES[0]
    assert csv[0].split(",")[:11] == ["tubelet", s, f"{s}_std", f"{s}_n", f"{s}_lo", f"{s}_hi", f"{s}_chance",
                                      f"{s}_diff", f"{s}_diff_lo", f"{s}_diff_hi", f"{s}_paper"]


def test_without_paper_rows_the_plain_table():
    t = table([{"tubelet": "a", SCORES[0]: 1.0, SCORES[1]: 2.0}])
    md = sweep_report.to_markdown(t, ["tubelet"], SCORES, False, "x")
    assert "paper" not in md and "| a | 1.0 | 2.0 |" in md


def test_severe_mean_column_when_all_eight_settings_are_columns():
    scores = [f"proxy_{s}/m" for s in SETTINGS]
    values = {s: 50.0 + i for i, s in enumerate(SETTINGS)}
    values["ucf_rc"] = 0.4
    t = tables.aggregate([{"checkpoint": "random", **{f"proxy_{s}/m": v for s, v in values.items()}}],
                         ["checkpoint"], scores)
    out = sweep_report.attach_severe_mean(t, scores)
    assert out[-1] == sweep_report.MEAN
    assert math.isclose(t[0][sweep_report.MEAN], severe_mean(values))
    assert sweep_report.attach_severe_mean(t, scores[:7]) == scores[:7]  # incomplete: no Mean


def test_plot_writes_a_png(tmp_path):
    t = table([{"tubelet": "no_motion", SCORES[0]: 10.0, SCORES[1]: 20.0}])
    sweep_report.attach_paper(t, ["tubelet"], SCORES, PAPER)
    path = sweep_report.plot(t, ["tubelet"], SCORES, True, tmp_path / "r.png", "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_columns_and_rows_follow_the_ablation_not_mlflow():
    ablation = {"downstream": ["proxy_ucf_1000", "proxy_gym_1000"], "grid": {"tubelet.num_tubelets": [1, 2, 3]}}
    rows = [{"tubelet.num_tubelets": n, "proxy_gym_1000/top1": 1.0, "proxy_ucf_1000/top1": 2.0} for n in ("3", "1", "2")]
    scores = sorted(["proxy_gym_1000/top1", "proxy_ucf_1000/top1"])  # as MLflow lists them
    scores, table = sweep_report.in_ablation_order(tables.aggregate(rows, ["tubelet.num_tubelets"], scores),
                                                   ["tubelet.num_tubelets"], scores, ablation)
    assert scores == ["proxy_ucf_1000/top1", "proxy_gym_1000/top1"]
    assert [r["tubelet.num_tubelets"] for r in table] == ["1", "2", "3"]


def test_intervals_chance_and_paired_differences_in_the_plain_table():
    t = [{"tubelet": "no_motion", "synthetic/top1": 40.0, "synthetic/top1_std": 0.0, "synthetic/top1_n": 1,
          "synthetic/top1_lo": 30.0, "synthetic/top1_hi": 50.0, "synthetic/top1_chance": 10.0},
         {"tubelet": "nonlinear", "synthetic/top1": 60.0, "synthetic/top1_std": 0.0, "synthetic/top1_n": 1,
          "synthetic/top1_lo": 50.0, "synthetic/top1_hi": 70.0, "synthetic/top1_chance": 10.0,
          "synthetic/top1_diff": 20.0, "synthetic/top1_diff_lo": 8.0, "synthetic/top1_diff_hi": 31.0},
         {"tubelet": "linear", "synthetic/top1": 45.0, "synthetic/top1_std": 0.0, "synthetic/top1_n": 1,
          "synthetic/top1_lo": 35.0, "synthetic/top1_hi": 55.0, "synthetic/top1_chance": 10.0,
          "synthetic/top1_diff": 5.0, "synthetic/top1_diff_lo": -4.0, "synthetic/top1_diff_hi": 14.0}]
    md = sweep_report.to_markdown(t, ["tubelet"], ["synthetic/top1"], False, "demo")
    assert "| no_motion | 40.0 [30.0, 50.0] |" in md
    assert "| *chance* | 10.0 |" in md
    assert "| nonlinear | +20.0 [+8.0, +31.0] |" in md  # outside noise: no mark
    assert "| linear | +5.0 [-4.0, +14.0] (noise) |" in md


def predictions(correct) -> list[dict]:
    """One seed's per-video predictions (top-1, 10 classes) that are right exactly where `correct` is."""
    correct = np.asarray(correct, bool)
    target = np.arange(len(correct)) % 10
    prediction = np.eye(10, dtype=np.float32)[np.where(correct, target, (target + 1) % 10)]
    return [{"video_key": np.arange(len(correct)), "target": target, "prediction": prediction, "metric": "top1",
             "num_classes": 10}]


def test_baselines_come_first_and_the_grid_rows_are_also_compared_among_themselves():
    """The demo's shape: random init (a baseline, no grid axis set), then no_motion and default."""
    ablation = {"baselines": [{"checkpoint": "random"}], "grid": {"tubelet": ["no_motion", "default"]},
                "downstream": ["synthetic"]}
    axes, scores = ["checkpoint", "tubelet"], ["synthetic/top1"]
    rows = [{"checkpoint": "", "tubelet": "default", "synthetic/top1": 80.0},
            {"checkpoint": "random", "tubelet": "", "synthetic/top1": 20.0},
            {"checkpoint": "", "tubelet": "no_motion", "synthetic/top1": 50.0}]
    _, table = sweep_report.in_ablation_order(tables.aggregate(rows, axes, scores), axes, scores, ablation)
    assert [tables.label(r, axes) for r in table] == ["random", "no_motion", "default"]
    right = {"random": np.arange(100) < 20, "no_motion": np.arange(100) < 50, "default": np.arange(100) < 80}
    preds = {((r["checkpoint"], r["tubelet"]), "synthetic/top1"): predictions(right[tables.label(r, axes)])
             for r in table}
    sweep_report.attach_intervals(table, axes, scores, preds)
    sweep_report.attach_differences(table, axes, scores, preds)
    grid = [dict(r) for r in sweep_report.grid_rows(table, axes, ablation)]
    sweep_report.attach_differences(grid, axes, scores, preds)
    # nested correct sets: each difference is exact (+30 / +60 / +30 points) and its interval excludes 0
    assert [r["synthetic/top1_diff"] for r in table[1:]] == pytest.approx([30.0, 60.0])
    assert grid[1]["synthetic/top1_diff"] == pytest.approx(30.0) and grid[1]["synthetic/top1_diff_lo"] > 0
    md = sweep_report.to_markdown(table, axes, scores, False, "demo")
    assert "| random |  | 20.0 [" in md and "|  | default | 80.0 [" in md
    assert "Paired difference against the first row (random)" in md and "| default | +60.0 [" in md
    second = tables.differences_markdown(grid, axes, scores, "the first grid row")
    assert second.startswith("Paired difference against the first grid row (no_motion)")
    assert "| default | +30.0 [" in second and "] (noise)" not in second
