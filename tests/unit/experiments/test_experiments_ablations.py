"""Every ablation in ablations/ plans (configs compose, values validate, paper rows match grid points)."""

import functools
import shutil

import pytest

from tubelab import config
from tubelab.config import ConfigError
from tubelab.experiments.plan import plan_sweep

@functools.lru_cache(maxsize=None)
def planned(name):
    return plan_sweep([f"ablation={name}"])


PAPER_TABLES = {"table2_components": 4, "table3_motion": 3, "table4_transformation": 4, "table5_num_tubelets": 3}


@pytest.mark.parametrize("name", config.choices("ablation"))
def test_every_ablation_plans(name):
    plan = planned(name)
    assert plan.trials and len(plan.scores) == len(plan.base.ablation.downstream)
    if name in PAPER_TABLES:
        assert len(plan.trials) == PAPER_TABLES[name]
        assert len(plan.base.ablation.paper.rows) == PAPER_TABLES[name]  # every row has the paper's numbers
        assert [s.split("/")[0] for s in plan.scores] == ["proxy_ucf_1000", "proxy_gym_1000", "proxy_ssv2", "proxy_ub_s1"]


def test_table_axes_reach_the_trial_configs():
    t4 = {t["point"]["tubelet.transform"]: t["cfg"]["tubelet"] for t in planned("table4_transformation").trials}
    assert {k: v["transform"] for k, v in t4.items()} == {k: k for k in ("none", "scale", "shear", "rotation")}
    assert all(v["motion"] == "nonlinear" for v in t4.values())
    t3 = {t["point"]["tubelet"]: t["cfg"]["tubelet"] for t in planned("table3_motion").trials}
    assert {k: (v["motion"], v["transform"]) for k, v in t3.items()} == {
        "no_motion": ("none", "none"), "linear": ("linear", "none"), "nonlinear": ("nonlinear", "none")}
    budget = planned("finetune_budget").trials
    assert sorted({s["setting"]["budget"] for t in budget for s in t["settings"]}) == [20, 80]
    pre = planned("pretrain_budget").trials
    assert sorted({t["cfg"]["pretrain"]["data_fraction"] for t in pre}) == [0.25, 1.0]


def test_the_demo_measures_against_random_initialisation_first():
    trials = planned("demo").trials
    assert [t["label"] for t in trials] == ["checkpoint=random", "tubelet=no_motion", "tubelet=default"]
    assert [t["cfg"]["checkpoint"] for t in trials] == ["random", None, None]  # the baseline trial does not pretrain


def test_real_data_by_overrides_only():
    plan = plan_sweep(["ablation=table3_motion", "ablation.downstream=[ucf_1000,gym_1000,ssv2,ub_s1]",
                       "model=r2plus1d_18", "pretrain=paper", "dataset=mini_kinetics"])
    assert plan.scores[0].startswith("ucf_1000/") and plan.trials[0]["cfg"]["dataset"]["name"] == "mini_kinetics"


def test_a_paper_row_that_matches_no_grid_point_is_an_error(tmp_path, monkeypatch):
    for folder in ("datasets", "ablations"):
        shutil.copytree(config.project_root() / folder, tmp_path / folder)
    text = (tmp_path / "ablations" / "table3_motion.yaml").read_text().replace("tubelet=linear:", "tubelet=lineer:")
    (tmp_path / "ablations" / "table3_motion.yaml").write_text(text)
    monkeypatch.setenv("TUBELAB_PROJECT_ROOT", str(tmp_path))
    with pytest.raises(ConfigError, match=r"paper row 'tubelet=lineer' matches no grid point; grid points: .*tubelet=linear"):
        plan_sweep(["ablation=table3_motion"])


def test_a_grid_narrowed_on_the_command_line_keeps_the_paper_rows_valid():
    plan = plan_sweep(["ablation=table3_motion", "ablation.grid.tubelet=[nonlinear]"])
    assert [p.label for p in plan.points] == ["tubelet=nonlinear"]


@pytest.mark.parametrize("name", ["table3_motion", "severe"])
def test_trial_params_are_valid_mlflow_keys(name):
    import re

    from tubelab.config import flatten
    from tubelab.experiments.trial import run_params

    for trial in planned(name).trials:
        keys = flatten({**run_params(trial["cfg"]), "grid": trial["point"]})
        bad = [k for k in keys if not re.fullmatch(r"[A-Za-z0-9_\-. :/]+", k)]
        assert not bad  # MLflow rejects these (e.g. the paper rows' "tubelet=linear" keys)
