"""The counting model's data (SEVERE's UCF-RC): repetitive spans of videos with their per-frame targets.

The context-aware counting model (docs/severe_ucf_rc.md) does not train on fixed-length clips: each training
row is a random sub-clip between cycle boundaries (data.cycles.draw_subclip, at most `max_frames` frames),
from which the training loop picks 32-frame inputs itself; each evaluation row is a video's whole annotated
span, first to last boundary, on which it searches the cycle length. Frames are letterboxed as the official
`Scale_longerside(112)` does: the longer side resized to `size`, the shorter padded with black, centred.
"""

from __future__ import annotations

import numpy as np

from tubelab.data.cycles import cycle_offsets, draw_subclip, frames_of
from tubelab.data.decode import check_bytes, clip_rng, current_epoch, resize, video_key
from tubelab.data.decoders import DecodeError, read_frames


def letterbox(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, h, w, 3) uint8 -> (T, size, size, 3): the longer side resized to `size`, the shorter in proportion
    and centred between black bars (UP/utils/spatial_transforms.py Scale_longerside + _pad)."""
    t, h, w, _ = frames.shape
    scaled = (size, max(1, round(w * size / h))) if h >= w else (max(1, round(h * size / w)), size)
    out = np.zeros((t, size, size, 3), np.uint8)
    y, x = (size - scaled[0]) // 2, (size - scaled[1]) // 2
    out[:, y:y + scaled[0], x:x + scaled[1]] = resize(frames, scaled)
    return out


def span_bounds(cycles, fps: float, num_frames: int) -> list[int]:
    """A video's cycle boundaries (seconds) in the frames of its shard video; an error if they do not fit."""
    bounds = frames_of(cycles, fps).tolist()
    if bounds[0] < 0 or bounds[-1] >= num_frames or any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise DecodeError(f"its cycle boundaries {list(cycles)} s are not increasing frames inside its "
                          f"{num_frames} frames at {fps:g} fps")
    return bounds


class SpanDecoder:
    """Ray Data callable class: shard rows (mp4 bytes, cycle boundaries) -> counting rows.

    mode "train": `rows_per_video` sub-clips per video, drawn once per run (the official draws its ten when it
    builds the dataset: RC/datasets/ucf_aug.py:132-161), each flipped with p = 0.5 anew every epoch; mode
    "eval": the annotated span, first to last boundary. Rows: "clip" uint8 (max_frames, size, size, 3), zero
    after the row's `n_frames`; "offset_next" / "offset_pre" int32 (max_frames,), the per-frame targets
    (data.cycles.cycle_offsets), -1 past the end; "count": the official count label (draw_subclip's for a
    sub-clip, the number of cycles for a span); "video_key", "label" (-1).
    """

    def __init__(self, size: int, max_frames: int, mode: str = "train", seed: int = 0, rows_per_video: int = 10,
                 flip: bool = True, backend: str = "decord", failures=None, epochs=None):
        if mode not in ("train", "eval"):
            raise ValueError(f"SpanDecoder mode must be 'train' or 'eval', got {mode!r}")
        self.size, self.max_frames, self.mode, self.seed, self.flip = size, max_frames, mode, seed, flip
        self.rows_per_video = rows_per_video if mode == "train" else 1
        self.backend, self.failures, self.epochs, self.epoch = backend, failures, epochs, 0

    def spans(self, bounds: list[int], key: int) -> list[tuple[int, int, int]]:
        """(first, last, count) of the video's rows."""
        if self.mode == "eval":
            return [(bounds[0], bounds[-1], len(bounds) - 1)]
        rng = np.random.default_rng([self.seed, key])  # the same sub-clips every epoch
        return [draw_subclip(bounds, rng, self.max_frames) for _ in range(self.rows_per_video)]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        epoch = current_epoch(self.epochs, self.epoch) if self.mode == "train" else self.epoch
        hashes = batch.get("sha256")
        for i, (video_id, data) in enumerate(zip(batch["video_id"], batch["video"])):
            key = video_key(video_id)
            try:
                check_bytes(data, None if hashes is None else hashes[i])
                bounds = span_bounds(batch["cycles"][i], float(batch["fps"][i]), int(batch["num_frames"][i]))
                if bounds[-1] - bounds[0] + 1 > self.max_frames and self.mode == "eval":
                    raise DecodeError(f"its span of {bounds[-1] - bounds[0] + 1} frames is longer than the "
                                      f"{self.max_frames} the evaluation pads to")
                nxt, pre = cycle_offsets(bounds)
                spans = self.spans(bounds, key)
                first, last = min(s[0] for s in spans), max(s[1] for s in spans)
                frames = letterbox(read_frames(data, np.arange(first, last + 1), self.backend), self.size)
                flips = clip_rng(self.seed, epoch, key)
                for a, b, count in spans:
                    n = b - a + 1
                    clip = np.zeros((self.max_frames, self.size, self.size, 3), np.uint8)
                    clip[:n] = frames[a - first:b - first + 1]
                    if self.flip and self.mode == "train" and flips.random() < 0.5:
                        clip[:n] = clip[:n, :, ::-1]
                    targets = [np.full(self.max_frames, -1, np.int32) for _ in range(2)]
                    for t, source in zip(targets, (nxt, pre)):
                        t[:n] = source[a - bounds[0]:b - bounds[0] + 1]
                    rows.append((clip, n, *targets, count, key))
            except DecodeError as e:
                if self.failures is None:
                    raise
                self.failures.add.remote(str(video_id), str(e))
        shape = (0, self.max_frames, self.size, self.size, 3)
        return {
            "clip": np.stack([r[0] for r in rows]) if rows else np.zeros(shape, np.uint8),
            "n_frames": np.array([r[1] for r in rows], np.int64),
            "offset_next": np.stack([r[2] for r in rows]) if rows else np.zeros(shape[:2], np.int32),
            "offset_pre": np.stack([r[3] for r in rows]) if rows else np.zeros(shape[:2], np.int32),
            "count": np.array([r[4] for r in rows], np.float32),
            "video_key": np.array([r[5] for r in rows], np.int64),
            "label": np.full(len(rows), -1, np.int64),
        }
