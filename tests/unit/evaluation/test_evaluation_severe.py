"""SEVERE settings, the Mean formula, and the published reference rows."""

import math

import numpy as np
import pytest

from tubelab.evaluation.severe import DISPLAY, REFERENCE_ROWS, SETTINGS, severe_mean

# Verbatim from shared/reference/severe.md (SEVERE table of the SIGMA paper, ECCV 2024).
SIGMA_TABLE = """
| method | SSv2 | Gym99 | UCF 10^3 | Gym 10^3 | FX-S1 | UB-S1 | UCF-RC | Charades | Mean |
|---|---|---|---|---|---|---|---|---|---|
| SVT | 59.5 | 62.3 | 83.9 | 18.5 | 35.4 | 55.1 | 0.421 | 35.5 | 51.0 |
| MVD | 70.0 | 82.5 | 66.7 | 17.5 | 31.3 | 50.5 | 0.184 | 16.1 | 52.1 |
| VideoMAE | 68.6 | 86.6 | 74.6 | 25.9 | 42.8 | 65.3 | 0.172 | 12.6 | 57.4 |
| MGMAE | 68.9 | 87.2 | 77.2 | 24.0 | 33.7 | 79.5 | 0.181 | 17.9 | 58.8 |
| SIGMA-MLP | 69.8 | 87.4 | 80.2 | 26.8 | 46.0 | 79.7 | 0.178 | 20.1 | 61.5 |
| SIGMA-DINO | 70.9 | 89.7 | 84.1 | 28.0 | 55.1 | 79.9 | 0.169 | 23.3 | 64.3 |
"""
# Verbatim from shared/reference/tubelet-contrast.md (same column order as the table above).
TUBELET_SEVERE = {
    "Tubelet contrast (Mini-Kinetics)": "59.4, 92.2, 65.5, 48.0, 78.3, 90.9, 0.150, 9.0, Mean 66.0",
    "Tubelet contrast (Kinetics-400)": "60.2, 92.8, 65.7, 47.0, 80.1, 91.0, 0.150, 10.3, Mean 66.5",
}


def _printed_rows():
    lines = [ln for ln in SIGMA_TABLE.strip().splitlines()]
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    assert header[1:9] == ["SSv2", "Gym99", "UCF 10^3", "Gym 10^3", "FX-S1", "UB-S1", "UCF-RC", "Charades"]
    rows = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        rows[cells[0]] = ([float(c) for c in cells[1:9]], float(cells[9]))
    for method, text in TUBELET_SEVERE.items():
        values, mean = text.split(", Mean ")
        rows[method] = ([float(v) for v in values.split(",")], float(mean))
    return rows


def _by_method(method):
    return next(r for r in REFERENCE_ROWS if r.method == method)


def test_settings_and_display_names():
    assert SETTINGS == ("ssv2", "gym99", "ucf_1000", "gym_1000", "fx_s1", "ub_s1", "ucf_rc", "charades")
    assert [DISPLAY[s] for s in SETTINGS] == [
        "SSv2", "Gym99", "UCF (10^3)", "Gym (10^3)", "FX-S1", "UB-S1", "UCF-RC", "Charades"]


def test_reference_rows_match_the_printed_tables():
    printed = _printed_rows()
    assert [r.method for r in REFERENCE_ROWS] == list(printed)
    for r in REFERENCE_ROWS:
        values, mean = printed[r.method]
        assert tuple(r.scores) == SETTINGS
        assert [r.scores[s] for s in SETTINGS] == values, r.method
        assert r.mean == mean, r.method


def test_tubelet_row_columns_agree_with_the_ablation_table():
    # The Mini-Kinetics SEVERE row must equal the full model of the ablation table (Table 2,
    # "+ tubelet transformation": UCF 10^3 65.5, Gym 10^3 48.0, UB-S1 90.9): checks the column mapping.
    row = _by_method("Tubelet contrast (Mini-Kinetics)")
    assert (row.scores["ucf_1000"], row.scores["gym_1000"], row.scores["ub_s1"]) == (65.5, 48.0, 90.9)


