"""FineGym Gym99 indexer (and the SEVERE subsets FX-S1 / UB-S1): the official element lists and clips.

Official download (sdolivia.github.io/FineGym): the Gym99 lists `gym99_train_element_v1.1.txt` and
`gym99_val_element.txt` (lines "<clip_id> <label>"), optionally `gym99_categories.txt`, and the event
videos, from which the element clips are cut with the official timestamps (finegym_annotation_info
json) into `<clip_id>.mp4`. `source=` points at the folder holding:

    <root>/gym99_train_element_v1.1.txt     # found by the globs gym99_train*.txt / gym99_val*.txt
    <root>/gym99_val_element.txt            # (options train_file / val_file name them exactly)
    <root>/gym99_categories.txt             # optional: class names
    <root>/videos/<clip_id>.mp4             # or <root>/<clip_id>.mp4

Classes: the 99 Gym99 labels 0..98. Names come from gym99_categories.txt when present (lines
"Clabel: <n>; set: <s>; Glabel: <g>; <name>", Clabel n is the class index); otherwise the names are the
label numbers as strings ("0" ... "98").

Splits: the train list -> "train", the val list -> "val" (FineGym publishes no separate test list;
SEVERE evaluates on this val list, so the evaluation code uses "val" as its test split).
video_id is the official clip id. The clips are already cut, so start/end stay None.

Subsets (SEVERE's "actions" factor): subset="fx_s1" keeps Gym99 labels 6..16 (floor exercise, set 1;
11 classes, remapped to 0..10); subset="ub_s1" keeps labels 74..88 (uneven bars, set 1; 15 classes,
remapped to 0..14). Clips with labels outside the subset are not indexed and are not a problem.

Problems (file:line, never dropped): lines that are not "<clip_id> <label>", labels outside 0..98,
clip ids listed twice, clips not on disk.
"""

from __future__ import annotations

import re
from pathlib import Path

from tubelab.data.records import DatasetIndex, VideoRecord

NUM_CLASSES = 99
SUBSETS = {"fx_s1": (6, 16), "ub_s1": (74, 88)}  # inclusive Gym99 label ranges
CATEGORIES = "gym99_categories.txt"
CATEGORY_LINE = re.compile(r"^Clabel:\s*(\d+)\s*;\s*set:\s*(\d+)\s*;\s*Glabel:\s*(\d+)\s*;\s*(.*?)\s*$")


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _list_file(root: Path, split: str, name: str | None) -> Path:
    if name:
        path = Path(name).expanduser()
        path = (path if path.is_absolute() else root / path).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: index.{split}_file must name the Gym99 {split} list "
                                    f"(lines '<clip_id> <label>'), relative to the dataset folder")
        return path
    found = sorted(p for p in root.glob(f"gym99_{split}*.txt") if p.is_file())
    if not found:
        raise FileNotFoundError(
            f"gym99_{split}*.txt is missing in {root}: a Gym99 tree needs the official lists "
            f"gym99_train_element_v1.1.txt and gym99_val_element.txt next to the clips' folder "
            f"(point `source=` at the folder holding them)"
        )
    if len(found) > 1:
        raise ValueError(f"several Gym99 {split} lists match gym99_{split}*.txt in {root}: "
                         f"{', '.join(p.name for p in found)}; choose one with index.{split}_file=NAME")
    return found[0]


def _category_names(path: Path, shown: str) -> list[str]:
    names: dict[int, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        m = CATEGORY_LINE.match(line.strip())
        if not m:
            raise ValueError(f"{shown}:{n}: expected 'Clabel: <n>; set: <s>; Glabel: <g>; <name>', got {line!r}")
        label = int(m.group(1))
        if label in names:
            raise ValueError(f"{shown}:{n}: Clabel {label} is listed twice")
        names[label] = m.group(4)
    if sorted(names) != list(range(NUM_CLASSES)):
        raise ValueError(f"{shown}: Clabels must be 0..{NUM_CLASSES - 1}, each once; got {len(names)} labels")
    return [names[i] for i in range(NUM_CLASSES)]


def index_finegym(root: str | Path, subset: str | None = None, train_file: str | None = None,
                  val_file: str | None = None, video_dir: str | None = None) -> DatasetIndex:
    """Index Gym99 (subset None), FX-S1 (subset "fx_s1") or UB-S1 (subset "ub_s1").

    train_file / val_file: the list files relative to `root`; by default the single match of
        gym99_train*.txt / gym99_val*.txt in `root`.
    video_dir: folder of the `<clip_id>.mp4` clips relative to `root`; by default each clip is looked
        for in `videos/`, then in `root`.
    """
    root = Path(root).expanduser().resolve()
    if subset is not None and subset not in SUBSETS:
        raise ValueError(f"FineGym subset must be None, {' or '.join(repr(s) for s in SUBSETS)}; got {subset!r}")
    lists = {"train": _list_file(root, "train", train_file), "val": _list_file(root, "val", val_file)}
    if video_dir is not None:
        folders = [(root / video_dir).resolve()]
        if not folders[0].is_dir():
            raise FileNotFoundError(f"{folders[0]} is missing: index.video_dir must name the folder of the "
                                    f"<clip_id>.mp4 clips, relative to the dataset folder")
    else:
        folders = [root / "videos", root]
    categories = root / CATEGORIES
    names = _category_names(categories, CATEGORIES) if categories.is_file() else [str(i) for i in range(NUM_CLASSES)]
    low, high = SUBSETS[subset] if subset else (0, NUM_CLASSES - 1)
    classes = names[low:high + 1]

    records, problems = [], []
    seen: dict[str, str] = {}
    for split, path in lists.items():
        shown = _shown(path, root)
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            where = f"{shown}:{n}"
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                problems.append(f"{where}: expected '<clip_id> <label>', got {line.strip()!r}")
                continue
            clip_id, label = parts[0], int(parts[1])
            if not 0 <= label < NUM_CLASSES:
                problems.append(f"{where}: label {label} is not a Gym99 class (0..{NUM_CLASSES - 1})")
                continue
            if not low <= label <= high:
                continue  # outside the subset: not indexed, not a problem
            if clip_id in seen:
                problems.append(f"{where}: {clip_id} is listed twice (first at {seen[clip_id]})")
                continue
            seen[clip_id] = where
            video = next((f / f"{clip_id}.mp4" for f in folders if (f / f"{clip_id}.mp4").is_file()), None)
            if video is None:
                places = " or ".join(_shown(f, root) + "/" for f in folders)
                problems.append(f"{where}: {clip_id}.mp4 is not in {places}")
                continue
            records.append(VideoRecord(video_id=clip_id, path=str(video), split=split, label=label - low))
    return DatasetIndex(classes=classes, records=records, problems=problems)
