"""Parquet shards + manifest.json from a real generated tree: contents, class mixing, content hash, errors."""

import dataclasses
import hashlib
import io
import json
import re

import decord
import fsspec
import pyarrow.parquet as pq
import pytest

from tubelab.data import shards, storage
from tubelab.data.prepare import PrepareError, shard_index
from tubelab.data.shards import SCHEMA, ManifestError, content_hash, read_manifest, shard_paths
from tubelab.data.synthetic import generate
from tubelab.data.indexers.ucf101 import index_ucf101
from tubelab.data.records import DatasetIndex

CLASSES = ["MoveLeft", "MoveRight", "Spin"]
ENCODE = {"short_side": 32, "fps": 16, "gop": 4, "crf": 28}
TRAIN, TEST, FRAMES = 3, 1, 16


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("src"), train_per_class=TRAIN, test_per_class=TEST, num_frames=FRAMES,
                    width=64, height=48, classes=CLASSES, progress=False)
    return index_ucf101(root)


def write(index, url, encode=ENCODE, max_bad_fraction=0.5):
    card = {"name": "tiny", "encode": encode, "shard_max_videos": 4}
    return shard_index(index, str(url), card=card, shard_max_mb=256, max_bad_fraction=max_bad_fraction)


@pytest.fixture(scope="module")
def built(index, tmp_path_factory):
    url = tmp_path_factory.mktemp("shards") / "tiny"
    return write(index, url), url


def tables(manifest, url, split):
    return [pq.read_table(path) for path in shard_paths(manifest, str(url), split)]


def test_manifest(built, index):
    manifest, url = built
    assert manifest["format"] == shards.FORMAT and manifest["dataset"] == "tiny"
    assert manifest["classes"] == CLASSES and manifest["encode"] == ENCODE and manifest["task"] == "single_label"
    assert manifest["card"] == {"name": "tiny", "encode": ENCODE, "shard_max_videos": 4}
    assert manifest["splits"] == {
        "train": {"videos": 9, "shards": ["train-00000.parquet", "train-00001.parquet", "train-00002.parquet"],
                  "per_class": [TRAIN] * 3, "min_frames": FRAMES, "max_frames": FRAMES},
        "test": {"videos": 3, "shards": ["test-00000.parquet"], "per_class": [TEST] * 3, "min_frames": FRAMES,
                 "max_frames": FRAMES},
    }
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["content_hash"])
    assert json.loads((url / "manifest.json").read_text()) == manifest == read_manifest(str(url))
    assert sorted(p.name for p in url.iterdir()) == sorted(  # nothing else: no temporary files left
        ["manifest.json", "prepare_report.json", "test-00000.parquet", "train-00000.parquet", "train-00001.parquet",
         "train-00002.parquet"])
    report = json.loads((url / "prepare_report.json").read_text())
    assert report["problems"] == [] and report["videos_written"] == 12 and report["shards_written"] == 4


def test_min_frames_follows_the_encode_fps(index, tmp_path):
    manifest = write(index, tmp_path / "fps8", encode={**ENCODE, "fps": 8})
    assert manifest["splits"]["train"]["min_frames"] == FRAMES // 2  # 1 s at 16 fps -> 8 frames at 8 fps
    assert {n for t in tables(manifest, tmp_path / "fps8", "train") for n in t["num_frames"].to_pylist()} == {8}


def test_every_row_decodes_and_matches_its_hash(built, index):
    manifest, url = built
    records = {r.video_id: r for r in index.records}
    for split in ("train", "test"):
        rows = [row for table in tables(manifest, url, split) for row in table.to_pylist()]
        assert len(rows) == manifest["splits"][split]["videos"]
        assert sorted(r["video_id"] for r in rows) == sorted(v for v, r in records.items() if r.split == split)
        for row in rows:
            record = records[row["video_id"]]
            assert (row["label"], row["split"]) == (record.label, split)
            assert (row["width"], row["height"], row["fps"], row["num_frames"]) == (42, 32, 16.0, FRAMES)
            assert row["sha256"] == hashlib.sha256(row["video"]).hexdigest()
            with open(record.path, "rb") as f:
                assert row["source_sha256"] == hashlib.sha256(f.read()).hexdigest()
            reader = decord.VideoReader(io.BytesIO(row["video"]), num_threads=1)
            assert len(reader) == row["num_frames"]
            assert reader.get_batch([0, row["num_frames"] - 1]).asnumpy().shape == (2, 32, 42, 3)
    for table in tables(manifest, url, "train"):
        assert table.schema.equals(SCHEMA)


def test_shards_are_class_mixed(built):
    manifest, url = built
    labels = [t["label"].to_pylist() for t in tables(manifest, url, "train")]
    assert [len(x) for x in labels] == [4, 4, 1]
    assert any(len(set(x)) >= 2 for x in labels)
    order = [v for t in tables(manifest, url, "train") for v in t["video_id"].to_pylist()]
    assert order != sorted(order)  # shuffled, not in list order (MoveLeft..., MoveRight..., Spin...)


