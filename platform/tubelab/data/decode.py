"""Clip decoding: mp4 bytes -> uint8 clips, in Ray Data actors (decord by default).

Readers are created inside the actor, per video (decord hangs when readers cross a fork, and a fresh
reader per video keeps its known memory growth bounded).
"""

from __future__ import annotations

import hashlib
import io

import numpy as np


def video_key(video_id: str) -> int:
    """A stable int64 per video, so train loops can tell videos apart without string columns."""
    return int(hashlib.sha256(video_id.encode()).hexdigest()[:15], 16)


def sample_indices(num_frames: int, frames: int, stride: int, rng: np.random.Generator | None) -> np.ndarray:
    """`frames` indices `stride` apart: a random start (rng given) or the centred clip (rng None).

    A video shorter than the clip repeats its last frame rather than failing mid-epoch; configs whose
    clips cannot fit the shortest video are rejected before training (see data.pipeline).
    """
    span = (frames - 1) * stride + 1
    room = max(num_frames - span, 0)
    start = int(rng.integers(0, room + 1)) if rng is not None else room // 2
    return np.minimum(start + stride * np.arange(frames), num_frames - 1)


def crop_box(height: int, width: int, crop: int, rng: np.random.Generator | None) -> tuple[int, int]:
    if crop > min(height, width):
        raise ValueError(f"crop {crop} is larger than the {width}x{height} shard frames; lower clip.crop "
                         f"or re-encode with a larger short side")
    if rng is None:
        return (height - crop) // 2, (width - crop) // 2
    return int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1))


def decode_frames(data: bytes, indices: np.ndarray) -> np.ndarray:
    import decord

    reader = decord.VideoReader(io.BytesIO(data), num_threads=1)
    frames = reader.get_batch(indices.tolist()).asnumpy()
    del reader
    return frames


class ClipDecoder:
    """Ray Data callable class: rows with mp4 bytes -> rows of uint8 clips (clips_per_row, T, crop, crop, 3).

    Each video yields `rows_per_video` output rows (the reference's "N random clips per video" epochs),
    each holding `clips_per_row` independently sampled clips (2 for the video-contrast pair).
    mode "train": random start, stride drawn from `strides`, random crop, horizontal flip if `flip`.
    mode "eval": the centred clip at the first stride, centre crop, no flip.
    """

    def __init__(self, frames: int, strides: list[int], crop: int, clips_per_row: int = 1,
                 rows_per_video: int = 1, flip: bool = False, mode: str = "train", seed: int = 0):
        if mode not in ("train", "eval"):
            raise ValueError(f"ClipDecoder mode must be 'train' or 'eval', got {mode!r}")
        self.frames, self.strides, self.crop, self.flip = frames, list(strides), crop, flip
        self.clips_per_row, self.rows_per_video, self.mode = clips_per_row, rows_per_video, mode
        # Each actor gets its own stream; the seed is recorded in the run's params.
        self.rng = np.random.default_rng([seed, id(self)]) if mode == "train" else None

    def clip(self, data: bytes, num_frames: int, height: int, width: int) -> np.ndarray:
        rng = self.rng
        stride = int(rng.choice(self.strides)) if rng is not None else self.strides[0]
        frames = decode_frames(data, sample_indices(num_frames, self.frames, stride, rng))
        y, x = crop_box(frames.shape[1], frames.shape[2], self.crop, rng)
        frames = frames[:, y:y + self.crop, x:x + self.crop]
        if self.flip and rng is not None and rng.random() < 0.5:
            frames = frames[:, :, ::-1]
        return frames

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        k = self.rows_per_video
        clips = np.stack([
            np.stack([self.clip(data, int(n), int(h), int(w)) for _ in range(self.clips_per_row)])
            for data, n, h, w in zip(batch["video"], batch["num_frames"], batch["height"], batch["width"])
            for _ in range(k)
        ])
        return {
            "clip": clips,  # (B * rows_per_video, clips_per_row, T, H, W, 3) uint8
            "label": np.repeat(batch["label"].astype(np.int64), k),
            "video_key": np.repeat(np.array([video_key(v) for v in batch["video_id"]], dtype=np.int64), k),
        }
