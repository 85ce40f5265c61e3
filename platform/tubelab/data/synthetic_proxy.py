"""Synthetic proxies of the SEVERE factors, written in the layouts of existing indexers.

SEVERE (datasets/README.md, /work/shared/reference/severe.md) measures generalisation along four
factors. Each has a small generated stand-in here (see datasets/synthetic.md):

- domain  -> `synthetic_domain`: the motion classes in the "alt" style (generate(kind="classes", style="alt"))
- samples -> a train budget on `synthetic_domain` (drawn by the fine-tuning code, no data of its own)
- actions -> kind="fine":  fine-grained classes (speed bands, headings 20 degrees apart, orbit radius /
             rate), UCF101 layout, read by the ucf101 indexer
- tasks   -> kind="count": an object repeating a swing or a bounce `count` times, UCFRep CSV layout
             (ucfrep.csv: video,count,split,cycles), read by the ucfrep indexer
             kind="multi": 1-3 objects each doing one motion class during part of the clip, Charades
             layout (Charades_v1_{train,test}.csv, Charades_v1_classes.txt, Charades_v1_480/<id>.mp4)

    from tubelab.data.synthetic import generate
    generate("data/synthetic_count", kind="count")   # or generate_proxy("count", "data/synthetic_count")

Same guarantees as the motion-class dataset: each clip has its own rng, here
SeedSequence(seed, spawn_key=(kind tag, class or split, clip index)), so the same parameters give
byte-identical files and never a clip of another kind; files are renamed into place once complete;
DONE (the parameters, with `kind`) is written last; a finished out_dir with other parameters raises.
"""

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tubelab.data.synthetic_classes import (CLASSES, FINE_CLASSES, NOISE_STD, check_classes, check_video,
                                            write_ucf101)
from tubelab.data.synthetic_files import check_counts, check_done, write_atomic, write_clip
from tubelab.data.synthetic_motions import (FINE_MOTIONS, MOTIONS, SPEED_RANGE, oscillate, place, segment_time,
                                            wander)
from tubelab.data.synthetic_render import SHAPES, STYLES, draw_object, render_background

_TAGS = {"fine": 1, "count": 2, "multi": 3}  # spawn_key[0]: clips of different kinds never share an rng
_SPLITS = {"train": 0, "test": 1}
COUNT_CSV = "ucfrep.csv"
VIDEO_DIR = "Charades_v1_480"


def _rng(seed, kind, *key):
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_TAGS[kind], *key)))


def _scene(rng, pools, t, width, height, objects, distractors):
    """Background, `distractors` wandering objects, then `objects` (dicts with center, size, angle) on
    top, in their order; fills in each object's shape and colour. Returns float frames and meta."""
    frames, meta = render_background(rng, pools, t, width, height)
    shapes, colors = sorted(SHAPES), sorted(pools.object_colors)
    drawn = []
    for _ in range(distractors):
        r = rng.uniform(0.06, 0.13) * min(width, height)
        d = dict(shape=str(rng.choice(shapes)), color=str(rng.choice(colors)))
        draw_object(frames, d["shape"], pools.object_colors[d["color"]], wander(rng, t, width, height, r),
                    np.full(len(t), r), np.full(len(t), rng.uniform(0, 2 * np.pi)))
        drawn.append(d)
    for o in objects:
        o["shape"], o["color"] = str(rng.choice(shapes)), str(rng.choice(colors))
        draw_object(frames, o["shape"], pools.object_colors[o["color"]], o["center"], o["size"], o["angle"])
    frames += rng.standard_normal((*frames.shape[:3], 1), dtype=np.float32) * NOISE_STD + 0.5  # 0.5: round
    meta.update({"distractors": len(drawn), "distractor_objects": drawn})
    return np.clip(frames, 0, 255, out=frames).astype(np.uint8), meta


def render_count(count, rng, *, num_frames, width, height, style="default", min_cycle_frames=6):
    """One counting clip: an object repeating a swing or a bounce `count` times (synthetic_motions.oscillate),
    over the same backgrounds and 1-3 distractors as the motion classes. Returns uint8 frames (T, H, W, 3)
    and meta (center (T, 2), size (T,), angle (T,), the oscillation's parameters in meta["motion"])."""
    check_video(style, num_frames, width, height)
    t = np.linspace(0, 1, num_frames)
    base = rng.uniform(0.08, 0.15) * min(width, height)
    path, turn, scale, motion = oscillate(rng, t, count, width, height, base, min_cycle_frames)
    obj = {"size": base * scale}
    obj["center"] = place(rng, path, obj["size"], width, height)
    obj["angle"] = rng.uniform(0, 2 * np.pi) + turn
    frames, meta = _scene(rng, STYLES[style], t, width, height, [obj], rng.integers(1, 4))
    meta.update({"count": int(count), "motion": motion, **obj})
    return frames, meta


