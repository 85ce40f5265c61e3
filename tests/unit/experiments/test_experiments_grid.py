import pytest

from tubelab.experiments.grid import expand
from tubelab.tracking.schema import override_value


def test_cartesian_product_times_repeats():
    points = expand({"tubelet": ["no_motion", "default"], "tubelet.num_tubelets": [1, 2, 3]}, repeats=2, base_seed=5)
    assert len(points) == 2 * 3 * 2
    assert {p.seed for p in points} == {5, 6}
    first = points[0]
    assert first.overrides == ["tubelet=no_motion", "tubelet.num_tubelets=1", "seed=5"]
    assert first.label == "tubelet=no_motion, tubelet.num_tubelets=1"
    assert len({p.slug for p in points}) == len(points)  # run names must be unique


def test_slug_is_name_safe_and_stable():
    (p,) = expand({"pretrain.clip.strides": [[1, 2]]}, repeats=1, base_seed=0)
    assert p.slug == expand({"pretrain.clip.strides": [[1, 2]]}, repeats=1, base_seed=0)[0].slug
    assert all(c.isalnum() or c in "_.-" for c in p.slug)


def test_override_values_use_hydra_syntax():
    assert override_value(None) == "null"
    assert override_value(True) == "true"
    assert override_value([1, 2]) == "[1,2]"
    assert override_value(0.5) == "0.5"


@pytest.mark.parametrize("grid,repeats", [({"a": []}, 1), ({"a": "x"}, 1), ({"a": [1]}, 0)])
def test_bad_grids_are_rejected(grid, repeats):
    with pytest.raises(ValueError):
        expand(grid, repeats=repeats, base_seed=0)


def test_parse_label_inverts_the_label():
    from tubelab.tracking.schema import parse_label

    for p in expand({"tubelet": ["no_motion"], "pretrain.data_fraction": [0.25]}, 1, 0):
        assert parse_label(p.label) == p.point
    assert parse_label("base") == {}
    with pytest.raises(ValueError, match="not a grid-point label"):
        parse_label("tubelet")


def test_baselines_come_first_with_their_own_overrides_and_the_same_seeds():
    points = expand({"tubelet": ["no_motion", "default"]}, repeats=2, base_seed=5, baselines=[{"checkpoint": "random"}])
    assert [p.label for p in points] == ["checkpoint=random"] * 2 + ["tubelet=no_motion"] * 2 + ["tubelet=default"] * 2
    assert points[0].overrides == ["checkpoint=random", "seed=5"] and points[1].seed == 6
    assert len({p.slug for p in points}) == len(points)


@pytest.mark.parametrize("baselines", [{"checkpoint": "random"}, [{}], ["random"], [{"tubelet": "no_motion"}]])
def test_bad_baselines_are_rejected_with_an_example(baselines):
    with pytest.raises(ValueError, match=r"ablation.baselines .*\{checkpoint: random\}"):
        expand({"tubelet": ["no_motion"]}, repeats=1, base_seed=0, baselines=baselines)
