"""HMDB51 indexer: the official layout (class folders of .avi, `testTrainMulti_7030_splits/`).

Official download: `hmdb51_org.rar` (51 inner rars, one per class: extract each into `<root>/<class>/`)
and `test_train_splits.rar` (extracts to `testTrainMulti_7030_splits/`). `source=` points at the folder
holding the class folders; the split files are read from `<root>/testTrainMulti_7030_splits/` or, when
that folder has none for the chosen split, from `<root>` itself (option `splits_dir` names another one).

    <root>/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi
    <root>/testTrainMulti_7030_splits/brush_hair_test_split1.txt   "April_09_..._goo_0.avi 1"

Each split file `<class>_test_splitN.txt` lists every video of one class with 1 (train), 2 (test) or
0 (not used in split N: such videos are not indexed and are not a problem).

Classes: the class names of the split files of split N, sorted alphabetically (brush_hair = 0 ...
wave = 50). HMDB51 ships no class-index file; alphabetical order is the usual convention (mmaction2,
torchvision, SEVERE's loaders). Class names contain underscores (`climb_stairs`), so the name is
everything before `_test_splitN.txt`.

Problems (file:line, never dropped): lines that are not "<name>.avi <0|1|2>", videos that are not on
disk, a video listed twice (in one file or in two classes), and a folder of .avi files with no split
file (reported under the split file's name: its videos are in no split).
"""

from __future__ import annotations

import re
from pathlib import Path

from tubelab.data.records import DatasetIndex, VideoRecord

SPLITS_DIR = "testTrainMulti_7030_splits"
SPLIT_NAMES = {"1": "train", "2": "test"}  # "0": not in this split


def _shown(path: Path, root: Path) -> str:
    """The file name problems are reported under: relative to the root when inside it."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _split_files(folder: Path, split: int) -> dict[str, Path]:
    pattern = re.compile(rf"^(.+)_test_split{split}\.txt$")
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            m = pattern.match(path.name)
            if m and path.is_file():
                found[m.group(1)] = path
    return found


def index_hmdb51(root: str | Path, split: int = 1, splits_dir: str | None = None) -> DatasetIndex:
    """Index HMDB51 split `split` (1, 2 or 3): train = lines marked 1, test = lines marked 2.

    `splits_dir`: the folder of the `<class>_test_splitN.txt` files, relative to `root` (or absolute);
    by default `testTrainMulti_7030_splits/`, else `root` itself.
    """
    root = Path(root).expanduser().resolve()
    if split not in (1, 2, 3) or isinstance(split, bool):
        raise ValueError(f"HMDB51 split must be 1, 2 or 3, got {split!r}")
    candidates = [root / splits_dir] if splits_dir else [root / SPLITS_DIR, root]
    files: dict[str, Path] = {}
    for folder in candidates:
        files = _split_files(folder.resolve(), split)
        if files:
            break
    if not files:
        where = " or ".join(str(c) for c in candidates)
        raise FileNotFoundError(
            f"no HMDB51 split files <class>_test_split{split}.txt (e.g. brush_hair_test_split{split}.txt) in "
            f"{where}: extract the official test_train_splits.rar into the dataset folder so that "
            f"{root / SPLITS_DIR} holds them (point `source=` at the folder holding the class folders)"
        )
    classes = sorted(files)
    split_folder = next(iter(files.values())).parent

    problems = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in files):
        videos = sum(1 for _ in folder.glob("*.avi"))
        if videos:  # a class folder without a split file: its videos are in no split
            missing = _shown(split_folder / f"{folder.name}_test_split{split}.txt", root)
            problems.append(f"{missing}: missing, so the {videos} videos in {folder.name}/ are not indexed")

    records = []
    seen: dict[str, str] = {}  # video name -> where it was first listed
    for label, class_name in enumerate(classes):
        split_file = files[class_name]
        shown = _shown(split_file, root)
        for n, line in enumerate(split_file.read_text(errors="replace").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            where = f"{shown}:{n}"
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                problems.append(f"{where}: expected '<name>.avi <0|1|2>', got {line.strip()!r}")
                continue
            name, mark = parts
            if mark == "0":
                continue
            if name in seen:
                problems.append(f"{where}: {name} is listed twice (first at {seen[name]})")
                continue
            seen[name] = where
            rel = f"{class_name}/{name}"
            path = root / class_name / name
            if not path.is_file():
                problems.append(f"{where}: {rel} does not exist")
                continue
            records.append(VideoRecord(video_id=rel, path=str(path), split=SPLIT_NAMES[mark], label=label))
    return DatasetIndex(classes=classes, records=records, problems=problems)
