"""Repetition-counting (UCFRep-style) indexer: the documented CSV, counts, segments and problems."""

from pathlib import Path

import pytest

from tubelab.data.indexers import INDEXERS
from tubelab.data.indexers.ucfrep import index_ucfrep

CSV = """video,count,split,start,end
JumpingJack/v_JumpingJack_g01_c01.avi,12,train,,
JumpingJack/v_JumpingJack_g02_c03.avi,7,val,1.5,9.0
PushUps/v_PushUps_g03_c01.avi,6.5,test,,
JumpingJack/v_JumpingJack_g02_c03.avi,3,val,9.5,12
"""
VIDEOS = ["JumpingJack/v_JumpingJack_g01_c01.avi", "JumpingJack/v_JumpingJack_g02_c03.avi",
          "PushUps/v_PushUps_g03_c01.avi"]


@pytest.fixture
def tree(tmp_path, write_video):
    root = tmp_path / "ucfrep"
    for video in VIDEOS:
        write_video(root / video)
    (root / "ucfrep.csv").write_text(CSV)
    return root


def test_index_documented_csv(tree, decoded_frames):
    index = INDEXERS["ucfrep"](tree)
    assert index.classes == [] and index.problems == []
    got = [(r.video_id, r.split, r.label, r.labels, r.count, r.start, r.end) for r in index.records]
    assert got == [
        ("JumpingJack/v_JumpingJack_g01_c01.avi", "train", -1, (), 12.0, None, None),
        ("JumpingJack/v_JumpingJack_g02_c03.avi@1.5-9", "val", -1, (), 7.0, 1.5, 9.0),
        ("PushUps/v_PushUps_g03_c01.avi", "test", -1, (), 6.5, None, None),
        ("JumpingJack/v_JumpingJack_g02_c03.avi@9.5-12", "val", -1, (), 3.0, 9.5, 12.0),
    ]
    assert all(isinstance(r.count, float) for r in index.records)
    for r in index.records:
        assert Path(r.path).is_absolute() and Path(r.path) == tree / r.video_id.split("@")[0]
    assert len(decoded_frames(index.records[0].path)) == 8


def test_without_segment_columns_and_other_file(tree):
    (tree / "counts.csv").write_text("split,video,count\ntrain,PushUps/v_PushUps_g03_c01.avi,4\n")
    index = index_ucfrep(tree, annotations="counts.csv")
    assert [(r.video_id, r.count, r.start, r.end) for r in index.records] == \
        [("PushUps/v_PushUps_g03_c01.avi", 4.0, None, None)]


def test_problems_are_reported_with_file_and_line(tree):
    (tree / "ucfrep.csv").write_text(CSV + "\n".join([
        "PushUps/v_PushUps_g03_c01.avi,zero,train,,",              # 6: count not a number
        "PushUps/v_PushUps_g03_c01.avi,0,train,,",                 # 7: count <= 0
        "PushUps/v_PushUps_g03_c01.avi,-2,train,,",                # 8
        "PushUps/v_PushUps_g03_c01.avi,nan,train,,",               # 9
        "PushUps/v_PushUps_g03_c01.avi,3,validation,,",            # 10: unknown split
        "PushUps/v_PushUps_g03_c01.avi,3,train,2.0,",              # 11: start without end
        "PushUps/v_PushUps_g03_c01.avi,3,train,5,2",               # 12: end before start
        "PushUps/v_PushUps_g03_c01.avi,3,train,a,b",               # 13
        "PushUps/v_PushUps_g03_c01.avi,2,test,,",                  # 14: listed twice
        "PushUps/missing.avi,2,test,,",                            # 15: not on disk
        "/abs/path.avi,2,test,,",                                  # 16: absolute
        "PushUps/v_PushUps_g03_c01.avi,2,test",                    # 17: fields short
    ]) + "\n")
    index = index_ucfrep(tree)
    assert index.problems == [
        "ucfrep.csv:6: count must be a positive number, got 'zero'",
        "ucfrep.csv:7: count must be a positive number, got '0'",
        "ucfrep.csv:8: count must be a positive number, got '-2'",
        "ucfrep.csv:9: count must be a positive number, got 'nan'",
        "ucfrep.csv:10: split must be train, val, test; got 'validation'",
        "ucfrep.csv:11: start and end must both be given or both be empty, got '2.0', ''",
        "ucfrep.csv:12: the segment must have 0 <= start < end, got 5, 2",
        "ucfrep.csv:13: start and end must be seconds, got 'a', 'b'",
        "ucfrep.csv:14: PushUps/v_PushUps_g03_c01.avi is listed twice (first at ucfrep.csv:4)",
        "ucfrep.csv:15: PushUps/missing.avi does not exist",
        "ucfrep.csv:16: video must be a path relative to the dataset folder, got '/abs/path.avi'",
        "ucfrep.csv:17: expected 5 fields (video,count,split,start,end), got 3",
    ]
    assert len(index.records) == 4


def test_missing_csv_and_bad_header_raise(tree):
    (tree / "ucfrep.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"ucfrep.csv is missing.*source=") as e:
        index_ucfrep(tree)
    assert "video,count,split" in str(e.value)
    (tree / "ucfrep.csv").write_text("video,count,split,start\nPushUps/v_PushUps_g03_c01.avi,3,train,1\n")
    with pytest.raises(ValueError, match=r"ucfrep.csv:1: the header"):
        index_ucfrep(tree)
