"""Repetition-counting (UCFRep-style) indexer: the documented CSV, counts, segments and problems."""

from pathlib import Path

import numpy as np
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


def test_csv_cycles(tree):
    (tree / "ucfrep.csv").write_text("\n".join([
        "video,count,split,start,end,cycles",
        "PushUps/v_PushUps_g03_c01.avi,3,train,,,0.1 0.2 0.35 0.45",
        "JumpingJack/v_JumpingJack_g01_c01.avi,2,val,0.1,0.4,0.1 0.2 0.3",
        "JumpingJack/v_JumpingJack_g02_c03.avi,4,val,,,",                       # 4: no cycles: allowed
        "JumpingJack/v_JumpingJack_g02_c03.avi,3,val,0,1,0.1 0.2 0.3",          # 5: count is not cycles
        "JumpingJack/v_JumpingJack_g02_c03.avi,1,val,1,2,0.1 0.2",              # 6: one repetition
        "JumpingJack/v_JumpingJack_g02_c03.avi,2,val,2,3,0.1 0.3 0.2",          # 7: not increasing
        "JumpingJack/v_JumpingJack_g02_c03.avi,2,val,0.15,0.5,0.1 0.2 0.3",     # 8: outside the segment
        "JumpingJack/v_JumpingJack_g02_c03.avi,2,val,3,4,0.1 x 0.3",            # 9: not seconds
    ]) + "\n")
    index = index_ucfrep(tree)
    assert [(r.video_id, r.count, r.cycles) for r in index.records] == [
        ("PushUps/v_PushUps_g03_c01.avi", 3.0, (0.1, 0.2, 0.35, 0.45)),
        ("JumpingJack/v_JumpingJack_g01_c01.avi@0.1-0.4", 2.0, (0.1, 0.2, 0.3)),
        ("JumpingJack/v_JumpingJack_g02_c03.avi", 4.0, ()),
    ]
    assert [p.split(": ", 1)[0] for p in index.problems] == [f"ucfrep.csv:{n}" for n in range(5, 10)]
    assert "count 3 must be the number of cycles, 2" in index.problems[0]
    assert all("cycles" in p for p in index.problems)


def _mat_label(bounds, **changes):
    """The struct label_interpolation_v1.m saves, as scipy writes MATLAB structs."""
    from tubelab.data.cycles import cycle_offsets

    nxt, pre = cycle_offsets(bounds)
    label = {"duration": bounds[-1] - bounds[0] + 1, "start_frame": bounds[0], "end_frame": bounds[-1],
             "temporal_bound_num": len(bounds), "temporal_bound": np.array(bounds, float).reshape(-1, 1),
             "offset_next_estimate": nxt.reshape(1, -1), "offset_pre_estimate": pre.reshape(1, -1)}
    label.update(changes)
    return {k: v for k, v in label.items() if v is not None}


def test_official_mat_annotations(tmp_path, write_video):
    from scipy.io import savemat

    root = tmp_path / "ucf526"
    names = {"train": ["v_JumpingJack_g01_c01", "v_PushUps_g03_c01"], "val": ["v_JumpingJack_g02_c03"]}
    bounds = {"v_JumpingJack_g01_c01": [1, 3, 5, 8], "v_PushUps_g03_c01": [2, 4, 7], "v_JumpingJack_g02_c03": [1, 4, 8]}
    for split, videos in names.items():
        (root / "annotations" / split).mkdir(parents=True)
        for name in videos:
            savemat(root / "annotations" / split / f"{name}.mat", {"label": _mat_label(bounds[name])})
            write_video(root / "UCF-101" / name[2:-8] / f"{name}.avi")
    bad = {  # each a problem, left out with its reason
        "v_Bad_g01_c01": {"label": _mat_label([1, 5])},                                   # one repetition
        "v_Bad_g02_c01": {"label": _mat_label([1, 3, 5], start_frame=2)},                 # inconsistent
        "v_Bad_g03_c01": {"label": _mat_label([1, 3, 5], offset_pre_estimate=np.zeros((1, 5)))},
        "v_Bad_g04_c01": {"label": _mat_label([1, 3, 5], duration=None)},                 # a field missing
        "v_Bad_g05_c01": {"label": _mat_label([1, 3, 5])},                                # no video
    }
    for name, content in bad.items():
        savemat(root / "annotations" / "train" / f"{name}.mat", content)
        if name != "v_Bad_g05_c01":
            write_video(root / "UCF-101" / "Bad" / f"{name}.avi")
    (root / "annotations" / "train" / "v_Bad_g06_c01.mat").write_bytes(b"not a mat file")
    index = INDEXERS["ucfrep"](root, annotations="annotations")
    assert [(r.video_id, r.split, r.count) for r in index.records] == [
        ("JumpingJack/v_JumpingJack_g01_c01.avi", "train", 3.0),
        ("PushUps/v_PushUps_g03_c01.avi", "train", 2.0),
        ("JumpingJack/v_JumpingJack_g02_c03.avi", "val", 2.0),
    ]
    # frame b (numbered from 1, as the official extracted frames) at (b - 1) / fps; the tiny videos run at 16 fps
    assert index.records[0].cycles == pytest.approx([0 / 16, 2 / 16, 4 / 16, 7 / 16])
    assert index.records[0].path == str(root / "UCF-101" / "JumpingJack" / "v_JumpingJack_g01_c01.avi")
    problems = dict(p.split(": ", 1) for p in index.problems)
    where = "annotations/train/v_Bad_g0{}_c01.mat"
    assert "at least 3 increasing frames" in problems[where.format(1)]
    assert "start_frame is 2, its temporal_bound [1, 3, 5] gives 1" in problems[where.format(2)]
    assert "offset_pre_estimate is not what label_interpolation_v1.m makes" in problems[where.format(3)]
    assert "lacks the field(s) duration" in problems[where.format(4)]
    assert "UCF-101/Bad/v_Bad_g05_c01.avi does not exist" in problems[where.format(5)]
    assert "cannot be read" in problems[where.format(6)]
    assert len(problems) == 6
    assert INDEXERS["ucfrep"](root, annotations="annotations", first_frame=0).records[0].cycles[0] == 1 / 16
    with pytest.raises(FileNotFoundError, match="ucf526_annotations.zip"):
        index_ucfrep(root / "UCF-101", annotations=".")
