"""Charades indexer on a tiny official-format tree: multi-label actions, empty actions, reported problems."""

import csv
import io
from pathlib import Path

import pytest

from tubelab.data.indexers import INDEXERS
from tubelab.data.indexers.charades import index_charades

HEADER = ["id", "subject", "scene", "quality", "relevance", "verified", "script", "objects", "descriptions",
          "actions", "length"]
CLASSES = ["Holding some clothes", "Putting clothes somewhere", "Taking some clothes from somewhere",
           "Throwing clothes somewhere", "Tidying some clothes"]
TRAIN = [  # id, actions
    ("46GP8", "c003 11.90 21.20;c001 0.00 12.60"),
    ("N11GT", "c004 0.00 10.00;c004 20.00 30.50;c000 1.0 2.0"),  # c004 twice: listed once
    ("0IH69", ""),                                               # no action: still a record, labels ()
]
TEST = [("YSKX3", "c002 4.20 9.90")]


def csv_text(rows) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    for video_id, actions in rows:
        # free-text fields with commas and a newline, quoted as in the official CSVs
        w.writerow([video_id, "HR43", "Kitchen", "6", "7", "Yes", "A person holds clothes, then\nputs them down.",
                    "clothes;table", "The person holds, then puts.", actions, "30.54"])
    return out.getvalue()


def write_tree(root: Path, write_video, annotations: str = ".", videos: str = "Charades_v1_480") -> Path:
    (root / annotations).mkdir(parents=True, exist_ok=True)
    (root / annotations / "Charades_v1_classes.txt").write_text(
        "".join(f"c{i:03d} {name}\n" for i, name in enumerate(CLASSES)))
    (root / annotations / "Charades_v1_train.csv").write_text(csv_text(TRAIN))
    (root / annotations / "Charades_v1_test.csv").write_text(csv_text(TEST))
    for video_id, _ in TRAIN + TEST:
        write_video(root / videos / f"{video_id}.mp4")
    return root


@pytest.fixture
def tree(tmp_path, write_video):
    return write_tree(tmp_path / "charades", write_video)


def test_index_official_tree(tree):
    index = INDEXERS["charades"](tree)
    assert index.classes == CLASSES
    assert index.problems == []
    assert [(r.video_id, r.split, r.label, r.labels) for r in index.records] == [
        ("46GP8", "train", -1, (1, 3)),
        ("N11GT", "train", -1, (0, 4)),
        ("0IH69", "train", -1, ()),
        ("YSKX3", "test", -1, (2,)),
    ]
    for r in index.records:
        assert Path(r.path).is_absolute() and Path(r.path) == tree / "Charades_v1_480" / f"{r.video_id}.mp4"
        assert r.start is None and r.end is None and r.count is None
    # every action's interval, in file order, repeats included: the clip labels come from them
    assert [r.segments for r in index.records] == [
        ((3, 11.9, 21.2), (1, 0.0, 12.6)),
        ((4, 0.0, 10.0), (4, 20.0, 30.5), (0, 1.0, 2.0)),
        (),
        ((2, 4.2, 9.9),),
    ]


def test_annotation_folder_and_videos_at_the_root(tmp_path, write_video):
    root = write_tree(tmp_path / "c", write_video, annotations="Charades", videos=".")
    index = index_charades(root)
    assert index.problems == [] and len(index.records) == 4 and Path(index.records[0].path) == root / "46GP8.mp4"
    assert index_charades(root, video_dir=".").records == index.records


def test_problems_are_reported_with_file_and_line(tree):
    rows = TRAIN + [
        ("BAD01", "c009 1.0 2.0"),              # class code past the class list
        ("BAD02", "c001 1.0"),                  # no end
        ("BAD03", "c001 one two"),              # times not numbers
        ("BAD04", "holding 1.0 2.0"),           # not a code
        ("46GP8", "c000 0.0 1.0"),              # listed twice
        ("GONE1", "c000 0.0 1.0"),              # not on disk
    ]
    text = csv_text(rows) + "SHORT,HR43,Kitchen\n"
    (tree / "Charades_v1_train.csv").write_text(text)
    (tree / "Charades_v1_test.csv").write_text(csv_text(TEST + [("46GP8", "")]))  # also in train
    index = index_charades(tree)

    def first(k):  # the first line of row k: each row spans two lines (its script has a newline)
        return 2 + 2 * k

    t = "Charades_v1_train.csv"
    assert index.problems == [
        f"{t}:{first(3)}: class c009 is not in Charades_v1_classes.txt",
        f"{t}:{first(4)}: action 'c001 1.0' is not 'cNNN start end'",
        f"{t}:{first(5)}: action 'c001 one two': start and end must be seconds",
        f"{t}:{first(6)}: action 'holding 1.0 2.0' is not 'cNNN start end'",
        f"{t}:{first(7)}: id 46GP8 is listed twice (first at {t}:2)",
        f"{t}:{first(8)}: GONE1.mp4 is not in Charades_v1_480/ or ./",
        f"{t}:{first(9)}: expected 11 fields, got 3",
        f"Charades_v1_test.csv:4: id 46GP8 is listed twice (first at {t}:2)",
    ]
    assert [r.video_id for r in index.records] == ["46GP8", "N11GT", "0IH69", "YSKX3"]


@pytest.mark.parametrize("name", ["Charades_v1_classes.txt", "Charades_v1_train.csv", "Charades_v1_test.csv"])
def test_missing_annotation_file_raises(tree, name):
    (tree / name).unlink()
    with pytest.raises(FileNotFoundError, match=name) as e:
        index_charades(tree)
    assert "source=" in str(e.value)


def test_bad_class_list_and_header_raise(tree):
    (tree / "Charades_v1_classes.txt").write_text("c000 Holding some clothes\nc002 Taking some clothes\n")
    with pytest.raises(ValueError, match=r"Charades_v1_classes.txt:2: class codes must run c000, c001"):
        index_charades(tree)
    (tree / "Charades_v1_classes.txt").write_text("c000 Holding some clothes\n")
    (tree / "Charades_v1_test.csv").write_text("id,length\nYSKX3,30.0\n")
    with pytest.raises(ValueError, match=r"Charades_v1_test.csv:1: .*missing actions"):
        index_charades(tree)
