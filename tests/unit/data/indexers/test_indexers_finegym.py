"""FineGym Gym99 indexer on a tiny official-format tree, and the SEVERE subsets FX-S1 / UB-S1."""

from pathlib import Path

import pytest

from tubelab.data.indexers import INDEXERS
from tubelab.data.indexers.finegym import index_finegym

TRAIN = [("0LtLS9wROrk_E_002407_002435_A_0003_0005", 0), ("0LtLS9wROrk_E_002407_002435_A_0006_0008", 6),
         ("A0xAXXysHUo_E_000100_000150_A_0001_0002", 16), ("A0xAXXysHUo_E_000100_000150_A_0003_0004", 17),
         ("B1yBYYztIVp_E_000010_000050_A_0001_0003", 74), ("B1yBYYztIVp_E_000010_000050_A_0004_0006", 98)]
VAL = [("C2zCZZauJWq_E_000200_000260_A_0002_0003", 88), ("C2zCZZauJWq_E_000200_000260_A_0004_0005", 5),
       ("C2zCZZauJWq_E_000200_000260_A_0006_0007", 10)]


def write_tree(root: Path, write_video, video_dir: str = "videos") -> Path:
    root.mkdir(parents=True)
    (root / "gym99_train_element_v1.1.txt").write_text("".join(f"{c} {label}\n" for c, label in TRAIN))
    (root / "gym99_val_element.txt").write_text("".join(f"{c} {label}\n" for c, label in VAL))
    for clip, _ in TRAIN + VAL:
        write_video(root / video_dir / f"{clip}.mp4")
    return root


@pytest.fixture
def tree(tmp_path, write_video):
    return write_tree(tmp_path / "gym", write_video)


def test_index_gym99(tree, decoded_frames):
    index = INDEXERS["finegym"](tree)
    assert index.classes == [str(i) for i in range(99)]  # no gym99_categories.txt: the numbers
    assert index.problems == []
    assert [(r.video_id, r.split, r.label) for r in index.records] == \
        [(c, "train", label) for c, label in TRAIN] + [(c, "val", label) for c, label in VAL]
    for r in index.records:
        assert Path(r.path).is_absolute() and Path(r.path) == tree / "videos" / f"{r.video_id}.mp4"
    assert decoded_frames(index.records[0].path).shape == (8, 24, 32, 3)  # H.264 in mp4 really decodes


def test_category_names(tree):
    sets = {0: 1, 6: 21, 74: 51}
    lines = [f"Clabel: {i}; set: {sets.get(i, 2)}; Glabel: {i + 3}; (XX) element number {i}" for i in range(99)]
    lines[6] = "Clabel: 6; set: 21; Glabel: 35; (FX) switch leap with 0.5 turn"
    (tree / "gym99_categories.txt").write_text("\n".join(lines) + "\n")
    index = index_finegym(tree)
    assert len(index.classes) == 99 and index.classes[0] == "(XX) element number 0"
    assert index.classes[6] == "(FX) switch leap with 0.5 turn"
    fx = index_finegym(tree, subset="fx_s1")
    assert fx.classes == index.classes[6:17] and fx.classes[0] == "(FX) switch leap with 0.5 turn"
    (tree / "gym99_categories.txt").write_text("\n".join(lines[:-1]) + "\nlabel 98 something\n")
    with pytest.raises(ValueError, match=r"gym99_categories.txt:99: expected 'Clabel"):
        index_finegym(tree)


@pytest.mark.parametrize("subset, size, expected", [
    ("fx_s1", 11, [(TRAIN[1][0], "train", 0), (TRAIN[2][0], "train", 10), (VAL[2][0], "val", 4)]),
    ("ub_s1", 15, [(TRAIN[4][0], "train", 0), (VAL[0][0], "val", 14)]),
])
def test_subsets_remap_labels(tree, subset, size, expected):
    index = index_finegym(tree, subset=subset)
    assert index.classes == [str(i) for i in range({"fx_s1": 6, "ub_s1": 74}[subset], 99)][:size]
    assert index.problems == []  # clips of other labels are left out without a problem
    assert [(r.video_id, r.split, r.label) for r in index.records] == expected


def test_problems_are_reported_with_file_and_line(tree):
    train = tree / "gym99_train_element_v1.1.txt"
    train.write_text(train.read_text() + "\n".join([
        "missing_clip 7",                # 7: not on disk
        f"{TRAIN[0][0]} 0",              # 8: listed twice
        "clip_x 99",                     # 9: no such class
        "clip_y -1",                     # 10
        "clip_z",                        # 11: no label
        "clip_w seven",                  # 12
        "",
        f"{VAL[1][0]} 5",                # 14: also in the val list (listed twice across the lists)
    ]) + "\n")
    index = index_finegym(tree)
    t = "gym99_train_element_v1.1.txt"
    assert index.problems == [
        f"{t}:7: missing_clip.mp4 is not in videos/ or ./",
        f"{t}:8: {TRAIN[0][0]} is listed twice (first at {t}:1)",
        f"{t}:9: label 99 is not a Gym99 class (0..98)",
        f"{t}:10: label -1 is not a Gym99 class (0..98)",
        f"{t}:11: expected '<clip_id> <label>', got 'clip_z'",
        f"{t}:12: expected '<clip_id> <label>', got 'clip_w seven'",
        f"gym99_val_element.txt:2: {VAL[1][0]} is listed twice (first at {t}:14)",
    ]
    fx = index_finegym(tree, subset="fx_s1")  # problems of lines outside the subset are not its business
    assert fx.problems == [f"{t}:7: missing_clip.mp4 is not in videos/ or ./",
                           f"{t}:9: label 99 is not a Gym99 class (0..98)",
                           f"{t}:10: label -1 is not a Gym99 class (0..98)",
                           f"{t}:11: expected '<clip_id> <label>', got 'clip_z'",
                           f"{t}:12: expected '<clip_id> <label>', got 'clip_w seven'"]


def test_clips_at_the_root_and_named_lists(tmp_path, write_video):
    root = write_tree(tmp_path / "g", write_video, video_dir=".")
    index = index_finegym(root)
    assert index.problems == [] and Path(index.records[0].path).parent == root
    (root / "gym99_train_element.txt").write_text(f"{TRAIN[0][0]} 0\n")  # v1.0 next to v1.1: ambiguous
    with pytest.raises(ValueError, match=r"gym99_train_element.txt, gym99_train_element_v1.1.txt.*train_file"):
        index_finegym(root)
    index = index_finegym(root, train_file="gym99_train_element.txt", video_dir=".")
    assert index.count("train") == 1 and index.count("val") == len(VAL)


@pytest.mark.parametrize("name, pattern", [("gym99_train_element_v1.1.txt", "gym99_train"),
                                           ("gym99_val_element.txt", "gym99_val")])
def test_missing_list_raises(tree, name, pattern):
    (tree / name).unlink()
    with pytest.raises(FileNotFoundError, match=pattern) as e:
        index_finegym(tree)
    assert "source=" in str(e.value)


def test_bad_subset_raises(tree):
    with pytest.raises(ValueError, match="fx_s1"):
        index_finegym(tree, subset="vt_s1")
