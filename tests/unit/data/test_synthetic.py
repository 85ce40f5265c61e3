"""The synthetic dataset: UCF101 layout, deterministic decodable videos, only motion telling classes apart."""

import itertools
import json

import decord
import numpy as np
import pytest

from tubelab.data.synthetic import CLASSES, generate, render_video
from tubelab.data.synthetic_render import STYLES

SMALL = dict(train_per_class=5, test_per_class=5, num_frames=16, width=64, height=48, progress=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic"), **SMALL)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.mp4"))}


def _render(name, seed, size=(160, 120), num_frames=16, style="default"):
    return render_video(name, np.random.default_rng(seed), num_frames=num_frames, width=size[0],
                        height=size[1], style=style)


def test_ucf101_layout(small):
    class_ind = [line.split() for line in (small / "classInd.txt").read_text().splitlines()]
    assert [name for _, name in class_ind] == list(CLASSES) and len(CLASSES) >= 8
    assert [int(i) for i, _ in class_ind] == list(range(1, len(CLASSES) + 1))
    labels = {name: int(i) for i, name in class_ind}

    train = [line.split() for line in (small / "trainlist01.txt").read_text().splitlines()]
    test = (small / "testlist01.txt").read_text().splitlines()
    assert all(len(line) == 2 and labels[line[0].split("/")[0]] == int(line[1]) for line in train)
    assert all(" " not in line for line in test)
    train = [rel for rel, _ in train]
    assert len(train) == 5 * len(CLASSES) and len(test) == 5 * len(CLASSES)
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(_files(small))

    for rel in train + test:
        name, file = rel.split("/")
        assert file.startswith(f"v_{name}_g") and file.endswith(".mp4") and (small / rel).is_file()
    group = lambda rel: int(rel.split("_g")[1][:2])  # noqa: E731
    for name in CLASSES:  # 5 test clips fill group 1 and start group 2; train starts at group 3
        assert {group(r) for r in test if r.startswith(name + "/")} == {1, 2}
        assert {group(r) for r in train if r.startswith(name + "/")} == {3, 4}
    assert "MoveLeft/v_MoveLeft_g01_c01.mp4" in test and "MoveLeft/v_MoveLeft_g03_c01.mp4" in train

    meta = [json.loads(line) for line in (small / "synthetic_meta.jsonl").read_text().splitlines()]
    assert {m["path"] for m in meta} == set(train) | set(test)
    assert all(m["split"] == ("test" if m["path"] in test else "train") for m in meta)
    assert {"class", "background", "shape", "color", "distractors", "speed"} <= set(meta[0])


def test_videos_decode(small):
    for rel in ["MoveLeft/v_MoveLeft_g01_c01.mp4", "GrowShrink/v_GrowShrink_g04_c01.mp4"]:
        reader = decord.VideoReader(str(small / rel))
        assert len(reader) == 16
        assert reader[0].shape == (48, 64, 3) and reader.get_avg_fps() == pytest.approx(16)
        assert reader.get_batch([0, 15]).asnumpy().std() > 10  # not blank


def test_determinism(small, tmp_path):
    files = _files(small)
    again = generate(tmp_path / "again", **{**SMALL, "train_per_class": 6, "classes": ["Spin", "MoveUp"]})
    for rel, data in _files(again).items():  # same clips whatever the class subset or counts
        if "_g04_c02" not in rel:  # the one clip that 6 train clips add
            assert data == files[rel], rel
    assert len(_files(again)) == 2 * 11

    other = generate(tmp_path / "other", **{**SMALL, "seed": 1, "classes": ["Spin"]})
    assert all(data != files[rel] for rel, data in _files(other).items())


def _signed_area(xy):
    """Shoelace area of the path, y flipped to point up: > 0 when it turns counter-clockwise on screen."""
    x, y = xy[:, 0], -xy[:, 1]
    return np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) / 2


