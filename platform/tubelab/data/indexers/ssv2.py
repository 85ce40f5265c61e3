"""Something-Something v2 indexer: the official labels/*.json and `20bn-something-something-v2/<id>.webm`.

Official download (Qualcomm / 20BN): the video parts `20bn-something-something-v2-??` (concatenated and
extracted they give `20bn-something-something-v2/<id>.webm`) and the label package (`labels/` with
labels.json, train.json, validation.json, test.json). `source=` points at the folder holding both:

    <root>/labels.json, train.json, validation.json   # at the root or in <root>/labels/
    <root>/20bn-something-something-v2/78687.webm     # or <root>/78687.webm (option `video_dir`)

labels.json maps each template (brackets removed) to its class index as a string:
{"Approaching something with your camera": "0", ...}; classes are listed in that index order (174 in
the real data). train.json / validation.json are lists of {"id", "label", "template", "placeholders"}.
The class of an entry is its `template` without the square brackets ("Putting [something] on a
surface" -> "Putting something on a surface"), looked up in labels.json; `label` (the filled-in
caption, "Putting a book on a surface") is not used.

Splits: train.json -> "train", validation.json -> "val". SEVERE (and most papers) report results on
this validation set because the test labels are withheld: the evaluation code uses "val" as its test
split. test.json (ids only, no labels) is not indexed. video_id is the official numeric id (a string).

Problems (file:line, the line where the entry starts; never dropped): entries without an id or a
template, templates not in labels.json, ids listed twice, videos not on disk, and a JSON syntax error
(reported at its line; the rest of that file cannot be read).
"""

from __future__ import annotations

import json
from pathlib import Path

from tubelab.data.records import DatasetIndex, VideoRecord

VIDEO_DIR = "20bn-something-something-v2"
SPLIT_FILES = {"train": "train.json", "val": "validation.json"}


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def class_name(template: str) -> str:
    """ "Putting [something] on a surface" -> "Putting something on a surface" (labels.json's key)."""
    return template.replace("[", "").replace("]", "")


def _find(root: Path, labels_dir: str | None, name: str) -> Path:
    candidates = [root / labels_dir] if labels_dir else [root, root / "labels"]
    for folder in candidates:
        if (folder / name).is_file():
            return (folder / name).resolve()
    raise FileNotFoundError(
        f"{name} is missing (looked in {' and '.join(str(c) for c in candidates)}): a Something-Something v2 "
        f"tree needs labels.json, train.json and validation.json from the official label package, at the "
        f"dataset folder or in its labels/ folder (point `source=` at the folder holding them)"
    )


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _entries(path: Path, shown: str, problems: list[str]) -> list[tuple[int, object]]:
    """(line where it starts, value) for each element of the top-level JSON list in `path`."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    decoder = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if i >= len(text) or text[i] != "[":
        raise ValueError(f"{shown}:1: expected a JSON list of {{id, label, template, placeholders}} entries")
    out: list[tuple[int, object]] = []
    line, counted = 1, 0
    i = _skip_ws(text, i + 1)
    if i < len(text) and text[i] == "]":
        return out
    while True:
        line += text.count("\n", counted, i)
        counted = i
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            problems.append(f"{shown}:{e.lineno}: not valid JSON ({e.msg}); the rest of the file is not read")
            return out
        out.append((line, value))
        i = _skip_ws(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip_ws(text, i + 1)
            continue
        if i < len(text) and text[i] == "]":
            return out
        line += text.count("\n", counted, i)
        counted = i
        problems.append(f"{shown}:{line}: not valid JSON (expected ',' or ']'); the rest of the file is not read")
        return out


def _classes(path: Path, shown: str) -> list[str]:
    try:
        mapping = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{shown}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(mapping, dict):
        raise ValueError(f"{shown}: expected a JSON object template -> class index")
    by_index: dict[int, str] = {}
    for name, index in mapping.items():
        try:
            by_index[int(index)] = name
        except (TypeError, ValueError):
            raise ValueError(f"{shown}: class index of {name!r} must be a number, got {index!r}") from None
    if sorted(by_index) != list(range(len(mapping))):
        raise ValueError(f"{shown}: class indices must be 0..{len(mapping) - 1}, each once")
    return [by_index[i] for i in range(len(mapping))]


def index_ssv2(root: str | Path, labels_dir: str | None = None, video_dir: str | None = None) -> DatasetIndex:
    """Index SSv2 train ("train") and validation ("val").

    labels_dir: folder of labels.json / train.json / validation.json relative to `root`; by default
        `root`, then `root/labels`.
    video_dir: folder of the `<id>.webm` files relative to `root`; by default
        `20bn-something-something-v2/` when it exists, else `root`.
    """
    root = Path(root).expanduser().resolve()
    labels_path = _find(root, labels_dir, "labels.json")
    split_paths = {split: _find(root, labels_dir, name) for split, name in SPLIT_FILES.items()}
    if video_dir is not None:
        videos = (root / video_dir).resolve()
        if not videos.is_dir():
            raise FileNotFoundError(f"{videos} is missing: index.video_dir must name the folder of the "
                                    f"<id>.webm files, relative to the dataset folder")
    else:
        videos = root / VIDEO_DIR if (root / VIDEO_DIR).is_dir() else root
    classes = _classes(labels_path, _shown(labels_path, root))
    by_name = {name: i for i, name in enumerate(classes)}

    records, problems = [], []
    seen: dict[str, str] = {}
    for split, path in split_paths.items():
        shown = _shown(path, root)
        for line, entry in _entries(path, shown, problems):
            where = f"{shown}:{line}"
            if not isinstance(entry, dict) or not isinstance(entry.get("template"), str) \
                    or not isinstance(entry.get("id"), (str, int)) or str(entry.get("id")).strip() == "":
                problems.append(f"{where}: expected an entry with an id and a template, got {json.dumps(entry)[:120]}")
                continue
            video_id, template = str(entry["id"]).strip(), entry["template"]
            name = class_name(template)
            if name not in by_name:
                problems.append(f"{where}: template {template!r} ({name!r}) is not in labels.json")
                continue
            if video_id in seen:
                problems.append(f"{where}: id {video_id} is listed twice (first at {seen[video_id]})")
                continue
            seen[video_id] = where
            video = videos / f"{video_id}.webm"
            if not video.is_file():
                problems.append(f"{where}: {_shown(video, root)} does not exist")
                continue
            records.append(VideoRecord(video_id=video_id, path=str(video), split=split, label=by_name[name]))
    return DatasetIndex(classes=classes, records=records, problems=problems)