def render_multi(rng, *, num_frames, width, height, classes=CLASSES, max_objects=3, min_active=0.5,
                 style="default"):
    """One multi-label clip: 1..max_objects objects, each doing a different class of `classes` (names in
    synthetic_motions.MOTIONS) during its own segment of the clip (at least `min_active` of it; still
    before and after), plus 0-2 distractors. meta["objects"]: per object class, start and end (fractions
    of the clip), center (T, 2), size (T,), angle (T,), shape, colour."""
    check_classes(classes, style, num_frames, width, height)
    t = np.linspace(0, 1, num_frames)
    k = int(rng.integers(1, min(max_objects, len(classes)) + 1))
    objects = []
    for i in rng.choice(len(classes), k, replace=False):
        name = classes[i]
        speed = rng.uniform(*SPEED_RANGE)
        base = rng.uniform(0.07, 0.12) * min(width, height)
        active = rng.uniform(min_active, 1)
        start = rng.uniform(0, 1 - active)
        path, turn, scale = MOTIONS[name](rng, segment_time(t, start, start + active), speed, width, height,
                                          base)[:3]
        size = base * scale
        objects.append({"class": name, "start": float(start), "end": float(start + active),
                        "center": place(rng, path, size, width, height), "size": size,
                        "angle": rng.uniform(0, 2 * np.pi) + turn, "speed": float(speed)})
    order = [objects[i] for i in rng.permutation(k)]  # which one is on top is random
    frames, meta = _scene(rng, STYLES[style], t, width, height, order, rng.integers(0, 3))
    meta["objects"] = objects
    return frames, meta


def _clips(train, test):
    return [(split, i) for split, n in (("train", train), ("test", test)) for i in range(n)]


def _finish(root, files, meta_lines, params):
    for name, text in files.items():
        write_atomic(root / name, text)
    write_atomic(root / "synthetic_meta.jsonl", "\n".join(meta_lines) + "\n")
    write_atomic(root / "DONE", json.dumps(params))
    return root


def generate_fine(out_dir, *, train_per_class=24, test_per_class=8, num_frames=48, fps=16, width=160, height=120,
                  seed=0, classes=None, style="default", progress=True):
    """Fine-grained classes (FINE_CLASSES) in the UCF101 layout, exactly as generate_classes writes the
    motion classes; synthetic_meta.jsonl holds each clip's drawn motion parameters ("motion")."""
    classes = list(FINE_CLASSES if classes is None else [classes] if isinstance(classes, str) else classes)
    check_classes(classes, style, num_frames, width, height, FINE_MOTIONS)
    check_counts(train_per_class=train_per_class, test_per_class=test_per_class, fps=fps)
    params = dict(kind="fine", train_per_class=train_per_class, test_per_class=test_per_class,
                  num_frames=num_frames, fps=fps, width=width, height=height, seed=seed, classes=classes,
                  style=style)
    return write_ucf101(out_dir, params, lambda name, i: np.random.SeedSequence(
        seed, spawn_key=(_TAGS["fine"], FINE_CLASSES.index(name), i)), progress)


def generate_count(out_dir, *, train=240, test=80, min_count=2, max_count=8, num_frames=64, fps=16, width=160,
                   height=120, seed=0, style="default", min_cycle_frames=6, progress=True):
    """Repetition counting in the UCFRep CSV layout: <root>/videos/{train,test}_NNNN.mp4 and
    <root>/ucfrep.csv ("video,count,split,cycles": cycles = the count + 1 repetition boundaries in seconds);
    each clip's count is drawn uniformly from min_count..max_count."""
    check_video(style, num_frames, width, height)
    check_counts(train=train, test=test, fps=fps, min_count=min_count, max_count=max_count,
                 min_cycle_frames=min_cycle_frames)
    if min_count > max_count:
        raise ValueError(f"min_count={min_count} > max_count={max_count}")
    if max_count * min_cycle_frames > num_frames - 1:
        raise ValueError(f"max_count={max_count} repetitions of at least {min_cycle_frames} frames need "
                         f"num_frames >= {max_count * min_cycle_frames + 1}; got {num_frames}")
    params = dict(kind="count", train=train, test=test, min_count=min_count, max_count=max_count,
                  num_frames=num_frames, fps=fps, width=width, height=height, seed=seed, style=style,
                  min_cycle_frames=min_cycle_frames, cycles=True)
    root = Path(out_dir)
    done = root / "DONE"
    if done.exists() and json.loads(done.read_text()) == {k: v for k, v in params.items() if k != "cycles"}:
        done.unlink()  # an older tubelab's set: the same videos, but a CSV without the cycle boundaries
    if check_done(root, params):
        return root
    rows, meta_lines = ["video,count,split,cycles"], []
    for split, i in tqdm(_clips(train, test), desc=f"synthetic count -> {root}", unit="video", disable=not progress):
        rng = _rng(seed, "count", _SPLITS[split], i)
        count = int(rng.integers(min_count, max_count + 1))
        frames, meta = render_count(count, rng, num_frames=num_frames, width=width, height=height, style=style,
                                    min_cycle_frames=min_cycle_frames)
        rel = f"videos/{split}_{i + 1:04d}.mp4"
        write_clip(root, rel, frames, fps)
        seconds = " ".join(f"{b * (num_frames - 1) / fps:.4f}" for b in meta["motion"]["cycles"])  # frame i: i/fps
        rows.append(f"{rel},{count},{split},{seconds}")
        drawn = {k: v for k, v in meta.items() if k not in ("center", "size", "angle")}
        meta_lines.append(json.dumps({"path": rel, "split": split, **drawn,
                                      "size": round(float(meta["size"].mean()), 2)}))
    return _finish(root, {COUNT_CSV: "\n".join(rows) + "\n"}, meta_lines, params)


