"""Kinetics-400 / Mini-Kinetics indexer on tiny official-format trees (flat and class-folder layouts)."""

from pathlib import Path

import pytest

from tubelab.data.indexers import INDEXERS
from tubelab.data.indexers.kinetics import index_kinetics

HEADER = "label,youtube_id,time_start,time_end,split\n"
TRAIN = [  # (label, youtube id, start, end)
    ("abseiling", "aaaaaaaaaaa", 10, 20),
    ("air drumming", "bbbbbbbbbbb", 0, 10),
    ("passing American football (in game)", "c-cccccccc_", 5, 15),
    ("zumba", "ddddddddddd", 100, 110),
    ("abseiling", "eeeeeeeeeee", 1, 11),
]
VAL = [("abseiling", "fffffffffff", 3, 13), ("zumba", "ggggggggggg", 20, 30)]
CLASSES = ["abseiling", "air drumming", "passing American football (in game)", "zumba"]


def clip_id(ytid: str, start: int, end: int) -> str:
    return f"{ytid}_{start:06d}_{end:06d}"


def csv_text(rows) -> str:
    return HEADER + "".join(f'"{label}",{ytid},{s},{e},x\n' for label, ytid, s, e in rows)


def write_tree(root: Path, write_video, class_folders: bool) -> Path:
    (root / "annotations").mkdir(parents=True)
    for split, rows in (("train", TRAIN), ("val", VAL)):
        (root / "annotations" / f"{split}.csv").write_text(csv_text(rows))
        for label, ytid, s, e in rows:
            folder = root / split / (label.replace(" ", "_") if class_folders else "")
            write_video(folder / f"{clip_id(ytid, s, e)}.mp4")
    return root


@pytest.fixture
def flat(tmp_path, write_video):
    return write_tree(tmp_path / "k400", write_video, class_folders=False)


@pytest.mark.parametrize("class_folders", [False, True])
def test_index_both_layouts(tmp_path, write_video, class_folders):
    root = write_tree(tmp_path / "k400", write_video, class_folders)
    index = INDEXERS["kinetics"](root)
    assert index.classes == CLASSES  # sorted unique labels of train.csv
    assert index.problems == []
    got = [(r.video_id, r.split, index.classes[r.label]) for r in index.records]
    assert got == [(clip_id(y, s, e), split, label) for split, rows in (("train", TRAIN), ("val", VAL))
                   for label, y, s, e in rows]
    for r in index.records:
        path = Path(r.path)
        assert path.is_absolute() and path.is_file() and path.stem == r.video_id
        assert (path.parent.name != r.split) == class_folders
        assert r.start is None and r.end is None and r.labels == ()


def test_clip_decodes_with_decord(flat):
    import decord

    record = index_kinetics(flat).records[0]
    reader = decord.VideoReader(record.path, num_threads=1)
    assert len(reader) == 8 and reader[0].asnumpy().shape == (24, 32, 3)


def test_problems_are_reported_with_file_and_line(flat):
    train = flat / "annotations/train.csv"
    train.write_text(train.read_text() + "\n".join([
        "abseiling,hhhhhhhhhhh,0,10,train",              # 7: not on disk
        "abseiling,aaaaaaaaaaa,10,20,train",             # 8: listed twice
        "abseiling,iiiiiiiiiii,zero,10,train",           # 9: unreadable time
        "abseiling,jjjjjjjjjjj,0,10",                    # 10: a field short
        ",kkkkkkkkkkk,0,10,train",                       # 11: no label
        "",                                              # 12: blank lines keep their numbers
        '"abseiling, again",lllllllllll,0,10,train',     # 13: quoted comma: a new class, not on disk
        "abseiling,nnnnnnnnnnn,nan,10,train",            # 14
        "abseiling,ooooooooooo,20,10,train",             # 15: ends before it starts
    ]) + "\n")
    val = flat / "annotations/val.csv"
    val.write_text(val.read_text() + "yoga,mmmmmmmmmmm,0,10,val\n")  # 4: not a train class
    index = index_kinetics(flat)
    assert index.problems == [
        "annotations/train.csv:7: hhhhhhhhhhh_000000_000010.mp4 (or .mkv/.webm/.avi) is not in train/ "
        "(flat or in a class folder)",
        "annotations/train.csv:8: aaaaaaaaaaa_000010_000020 is listed twice (first at annotations/train.csv:2)",
        "annotations/train.csv:9: time_start/time_end must be seconds with 0 <= start <= end, got 'zero', '10'",
        "annotations/train.csv:10: expected 5 fields (label,youtube_id,time_start,time_end,split), got 4",
        "annotations/train.csv:11: the row has no label",
        "annotations/train.csv:13: lllllllllll_000000_000010.mp4 (or .mkv/.webm/.avi) is not in train/ "
        "(flat or in a class folder)",
        "annotations/train.csv:14: time_start/time_end must be seconds with 0 <= start <= end, got 'nan', '10'",
        "annotations/train.csv:15: time_start/time_end must be seconds with 0 <= start <= end, got '20', '10'",
        "annotations/val.csv:4: label 'yoga' is not a class of the train CSV",
    ]
    assert "abseiling, again" in index.classes and len(index.records) == len(TRAIN) + len(VAL)