def test_content_hash_identifies_the_data(built, index, tmp_path):
    manifest, url = built
    again = write(index, tmp_path / "again")
    assert again["content_hash"] == manifest["content_hash"]
    assert again["splits"] == manifest["splits"]  # the same shuffle: the same videos in the same shards
    ids = [t["video_id"].to_pylist() for t in tables(manifest, url, "train")]
    assert [t["video_id"].to_pylist() for t in tables(again, tmp_path / "again", "train")] == ids

    relabelled = DatasetIndex(index.classes, [dataclasses.replace(r, label=(r.label + 1) % 3)
                                              if r.video_id == "Spin/v_Spin_g01_c01.mp4" else r
                                              for r in index.records])
    assert write(index=relabelled, url=tmp_path / "label")["content_hash"] != manifest["content_hash"]
    assert write(index, tmp_path / "crf", encode={**ENCODE, "crf": 30})["content_hash"] != manifest["content_hash"]


def row(video_id, label, sha, labels=(), count=None, segments=(), cycles=()):
    return {"video_id": video_id, "label": label, "labels": list(labels), "count": count, "source_sha256": sha,
            "segments": list(segments), "cycles": list(cycles)}


def test_content_hash_function():
    rows = {"train-00000.parquet": [row("a/1.mp4", 0, "aa"), row("b/1.mp4", 1, "bb")]}
    h = content_hash(ENCODE, rows)
    assert h == content_hash(dict(reversed(list(ENCODE.items()))), rows)  # key order does not matter
    assert h != content_hash({**ENCODE, "gop": 8}, rows)
    assert h != content_hash(ENCODE, {"train-00000.parquet": [row("a/1.mp4", 0, "aa"), row("b/1.mp4", 1, "cc")]})
    assert h != content_hash(ENCODE, {"train-00000.parquet": [row("a/1.mp4", -1, "aa", labels=[3]), rows["train-00000.parquet"][1]]})
    assert h != content_hash(ENCODE, {"train-00000.parquet": [row("a/1.mp4", 0, "aa", count=3.0), rows["train-00000.parquet"][1]]})
    moved = [{"label": 3, "start": 1.0, "end": 2.0}]  # an action's interval is part of the data
    with_interval = content_hash(ENCODE, {"train-00000.parquet": [row("a/1.mp4", -1, "aa", [3], segments=moved)]})
    moved[0]["end"] = 2.5
    assert with_interval != content_hash(ENCODE, {"train-00000.parquet": [row("a/1.mp4", -1, "aa", [3], segments=moved)]})
    counted = content_hash(ENCODE, {"train-00000.parquet": [row("a/1.mp4", -1, "aa", count=2.0, cycles=[0, 1, 2])]})
    assert counted != content_hash(ENCODE, {"train-00000.parquet": [row("a/1.mp4", -1, "aa", count=2.0,
                                                                        cycles=[0, 1, 2.5])]})
    assert h != content_hash(ENCODE, {"train-00001.parquet": rows["train-00000.parquet"]})
    assert h != content_hash(ENCODE, {"train-00000.parquet": rows["train-00000.parquet"][::-1]})


def test_action_intervals_reach_the_shards_relative_to_the_kept_segment(index, tmp_path):
    """Charades' action intervals (records' segments) go into the shard rows, moved with a trimmed record's
    start; the manifest says the shards have them."""
    a, b = index.records[:2]
    records = [dataclasses.replace(a, label=-1, labels=(0, 2), segments=((2, 0.25, 0.5), (0, 0.0, 0.9))),
               dataclasses.replace(b, label=-1, labels=(1,), segments=((1, 0.5, 0.75),), start=0.25, end=None)]
    manifest = write(DatasetIndex(index.classes, records), tmp_path / "multi")
    assert manifest["task"] == "multi_label" and manifest["action_intervals"] is True
    rows = {r["video_id"]: r for t in tables(manifest, tmp_path / "multi", a.split) for r in t.to_pylist()}
    assert rows[a.video_id]["segments"] == [{"label": 2, "start": 0.25, "end": 0.5}, {"label": 0, "start": 0.0, "end": 0.9}]
    assert rows[b.video_id]["segments"] == [{"label": 1, "start": 0.25, "end": 0.5}]
    assert write(DatasetIndex(index.classes, [a, b]), tmp_path / "single")["action_intervals"] is False


def test_cycle_bounds_reach_the_shards_relative_to_the_kept_segment(index, tmp_path):
    a, b = index.records[:2]
    records = [dataclasses.replace(a, label=-1, count=2.0, cycles=(0.1, 0.4, 0.8)),
               dataclasses.replace(b, label=-1, count=2.0, cycles=(0.3, 0.5, 0.9), start=0.25, end=None)]
    manifest = write(DatasetIndex([], records), tmp_path / "count")
    assert manifest["task"] == "count" and manifest["cycle_bounds"] is True
    rows = {r["video_id"]: r for t in tables(manifest, tmp_path / "count", a.split) for r in t.to_pylist()}
    assert rows[a.video_id]["cycles"] == [0.1, 0.4, 0.8]
    assert rows[b.video_id]["cycles"] == pytest.approx([0.05, 0.25, 0.65])
    records[1] = dataclasses.replace(records[1], cycles=())  # one video without: the counting model cannot train
    assert write(DatasetIndex([], records), tmp_path / "some")["cycle_bounds"] is False


