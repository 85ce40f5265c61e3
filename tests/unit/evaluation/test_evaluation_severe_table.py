import math

from tubelab.evaluation.severe import SETTINGS
from tubelab.reporting import severe_table

SCORES = {"ssv2": 50.0, "gym99": 80.0, "ucf_1000": 60.0, "gym_1000": 30.0, "fx_s1": 40.0, "ub_s1": 70.0,
          "ucf_rc": 0.25, "charades": 10.0}


def test_row_mean_only_when_complete():
    r = severe_table.row("ours", SCORES)
    assert r["mean"] == (50 + 80 + 60 + 30 + 40 + 70 + 75 + 10) / 8
    partial = severe_table.row("half", {k: v for k, v in SCORES.items() if k != "charades"})
    assert math.isnan(partial["mean"]) and math.isnan(partial["charades"])


def test_markdown_has_our_rows_then_the_papers(tmp_path):
    md = severe_table.to_markdown([severe_table.row("ours", SCORES)], "t")
    lines = [line for line in md.splitlines() if line.startswith("|")]
    assert lines[0].count("|") == len(SETTINGS) + 3  # label + 8 settings + Mean
    assert lines[2].startswith("| ours | 50.0 | 80.0 | 60.0 | 30.0 | 40.0 | 70.0 | 0.250 | 10.0 | 51.9 |")
    assert any("Tubelet contrast (Mini-Kinetics) (paper, real data)" in line and "66.0" in line for line in lines)
    assert severe_table.to_csv([severe_table.row("ours", SCORES)]).splitlines()[1].startswith("ours,tubelab,50.0")
    png = severe_table.plot([severe_table.row("ours", SCORES)], tmp_path / "s.png", "t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
