"""What the synthetic generators (synthetic_classes, synthetic_proxy) share: argument checks, the
H.264 writer, and files that appear only once complete (a per-process temporary name renamed into
place, a DONE marker with the parameters written last)."""

import json
import os
from fractions import Fraction
from pathlib import Path

import av


def check_counts(**counts):
    for key, n in counts.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{key}={n!r} must be a positive integer")


def check_done(root, params):
    """True if root holds a finished dataset made with params; raises if it was made with others."""
    done = Path(root) / "DONE"
    if not done.exists():
        return False
    previous = json.loads(done.read_text())
    if previous == params:
        return True
    changed = {k: (previous.get(k), params.get(k)) for k in [*params, *(k for k in previous if k not in params)]
               if previous.get(k) != params.get(k)}
    raise ValueError(f"{root} already holds a synthetic dataset made with other parameters "
                     f"(existing, requested): {changed}; choose another out_dir or delete {root}")


def write_video(path, frames, fps):
    """H.264 mp4 with a keyframe every 16 frames, so random access is cheap.

    The same frames must give the same bytes: one encoder thread, and x264's plain C code (asm=0),
    because its AVX2/AVX-512 routines read uninitialised memory at some frame sizes (e.g. 160x120)
    and the output then changes from run to run. C code is ~3x slower, still ~60 ms a clip.
    """
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={
            "crf": "21", "preset": "veryfast", "g": "16", "threads": "1", "x264-params": "asm=0"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def tmp_path(path):
    """A hidden, per-process name next to path: renamed onto path once complete."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path, text):
    tmp_path(path).write_text(text)
    os.replace(tmp_path(path), path)


def write_clip(root, rel, frames, fps):
    """Encode frames to root/rel (folders made as needed), renamed into place once complete."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(tmp_path(path), frames, fps)
    os.replace(tmp_path(path), path)
