"""UCF101 indexer on a real generated tree: classes, labels, splits, and problems that are reported, not dropped."""

import shutil
from pathlib import Path

import pytest

from tubelab.data.synthetic import CLASSES, generate
from tubelab.data.indexers.ucf101 import index_ucf101

TRAIN, TEST = 2, 1


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("ucf"), train_per_class=TRAIN, test_per_class=TEST, num_frames=8,
                    width=32, height=32, progress=False)


@pytest.fixture
def copy(tree, tmp_path):
    """A private copy of the tree that a test may edit."""
    return Path(shutil.copytree(tree, tmp_path / "copy"))


def test_index_generated_tree(tree):
    index = index_ucf101(tree)
    assert index.classes == list(CLASSES)  # classInd.txt order
    assert index.problems == []
    assert index.count("train") == TRAIN * len(CLASSES) and index.count("test") == TEST * len(CLASSES)
    assert len(index.records) == (TRAIN + TEST) * len(CLASSES)

    train_list = [line.split()[0] for line in (tree / "trainlist01.txt").read_text().splitlines()]
    test_list = (tree / "testlist01.txt").read_text().splitlines()
    by_split = {s: [r.video_id for r in index.records if r.split == s] for s in ("train", "test")}
    assert by_split == {"train": train_list, "test": test_list}  # list order kept, each in its split

    for r in index.records:
        folder = r.video_id.split("/")[0]
        assert index.classes[r.label] == folder  # 0-based: classInd's "1 MoveLeft" is label 0
        assert Path(r.path).is_absolute() and Path(r.path).is_file()
        assert Path(r.path) == (tree / r.video_id).resolve()
    assert sorted({r.label for r in index.records}) == list(range(len(CLASSES)))
    first = next(r for r in index.records if r.video_id == "MoveLeft/v_MoveLeft_g01_c01.mp4")
    assert (first.label, first.split) == (0, "test")


def test_relative_root_gives_absolute_paths(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)
    index = index_ucf101(tree.name)
    assert index.records and all(Path(r.path).is_absolute() and Path(r.path).is_file() for r in index.records)


def test_problems_are_reported_with_file_and_line(copy):
    train_file, test_file = copy / "trainlist01.txt", copy / "testlist01.txt"
    train = train_file.read_text().splitlines()
    assert train[0] == "MoveLeft/v_MoveLeft_g02_c01.mp4 1"
    train[0] = "MoveLeft/v_MoveLeft_g02_c01.mp4 3"  # exists, but 3 is another class
    train += ["", "MoveLeft/v_MoveLeft_g09_c01.mp4 1"]  # blank lines count for the line numbers
    train_file.write_text("\n".join(train) + "\n")
    test = test_file.read_text().splitlines() + ["Jump/v_Jump_g01_c01.mp4"]
    (copy / "Jump").mkdir()
    shutil.copy(copy / "MoveLeft/v_MoveLeft_g01_c01.mp4", copy / "Jump/v_Jump_g01_c01.mp4")  # on disk, not a class
    test_file.write_text("\n".join(test) + "\n")

    index = index_ucf101(copy)
    assert index.problems == [
        "trainlist01.txt:1: label 3 disagrees with the folder 'MoveLeft'",
        f"trainlist01.txt:{len(train)}: MoveLeft/v_MoveLeft_g09_c01.mp4 does not exist",
        f"testlist01.txt:{len(test)}: class 'Jump' is not in classInd.txt",
    ]
    ids = {r.video_id for r in index.records}
    assert "MoveLeft/v_MoveLeft_g02_c01.mp4" not in ids and not any(i.startswith("Jump/") for i in ids)
    assert index.count("train") == TRAIN * len(CLASSES) - 1  # only the bad lines are left out
    assert index.count("test") == TEST * len(CLASSES)


def test_missing_video_on_disk(copy):
    (copy / "Spin/v_Spin_g01_c01.mp4").unlink()
    index = index_ucf101(copy)
    line = (copy / "testlist01.txt").read_text().splitlines().index("Spin/v_Spin_g01_c01.mp4") + 1
    assert index.problems == [f"testlist01.txt:{line}: Spin/v_Spin_g01_c01.mp4 does not exist"]
    assert index.count("test") == TEST * len(CLASSES) - 1


@pytest.mark.parametrize("name", ["classInd.txt", "trainlist01.txt", "testlist01.txt"])
def test_missing_list_file_raises(copy, name):
    (copy / name).unlink()
    with pytest.raises(FileNotFoundError, match=name) as e:
        index_ucf101(copy)
    assert "source=" in str(e.value)


def test_other_splits(copy):
    with pytest.raises(FileNotFoundError, match="trainlist02.txt"):  # the generator writes split 1 only
        index_ucf101(copy, split=2)
    shutil.copy(copy / "trainlist01.txt", copy / "trainlist02.txt")
    (copy / "testlist02.txt").write_text("Spin/v_Spin_g01_c01.mp4\n")
    index = index_ucf101(copy, split=2)
    assert index.count("train") == TRAIN * len(CLASSES) and [r.video_id for r in index.records if r.split == "test"] \
        == ["Spin/v_Spin_g01_c01.mp4"]


@pytest.mark.parametrize("split", [0, 4, "1"])
def test_bad_split_raises(tree, split):
    with pytest.raises(ValueError, match="1, 2 or 3"):
        index_ucf101(tree, split=split)


def test_class_numbers_must_be_consecutive(copy):
    lines = (copy / "classInd.txt").read_text().splitlines()
    lines[1] = "3 " + lines[1].split()[1]
    (copy / "classInd.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"classInd.txt:2: class numbers must run 1, 2, 3"):
        index_ucf101(copy)
