"""HMDB51 indexer on a tiny official-format tree: 0/1/2 split marks, sorted classes, reported problems."""

from pathlib import Path

import pytest

from tubelab.data.indexers import INDEXERS
from tubelab.data.indexers.hmdb51 import index_hmdb51

# class -> [(video name, mark in split 1)]; class names with underscores as in the real data
SPLIT1 = {
    "wave": [("w_a_0.avi", 1), ("w_b_0.avi", 2), ("w_c_0.avi", 0)],
    "brush_hair": [("April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 1), ("b_test_0.avi", 2)],
    "climb_stairs": [("c_train_0.avi", 1), ("c_train_1.avi", 1), ("c_test_0.avi", 2)],
}


def write_tree(root: Path, write_video, splits_dir: str = "testTrainMulti_7030_splits", split: int = 1) -> Path:
    for name, videos in SPLIT1.items():
        for video, _ in videos:
            write_video(root / name / video)
        lines = "".join(f"{video} {mark} \n" for video, mark in videos)  # official files end lines with a space
        (root / splits_dir).mkdir(parents=True, exist_ok=True)
        (root / splits_dir / f"{name}_test_split{split}.txt").write_text(lines)
    return root


@pytest.fixture
def tree(tmp_path, write_video):
    return write_tree(tmp_path / "hmdb51", write_video)


def test_index_official_tree(tree, decoded_frames):
    index = INDEXERS["hmdb51"](tree, split=1)
    assert index.classes == ["brush_hair", "climb_stairs", "wave"]  # alphabetical
    assert index.problems == []
    by_id = {r.video_id: r for r in index.records}
    assert len(by_id) == len(index.records)
    expected = {f"{c}/{v}": (index.classes.index(c), {1: "train", 2: "test"}[m])
                for c, videos in SPLIT1.items() for v, m in videos if m != 0}
    assert {i: (r.label, r.split) for i, r in by_id.items()} == expected
    assert "wave/w_c_0.avi" not in by_id  # mark 0: on disk, not used in this split, not a problem
    assert (index.count("train"), index.count("test")) == (4, 3)
    for r in index.records:
        assert Path(r.path).is_absolute() and Path(r.path) == (tree / r.video_id).resolve()
        assert r.labels == () and r.count is None and r.start is None and r.end is None
    frames = decoded_frames(by_id["wave/w_b_0.avi"].path)  # mpeg4 in avi really decodes
    assert frames.shape == (8, 24, 32, 3)


def test_split_files_at_the_root_or_named(tmp_path, write_video):
    at_root = write_tree(tmp_path / "a", write_video, splits_dir=".")
    assert len(index_hmdb51(at_root).records) == 7
    named = write_tree(tmp_path / "b", write_video, splits_dir="lists/splits")
    assert len(index_hmdb51(named, splits_dir="lists/splits").records) == 7
    with pytest.raises(FileNotFoundError, match="test_split1.txt"):
        index_hmdb51(named)


def test_other_split_reads_its_own_files(tmp_path, write_video):
    root = write_tree(tmp_path / "h", write_video)
    splits = root / "testTrainMulti_7030_splits"
    for name in SPLIT1:
        (splits / f"{name}_test_split2.txt").write_text("".join(f"{v} 0\n" for v, _ in SPLIT1[name][1:]) +
                                                        f"{SPLIT1[name][0][0]} 2\n")
    index = index_hmdb51(root, split=2)
    assert [(r.video_id, r.split) for r in index.records] == [
        ("brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "test"),
        ("climb_stairs/c_train_0.avi", "test"),
        ("wave/w_a_0.avi", "test"),
    ]
    with pytest.raises(FileNotFoundError, match=r"test_split3\.txt.*source="):
        index_hmdb51(root, split=3)


def test_problems_are_reported_with_file_and_line(tree):
    splits = tree / "testTrainMulti_7030_splits"
    wave = splits / "wave_test_split1.txt"
    wave.write_text(wave.read_text() + "\nw_missing.avi 1\nw_x.avi 3\nw_a_0.avi 2\njust_a_name.avi\n")
    climb = splits / "climb_stairs_test_split1.txt"
    climb.write_text(climb.read_text() + "b_test_0.avi 1\n")  # brush_hair's video listed in another class
    (tree / "climb_stairs/b_test_0.avi").write_bytes((tree / "brush_hair/b_test_0.avi").read_bytes())
    (tree / "brush_hair/b_test_0.avi").unlink()

    index = index_hmdb51(tree)
    w = "testTrainMulti_7030_splits/wave_test_split1.txt"
    assert index.problems == [
        "testTrainMulti_7030_splits/brush_hair_test_split1.txt:2: brush_hair/b_test_0.avi does not exist",
        "testTrainMulti_7030_splits/climb_stairs_test_split1.txt:4: b_test_0.avi is listed twice "
        "(first at testTrainMulti_7030_splits/brush_hair_test_split1.txt:2)",
        f"{w}:5: wave/w_missing.avi does not exist",
        f"{w}:6: expected '<name>.avi <0|1|2>', got 'w_x.avi 3'",
        f"{w}:7: w_a_0.avi is listed twice (first at {w}:1)",
        f"{w}:8: expected '<name>.avi <0|1|2>', got 'just_a_name.avi'",
    ]
    assert len(index.records) == 6 and "brush_hair/b_test_0.avi" not in {r.video_id for r in index.records}
    assert next(r for r in index.records if r.video_id == "wave/w_a_0.avi").split == "train"  # first listing


def test_class_folder_without_split_file(tree, write_video):
    (tree / "testTrainMulti_7030_splits/wave_test_split1.txt").unlink()
    write_video(tree / "wave/w_d_0.avi")
    (tree / "empty_folder").mkdir()
    index = index_hmdb51(tree)
    assert index.classes == ["brush_hair", "climb_stairs"]
    assert index.problems == ["testTrainMulti_7030_splits/wave_test_split1.txt: missing, so the 4 videos in "
                              "wave/ are not indexed"]


def test_missing_split_files_raise(tmp_path):
    (tmp_path / "brush_hair").mkdir()
    with pytest.raises(FileNotFoundError, match=r"brush_hair_test_split1\.txt.*test_train_splits\.rar"):
        index_hmdb51(tmp_path)


@pytest.mark.parametrize("split", [0, 4, "1", True])
def test_bad_split_raises(tree, split):
    with pytest.raises(ValueError, match="1, 2 or 3"):
        index_hmdb51(tree, split=split)