def generate_multi(out_dir, *, train=240, test=80, max_objects=3, min_active=0.5, num_frames=48, fps=16,
                   width=160, height=120, seed=0, classes=None, style="default", progress=True):
    """Multi-label clips in the Charades layout: Charades_v1_classes.txt ("c000 MoveLeft", CLASSES order),
    Charades_v1_train.csv / Charades_v1_test.csv (id,actions,length; actions "c000 0.50 2.94;c007 0.00
    2.94": class code, start and end second of that object's motion), Charades_v1_480/<id>.mp4."""
    classes = list(CLASSES if classes is None else [classes] if isinstance(classes, str) else classes)
    check_classes(classes, style, num_frames, width, height)
    check_counts(train=train, test=test, fps=fps, max_objects=max_objects)
    if not 0 < min_active <= 1:
        raise ValueError(f"min_active={min_active!r} must be in (0, 1]")
    params = dict(kind="multi", train=train, test=test, max_objects=max_objects, min_active=min_active,
                  num_frames=num_frames, fps=fps, width=width, height=height, seed=seed, classes=classes,
                  style=style)
    root = Path(out_dir)
    if check_done(root, params):
        return root
    seconds = (num_frames - 1) / fps  # frame i is shown at i / fps
    csvs = {split: ["id,actions,length"] for split in _SPLITS}
    meta_lines = []
    for split, i in tqdm(_clips(train, test), desc=f"synthetic multi -> {root}", unit="video", disable=not progress):
        rng = _rng(seed, "multi", _SPLITS[split], i)
        frames, meta = render_multi(rng, num_frames=num_frames, width=width, height=height, classes=classes,
                                    max_objects=max_objects, min_active=min_active, style=style)
        video_id = f"{split[:2].upper()}{i + 1:04d}"  # TR0001, TE0001
        write_clip(root, f"{VIDEO_DIR}/{video_id}.mp4", frames, fps)
        actions = ";".join(f"c{classes.index(o['class']):03d} {o['start'] * seconds:.2f} {o['end'] * seconds:.2f}"
                           for o in meta["objects"])
        csvs[split].append(f"{video_id},{actions},{num_frames / fps:.2f}")
        objects = [{"class": o["class"], "start": round(o["start"], 4), "end": round(o["end"], 4),
                    "shape": o["shape"], "color": o["color"], "speed": round(o["speed"], 4),
                    "size": round(float(o["size"].mean()), 2)} for o in meta["objects"]]
        drawn = {k: v for k, v in meta.items() if k != "objects"}
        meta_lines.append(json.dumps({"id": video_id, "split": split,
                                      "labels": sorted(o["class"] for o in objects), **drawn, "objects": objects}))
    files = {f"Charades_v1_{split}.csv": "\n".join(rows) + "\n" for split, rows in csvs.items()}
    files["Charades_v1_classes.txt"] = "".join(f"c{i:03d} {name}\n" for i, name in enumerate(classes))
    return _finish(root, files, meta_lines, params)


GENERATORS = {"fine": generate_fine, "count": generate_count, "multi": generate_multi}


def generate_proxy(kind, out_dir, **params):
    """Write the proxy `kind` ("fine", "count" or "multi") to out_dir and return its path."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown synthetic proxy kind {kind!r}; valid kinds: {', '.join(GENERATORS)}")
    return GENERATORS[kind](out_dir, **params)
