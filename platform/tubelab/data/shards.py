"""Parquet shards (one row per video, the mp4 bytes in a binary column) and their manifest.json.

Layout under a shard URL (any fsspec URL):
    manifest.json            classes, task, per-split counts and shard lists, encode settings, content hash
    prepare_report.json      every problem found while indexing and encoding
    train-00000.parquet ...  bounded by `shard_max_videos` videos and `shard_max_mb` MB of source video
Each shard carries the key of its plan (videos + encode settings) in its Parquet metadata, so a rerun
can tell a complete, valid shard from a stale or partial one. The manifest is written last: a shard
directory without one is incomplete.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from tubelab.data import storage
from tubelab.data.encode import reencode
from tubelab.data.records import DatasetIndex, VideoRecord

MANIFEST = "manifest.json"
REPORT = "prepare_report.json"
FORMAT = "tubelab-shards/6"  # bump when the shard encoding changes: older shards are then rejected
KEY_METADATA = b"tubelab.shard_key"
SEGMENT = pa.struct([("label", pa.int32()), ("start", pa.float64()), ("end", pa.float64())])
SCHEMA = pa.schema([
    ("video_id", pa.string()),
    ("label", pa.int32()),               # single-label class, -1 for multi-label and counting data
    ("labels", pa.list_(pa.int32())),    # multi-label classes (Charades), [] otherwise
    ("segments", pa.list_(SEGMENT)),     # multi-label: each action's class and seconds in this video, [] otherwise
    ("count", pa.float32()),             # repetition count, null otherwise
    ("cycles", pa.list_(pa.float64())),  # counting: the repetitions' boundaries, seconds in this video, [] otherwise
    ("split", pa.string()),
    ("num_frames", pa.int32()),
    ("fps", pa.float32()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("sha256", pa.string()),             # of the mp4 bytes below: detects corrupted shards
    ("source_sha256", pa.string()),      # of the source file: identifies the data (x264 output varies by CPU)
    ("video", pa.binary()),
])
SUMMARY_COLUMNS = ["video_id", "label", "labels", "segments", "count", "cycles", "num_frames", "source_sha256"]


class ManifestError(ValueError):
    """Missing or inconsistent shards: the message says which and how to rebuild them."""


@dataclass(frozen=True)
class ShardPlan:
    name: str
    split: str
    records: tuple[VideoRecord, ...]

    def key(self, encode: dict) -> str:
        """Identity of what this shard must hold: format, encode settings, and each source as found on disk."""
        h = hashlib.sha256(json.dumps([FORMAT, encode], sort_keys=True).encode())
        for r in self.records:
            st = os.stat(r.path)
            h.update(f"{r}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        return h.hexdigest()


def task_of(index: DatasetIndex) -> str:
    if any(r.count is not None for r in index.records):
        return "count"
    if any(r.labels for r in index.records):
        return "multi_label"
    return "single_label"


def plan_shards(index: DatasetIndex, dataset: str, shard_max_videos: int, shard_max_mb: float) -> list[ShardPlan]:
    """Split each split's records into shards; records are shuffled with a fixed seed so shards are class-mixed
    and the plan is the same on every rerun (resume relies on it)."""
    plans = []
    for split in sorted({r.split for r in index.records}):
        records = sorted((r for r in index.records if r.split == split), key=lambda r: r.video_id)
        random.Random(f"{dataset}/{split}").shuffle(records)
        chunks: list[list[VideoRecord]] = [[]]
        size = 0
        for r in records:
            r_size = os.path.getsize(r.path)
            if chunks[-1] and (len(chunks[-1]) >= shard_max_videos or size + r_size > shard_max_mb * 2**20):
                chunks.append([])
                size = 0
            chunks[-1].append(r)
            size += r_size
        plans += [ShardPlan(f"{split}-{i:05d}.parquet", split, tuple(c)) for i, c in enumerate(chunks) if c]
    return plans


def encode_shard(plan: ShardPlan, encode: dict) -> tuple[pa.Table, list[str]]:
    """Re-encode the plan's videos; those that fail are left out and returned as problems (never silently)."""
    rows = {name: [] for name in SCHEMA.names}
    failures = []
    for r in plan.records:
        try:
            with open(r.path, "rb") as f:
                source = f.read()
            v = reencode(source, short_side=encode["short_side"], fps=encode["fps"], gop=encode["gop"],
                         crf=encode["crf"], start=r.start, end=r.end)
        except (OSError, ValueError, RuntimeError) as e:  # PyAV's errors derive from OSError / ValueError
            failures.append(f"{r.video_id}: cannot be decoded ({type(e).__name__}: {e})")
            continue
        offset = r.start or 0.0  # the shard holds the record's segment from its start: times move with it
        segments = [{"label": c, "start": start - offset, "end": end - offset} for c, start, end in r.segments]
        values = {"video_id": r.video_id, "label": r.label, "labels": list(r.labels), "segments": segments,
                  "count": r.count, "cycles": [t - offset for t in r.cycles],
                  "split": r.split, "num_frames": v.num_frames, "fps": v.fps, "width": v.width, "height": v.height,
                  "sha256": hashlib.sha256(v.data).hexdigest(), "source_sha256": hashlib.sha256(source).hexdigest(),
                  "video": v.data}
        for key, value in values.items():
            rows[key].append(value)
    return pa.table(rows, schema=SCHEMA), failures


def write_shard(fs, path: str, table: pa.Table, key: str) -> None:
    buf = io.BytesIO()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), KEY_METADATA: key.encode()})
    pq.write_table(table, buf, row_group_size=16)
    storage.write_bytes_atomic(fs, path, buf.getvalue())


