"""Something-Something v2 indexer on a tiny official-format tree: template -> class, line numbers in JSON."""

import json
from pathlib import Path

import pytest

from tubelab.data.indexers import INDEXERS
from tubelab.data.indexers.ssv2 import class_name, index_ssv2

LABELS = {  # labels.json: template without brackets -> index string (not in index order on purpose)
    "Putting something on a surface": "1",
    "Approaching something with your camera": "0",
    "Putting number of something onto something": "2",
}
CLASSES = ["Approaching something with your camera", "Putting something on a surface",
           "Putting number of something onto something"]
TRAIN = [
    {"id": "78687", "label": "putting a book on a surface", "template": "Putting [something] on a surface",
     "placeholders": ["a book"]},
    {"id": "42326", "label": "approaching a cup with your camera",
     "template": "Approaching [something] with your camera", "placeholders": ["a cup"]},
    {"id": "100", "label": "putting 2 pens onto a box", "template": "Putting [number of] [something] onto [something]",
     "placeholders": ["2", "pens", "a box"]},
]
VAL = [{"id": "74225", "label": "putting a pen on a table", "template": "Putting [something] on a surface",
        "placeholders": ["a pen"]}]


def one_per_line(entries) -> str:
    """The official files' shape: '[' then one compact entry per line."""
    return "[\n" + ",\n".join(json.dumps(e, separators=(",", ":")) for e in entries) + "\n]\n"


def write_tree(root: Path, write_video, labels_dir: str = ".", video_dir: str = "20bn-something-something-v2"):
    (root / labels_dir).mkdir(parents=True, exist_ok=True)
    (root / labels_dir / "labels.json").write_text(json.dumps(LABELS, indent=1))
    (root / labels_dir / "train.json").write_text(one_per_line(TRAIN))
    (root / labels_dir / "validation.json").write_text(json.dumps(VAL, indent=2))  # pretty-printed works too
    (root / labels_dir / "test.json").write_text(one_per_line([{"id": "5"}]))  # no labels: not indexed
    for entry in TRAIN + VAL + [{"id": "5"}]:
        write_video(root / video_dir / f"{entry['id']}.webm")
    return root


@pytest.fixture
def tree(tmp_path, write_video):
    return write_tree(tmp_path / "ssv2", write_video)


def test_class_name_strips_brackets():
    assert class_name("Putting [something] on a surface") == "Putting something on a surface"
    assert class_name("Putting [number of] [something] onto [something]") == \
        "Putting number of something onto something"


def test_index_official_tree(tree, decoded_frames):
    index = INDEXERS["ssv2"](tree)
    assert index.classes == CLASSES  # labels.json index order
    assert index.problems == []
    assert [(r.video_id, r.split, r.label) for r in index.records] == [
        ("78687", "train", 1), ("42326", "train", 0), ("100", "train", 2), ("74225", "val", 1)]
    for r in index.records:
        assert Path(r.path).is_absolute()
        assert Path(r.path) == tree / "20bn-something-something-v2" / f"{r.video_id}.webm"
    frames = decoded_frames(index.records[0].path)  # VP8 in webm really decodes
    assert frames.shape == (8, 24, 32, 3)


def test_labels_folder_and_videos_at_the_root(tmp_path, write_video):
    root = write_tree(tmp_path / "s", write_video, labels_dir="labels", video_dir=".")
    index = index_ssv2(root)
    assert index.problems == [] and len(index.records) == 4 and Path(index.records[0].path) == root / "78687.webm"
    assert index_ssv2(root, labels_dir="labels", video_dir=".").records == index.records
    with pytest.raises(FileNotFoundError, match="video_dir"):
        index_ssv2(root, video_dir="videos")


def test_problems_are_reported_with_file_and_line(tree):
    train = TRAIN + [
        {"id": "7", "template": "Dancing with [something]"},   # line 5: not in labels.json
        {"label": "no id", "template": "Putting [something] on a surface"},  # 6
        {"id": "78687", "template": "Putting [something] on a surface"},     # 7: listed twice
        {"id": "999", "template": "Approaching [something] with your camera"},  # 8: not on disk
        ["not", "an", "object"],                                              # 9
    ]
    (tree / "train.json").write_text(one_per_line(train))
    val = json.dumps(VAL + [{"id": "74226", "template": "Putting [something] on a surface"}], indent=2)
    (tree / "validation.json").write_text(val[:-3] + "\n  oops\n]")  # a syntax error inside the 2nd entry
    index = index_ssv2(tree)
    assert index.problems == [
        "train.json:5: template 'Dancing with [something]' ('Dancing with something') is not in labels.json",
        'train.json:6: expected an entry with an id and a template, got {"label": "no id", '
        '"template": "Putting [something] on a surface"}',
        "train.json:7: id 78687 is listed twice (first at train.json:2)",
        "train.json:8: 20bn-something-something-v2/999.webm does not exist",
        'train.json:9: expected an entry with an id and a template, got ["not", "an", "object"]',
        "validation.json:14: not valid JSON (Expecting ',' delimiter); the rest of the file is not read",
    ]
    assert [r.video_id for r in index.records] == ["78687", "42326", "100", "74225"]
    entry_lines = [n for n, line in enumerate(val.splitlines(), 1) if line.strip() == "{"]
    assert entry_lines == [2, 10]  # the pretty-printed entries start there


def test_pretty_printed_entries_report_their_first_line(tree):
    val = VAL + [{"id": "31", "template": "Putting [something] on a surface"}]
    (tree / "validation.json").write_text(json.dumps(val, indent=2))
    assert index_ssv2(tree).problems == ["validation.json:10: 20bn-something-something-v2/31.webm does not exist"]


@pytest.mark.parametrize("name", ["labels.json", "train.json", "validation.json"])
def test_missing_annotation_file_raises(tree, name):
    (tree / name).unlink()
    with pytest.raises(FileNotFoundError, match=name) as e:
        index_ssv2(tree)
    assert "source=" in str(e.value)


def test_bad_labels_json_raises(tree):
    (tree / "labels.json").write_text(json.dumps({"a": "0", "b": "2"}))
    with pytest.raises(ValueError, match="class indices must be 0..1"):
        index_ssv2(tree)
    (tree / "train.json").write_text('{"id": "1"}')
    (tree / "labels.json").write_text(json.dumps(LABELS))
    with pytest.raises(ValueError, match="train.json:1: expected a JSON list"):
        index_ssv2(tree)