@pytest.mark.parametrize("row", REFERENCE_ROWS, ids=lambda r: r.method)
def test_severe_mean_reproduces_printed_mean(row):
    # Independent computation: UCF-RC error -> (1 - e) * 100, then the plain average of eight numbers.
    values = [(1 - row.scores[s]) * 100 if s == "ucf_rc" else row.scores[s] for s in SETTINGS]
    assert severe_mean(row.scores) == pytest.approx(sum(values) / 8, abs=1e-12)
    # Printed Means are rounded to 0.1; every row (SIGMA table and both tubelet-contrast rows) is within 0.1.
    assert abs(severe_mean(row.scores) - row.mean) < 0.1


def test_reference_mean_deviations():
    # What the formula gives vs the printed Mean (computed when this was written):
    #   SVT 51.0125 / 51.0, MVD 52.025 / 52.1 (-0.075: the one row that is not a rounding of the
    #   formula), VideoMAE 57.4 / 57.4, MGMAE 58.7875 / 58.8, SIGMA-MLP 61.525 / 61.5,
    #   SIGMA-DINO 64.2625 / 64.3, Tubelet contrast Mini-Kinetics 66.0375 / 66.0 and Kinetics-400
    #   66.5125 / 66.5. So both tubelet-contrast rows are exact roundings of the formula (within 0.05).
    deviations = {r.method: severe_mean(r.scores) - r.mean for r in REFERENCE_ROWS}
    assert deviations["MVD"] == pytest.approx(-0.075, abs=1e-9)
    assert all(abs(d) <= 0.05 + 1e-9 for m, d in deviations.items() if m != "MVD"), deviations
    assert abs(deviations["Tubelet contrast (Mini-Kinetics)"] - 0.0375) < 1e-9
    assert abs(deviations["Tubelet contrast (Kinetics-400)"] - 0.0125) < 1e-9


def test_severe_mean_hand():
    scores = dict.fromkeys(SETTINGS, 50.0)
    scores["ucf_rc"] = 0.5
    assert severe_mean(scores) == 50.0
    scores["ucf_rc"] = np.float32(0.0)  # numpy scalars are accepted
    assert severe_mean(scores) == pytest.approx((7 * 50 + 100) / 8)


def test_severe_mean_missing_ids():
    scores = dict(_by_method("SVT").scores)
    del scores["charades"], scores["ucf_rc"]
    with pytest.raises(ValueError, match=r"missing setting\(s\) \['ucf_rc', 'charades'\]"):
        severe_mean(scores)


def test_severe_mean_unknown_ids():
    scores = dict(_by_method("SVT").scores)
    scores["hmdb51"] = 60.0
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['hmdb51'\].*valid ids: \['ssv2'"):
        severe_mean(scores)


@pytest.mark.parametrize("bad", [float("nan"), math.inf, -math.inf])
@pytest.mark.parametrize("setting", ["ssv2", "ucf_rc"])
def test_severe_mean_non_finite(setting, bad):
    scores = dict(_by_method("SVT").scores)
    scores[setting] = bad
    with pytest.raises(ValueError, match=f"{setting}: score must be finite"):
        severe_mean(scores)


def test_severe_mean_bad_values():
    scores = dict(_by_method("SVT").scores)
    with pytest.raises(ValueError, match="ssv2: a percentage must be <= 100"):
        severe_mean({**scores, "ssv2": 159.5})
    with pytest.raises(ValueError, match="ucf_rc: score must be >= 0"):
        severe_mean({**scores, "ucf_rc": -0.1})
    with pytest.raises(ValueError, match="gym99: expected a number"):
        severe_mean({**scores, "gym99": "62.3"})
    with pytest.raises(ValueError, match="expected a mapping"):
        severe_mean(list(scores.values()))
