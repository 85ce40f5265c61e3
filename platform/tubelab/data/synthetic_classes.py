"""The motion-class dataset (synthetic kind "classes"): rendering a clip and writing the UCF101 layout.

Public entry point: tubelab.data.synthetic.generate (module docstring there). write_ucf101 also
writes the fine-grained proxy (synthetic_proxy.generate_fine).
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tubelab.data.synthetic_files import check_counts, check_done, write_atomic, write_clip
from tubelab.data.synthetic_motions import FINE_MOTIONS, MOTIONS, SPEED_RANGE, place, wander
from tubelab.data.synthetic_render import SHAPES, STYLES, draw_object, render_background

CLASSES = tuple(MOTIONS)
FINE_CLASSES = tuple(FINE_MOTIONS)  # kind="fine"; never in CLASSES
CLIPS_PER_GROUP = 4  # UCF101 has 4-7 clips per group; test clips come from the lowest groups
NOISE_STD = 2.0  # per-frame luma noise (0-255 scale), so frames are not perfectly clean


def check_classes(classes, style, num_frames, width, height, registry=MOTIONS):
    for name in classes:
        if name not in registry:
            raise ValueError(f"unknown synthetic class {name!r}; valid classes: {', '.join(registry)}")
    if len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes must be distinct and non-empty, got {list(classes)}")
    check_video(style, num_frames, width, height)


def check_video(style, num_frames, width, height):
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; valid styles: {', '.join(STYLES)}")
    if num_frames < 8:
        raise ValueError(f"num_frames={num_frames} is too short to show a motion; use 8 or more")
    for key, n in (("width", width), ("height", height)):
        if n < 32 or n % 2:
            raise ValueError(f"{key}={n}: H.264 (yuv420p) needs an even size of at least 32 px; "
                             f"use e.g. {max(32, n + n % 2)}")


def render_video(class_name, rng, *, num_frames, width, height, style="default"):
    """Render one clip: uint8 frames (T, H, W, 3) and what was drawn (meta).

    The motion is drawn first, so the same rng gives the same trajectory in every style. class_name is
    one of CLASSES or FINE_CLASSES; a fine class's drawn motion parameters are in meta["motion"].
    """
    registry = FINE_MOTIONS if class_name in FINE_MOTIONS else MOTIONS
    check_classes([class_name], style, num_frames, width, height, registry)
    pools = STYLES[style]
    t = np.linspace(0, 1, num_frames)
    speed = rng.uniform(*SPEED_RANGE)
    base = rng.uniform(0.08, 0.15) * min(width, height)
    path, turn, scale, *motion = registry[class_name](rng, t, speed, width, height, base)
    size = base * scale
    center = place(rng, path, size, width, height)
    angle = rng.uniform(0, 2 * np.pi) + turn

    frames, meta = render_background(rng, pools, t, width, height)
    shapes, colors = sorted(SHAPES), sorted(pools.object_colors)
    distractors = []
    for _ in range(rng.integers(1, 4)):
        r = rng.uniform(0.06, 0.13) * min(width, height)
        d = dict(shape=str(rng.choice(shapes)), color=str(rng.choice(colors)))
        draw_object(frames, d["shape"], pools.object_colors[d["color"]], wander(rng, t, width, height, r),
                    np.full(num_frames, r), np.full(num_frames, rng.uniform(0, 2 * np.pi)))
        distractors.append(d)
    shape, color = str(rng.choice(shapes)), str(rng.choice(colors))
    draw_object(frames, shape, pools.object_colors[color], center, size, angle)  # on top: never hidden

    frames += rng.standard_normal((*frames.shape[:3], 1), dtype=np.float32) * NOISE_STD + 0.5  # 0.5: round
    meta.update({"class": class_name, "shape": shape, "color": color, "center": center, "size": size,
                 "angle": angle, "speed": float(speed), "distractors": len(distractors),
                 "distractor_objects": distractors})
    if motion:  # a fine class: its own drawn parameters; the shared speed factor was not used
        meta["motion"] = motion[0]
        del meta["speed"]
    return np.clip(frames, 0, 255, out=frames).astype(np.uint8), meta


def _videos(classes, train_per_class, test_per_class):
    """(class, group, clip, split) in UCF101 order; a clip's name never depends on the counts
    of other classes, and more train clips only add new groups at the end."""
    test_groups = -(-test_per_class // CLIPS_PER_GROUP)
    for name in classes:
        for split, first_group, count in (("test", 1, test_per_class),
                                          ("train", test_groups + 1, train_per_class)):
            for i in range(count):
                yield name, first_group + i // CLIPS_PER_GROUP, 1 + i % CLIPS_PER_GROUP, split


def generate_classes(out_dir, *, train_per_class=24, test_per_class=8, num_frames=48, fps=16, width=160,
                     height=120, seed=0, classes=None, style="default", progress=True):
    """Write the dataset to out_dir in the UCF101 layout (split 1) and return its path.

    Deterministic: each clip's rng comes from (seed, the class's index in CLASSES, clip index), so the
    same arguments give byte-identical files, and more clips per class or another subset of classes
    leave the existing clips unchanged. Files are renamed into place once complete and a DONE marker
    with the parameters is written last: a finished out_dir is reused, never overwritten, and an
    unfinished one (no DONE) is generated again from scratch.
    """
    classes = list(CLASSES if classes is None else [classes] if isinstance(classes, str) else classes)
    check_classes(classes, style, num_frames, width, height)
    check_counts(train_per_class=train_per_class, test_per_class=test_per_class, fps=fps)
    params = dict(train_per_class=train_per_class, test_per_class=test_per_class, num_frames=num_frames,
                  fps=fps, width=width, height=height, seed=seed, classes=classes, style=style)
    seed_of = lambda name, index: np.random.SeedSequence([seed, CLASSES.index(name), index])  # noqa: E731
    return write_ucf101(out_dir, params, seed_of, progress)


def write_ucf101(out_dir, params, seed_of, progress=True):
    """Render params["classes"] x (train + test) clips and write them in the UCF101 layout (split 1).

    seed_of(class name, clip index) -> the clip's SeedSequence. params (checked by the caller) are
    written to DONE; a finished out_dir with the same params is returned at once.
    """
    root = Path(out_dir)
    if check_done(root, params):
        return root
    classes, fps = params["classes"], params["fps"]
    videos = list(_videos(classes, params["train_per_class"], params["test_per_class"]))

    def write(video):  # one clip; its bytes depend only on its own rng (write_video's encoder is deterministic)
        name, group, clip, split = video
        index = (group - 1) * CLIPS_PER_GROUP + clip - 1
        frames, meta = render_video(name, np.random.default_rng(seed_of(name, index)), num_frames=params["num_frames"],
                                    width=params["width"], height=params["height"], style=params["style"])
        rel = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.mp4"
        write_clip(root, rel, frames, fps)
        return rel, meta

    train, test, meta_lines = [], [], []
    # x264 and numpy release the GIL: threads render and encode ~1.7x faster on 2 cores, in the same order
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for (name, _, _, split), (rel, meta) in zip(videos, tqdm(pool.map(write, videos), total=len(videos),
                                                                 desc=f"synthetic -> {root}", unit="video",
                                                                 disable=not progress)):
            label = classes.index(name) + 1
            if split == "train":
                train.append(f"{rel} {label}")
            else:
                test.append(rel)
            drawn = {k: v for k, v in meta.items() if k not in ("center", "size", "angle")}
            meta_lines.append(json.dumps({"path": rel, "split": split, "label": label, **drawn,
                                          "size": round(float(meta["size"].mean()), 2)}))

    write_atomic(root / "synthetic_meta.jsonl", "\n".join(meta_lines) + "\n")
    write_atomic(root / "classInd.txt", "".join(f"{i} {name}\n" for i, name in enumerate(classes, 1)))
    write_atomic(root / "trainlist01.txt", "\n".join(train) + "\n")
    write_atomic(root / "testlist01.txt", "\n".join(test) + "\n")
    write_atomic(root / "DONE", json.dumps(params))
    return root
