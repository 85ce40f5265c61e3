"""Parquet shards (one row per video, the mp4 bytes in a binary column) and their manifest.json.

Layout under a shard URL (any fsspec URL):
    manifest.json            classes, per-split counts and shard lists, encode settings, content hash
    train-00000.parquet ...  one file per `shard_max_videos` videos of a split
The manifest is written last: a shard directory without one is incomplete.
"""

from __future__ import annotations

import hashlib
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from tubelab.data import storage
from tubelab.data.encode import reencode
from tubelab.data.records import DatasetIndex, VideoRecord

MANIFEST = "manifest.json"
FORMAT = "tubelab-shards/2"  # bump when the shard encoding changes: older shards are then rejected
SCHEMA = pa.schema([
    ("video_id", pa.string()),
    ("label", pa.int32()),
    ("split", pa.string()),
    ("num_frames", pa.int32()),
    ("fps", pa.float32()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("sha256", pa.string()),         # of the mp4 bytes below: detects corrupted shards
    ("source_sha256", pa.string()),  # of the source file: identifies the data (x264 output can vary by CPU)
    ("video", pa.binary()),
])


class ManifestError(ValueError):
    """Missing or inconsistent shards: the message says which and how to rebuild them."""


def encode_shard(records: list[VideoRecord], encode: dict) -> pa.Table:
    rows = {name: [] for name in SCHEMA.names}
    for r in records:
        with open(r.path, "rb") as f:
            source = f.read()
        v = reencode(source, short_side=encode["short_side"], fps=encode["fps"], gop=encode["gop"], crf=encode["crf"])
        for key, value in (("video_id", r.video_id), ("label", r.label), ("split", r.split),
                           ("num_frames", v.num_frames), ("fps", v.fps), ("width", v.width),
                           ("height", v.height), ("sha256", hashlib.sha256(v.data).hexdigest()),
                           ("source_sha256", hashlib.sha256(source).hexdigest()), ("video", v.data)):
            rows[key].append(value)
    return pa.table(rows, schema=SCHEMA)


def content_hash(encode: dict, shard_rows: dict[str, list[tuple[str, int, str]]]) -> str:
    """Identity of the prepared data: encode settings and every (shard, video id, label, source sha256).

    It hashes the sources, not the mp4 bytes, so preparing the same sources with the same settings
    gives the same hash on any machine (x264's output bytes depend on the CPU's SIMD paths).
    """
    h = hashlib.sha256(json.dumps(encode, sort_keys=True).encode())
    for shard in sorted(shard_rows):
        for video_id, label, sha in shard_rows[shard]:
            h.update(f"{shard}\t{video_id}\t{label}\t{sha}\n".encode())
    return h.hexdigest()


def write_shards(index: DatasetIndex, url: str, *, dataset: str, encode: dict, shard_max_videos: int,
                 endpoint_url: str | None = None, progress: bool = True) -> dict:
    """Encode every record of `index` into shards under `url` and write the manifest; returns it."""
    if not index.records:
        raise ManifestError(f"dataset {dataset!r} has no readable videos; problems: {index.problems[:5]}")
    fs, root = storage.filesystem(url, endpoint_url)
    fs.makedirs(root, exist_ok=True)
    splits: dict[str, dict] = {}
    shard_rows: dict[str, list] = {}
    min_frames: dict[str, int] = {}
    bar = tqdm(total=len(index.records), desc=f"encode {dataset}", unit="video", disable=not progress)
    for split in sorted({r.split for r in index.records}):
        records = [r for r in index.records if r.split == split]
        random.Random(f"{dataset}/{split}").shuffle(records)  # class-mixed shards, same order every time
        names = []
        for i in range(0, len(records), shard_max_videos):
            chunk = records[i:i + shard_max_videos]
            table = encode_shard(chunk, encode)
            name = f"{split}-{i // shard_max_videos:05d}.parquet"
            buf = io.BytesIO()
            pq.write_table(table, buf, row_group_size=16)
            storage.write_bytes_atomic(fs, f"{root}/{name}", buf.getvalue())
            names.append(name)
            min_frames[split] = min(min_frames.get(split, 1 << 30), min(table["num_frames"].to_pylist()))
            shard_rows[name] = list(zip(table["video_id"].to_pylist(), table["label"].to_pylist(),
                                        table["source_sha256"].to_pylist()))
            bar.update(len(chunk))
        per_class = [0] * len(index.classes)
        for r in records:
            per_class[r.label] += 1
        splits[split] = {"videos": len(records), "shards": names, "per_class": per_class,
                         "min_frames": min_frames[split]}
    bar.close()
    manifest = {
        "format": FORMAT,
        "dataset": dataset,
        "classes": index.classes,
        "splits": splits,
        "encode": dict(encode),
        "problems": index.problems,
        "content_hash": content_hash(encode, shard_rows),
    }
    storage.write_bytes_atomic(fs, f"{root}/{MANIFEST}", json.dumps(manifest, indent=2).encode())
    return manifest


def read_manifest(url: str, endpoint_url: str | None = None) -> dict:
    fs, root = storage.filesystem(url, endpoint_url)
    path = f"{root}/{MANIFEST}"
    if not fs.exists(path):
        raise ManifestError(
            f"no {MANIFEST} at {storage.resolve(url)}: the shards are missing or incomplete; "
            f"build them with `tubelab prepare dataset=NAME source=DIR out={url}`"
        )
    with fs.open(path, "rb") as f:
        return json.load(f)


def shard_paths(manifest: dict, url: str, split: str) -> list[str]:
    if split not in manifest["splits"]:
        raise ManifestError(
            f"split {split!r} is not in the shards of {manifest['dataset']!r}; "
            f"available: {', '.join(sorted(manifest['splits']))}"
        )
    _, root = storage.filesystem(url)
    return [f"{root}/{name}" for name in manifest["splits"][split]["shards"]]
