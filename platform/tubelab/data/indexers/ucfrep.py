"""Repetition-counting indexer (UCFRep, SEVERE's UCF-RC): the official `.mat` annotations, or a documented CSV.

UCFRep (Zhang et al., "Context-aware and scale-insensitive temporal repetition counting", CVPR 2020)
is 526 UCF101 videos with every repetition's boundaries annotated, split 421 train / 105 val.

Official layout (`annotations` names a folder; datasets/ucfrep.yaml's default): the unpacked
`ucf526_annotations.zip` beside the UCF101 videos, read as SEVERE's `datasets/ucf_aug.py` reads it:

    <root>/annotations/train/v_JumpingJack_g01_c01.mat    # one struct `label` per video
    <root>/annotations/val/...
    <root>/UCF-101/JumpingJack/v_JumpingJack_g01_c01.avi  # option `videos`; class folder = name[2:-8]

The struct's `temporal_bound` holds the boundary frames b_0..b_N (N repetitions, count = N), numbered as the
official code's extracted frames `image_%05d.jpg` (ffmpeg numbers from 1: option `first_frame`); a boundary
is kept in seconds, (b - first_frame) / the video's frame rate. Every file is checked against itself:
`start_frame` = b_0, `end_frame` = b_N, `duration` = b_N - b_0 + 1, and the shipped per-frame
`offset_next_estimate` / `offset_pre_estimate` must equal what `label_interpolation_v1.m` makes of the
boundaries (data.cycles.cycle_offsets), since training rebuilds them from the boundaries at the shards' rate.

CSV layout (`annotations` names a file; the synthetic proxy writes it):

    <root>/ucfrep.csv                 # option `annotations` names another file
    <root>/<any/relative/path>.avi    # the videos, wherever the CSV's `video` column says

    video,count,split,start,end,cycles
    JumpingJack/v_JumpingJack_g01_c01.avi,3,train,,,0.4 1.2 2.0 2.9
    JumpingJack/v_JumpingJack_g02_c03.avi,7,val,1.5,9.0,

- header: `video,count,split`, optionally both `start,end`, optionally `cycles` (other columns are ignored);
- video: the file's path relative to the CSV's dataset folder (`source=`); absolute paths are refused;
- count: the repetition count, a positive number (fractions allowed, e.g. 6.5 for a half repetition);
- split: train, val or test (UCFRep has train and val: SEVERE reports UCF-RC on val);
- start, end: optional segment in seconds (both empty = the whole video; 0 <= start < end);
- cycles: optional boundaries in seconds from the video file's start, space-separated, increasing, at least
  three (two repetitions), inside the segment; then count must be their number - 1. The counting model
  (setting.counting=context) needs them.

Records: label = -1, labels = (), count = the count (float), cycles = the boundaries (seconds), start/end as
given (None = whole video); classes = []. video_id is the `video` path (official layout: <class>/<name>.avi),
plus "@<start>-<end>" for a CSV segment, so several segments of one video are distinct records.

Problems (file[:line], never dropped; the video is then left out): CSV rows with another number of fields than
the header, empty or absolute video paths, counts that are not numbers or are <= 0, unknown splits,
unreadable or inconsistent start/end or cycles, the same video (and segment) listed twice, videos not on
disk; `.mat` files that cannot be read, lack a field, have fewer than three boundaries (the official loader
drops those silently) or disagree with themselves.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from tubelab.data.cycles import MIN_BOUNDARIES, cycle_offsets
from tubelab.data.records import DatasetIndex, VideoRecord

ANNOTATIONS = "ucfrep.csv"
REQUIRED_COLUMNS = ("video", "count", "split")
SPLITS = ("train", "val", "test")
MAT_SPLITS = ("train", "val")  # the official annotation folders
MAT_FIELDS = ("duration", "start_frame", "end_frame", "offset_next_estimate", "offset_pre_estimate",
              "temporal_bound")


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


def _cycles(row: dict[str, str], count: float, start: float | None, end: float | None) -> tuple[float, ...]:
    """The row's cycle boundaries (seconds) or (); raises ValueError saying what is wrong."""
    text = row.get("cycles", "")
    if not text:
        return ()
    times = [_number(x) for x in text.split()]
    if any(t is None for t in times):
        raise ValueError(f"cycles must be seconds separated by spaces, got {text!r}")
    if len(times) < MIN_BOUNDARIES or any(b <= a for a, b in zip(times, times[1:])) or times[0] < 0:
        raise ValueError(f"cycles must be at least {MIN_BOUNDARIES} increasing boundaries (two repetitions) "
                         f">= 0, got {text!r}")
    if start is not None and not (start <= times[0] and times[-1] <= end):
        raise ValueError(f"cycles {text!r} must lie inside the segment {start:g}-{end:g}")
    if count != len(times) - 1:
        raise ValueError(f"count {count:g} must be the number of cycles, {len(times) - 1} for {len(times)} "
                         f"boundaries")
    return tuple(times)


