"""Synthetic proxies of the SEVERE factors: read by the real indexers, deterministic, labels that are right."""

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from tubelab.data.indexers import INDEXERS
from tubelab.data.synthetic import CLASSES, FINE_CLASSES, generate, render_video
from tubelab.data.synthetic_motions import FINE_HEADING_JITTER, FINE_LENGTHS, FINE_RADII, FINE_TURNS, oscillate
from tubelab.data.synthetic_proxy import render_count, render_multi
from tubelab.data.synthetic_render import STYLES

REPO = Path(__file__).resolve().parents[3]
CARDS = ("synthetic_domain", "synthetic_fine", "synthetic_count", "synthetic_multi")
SMALL = dict(width=64, height=48, progress=False)
SMALL_BY_KIND = {  # small versions of each card's generator
    "classes": dict(train_per_class=2, test_per_class=1, num_frames=16),
    "fine": dict(train_per_class=2, test_per_class=1, num_frames=16),
    "count": dict(train=8, test=4, num_frames=24, max_count=3),
    "multi": dict(train=8, test=4, num_frames=16),
}


def _card(name):
    return OmegaConf.load(REPO / "datasets" / f"{name}.yaml")


def _small(card):
    kind = card.generator.get("kind", "classes")
    return {**card.generator, **SMALL, **SMALL_BY_KIND[kind]}  # as prepare calls it: **card.generator


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def _meta(root):
    return [json.loads(line) for line in (Path(root) / "synthetic_meta.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """card name -> (card, root of its small version, index by the card's own indexer)."""
    out = {}
    for name in CARDS:
        card = _card(name)
        root = generate(tmp_path_factory.mktemp(name), **_small(card))
        out[name] = card, root, INDEXERS[card.format](root, **card.index)
    return out


def test_cards():
    default = _card("synthetic")
    for name in CARDS:
        card = _card(name)
        assert card.name == name and card.source is None and card.format in INDEXERS
        assert OmegaConf.to_container(card.encode) == OmegaConf.to_container(default.encode)
        assert card.shard_max_videos == default.shard_max_videos
    formats = {name: (_card(name).format, _card(name).generator.get("kind")) for name in CARDS}
    assert formats == {"synthetic_domain": ("ucf101", "classes"), "synthetic_fine": ("ucf101", "fine"),
                       "synthetic_count": ("ucfrep", "count"), "synthetic_multi": ("charades", "multi")}
    domain = _card("synthetic_domain").generator
    assert domain.style == "alt" and domain.seed != default.generator.seed  # no pretraining trajectory again
    for setting in ("proxy_ucf_1000", "proxy_gym_1000"):  # a real low-sample regime: at most a quarter of train
        s = OmegaConf.load(REPO / "platform" / "tubelab" / "conf" / "setting" / f"{setting}.yaml")
        assert -(-s.budget // 10) <= _card(s.dataset).generator.train_per_class / 4


@pytest.mark.parametrize("name", CARDS)
def test_indexed_without_problems(built, name):
    card, root, index = built[name]
    small = SMALL_BY_KIND[card.generator.get("kind", "classes")]
    assert index.problems == []
    if card.format == "ucf101":
        expected = CLASSES if name == "synthetic_domain" else FINE_CLASSES
        assert index.classes == list(expected)
        assert index.count("train") == small["train_per_class"] * len(expected)
        assert index.count("test") == small["test_per_class"] * len(expected)
        assert {r.label for r in index.records} == set(range(len(expected)))
    else:
        assert index.count("train") == small["train"] and index.count("test") == small["test"]
    assert len(index.records) == len(list(Path(root).rglob("*.mp4")))  # no video left out
    assert json.loads((Path(root) / "DONE").read_text()).get("kind", "classes") == card.generator.kind


def test_count_labels_in_csv(built):
    card, root, index = built["synthetic_count"]
    meta = {m["path"]: m for m in _meta(root)}
    for r in index.records:
        assert r.label == -1 and r.count == meta[r.video_id]["count"] == meta[r.video_id]["motion"]["count"]
        assert 2 <= r.count <= 3 and r.start is None and r.split == meta[r.video_id]["split"]
        # the boundaries, in seconds (frame i at i / fps), as the generator drew them
        done = json.loads((Path(root) / "DONE").read_text())
        seconds = [b * (done["num_frames"] - 1) / done["fps"] for b in meta[r.video_id]["motion"]["cycles"]]
        assert len(r.cycles) == r.count + 1 and r.cycles == pytest.approx(seconds, abs=1e-4)


@pytest.mark.parametrize("seed", range(12))
def test_count_cycle_boundaries_are_where_the_object_is_back_at_rest(seed):
    """Sampled finely, the object is at its rest position at every boundary and farthest from it mid-cycle."""
    rng = np.random.default_rng(seed)
    count = int(rng.integers(2, 9))
    t = np.linspace(0, 1, 4001)
    xy, _, _, motion = oscillate(rng, t, count, 160, 120, 10.0)
    bounds = np.array(motion["cycles"])
    assert len(bounds) == count + 1 and np.all(np.diff(bounds) > 0)
    assert bounds[0] == pytest.approx(motion["onset"], abs=1e-4)
    assert bounds[-1] == pytest.approx(motion["onset"] + motion["active"], abs=1e-4)
    rest = xy[0]
    away = np.linalg.norm(xy - rest, axis=1)
    peak = away.max()
    drift = 0.05 * 160 if motion["kind"] == "bounce" else 0  # the bounce drifts sideways by up to 5 % of the width
    at = lambda times: np.stack([np.interp(times, t, xy[:, k]) for k in range(2)], 1)  # noqa: E731
    bound_xy, mid_xy = at(bounds), at((bounds[1:] + bounds[:-1]) / 2)
    assert (np.abs(bound_xy[:, 1] - rest[1]) < 0.01 * peak + 1e-6).all()  # vertical: back at rest
    assert (np.linalg.norm(bound_xy - rest, axis=1) < 0.01 * peak + drift).all()
    assert (np.linalg.norm(mid_xy - rest, axis=1) > 0.95 * peak - drift).all()


def test_multi_labels_in_csv(built):
    card, root, index = built["synthetic_multi"]
    meta = {m["id"]: m for m in _meta(root)}
    assert index.classes == list(CLASSES)
    sizes = set()
    for r in index.records:
        m = meta[r.video_id]
        assert r.label == -1 and r.labels == tuple(sorted(CLASSES.index(o["class"]) for o in m["objects"]))
        assert m["labels"] == sorted(o["class"] for o in m["objects"]) and len(set(m["labels"])) == len(m["labels"])
        # each object's segment is its action's interval, which the clip labels come from
        assert [(CLASSES[c], s, e) for c, s, e in r.segments] == [
            (o["class"], pytest.approx(o["start"] * 15 / 16, abs=0.006), pytest.approx(o["end"] * 15 / 16, abs=0.006))
            for o in m["objects"]]
        sizes.add(len(r.labels))
    assert sizes <= {1, 2, 3} and len(sizes) > 1
    rows = (Path(root) / "Charades_v1_train.csv").read_text().splitlines()
    assert rows[0] == "id,actions,length"
    seconds = (16 - 1) / 16
    for row in rows[1:]:  # action times are each object's segment, in seconds
        video_id, actions, length = row.split(",")
        assert float(length) == 1.0
        for action, o in zip(actions.split(";"), meta[video_id]["objects"]):
            code, start, end = action.split()
            assert code == f"c{CLASSES.index(o['class']):03d}"
            assert float(start) == pytest.approx(o["start"] * seconds, abs=0.006)
            assert float(end) == pytest.approx(o["end"] * seconds, abs=0.006)
            assert 0 <= float(start) < float(end) <= seconds + 0.005


def test_domain_style_differs(built):
    _, root, _ = built["synthetic_domain"]
    default, alt = STYLES["default"], STYLES["alt"]
    meta = _meta(root)
    backgrounds = {m["background"] for m in meta}
    colors = {m["color"] for m in meta} | {d["color"] for m in meta for d in m["distractor_objects"]}
    assert backgrounds <= set(alt.backgrounds) and not backgrounds & set(default.backgrounds)
    assert colors <= set(alt.object_colors) and not colors & set(default.object_colors)
    assert len(backgrounds) > 1 and len(colors) > 2
    assert {m["class"] for m in meta} == set(CLASSES)


@pytest.mark.parametrize("name", ["synthetic_fine", "synthetic_count", "synthetic_multi"])
def test_determinism(built, name, tmp_path):
    card, root, _ = built[name]
    files = _files(root)
    assert _files(generate(tmp_path / "again", **_small(card))) == files  # byte-identical, lists included
    other = _files(generate(tmp_path / "other", **{**_small(card), "seed": 7}))
    videos = [rel for rel in files if rel.endswith(".mp4")]
    assert set(other) == set(files) and all(other[rel] != files[rel] for rel in videos)


def test_kinds_never_share_clips(built):
    """The default set and every proxy draw their clips from different rngs."""
    default = render_video("MoveLeft", np.random.default_rng(np.random.SeedSequence([0, 0, 0])), num_frames=16,
                           width=64, height=48)[1]
    meta = [m for name in ("synthetic_fine", "synthetic_count", "synthetic_multi") for m in _meta(built[name][1])]
    assert all(m["background_colors"] != default["background_colors"] for m in meta)
    assert len({json.dumps(m["background_colors"]) for m in meta}) == len(meta)


def _span(meta, width, height):
    return min(width, height) - 2 * meta["size"][0]


def _fit_circle(xy):
    """Least-squares circle: centre, radius."""
    a = np.c_[xy, np.ones(len(xy))]
    (bx, by, c), *_ = np.linalg.lstsq(a, (xy ** 2).sum(1), rcond=None)
    centre = np.array([bx, by]) / 2
    return centre, np.sqrt(c + centre @ centre)


def _measure_fine(meta, width, height):
    """What the centre track shows: (length / span, heading in degrees) or (radius / span, turns)."""
    xy, span = meta["center"], _span(meta, width, height)
    if meta["class"].startswith(("Slide", "Rise")):
        dx, dy = xy[-1] - xy[0]
        assert np.allclose(np.diff(xy, axis=0), (xy[-1] - xy[0]) / (len(xy) - 1), atol=1e-6)  # straight, steady
        assert (dx < 0) == meta["motion"]["mirrored"]
        return np.hypot(dx, dy) / span, np.degrees(np.arctan2(-dy, abs(dx)))  # image y points down
    centre, radius = _fit_circle(xy)
    assert np.allclose(np.hypot(*(xy - centre).T), radius, rtol=1e-6)
    angle = np.unwrap(np.arctan2(*(xy - centre).T[::-1]))
    assert (angle[-1] < angle[0]) == meta["motion"]["mirrored"]  # clockwise on screen unless mirrored
    return radius / span, abs(angle[-1] - angle[0]) / (2 * np.pi)


def test_fine_classes_differ_as_designed():
    width, height, seeds = 64, 48, range(12)
    measured = {}
    for name in FINE_CLASSES:
        values = []
        for seed in seeds:
            _, meta = render_video(name, np.random.default_rng(seed), num_frames=24, width=width, height=height)
            a, b = _measure_fine(meta, width, height)
            drawn = meta["motion"]
            assert np.ptp(meta["angle"]) == 0 and np.ptp(meta["size"]) == 0 and "speed" not in meta
            if drawn["family"] == "translate":
                assert (a, b) == pytest.approx((drawn["length"], drawn["heading"]), abs=1e-6)
            else:
                assert (a, b) == pytest.approx((drawn["radius"], drawn["turns"]), abs=1e-6)
            values.append((a, b, drawn["mirrored"]))
        measured[name] = np.array(values)
        assert 0 < measured[name][:, 2].sum() < len(seeds)  # mirrored or not, in every class

    def inside(name, column, band, pad=1e-9):
        v = measured[name][:, column]
        return v.min() >= band[0] - pad and v.max() <= band[1] + pad

    for band in ("Slow", "Medium", "Fast"):  # speed is the class; heading horizontal
        assert inside(f"Slide{band}", 0, FINE_LENGTHS[band]) and inside(f"Slide{band}", 1, (-4.0, 4.0))
    for deg in (20, 40, 60):  # heading is the class, 20 degrees apart; speed the Medium band
        name = f"Rise{deg}"
        assert inside(name, 0, FINE_LENGTHS["Medium"])
        assert inside(name, 1, (deg - FINE_HEADING_JITTER, deg + FINE_HEADING_JITTER))
    for size in FINE_RADII:
        for rate in FINE_TURNS:
            name = f"Orbit{size}{rate}"
            assert inside(name, 0, FINE_RADII[size]) and inside(name, 1, FINE_TURNS[rate])
    # neighbouring classes never overlap
    assert measured["SlideSlow"][:, 0].max() < measured["SlideMedium"][:, 0].min()
    assert measured["SlideMedium"][:, 0].max() < measured["SlideFast"][:, 0].min()
    for a, b in (("SlideMedium", "Rise20"), ("Rise20", "Rise40"), ("Rise40", "Rise60")):
        assert measured[a][:, 1].max() + 10 < measured[b][:, 1].min()


def _count_repetitions(center):
    """Count the excursions of the centre away from its start along the main direction of motion: peaks
    that rise and then fall by at least 35% of the largest excursion (at 5 frames a repetition, the
    fastest, a bounce sampled around its floor contact still drops by ~70%)."""
    offset = center - center[0]
    axis = np.linalg.svd(offset - offset.mean(0), full_matrices=False)[2][0]
    d = np.abs(offset @ axis)
    step = 0.35 * d.max()
    count, rising, low, high = 0, True, d[0], d[0]
    for value in d:
        if rising:
            low = min(low, value)
            if value - low >= step:
                rising, high = False, value
        else:
            high = max(high, value)
            if high - value >= step:
                count, rising, low = count + 1, True, value
    return count


def test_count_trajectory_repeats_count_times():
    kinds, onsets, actives = set(), {}, {}
    for count in range(2, 9):
        for seed in range(6):
            _, meta = render_count(count, np.random.default_rng([count, seed]), num_frames=64, width=64, height=48)
            assert _count_repetitions(meta["center"]) == count == meta["count"], (count, seed, meta["motion"])
            motion = meta["motion"]
            kinds.add(motion["kind"])
            onsets.setdefault(count, set()).add(motion["onset"])
            actives.setdefault(count, set()).add(motion["active"])
            # still before the onset and after the last repetition
            t = np.linspace(0, 1, 64)
            for still in (t <= motion["onset"] - 1e-4, t >= motion["onset"] + motion["active"] + 1e-4):
                if still.sum() > 1:
                    assert np.ptp(meta["center"][still], 0).max() < 1e-6
    assert kinds == {"swing", "bounce"}
    assert all(len(onsets[c]) == 6 and np.ptp(sorted(actives[c])) > 0.05 for c in onsets)  # period and phase vary


def test_multi_objects_do_their_class():
    seen = set()
    for seed in range(20):
        _, meta = render_multi(np.random.default_rng(seed), num_frames=24, width=64, height=48)
        t = np.linspace(0, 1, 24)
        for o in meta["objects"]:
            seen.add(o["class"])
            before, after = t < o["start"] - 1e-9, t > o["end"] + 1e-9
            inside = ~before & ~after
            for key in ("center", "size", "angle"):  # still outside its segment
                for part in (before, after):
                    if part.sum() > 1:
                        assert np.ptp(o[key][part], 0).max() < 1e-6, (o["class"], key)
            x, y = o["center"][inside].T
            check = {"MoveLeft": np.all(np.diff(x) < 0), "MoveRight": np.all(np.diff(x) > 0),
                     "MoveUp": np.all(np.diff(y) < 0), "MoveDown": np.all(np.diff(y) > 0),
                     "Spin": np.ptp(o["angle"]) > np.pi and np.ptp(o["center"], 0).max() < 1e-6,
                     "GrowShrink": np.ptp(o["size"]) > 0.3 * o["size"].mean()}
            assert check.get(o["class"], np.ptp(o["center"], 0).max() > 3), o["class"]
        assert len({o["class"] for o in meta["objects"]}) == len(meta["objects"])
    assert seen == set(CLASSES)


def test_an_older_count_set_gets_its_cycle_boundaries(built, tmp_path):
    """A counting set an older tubelab made (DONE without `cycles`, CSV without the column) is written again."""
    card, _, _ = built["synthetic_count"]
    root = generate(tmp_path / "count", **{**_small(card), "train": 2, "test": 1})
    csv = (root / "ucfrep.csv").read_text()
    done = json.loads((root / "DONE").read_text())
    (root / "DONE").write_text(json.dumps({k: v for k, v in done.items() if k != "cycles"}))
    (root / "ucfrep.csv").write_text("\n".join(",".join(line.split(",")[:3]) for line in csv.splitlines()) + "\n")
    assert generate(root, **{**_small(card), "train": 2, "test": 1}) == root
    assert (root / "ucfrep.csv").read_text() == csv and json.loads((root / "DONE").read_text()) == done


def test_done_marker_reuse_and_mismatch(built, tmp_path):
    card, root, _ = built["synthetic_count"]
    video = next(Path(root).rglob("*.mp4"))
    stamp = video.stat().st_mtime_ns
    assert generate(root, **_small(card)) == root and video.stat().st_mtime_ns == stamp  # reused
    with pytest.raises(ValueError, match="other parameters.*delete"):
        generate(root, **{**_small(card), "max_count": 2})
    with pytest.raises(ValueError, match="other parameters"):  # another kind in the same folder
        generate(root, **_small(_card("synthetic_multi")))
    with pytest.raises(ValueError, match="other parameters"):
        generate(root, train_per_class=1, test_per_class=1, num_frames=8, width=32, height=32, progress=False)

    classes = dict(train_per_class=1, test_per_class=1, num_frames=8, width=32, height=32, classes=["Spin"],
                   progress=False)
    plain = generate(tmp_path / "plain", **classes)
    assert generate(plain, kind="classes", **classes) == plain  # kind="classes" is the default dataset
    assert "kind" not in json.loads((plain / "DONE").read_text())
    assert not list(Path(root).rglob("*.tmp"))


@pytest.mark.parametrize("kind, bad, match", [
    ("nope", {}, "valid kinds: classes, fine, count, multi"),
    ("fine", dict(classes=["MoveLeft"]), "SlideSlow"),
    ("fine", dict(width=63), "even"),
    ("count", dict(max_count=8, num_frames=40), "num_frames >= 49"),
    ("count", dict(min_count=4, max_count=3), "min_count"),
    ("count", dict(train=0), "positive"),
    ("multi", dict(classes=["Jump"]), "MoveLeft"),
    ("multi", dict(min_active=0), "min_active"),
    ("multi", dict(style="fancy"), "default, alt"),
])
def test_bad_arguments(tmp_path, kind, bad, match):
    with pytest.raises(ValueError, match=match):
        generate(tmp_path, kind=kind, **{**SMALL, **bad})
    assert not list(tmp_path.iterdir())
