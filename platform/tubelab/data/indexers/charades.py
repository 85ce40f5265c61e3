"""Charades indexer (multi-label): the official Charades_v1 CSVs, class list and `<id>.mp4` videos.

Official download (prior.allenai.org/projects/charades): `Charades.zip` (annotations, extracts to
`Charades/`: Charades_v1_train.csv, Charades_v1_test.csv, Charades_v1_classes.txt, ...) and
`Charades_v1_480.zip` (videos scaled to 480p, extracts to `Charades_v1_480/<id>.mp4`). `source=` points
at the folder holding both:

    <root>/Charades_v1_train.csv, Charades_v1_test.csv, Charades_v1_classes.txt   # or in <root>/Charades/
    <root>/Charades_v1_480/46GP8.mp4                                            # or <root>/46GP8.mp4

Classes: Charades_v1_classes.txt, lines "c000 Holding some clothes"; class index = the number of the
code (c000 = 0 ... c156 = 156; 157 in the real data), codes must run c000, c001, ... in order.

The CSVs have a header naming at least the columns `id` and `actions`
(id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length); `actions` is
"c092 11.90 21.20;c147 0.00 12.60" (class code, start and end second of each action) or empty.
Each record is the whole video (start/end None): label = -1, labels = the sorted class indices of its
actions, each once (an action that occurs twice counts once), segments = every action as (class, start,
end) in file order: SEVERE's training clips are labelled with the actions of their own frames
(data.decode.active_classes). A video with an empty `actions` field is still listed, with labels = ()
(an all-negative example for every class).

Splits: Charades_v1_train.csv -> "train", Charades_v1_test.csv -> "test" (the official evaluation
set; SEVERE reports mAP on it). video_id is the official id (e.g. "46GP8").

Problems (file:line, never dropped; the video is then left out): rows with another number of fields
than the header, actions that are not "cNNN start end", class codes not in the class list, ids
listed twice, videos not on disk.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from tubelab.data.records import DatasetIndex, VideoRecord

SPLIT_FILES = {"train": "Charades_v1_train.csv", "test": "Charades_v1_test.csv"}
CLASSES_FILE = "Charades_v1_classes.txt"
VIDEO_DIR = "Charades_v1_480"
ANNOTATION_DIR = "Charades"
CODE = re.compile(r"^c(\d{3})$")


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _find(root: Path, name: str) -> Path:
    for folder in (root, root / ANNOTATION_DIR):
        if (folder / name).is_file():
            return (folder / name).resolve()
    raise FileNotFoundError(
        f"{name} is missing (looked in {root} and {root / ANNOTATION_DIR}): a Charades tree needs "
        f"{', '.join([*SPLIT_FILES.values(), CLASSES_FILE])} from the official Charades.zip, at the dataset "
        f"folder or in its Charades/ folder (point `source=` at the folder holding them)"
    )


def _classes(path: Path, shown: str) -> list[str]:
    classes = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        m = CODE.match(parts[0])
        if not m or len(parts) != 2:
            raise ValueError(f"{shown}:{n}: expected 'cNNN <class name>', got {line!r}")
        if int(m.group(1)) != len(classes):
            raise ValueError(f"{shown}:{n}: class codes must run c000, c001, ...; got {parts[0]}")
        classes.append(parts[1].strip())
    return classes


def _segments(actions: str, num_classes: int) -> tuple[tuple[int, float, float], ...]:
    """ "c092 11.90 21.20;c147 0.00 12.60" -> ((92, 11.9, 21.2), (147, 0.0, 12.6)); raises ValueError saying
    what is wrong."""
    segments = []
    for action in actions.split(";"):
        parts = action.split()
        if not parts:
            continue
        m = CODE.match(parts[0])
        if len(parts) != 3 or not m:
            raise ValueError(f"action {action.strip()!r} is not 'cNNN start end'")
        try:
            start, end = float(parts[1]), float(parts[2])
        except ValueError:
            raise ValueError(f"action {action.strip()!r}: start and end must be seconds") from None
        if int(m.group(1)) >= num_classes:
            raise ValueError(f"class {parts[0]} is not in {CLASSES_FILE}")
        segments.append((int(m.group(1)), start, end))
    return tuple(segments)


def _read_csv(path: Path, shown: str) -> list[tuple[int, dict[str, str] | str]]:
    """(first line number, row) per non-blank row, in file order; a malformed row comes as its problem."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in ("id", "actions") if c not in header]
        if missing:
            raise ValueError(f"{shown}:1: the header must name the columns id and actions "
                             f"(missing {', '.join(missing)}); got {','.join(header)!r}")
        rows: list[tuple[int, dict[str, str] | str]] = []
        line = reader.line_num + 1
        for fields in reader:
            if any(x.strip() for x in fields):
                if len(fields) != len(header):
                    rows.append((line, f"expected {len(header)} fields, got {len(fields)}"))
                else:
                    rows.append((line, {k: v.strip() for k, v in zip(header, fields)}))
            line = reader.line_num + 1
        return rows


def index_charades(root: str | Path, video_dir: str | None = None) -> DatasetIndex:
    """Index Charades train and test, one multi-label record per video.

    video_dir: folder of the `<id>.mp4` videos relative to `root`; by default each video is looked for
        in `Charades_v1_480/`, then in `root`.
    """
    root = Path(root).expanduser().resolve()
    classes_path = _find(root, CLASSES_FILE)
    csvs = {split: _find(root, name) for split, name in SPLIT_FILES.items()}
    if video_dir is not None:
        folders = [(root / video_dir).resolve()]
        if not folders[0].is_dir():
            raise FileNotFoundError(f"{folders[0]} is missing: index.video_dir must name the folder of the "
                                    f"<id>.mp4 videos, relative to the dataset folder")
    else:
        folders = [root / VIDEO_DIR, root]
    classes = _classes(classes_path, _shown(classes_path, root))

    records, problems = [], []
    seen: dict[str, str] = {}
    for split, path in csvs.items():
        shown = _shown(path, root)
        for line, row in _read_csv(path, shown):
            where = f"{shown}:{line}"
            if isinstance(row, str):
                problems.append(f"{where}: {row}")
                continue
            video_id = row["id"]
            if not video_id:
                problems.append(f"{where}: the row has no id")
                continue
            try:
                segments = _segments(row["actions"], len(classes))
            except ValueError as e:
                problems.append(f"{where}: {e}")
                continue
            if video_id in seen:
                problems.append(f"{where}: id {video_id} is listed twice (first at {seen[video_id]})")
                continue
            seen[video_id] = where
            video = next((f / f"{video_id}.mp4" for f in folders if (f / f"{video_id}.mp4").is_file()), None)
            if video is None:
                places = " or ".join(_shown(f, root) + "/" for f in folders)
                problems.append(f"{where}: {video_id}.mp4 is not in {places}")
                continue
            records.append(VideoRecord(video_id=video_id, path=str(video), split=split, label=-1,
                                       labels=tuple(sorted({c for c, _, _ in segments})), segments=segments))
    return DatasetIndex(classes=classes, records=records, problems=problems)