def index_ucfrep(root: str | Path, annotations: str = ANNOTATIONS, videos: str = "UCF-101",
                 first_frame: int = 1) -> DatasetIndex:
    """Index a repetition-counting dataset: the official `.mat` annotations when `annotations` (relative to
    `root`) is a folder, with the videos under `videos`; else the CSV `annotations`."""
    root = Path(root).expanduser().resolve()
    path = Path(annotations).expanduser()
    path = (path if path.is_absolute() else root / path).resolve()
    if path.is_dir():
        return _index_mat(root, path, (path if Path(videos).is_absolute() else root / videos).resolve(),
                          first_frame)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: a repetition-counting tree needs the official annotations folder (train/ and "
            f"val/ of .mat files) or a CSV with the header video,count,split[,start,end][,cycles] (see "
            f"datasets/README.md); point `source=` at the dataset folder, or set index.annotations"
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
                cycles = _cycles(row, count, start, end)
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
                                       count=count, cycles=cycles, start=start, end=end))
    return DatasetIndex(classes=[], records=records, problems=problems)


def _frame_rate(file: Path) -> float:
    import av  # here: only the official layout needs a video's own rate

    with av.open(str(file)) as container:
        rate = container.streams.video[0].average_rate
    if not rate:
        raise ValueError("its frame rate is unknown")
    return float(rate)


def _read_mat(file: Path) -> list[int]:
    """The boundary frames of one official annotation file, after checking it against itself."""
    from scipy.io import loadmat  # here: only the official layout needs scipy (the official loader's reader)

    try:
        label = loadmat(str(file))["label"][0, 0]
    except Exception as e:  # scipy raises many types for a bad file
        raise ValueError(f"cannot be read as the official struct `label` ({type(e).__name__}: {e})") from None
    missing = [f for f in MAT_FIELDS if f not in (label.dtype.names or ())]
    if missing:
        raise ValueError(f"lacks the field(s) {', '.join(missing)}")
    bounds = [int(b) for b in np.asarray(label["temporal_bound"]).ravel()]
    if len(bounds) < MIN_BOUNDARIES or any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise ValueError(f"temporal_bound must be at least {MIN_BOUNDARIES} increasing frames (two repetitions), "
                         f"got {bounds}")
    scalar = {f: int(np.asarray(label[f]).ravel()[0]) for f in ("duration", "start_frame", "end_frame")}
    expected = {"duration": bounds[-1] - bounds[0] + 1, "start_frame": bounds[0], "end_frame": bounds[-1]}
    for f, value in expected.items():
        if scalar[f] != value:
            raise ValueError(f"{f} is {scalar[f]}, its temporal_bound {bounds} gives {value}")
    for f, made in zip(("offset_next_estimate", "offset_pre_estimate"), cycle_offsets(bounds)):
        shipped = np.asarray(label[f]).ravel().astype(np.int64)
        if shipped.shape != made.shape or (shipped != made).any():
            at = int(np.argmax(shipped != made)) if shipped.shape == made.shape else None
            raise ValueError(f"{f} is not what label_interpolation_v1.m makes of its temporal_bound "
                             + (f"(length {len(shipped)}, expected {len(made)})" if at is None else
                                f"(frame {bounds[0] + at}: {shipped[at]}, expected {made[at]})"))
    return bounds


def _index_mat(root: Path, folder: Path, video_root: Path, first_frame: int) -> DatasetIndex:
    """The official layout: every `<folder>/<split>/<name>.mat` (sorted, as the official loader lists them)."""
    splits = [s for s in MAT_SPLITS if (folder / s).is_dir()]
    if not splits:
        raise FileNotFoundError(f"{folder} holds no {' or '.join(MAT_SPLITS)} folder of .mat files: unpack the "
                                f"official ucf526_annotations.zip there (datasets/README.md)")
    records, problems = [], []
    for split in splits:
        for file in sorted((folder / split).glob("*.mat")):
            name, where = file.stem, _shown(file, root)
            video_id = f"{name[2:-8]}/{name}.avi"  # the class folder, as RC/datasets/ucf_aug.py:93 derives it
            video = video_root / video_id
            try:
                bounds = _read_mat(file)
                if not video.is_file():
                    raise ValueError(f"its video {_shown(video, root)} does not exist")
                fps = _frame_rate(video)
            except (ValueError, OSError) as e:
                problems.append(f"{where}: {e}")
                continue
            records.append(VideoRecord(video_id=video_id, path=str(video), split=split, label=-1,
                                       count=float(len(bounds) - 1),
                                       cycles=tuple((b - first_frame) / fps for b in bounds)))
    return DatasetIndex(classes=[], records=records, problems=problems)