def read_summary(fs, path: str, key: str) -> pa.Table | None:
    """The shard's rows without the video bytes if it exists, is readable and was built from `key`; else None."""
    if not fs.exists(path):
        return None
    try:
        with fs.open(path, "rb") as f:
            pf = pq.ParquetFile(io.BytesIO(f.read()))
            if (pf.schema_arrow.metadata or {}).get(KEY_METADATA) != key.encode():
                return None
            return pf.read(columns=SUMMARY_COLUMNS)
    except (OSError, pa.ArrowException):
        return None


def build_shard(plan: ShardPlan, encode: dict, url: str, endpoint_url: str | None) -> dict:
    """Encode and write one shard unless a valid one is already there; returns its summary for the manifest."""
    fs, root = storage.filesystem(url, endpoint_url)
    path = f"{root}/{plan.name}"
    key = plan.key(encode)
    summary, failures, reused = read_summary(fs, path, key), [], True
    if summary is None:
        table, failures = encode_shard(plan, encode)
        write_shard(fs, path, table, key)
        summary, reused = table.select(SUMMARY_COLUMNS), False
    else:
        written = set(summary["video_id"].to_pylist())
        failures = [f"{r.video_id}: cannot be decoded (found missing from the shard on resume)"
                    for r in plan.records if r.video_id not in written]
    return {"name": plan.name, "split": plan.split, "rows": summary.to_pylist(), "failures": failures,
            "reused": reused}


def content_hash(encode: dict, shard_rows: dict[str, list[dict]]) -> str:
    """Identity of the prepared data: encode settings and every (shard, video, targets, source sha256).

    It hashes the sources, not the mp4 bytes, so preparing the same sources with the same settings
    gives the same hash on any machine (x264's output bytes depend on the CPU's SIMD paths).
    """
    h = hashlib.sha256(json.dumps([FORMAT, encode], sort_keys=True).encode())
    for shard in sorted(shard_rows):
        for row in shard_rows[shard]:
            # intervals and cycles only for datasets that have them
            extra = "".join(f"\t{row[k]}" for k in ("segments", "cycles") if row.get(k))
            h.update(f"{shard}\t{row['video_id']}\t{row['label']}\t{row['labels']}\t{row['count']}\t"
                     f"{row['source_sha256']}{extra}\n".encode())
    return h.hexdigest()


def make_manifest(dataset: str, index: DatasetIndex, encode: dict, summaries: list[dict], card: dict | None = None) -> dict:
    splits: dict[str, dict] = {}
    for s in sorted(summaries, key=lambda s: s["name"]):
        split = splits.setdefault(s["split"], {"videos": 0, "shards": [], "per_class": [0] * len(index.classes),
                                               "min_frames": None, "max_frames": None})
        if not s["rows"]:
            continue  # every video of this shard failed: the shard file holds no rows and is not listed
        split["shards"].append(s["name"])
        split["videos"] += len(s["rows"])
        for row in s["rows"]:
            for c in (row["labels"] or ([row["label"]] if row["label"] >= 0 else [])):
                split["per_class"][c] += 1
        shortest, longest = (f(row["num_frames"] for row in s["rows"]) for f in (min, max))
        split["min_frames"] = shortest if split["min_frames"] is None else min(split["min_frames"], shortest)
        split["max_frames"] = longest if split["max_frames"] is None else max(split["max_frames"], longest)
    return {
        "format": FORMAT,
        "dataset": dataset,
        "task": task_of(index),
        "action_intervals": any(r.segments for r in index.records),  # clip labels can come from the frames
        "cycle_bounds": bool(index.records) and all(r.cycles for r in index.records),  # the counting model's data
        "classes": index.classes,
        "splits": splits,
        "encode": dict(encode),
        "card": card,  # the resolved dataset config the shards were prepared from
        "content_hash": content_hash(encode, {s["name"]: s["rows"] for s in summaries}),
    }


def write_json(url: str, name: str, data: dict, endpoint_url: str | None = None) -> None:
    fs, root = storage.filesystem(url, endpoint_url)
    storage.write_bytes_atomic(fs, f"{root}/{name}", json.dumps(data, indent=2).encode())


def read_manifest(url: str, endpoint_url: str | None = None, check_format: bool = True) -> dict:
    fs, root = storage.filesystem(url, endpoint_url)
    path = f"{root}/{MANIFEST}"
    if not fs.exists(path):
        raise ManifestError(
            f"no {MANIFEST} at {storage.resolve(url)}: the shards are missing or incomplete; "
            f"build them with `tubelab prepare dataset=NAME source=DIR out={url}`"
        )
    with fs.open(path, "rb") as f:
        manifest = json.load(f)
    if check_format and manifest.get("format") != FORMAT:
        raise ManifestError(f"the shards at {storage.resolve(url)} are in format {manifest.get('format')!r}, this "
                            f"tubelab reads {FORMAT!r}; delete that folder and run `tubelab prepare` again")
    return manifest


def read_split(manifest: dict, url: str, split: str, columns: list[str], endpoint_url: str | None = None) -> pa.Table:
    """`columns` of every shard of a split as one table, read in this process (no Ray)."""
    fs, _ = storage.filesystem(url, endpoint_url)
    tables = []
    for path in shard_paths(manifest, url, split):
        with fs.open(path, "rb") as f:
            tables.append(pq.read_table(f, columns=columns))
    return pa.concat_tables(tables)


def shard_paths(manifest: dict, url: str, split: str) -> list[str]:
    if split not in manifest["splits"]:
        raise ManifestError(
            f"split {split!r} is not in the shards of {manifest['dataset']!r}; "
            f"available: {', '.join(sorted(manifest['splits']))}"
        )
    _, root = storage.filesystem(url)
    return [f"{root}/{name}" for name in manifest["splits"][split]["shards"]]