def test_clip_in_several_class_folders(flat, write_video):
    name = f"{clip_id('aaaaaaaaaaa', 10, 20)}.mp4"
    (flat / "train" / name).unlink()
    write_video(flat / "train/zumba" / name)
    write_video(flat / "train/abseiling" / name)
    record = index_kinetics(flat).records[0]
    assert Path(record.path).parent.name == "abseiling"  # the folder named after the label wins
    (flat / "train/yoga").mkdir()
    (flat / "train/abseiling" / name).rename(flat / "train/yoga" / name)
    index = index_kinetics(flat)
    assert index.problems == [f"annotations/train.csv:2: aaaaaaaaaaa_000010_000020 is in several folders "
                              f"(train/yoga/{name}, train/zumba/{name}), none of them named after 'abseiling'"]
    assert "aaaaaaaaaaa_000010_000020" not in {r.video_id for r in index.records}


def test_mini_kinetics_subset(flat):
    lists = flat / "Mini-Kinetics-200"
    lists.mkdir()
    (lists / "train_ytid_list.txt").write_text("aaaaaaaaaaa\nc-cccccccc_\n\neeeeeeeeeee\nzzzzzzzzzzz\naaaaaaaaaaa\n")
    (lists / "val_ytid_list.txt").write_text("fffffffffff\nggggggggggg\n")
    index = INDEXERS["kinetics"](flat, subset="Mini-Kinetics-200")
    assert index.classes == ["abseiling", "passing American football (in game)"]  # those of the train subset
    assert [(r.video_id[:11], r.split, r.label) for r in index.records] == [
        ("aaaaaaaaaaa", "train", 0), ("c-cccccccc_", "train", 1), ("eeeeeeeeeee", "train", 0),
        ("fffffffffff", "val", 0)]
    assert index.problems == [
        "Mini-Kinetics-200/train_ytid_list.txt:5: youtube id zzzzzzzzzzz is not in annotations/train.csv",
        "Mini-Kinetics-200/train_ytid_list.txt:6: youtube id aaaaaaaaaaa is listed twice",
        "annotations/val.csv:3: label 'zumba' is not a class of the train CSV subset",
    ]
    (lists / "val_ytid_list.txt").unlink()
    with pytest.raises(FileNotFoundError, match="val_ytid_list.txt"):
        index_kinetics(flat, subset=str(lists))  # an absolute folder works too


def test_split_files_and_video_dirs_options(flat):
    (flat / "annotations/train.csv").rename(flat / "kinetics_400_train.csv")
    (flat / "train").rename(flat / "clips")
    index = index_kinetics(flat, split_files={"train": "kinetics_400_train.csv"}, video_dirs={"train": "clips"})
    assert index.problems == [] and index.count("train") == len(TRAIN) and index.count("val") == 0


@pytest.mark.parametrize("name", ["annotations/train.csv", "annotations/val.csv"])
def test_missing_annotation_file_raises(flat, name):
    (flat / name).unlink()
    with pytest.raises(FileNotFoundError, match=name) as e:
        index_kinetics(flat)
    assert "source=" in str(e.value)


def test_missing_video_folder_and_bad_header_raise(flat):
    (flat / "val").rename(flat / "validation")
    with pytest.raises(FileNotFoundError, match=r"val is missing.*video_dirs"):
        index_kinetics(flat)
    (flat / "validation").rename(flat / "val")
    (flat / "annotations/val.csv").write_text("youtube_id,time_start,time_end,split\nfffffffffff,3,13,test\n")
    with pytest.raises(ValueError, match=r"annotations/val.csv:1: .*missing label"):
        index_kinetics(flat)