@pytest.mark.parametrize("seed", range(5))
def test_motion_is_the_class(seed):
    meta = {name: _render(name, seed)[1] for name in CLASSES}
    x, y = meta["MoveRight"]["center"].T
    assert np.all(np.diff(x) > 0) and x[-1] - x[0] > 20 and np.ptp(y) < 1e-6
    x, y = meta["MoveLeft"]["center"].T
    assert np.all(np.diff(x) < 0) and x[-1] - x[0] < -20
    assert np.all(np.diff(meta["MoveUp"]["center"][:, 1]) < 0)  # image y points down
    assert np.all(np.diff(meta["MoveDown"]["center"][:, 1]) > 0)
    assert _signed_area(meta["CircleClockwise"]["center"]) < -100
    assert _signed_area(meta["CircleCounterClockwise"]["center"]) > 100

    spin, grow = meta["Spin"], meta["GrowShrink"]
    assert np.ptp(spin["angle"]) > np.pi and np.ptp(spin["center"], 0).max() < 1
    assert np.ptp(grow["size"]) > 0.3 * grow["size"].mean() and np.ptp(grow["center"], 0).max() < 1
    for name in set(CLASSES) - {"Spin", "GrowShrink"}:  # nothing else turns or changes size
        assert np.ptp(meta[name]["angle"]) == 0 and np.ptp(meta[name]["size"]) == 0
    for name in ("Spin", "GrowShrink", "Bounce", "ZigZag"):
        assert meta[name]["center"].min() >= 0 and meta[name]["center"][:, 0].max() <= 160


@pytest.mark.parametrize("style", sorted(STYLES))
def test_appearance_gives_nothing_away(style):
    draws = {name: [_render(name, seed, (64, 48), 8, style)[1] for seed in range(30)] for name in CLASSES}
    shapes = {}
    for name, metas in draws.items():
        for key in ("background", "shape", "color", "distractors"):
            assert len({m[key] for m in metas}) > 1, (name, key)
        shapes[name] = {m["shape"] for m in metas}
    assert all(shapes[a] & shapes[b] for a, b in itertools.combinations(CLASSES, 2))
    kinds = {m["background"] for metas in draws.values() for m in metas}
    assert kinds <= set(STYLES[style].backgrounds)


def test_alt_style_looks_different():
    default, alt = STYLES["default"], STYLES["alt"]
    assert not set(default.backgrounds) & set(alt.backgrounds)
    assert not set(default.object_colors) & set(alt.object_colors)
    frames, meta = _render("ZigZag", 0, style="alt")
    same_motion = _render("ZigZag", 0)[1]  # the motion is drawn before the appearance
    assert np.array_equal(meta["center"], same_motion["center"]) and meta["background"] in alt.backgrounds


def test_main_object_is_what_moves():
    ys, xs = np.mgrid[0:120, 0:160]
    checked = 0
    for seed in range(20):
        frames, meta = _render("MoveRight", seed)
        if any(meta["pan"]):  # a panning background changes everywhere
            continue
        frames = frames.astype(np.int16)
        ratios = []
        for t in range(15):
            change = np.abs(frames[t + 1] - frames[t]).max(-1)
            near = np.zeros(change.shape, bool)
            for cx, cy in meta["center"][t:t + 2]:
                near |= np.hypot(xs - cx, ys - cy) < 1.5 * meta["size"][t] + 3
            ratios.append(change[near].mean() / change[~near].mean())
        assert np.mean(ratios) > 3, (seed, np.mean(ratios))  # measured: 6-15
        checked += 1
    assert checked >= 5


def test_done_marker_reuse_and_mismatch(tmp_path):
    args = dict(train_per_class=1, test_per_class=1, num_frames=8, width=32, height=32,
                classes=["Bounce"], progress=False)
    root = generate(tmp_path / "d", **args)
    params = json.loads((root / "DONE").read_text())
    assert params["seed"] == 0 and params["classes"] == ["Bounce"]
    video = root / "Bounce/v_Bounce_g02_c01.mp4"
    stamp = video.stat().st_mtime_ns
    assert generate(tmp_path / "d", **args) == root and video.stat().st_mtime_ns == stamp

    with pytest.raises(ValueError, match="other parameters.*delete"):
        generate(tmp_path / "d", **{**args, "seed": 3})

    (root / "DONE").unlink()  # as if interrupted before the end: generated again, completely
    (root / "testlist01.txt").unlink()
    generate(tmp_path / "d", **args)
    assert (root / "DONE").exists()
    assert (root / "testlist01.txt").read_text() == "Bounce/v_Bounce_g01_c01.mp4\n"
    assert not list(root.rglob("*.tmp"))


@pytest.mark.parametrize("bad, match", [
    (dict(width=63), "even"),
    (dict(height=47), "even"),
    (dict(classes=["Jump"]), "MoveLeft, MoveRight"),
    (dict(style="fancy"), "default, alt"),
    (dict(num_frames=4), "8 or more"),
    (dict(train_per_class=0), "positive"),
    (dict(test_per_class=0), "positive"),
])
def test_bad_arguments(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        generate(tmp_path, **{**SMALL, **bad})
    assert not list(tmp_path.iterdir())