def test_read_manifest_missing(tmp_path):
    with pytest.raises(ManifestError, match="tubelab prepare") as e:
        read_manifest(str(tmp_path))
    assert str(tmp_path) in str(e.value) and isinstance(e.value, ValueError)
    (tmp_path / "train-00000.parquet").write_bytes(b"half written")  # shards without a manifest: incomplete
    with pytest.raises(ManifestError, match="missing or incomplete"):
        read_manifest(str(tmp_path))


def test_shard_paths(built):
    manifest, url = built
    paths = shard_paths(manifest, str(url), "train")
    assert paths == [str(url / name) for name in manifest["splits"]["train"]["shards"]]
    assert shard_paths(manifest, f"file://{url}", "test") == [str(url / "test-00000.parquet")]
    with pytest.raises(ManifestError, match=r"split 'val' is not in the shards of 'tiny'; available: test, train"):
        shard_paths(manifest, str(url), "val")


def test_empty_index_raises(tmp_path):
    index = DatasetIndex(["A"], [], problems=["trainlist01.txt:1: A/x.avi does not exist"])
    with pytest.raises(PrepareError, match=r"no readable videos.*A/x.avi does not exist"):
        write(index, tmp_path / "empty")
    assert not (tmp_path / "empty" / "manifest.json").exists()


def test_problems_are_reported_and_fail_past_the_threshold(index, tmp_path):
    few = DatasetIndex(index.classes, index.records[:2], problems=["testlist01.txt:3: class 'Jump' is not in ..."])
    write(few, tmp_path / "few")  # 1 bad of 3 < 0.5
    report = json.loads((tmp_path / "few" / "prepare_report.json").read_text())
    assert report["problems"] == few.problems and report["bad_fraction"] == pytest.approx(1 / 3)
    with pytest.raises(PrepareError, match=r"(?s)1 of 3 videos are bad \(33.33% > max_bad_fraction 10.00%\).*Jump"):
        write(few, tmp_path / "strict", max_bad_fraction=0.1)
    assert not (tmp_path / "strict" / "manifest.json").exists()  # no manifest: the shards are not usable
    assert (tmp_path / "strict" / "prepare_report.json").exists()


def test_undecodable_videos_are_reported_not_silently_dropped(index, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 10)
    bad = dataclasses.replace(index.records[0], video_id="bad/broken.mp4", path=str(broken))
    manifest = write(DatasetIndex(index.classes, [*index.records, bad]), tmp_path / "withbad")
    report = json.loads((tmp_path / "withbad" / "prepare_report.json").read_text())
    assert len(report["problems"]) == 1 and report["problems"][0].startswith("bad/broken.mp4: cannot be decoded")
    assert sum(v["videos"] for v in manifest["splits"].values()) == len(index.records)


def test_rerun_skips_complete_shards_and_redoes_damaged_ones(index, tmp_path):
    url = tmp_path / "resume"
    write(index, url)
    first = {p.name: p.stat().st_mtime_ns for p in url.glob("*.parquet")}
    (url / "manifest.json").unlink()  # an interrupted prepare: shards without a manifest
    (url / "train-00001.parquet").write_bytes(b"PAR1 truncated")
    again = write(index, url)
    report = json.loads((url / "prepare_report.json").read_text())
    assert (report["shards_reused"], report["shards_written"]) == (3, 1)
    assert {p.name: p.stat().st_mtime_ns for p in url.glob("*.parquet") if p.name != "train-00001.parquet"} == {
        k: v for k, v in first.items() if k != "train-00001.parquet"}
    assert pq.read_table(url / "train-00001.parquet").num_rows == 4
    assert again["splits"]["train"]["videos"] == 9


def test_memory_fsspec_url(built, index):
    manifest, _ = built
    url = "memory://tubelab-test-shards/tiny"
    fs, root = storage.filesystem(url)
    assert type(fs).__name__ == "MemoryFileSystem"
    try:
        written = write(index, url)
        assert written == read_manifest(url) == read_manifest(url + "/")
        assert written["content_hash"] == manifest["content_hash"]  # same sources and settings as on disk
        assert fs.exists(f"{root}/{shards.MANIFEST}")
        paths = shard_paths(written, url, "train")
        assert len(paths) == 3 and all(fs.exists(p) for p in paths)
        table = pq.read_table(paths[0], filesystem=fs)
        assert table.num_rows == 4
        assert table["sha256"].to_pylist() == [hashlib.sha256(v).hexdigest() for v in table["video"].to_pylist()]
    finally:
        fsspec.filesystem("memory").rm(root, recursive=True)
    with pytest.raises(ManifestError, match="memory://tubelab-test-shards/tiny"):
        read_manifest(url)
