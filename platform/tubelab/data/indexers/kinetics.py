"""Kinetics-400 indexer (and Mini-Kinetics-200 through `subset`): the official CSVs and trimmed clips.

Official download: the Kinetics-400 annotation CSVs (`train.csv`, `val.csv`, `test.csv`, header
`label,youtube_id,time_start,time_end,split`) and the 10-second clips, e.g. the CVDF mirror
(github.com/cvdfoundation/kinetics-dataset, `k400/`) or the ActivityNet crawler. `source=` points at
the folder holding:

    <root>/annotations/train.csv          # options `split_files` name other files
    <root>/annotations/val.csv
    <root>/train/<youtube_id>_<start:06d>_<end:06d>.mp4           # flat (CVDF mirror) ...
    <root>/train/<label folder>/<youtube_id>_<start:06d>_<end:06d>.mp4   # ... or one folder per class
    <root>/val/...                        # the same for val (options `video_dirs` name other folders)

Both layouts are searched (the split folder and its direct sub-folders), so any class-folder naming
("air drumming", "air_drumming", ...) works. A clip file may be .mp4, .mkv, .webm or .avi (the crawler
keeps what YouTube served). The clips are already trimmed, so records keep start/end None.

Splits come from the file a row is in (the CSV's own `split` column is not used). video_id is the
official clip id `<youtube_id>_<start:06d>_<end:06d>`, the same in both layouts.
Classes: the sorted unique labels of the train CSV (the usual convention; 400 in the real data).

Mini-Kinetics-200 (Xie et al., "Rethinking spatiotemporal feature learning", the id lists of
github.com/s9xie/Mini-Kinetics-200): `subset` names a folder (relative to the root, or absolute) holding
`<split>_ytid_list.txt` for every split indexed (`train_ytid_list.txt`, `val_ytid_list.txt`: one
youtube id per line). Only rows whose youtube id is in the split's list are indexed (the others are not
a problem), and classes are the sorted labels that occur in the train subset (200 in the real data).

Problems (file:line, never dropped): CSV rows with a missing or unreadable field, clips not on disk (or
found in several class folders but none named after the label), labels not among the train classes,
clip ids listed twice, subset ids listed twice or not in the split's CSV.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from tubelab.data.records import DatasetIndex, VideoRecord

DEFAULT_SPLIT_FILES = {"train": "annotations/train.csv", "val": "annotations/val.csv"}
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi")
REQUIRED_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _read_csv(path: Path, root: Path) -> list[tuple[int, dict[str, str] | str]]:
    """(first line number, row) for every non-blank row, in file order.

    A header without the needed columns raises; a row with another number of fields than the header
    comes back as the problem text instead of a dict.
    """
    shown = _shown(path, root)
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"{shown}:1: the header must name the columns {','.join(REQUIRED_COLUMNS)},split "
                f"(missing {', '.join(missing)}); got {','.join(header)!r}"
            )
        rows: list[tuple[int, dict[str, str] | str]] = []
        line = reader.line_num + 1
        for fields in reader:
            if any(x.strip() for x in fields):
                if len(fields) != len(header):
                    rows.append((line, f"expected {len(header)} fields ({','.join(header)}), got {len(fields)}"))
                else:
                    rows.append((line, {k: v.strip() for k, v in zip(header, fields)}))
            line = reader.line_num + 1
        return rows


def _scan(folder: Path) -> dict[str, list[Path]]:
    """Clip stem -> files, from `folder` and its direct sub-folders (flat and class-folder layouts)."""
    found: dict[str, list[Path]] = {}

    def add(entry: os.DirEntry) -> None:
        stem, ext = os.path.splitext(entry.name)
        if ext.lower() in VIDEO_EXTENSIONS:
            found.setdefault(stem, []).append(Path(entry.path))  # sorted below: scandir order varies

    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                with os.scandir(entry.path) as inner:
                    for sub in inner:
                        if sub.is_file():
                            add(sub)
            elif entry.is_file():
                add(entry)
    return {stem: sorted(paths) for stem, paths in found.items()}


def _folder_names(label: str) -> set[str]:
    """Class-folder spellings used by common Kinetics downloaders."""
    underscored = label.replace(" ", "_")
    return {label, underscored, underscored.replace("(", "").replace(")", "").replace("'", "")}


def _subset_ids(subset: str, root: Path, splits: list[str]) -> dict[str, tuple[Path, list[tuple[int, str]]]]:
    folder = Path(subset).expanduser()
    folder = (folder if folder.is_absolute() else root / folder).resolve()
    out = {}
    for split in splits:
        path = folder / f"{split}_ytid_list.txt"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: a Kinetics subset folder needs <split>_ytid_list.txt (one youtube id a "
                f"line) for every split indexed ({', '.join(f'{s}_ytid_list.txt' for s in splits)}); for "
                f"Mini-Kinetics-200 put the files of github.com/s9xie/Mini-Kinetics-200 in {folder}"
            )
        ids = [(n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
        out[split] = (path, ids)
    return out


def index_kinetics(root: str | Path, split_files: dict[str, str] | None = None, subset: str | None = None,
                   video_dirs: dict[str, str] | None = None) -> DatasetIndex:
    """Index Kinetics clips listed in the official CSVs.

    split_files: split name ("train", "val", "test") -> CSV path relative to `root` (or absolute);
        default {"train": "annotations/train.csv", "val": "annotations/val.csv"}. "train" is required
        (it defines the classes).
    subset: None (all rows), or a folder of `<split>_ytid_list.txt` id lists (Mini-Kinetics-200).
    video_dirs: split name -> folder of its clips relative to `root`; default the split name.
    """
    root = Path(root).expanduser().resolve()
    split_files = dict(split_files or DEFAULT_SPLIT_FILES)
    video_dirs = dict(video_dirs or {})
    if "train" not in split_files:
        raise ValueError(f"Kinetics split_files must include 'train' (it defines the classes), got {split_files}")
    bad = sorted(set(split_files) - {"train", "val", "test"})
    if bad:
        raise ValueError(f"Kinetics split names must be train, val or test; got {bad}")
    csvs = {}
    for split, name in split_files.items():
        path = Path(name).expanduser()
        path = (path if path.is_absolute() else root / path).resolve()
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: a Kinetics tree needs one annotation CSV per split (header "
                f"label,youtube_id,time_start,time_end,split), by default annotations/train.csv and "
                f"annotations/val.csv under the dataset folder (point `source=` at it, or set "
                f"index.split_files to where yours are)"
            )
        csvs[split] = path
    folders = {}
    for split in csvs:
        folder = (root / video_dirs.get(split, split)).resolve()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} is missing: the {split} clips of a Kinetics tree go in {folder} (flat, or in one "
                f"folder per class); point `source=` at the folder holding it, or set index.video_dirs"
            )
        folders[split] = folder
    problems: list[str] = []
    rows = {split: _read_csv(path, root) for split, path in csvs.items()}
    wanted: dict[str, set[str]] | None = None
    if subset is not None:
        wanted = {}
        for split, (path, ids) in _subset_ids(subset, root, list(csvs)).items():
            in_csv = {row["youtube_id"] for _, row in rows[split] if isinstance(row, dict)}
            wanted[split] = set()
            for n, ytid in ids:
                where = f"{_shown(path, root)}:{n}"
                if ytid in wanted[split]:
                    problems.append(f"{where}: youtube id {ytid} is listed twice")
                elif ytid not in in_csv:
                    problems.append(f"{where}: youtube id {ytid} is not in {_shown(csvs[split], root)}")
                wanted[split].add(ytid)

    def selected(split: str, row: dict[str, str]) -> bool:
        return wanted is None or row["youtube_id"] in wanted[split]

    classes = sorted({row["label"] for _, row in rows["train"] if isinstance(row, dict) and selected("train", row)}
                     - {""})
    by_name = {name: i for i, name in enumerate(classes)}

    records = []
    seen: dict[str, str] = {}
    for split, path in csvs.items():
        shown = _shown(path, root)
        on_disk = _scan(folders[split])
        for n, row in rows[split]:
            where = f"{shown}:{n}"
            if isinstance(row, str):
                problems.append(f"{where}: {row}")
                continue
            if not selected(split, row):
                continue
            label_name, ytid = row["label"], row["youtube_id"]
            if not ytid or not label_name:
                problems.append(f"{where}: the row has no {'youtube_id' if not ytid else 'label'}")
                continue
            try:
                start, end = float(row["time_start"]), float(row["time_end"])
            except ValueError:
                start = end = math.nan
            if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
                problems.append(f"{where}: time_start/time_end must be seconds with 0 <= start <= end, got "
                                f"{row['time_start']!r}, {row['time_end']!r}")
                continue
            if label_name not in by_name:
                problems.append(f"{where}: label {label_name!r} is not a class of the train CSV"
                                + (" subset" if wanted is not None else ""))
                continue
            clip_id = f"{ytid}_{int(start):06d}_{int(end):06d}"
            if clip_id in seen:
                problems.append(f"{where}: {clip_id} is listed twice (first at {seen[clip_id]})")
                continue
            seen[clip_id] = where
            found = on_disk.get(clip_id, [])
            if len(found) > 1:
                names = _folder_names(label_name)
                found = [p for p in found if p.parent.name in names] or found
            if not found:
                problems.append(f"{where}: {clip_id}.mp4 (or .mkv/.webm/.avi) is not in "
                                f"{_shown(folders[split], root)}/ (flat or in a class folder)")
                continue
            if len(found) > 1:
                places = ", ".join(_shown(p, root) for p in found)
                problems.append(f"{where}: {clip_id} is in several folders ({places}), "
                                f"none of them named after {label_name!r}")
                continue
            records.append(VideoRecord(video_id=clip_id, path=str(found[0]), split=split, label=by_name[label_name]))
    return DatasetIndex(classes=classes, records=records, problems=problems)
