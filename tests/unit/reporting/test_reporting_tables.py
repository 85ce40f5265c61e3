import math

from tubelab.reporting import tables


ROWS = [
    {"tubelet": "none", "ucf/top1": 10.0},
    {"tubelet": "none", "ucf/top1": 14.0},
    {"tubelet": "default", "ucf/top1": 30.0},
    {"tubelet": "default", "ucf/top1": float("nan")},
]


def test_aggregate_mean_std_n_over_repeats():
    out = {r["tubelet"]: r for r in tables.aggregate(ROWS, ["tubelet"], ["ucf/top1"])}
    assert out["none"]["ucf/top1"] == 12.0
    assert math.isclose(out["none"]["ucf/top1_std"], 2.8284271, rel_tol=1e-6)
    assert out["none"]["ucf/top1_n"] == 2
    assert out["default"]["ucf/top1"] == 30.0 and out["default"]["ucf/top1_n"] == 1  # NaN (failed) excluded


def test_markdown():
    agg = tables.aggregate(ROWS, ["tubelet"], ["ucf/top1"])
    md = tables.to_markdown(agg, ["tubelet"], ["ucf/top1"])
    lines = md.strip().splitlines()
    assert lines[0] == "| tubelet | ucf/top1 |"
    assert lines[2] == "| none | 12.0 ± 2.8 |"
    assert lines[3] == "| default | 30.0 |"


def test_missing_scores_render_as_na():
    agg = tables.aggregate([{"a": "x", "s": float("nan")}], ["a"], ["s"])
    assert "n/a" in tables.to_markdown(agg, ["a"], ["s"])
