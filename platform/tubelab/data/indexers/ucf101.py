"""UCF101 indexer: the official layout (class folders, classInd.txt, trainlist0N.txt, testlist0N.txt).

The built-in synthetic dataset is written in this layout too, so it goes through this same code.
Problems (missing list files, lines that point at missing videos, unknown classes) are collected in
the returned index's `problems`, never silently dropped; the caller decides when there are too many.
"""

from __future__ import annotations

from pathlib import Path

from tubelab.data.records import DatasetIndex, VideoRecord


def index_ucf101(root: str | Path, split: int = 1) -> DatasetIndex:
    root = Path(root).expanduser().resolve()  # records carry absolute paths (Ray workers have another cwd)
    if split not in (1, 2, 3):
        raise ValueError(f"UCF101 split must be 1, 2 or 3, got {split!r}")
    class_ind = root / "classInd.txt"
    lists = {"train": root / f"trainlist{split:02d}.txt", "test": root / f"testlist{split:02d}.txt"}
    for path in [class_ind, *lists.values()]:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: a UCF101 tree needs classInd.txt, trainlist0N.txt and testlist0N.txt "
                f"(point `source=` at the folder holding them)"
            )
    classes = []
    for n, line in enumerate(class_ind.read_text().splitlines(), 1):
        if line.strip():
            number, name = line.split()
            if int(number) != len(classes) + 1:
                raise ValueError(f"{class_ind}:{n}: class numbers must run 1, 2, 3, ...; got {number}")
            classes.append(name)
    by_name = {name: i for i, name in enumerate(classes)}

    records, problems = [], []
    for split_name, list_file in lists.items():
        for n, line in enumerate(list_file.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            rel = parts[0]
            class_name = rel.split("/")[0]
            where = f"{list_file.name}:{n}"
            if class_name not in by_name:
                problems.append(f"{where}: class {class_name!r} is not in classInd.txt")
                continue
            label = by_name[class_name]
            if len(parts) > 1 and int(parts[1]) - 1 != label:
                problems.append(f"{where}: label {parts[1]} disagrees with the folder {class_name!r}")
                continue
            path = root / rel
            if not path.is_file():
                problems.append(f"{where}: {rel} does not exist")
                continue
            records.append(VideoRecord(video_id=rel, path=str(path), label=label, split=split_name))
    return DatasetIndex(classes=classes, records=records, problems=problems)
