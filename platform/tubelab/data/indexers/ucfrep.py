"""Repetition-counting indexer (UCFRep-style, SEVERE's UCF-RC): videos plus one documented CSV.

UCFRep (Zhang et al., "Context-aware and scale-insensitive temporal repetition counting", CVPR 2020)
is 526 UCF101 videos with annotated repetitions, split 421 train / 105 val. Its annotations are not
distributed in one standard file, so tubelab reads this CSV, which the user writes once from the
official annotations (count = number of annotated repetitions of the video or segment):

    <root>/ucfrep.csv                 # option `annotations` names another file
    <root>/<any/relative/path>.avi    # the videos, wherever the CSV's `video` column says

    video,count,split,start,end
    JumpingJack/v_JumpingJack_g01_c01.avi,12,train,,
    JumpingJack/v_JumpingJack_g02_c03.avi,7,val,1.5,9.0

- header: `video,count,split` and optionally both `start,end` (other columns are ignored);
- video: the file's path relative to the CSV's dataset folder (`source=`); absolute paths are refused;
- count: the repetition count, a positive number (fractions allowed, e.g. 6.5 for a half repetition);
- split: train, val or test (UCFRep has train and val: SEVERE reports UCF-RC on val, so the evaluation
  code uses "val" as its test split);
- start, end: optional segment in seconds (both empty = the whole video; 0 <= start < end).

Records: label = -1, labels = (), count = the count (float), start/end as given (None = whole video);
classes = []. video_id is the `video` path, plus "@<start>-<end>" for a segment, so several segments of
one video are distinct records.

Problems (file:line, never dropped; the row is then left out): rows with another number of fields than
the header, empty or absolute video paths, counts that are not numbers or are <= 0, unknown splits,
unreadable or inconsistent start/end, the same video (and segment) listed twice, videos not on disk.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from tubelab.data.records import DatasetIndex, VideoRecord

ANNOTATIONS = "ucfrep.csv"
REQUIRED_COLUMNS = ("video", "count", "split")
SPLITS = ("train", "val", "test")


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _segment(row: dict[str, str]) -> tuple[float | None, float | None]:
    """(start, end) seconds or (None, None); raises ValueError saying what is wrong."""
    start_text, end_text = row.get("start", ""), row.get("end", "")
    if not start_text and not end_text:
        return None, None
    if not start_text or not end_text:
        raise ValueError(f"start and end must both be given or both be empty, got {start_text!r}, {end_text!r}")
    start, end = _number(start_text), _number(end_text)
    if start is None or end is None:
        raise ValueError(f"start and end must be seconds, got {start_text!r}, {end_text!r}")
    if not 0 <= start < end:
        raise ValueError(f"the segment must have 0 <= start < end, got {start_text}, {end_text}")
    return start, end


def index_ucfrep(root: str | Path, annotations: str = ANNOTATIONS) -> DatasetIndex:
    """Index a repetition-counting dataset described by the CSV `annotations` (relative to `root`)."""
    root = Path(root).expanduser().resolve()
    path = Path(annotations).expanduser()
    path = (path if path.is_absolute() else root / path).resolve()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: a repetition-counting tree needs a CSV with the header "
            f"video,count,split[,start,end] (see datasets/README.md), by default {ANNOTATIONS} in the dataset "
            f"folder (point `source=` at it, or set index.annotations)"
        )
    shown = _shown(path, root)
    records, problems = [], []
    seen: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing or (("start" in header) != ("end" in header)):
            raise ValueError(f"{shown}:1: the header must be video,count,split with optional start,end "
                             f"(both or neither); got {','.join(header)!r}")
        line = reader.line_num + 1
        for fields in reader:
            n, line = line, reader.line_num + 1
            if not any(x.strip() for x in fields):
                continue
            where = f"{shown}:{n}"
            if len(fields) != len(header):
                problems.append(f"{where}: expected {len(header)} fields ({','.join(header)}), got {len(fields)}")
                continue
            row = {k: v.strip() for k, v in zip(header, fields)}
            video, count, split = row["video"], _number(row["count"]), row["split"]
            if not video or Path(video).is_absolute():
                problems.append(f"{where}: video must be a path relative to the dataset folder, got {video!r}")
                continue
            if count is None or count <= 0:
                problems.append(f"{where}: count must be a positive number, got {row['count']!r}")
                continue
            if split not in SPLITS:
                problems.append(f"{where}: split must be {', '.join(SPLITS)}; got {split!r}")
                continue
            try:
                start, end = _segment(row)
            except ValueError as e:
                problems.append(f"{where}: {e}")
                continue
            video_id = video if start is None else f"{video}@{start:g}-{end:g}"
            if video_id in seen:
                problems.append(f"{where}: {video_id} is listed twice (first at {seen[video_id]})")
                continue
            seen[video_id] = where
            file = root / video
            if not file.is_file():
                problems.append(f"{where}: {video} does not exist")
                continue
            records.append(VideoRecord(video_id=video_id, path=str(file.resolve()), split=split, label=-1,
                                       count=count, start=start, end=end))
    return DatasetIndex(classes=[], records=records, problems=problems)
