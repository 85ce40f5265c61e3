"""Clip sampling and decoding: mp4 bytes -> uint8 clips, in Ray Data actors.

Decoding goes through tubelab.data.decoders (decord by default, PyAV as fallback); a reader is
created per video inside the actor (decord hangs when readers cross a fork, and a fresh reader per
video keeps its known memory growth bounded). A video that fails to decode is skipped, never
replaced by another one, and reported to the run's FailureLog actor (tubelab.data.failures).
This module needs no Ray: the GPU check (jobs/gpu_check.py) runs ClipDecoder in plain processes.
"""

from __future__ import annotations

import hashlib

import numpy as np

from tubelab.data.decoders import DecodeError, read_frames


def video_key(video_id: str) -> int:
    """A stable int64 per video, so train loops can tell videos apart without string columns."""
    return int(hashlib.sha256(video_id.encode()).hexdigest()[:15], 16)


def check_bytes(data: bytes, sha256: str | None) -> None:
    """A flipped byte can still decode, into wrong pixels: the shard's hash catches it (hashing the bytes is a
    small fraction of decoding them; docs/benchmarks.md "Data pipeline")."""
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise DecodeError("its bytes do not match the sha256 prepare recorded (a corrupted shard); "
                          "run `tubelab prepare` again to rebuild the shards")


def current_epoch(epochs, default: int) -> int:
    """The run's epoch from its EpochClock actor (data.epoch_clock), or `default` without one."""
    if epochs is None:
        return default
    import ray  # here, not at the top: the decoders also run where Ray is not installed (jobs/gpu_check.py)

    return ray.get(epochs.now.remote())


def clip_rng(seed: int, epoch: int, key: int) -> np.random.Generator:
    """The random stream of one video's training clips in one epoch (key: video_key)."""
    return np.random.default_rng([seed, epoch, key])


def sample_indices(num_frames: int, frames: int, stride: int, rng: np.random.Generator | None,
                   jitter: bool = False) -> np.ndarray:
    """`frames` indices `stride` apart: a random start (rng given) or the centred clip (rng None).

    With `jitter` each index moves by up to half a stride (the reference's per-frame jitter), staying
    in order and inside the clip's span. A video shorter than the clip repeats its last frame rather
    than failing mid-epoch; configs whose clips cannot fit the shortest video are rejected before
    training (see data.pipeline).
    """
    span = (frames - 1) * stride + 1
    room = max(num_frames - span, 0)
    start = int(rng.integers(0, room + 1)) if rng is not None else room // 2
    offsets = stride * np.arange(frames)
    if jitter and rng is not None and stride > 1:
        offsets = np.sort(np.clip(offsets + rng.integers(-(stride // 2), stride // 2 + 1, frames), 0, span - 1))
    return np.minimum(start + offsets, num_frames - 1)


def uniform_starts(num_frames: int, frames: int, stride: int, n: int) -> list[int]:
    """Starts of `n` clips spread evenly over the video (Video@1 averages predictions over them)."""
    room = max(num_frames - ((frames - 1) * stride + 1), 0)
    return [int(round(x)) for x in np.linspace(0, room, n)] if n > 1 else [room // 2]


def resized_crop_box(height: int, width: int, scale: tuple[float, float], rng: np.random.Generator,
                     ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(y, x, h, w) of a RandomResizedCrop box: area fraction in `scale`, aspect in `ratio` (log-uniform),
    as torchvision draws it (10 tries, then the largest centred box of a valid aspect)."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        w, h = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def resize(clip: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """(T, h, w, 3) uint8 -> (T, size, size, 3) (or (T, height, width, 3) for size = (height, width)) uint8,
    bilinear with antialiasing."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2).float()
    size = (size, size) if isinstance(size, int) else tuple(size)
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def scale_jitter_size(short_side: tuple[int, int], rng: np.random.Generator) -> int:
    """The short side a training clip is resized to: 1 / U(1/max, 1/min), rounded (SlowFast's
    random_short_side_scale_jitter with inverse_uniform_sampling, as SEVERE's Charades config sets it)."""
    low, high = short_side
    return int(round(1.0 / rng.uniform(1.0 / high, 1.0 / low)))


def scaled_crop_box(height: int, width: int, crop: int, size: int, rng: np.random.Generator | None, view: int = 0,
                    views: int = 1) -> tuple[int, int, int, int]:
    """(y, x, h, w) in the frame of the crop x crop box that a crop of the frame resized to short side `size`
    takes (random with rng, else the centre or spatial view `view` of `views`): resizing only that box to
    crop x crop gives the same pixels as resizing the whole frame first, at a fraction of the work."""
    scale = size / min(height, width)
    # SlowFast's short_side_scale: the long side is floor(long / short * size)
    scaled_h, scaled_w = (size, int(width / height * size)) if height <= width else (int(height / width * size), size)
    y, x = crop_box(scaled_h, scaled_w, crop, rng, view, views)
    side = min(max(int(round(crop / scale)), 1), height, width)
    return min(int(round(y / scale)), height - side), min(int(round(x / scale)), width - side), side, side


def active_classes(segments, fps: float, first: int, last: int) -> set[int]:
    """Classes of the actions shown in frames first..last: frame i (at i / fps seconds) carries every action
    whose [start, end] holds its time. SEVERE's Charades (SlowFast) labels a training clip with the
    actions of every frame from its first to its last sampled frame, and a test video with those of all
    its frames. segments: dicts with "label", "start", "end" (seconds)."""
    if not len(segments):
        return set()
    times = np.arange(first, last + 1) / fps
    return {int(s["label"]) for s in segments if np.any((s["start"] <= times) & (times <= s["end"]))}


def crop_box(height: int, width: int, crop: int, rng: np.random.Generator | None, view: int = 0,
             views: int = 1) -> tuple[int, int]:
    """(y, x) of a crop x crop box: random (rng), else centred; with `views` = 3 the evaluation's three spatial
    crops (view 0, 1, 2: the start, centre and end of the longer side, centred on the shorter; SlowFast's
    uniform_crop, which SEVERE's Charades test uses)."""
    if crop > min(height, width):
        raise ValueError(f"crop {crop} is larger than the {width}x{height} shard frames; lower clip.crop "
                         f"or re-encode with a larger short side")
    if rng is not None:
        return int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1))
    y, x = (height - crop) // 2, (width - crop) // 2
    if views == 3 and view != 1:
        end = view == 2
        if width >= height:
            x = (width - crop) if end else 0
        else:
            y = (height - crop) if end else 0
    return y, x


class ClipDecoder:
    """Ray Data callable class: rows with mp4 bytes -> rows of uint8 clips (clips_per_row, T, crop, crop, 3).

    mode "train": each video yields `rows_per_video` rows (the reference's "N random clips per video"
    epochs), each holding `clips_per_row` independently sampled clips (2 for the video-contrast pair):
    random start, stride drawn from `strides` (per-frame jitter if `jitter`), random crop (or, with
    `resized_crop` = (min, max) area fraction, a RandomResizedCrop resized to crop x crop; or, with `scales` =
    [[width, height], ...], the frames resized to one of those sizes drawn per clip, then the random crop: the
    official pretraining's GroupScale + GroupRandomCrop; or, with `short_side_jitter` = (min, max), each clip
    resized to a short side drawn by scale_jitter_size, then the random crop: SEVERE's Charades), flip if `flip`.
    mode "eval": one row per video with `eval_clips` clips spread evenly over it (N-clip Video@1; 1 = the
    centred clip) at the first stride, centre crop (or, with `eval_crops` = 3, three crops of each clip along
    the longer side: eval_clips x 3 views), no flip; with `eval_short_side` the views are cropped from the
    frames resized to that short side (SEVERE's Charades test: short side 112, three 112 crops).
    Targets: "label" (int64; -1 where the task has none), "multi_hot" (float32, num_classes) for
    multi-label data, "count" (float32, NaN where absent). With `frame_labels` the multi-hot of a training
    row holds the actions of its frames (first to last sampled, active_classes), of an eval row those of
    the whole video; without, the video's labels.

    The random draws of a video's clips come from clip_rng(seed, epoch, video): the same clips whichever
    actor decodes the video and whatever it decoded before, so a rerun with the same seed sees the same
    data. `epochs` is the run's EpochClock (data.epoch_clock); without one, `self.epoch` (default 0) is used.
    """

    def __init__(self, frames: int, strides: list[int], crop: int, clips_per_row: int = 1,
                 rows_per_video: int = 1, flip: bool = False, mode: str = "train", seed: int = 0,
                 jitter: bool = False, eval_clips: int = 1, num_classes: int = 0, backend: str = "decord",
                 resized_crop: tuple[float, float] | None = None, scales: list | None = None, failures=None,
                 epochs=None, eval_crops: int = 1, short_side_jitter: tuple[int, int] | None = None,
                 eval_short_side: int | None = None, frame_labels: bool = False):
        if mode not in ("train", "eval"):
            raise ValueError(f"ClipDecoder mode must be 'train' or 'eval', got {mode!r}")
        self.frames, self.strides, self.crop, self.flip, self.jitter = frames, list(strides), crop, flip, jitter
        self.mode, self.backend, self.failures, self.num_classes = mode, backend, failures, num_classes
        self.resized_crop = tuple(resized_crop) if resized_crop else None
        self.scales = [(int(w), int(h)) for w, h in scales] if scales else None
        self.short_side_jitter = tuple(short_side_jitter) if short_side_jitter else None
        if sum(x is not None for x in (self.resized_crop, self.scales, self.short_side_jitter)) > 1:
            raise ValueError("clip.resized_crop, clip.scales and clip.short_side_jitter are three ways of scale "
                             "augmentation; set one")
        if self.short_side_jitter and not crop <= self.short_side_jitter[0] <= self.short_side_jitter[1]:
            raise ValueError(f"clip.short_side_jitter={list(self.short_side_jitter)} must be [min, max] with "
                             f"clip.crop={crop} <= min <= max")
        if eval_short_side is not None and eval_short_side < crop:
            raise ValueError(f"clip.eval_short_side={eval_short_side} is smaller than clip.crop={crop}")
        self.eval_short_side, self.frame_labels = eval_short_side, frame_labels
        if eval_crops not in (1, 3):
            raise ValueError(f"clip.eval_crops must be 1 (centre) or 3 (start, centre, end), got {eval_crops}")
        self.eval_crops = eval_crops if mode == "eval" else 1
        self.clips_per_row = clips_per_row if mode == "train" else eval_clips * self.eval_crops
        self.rows_per_video = rows_per_video if mode == "train" else 1
        self.seed, self.epochs, self.epoch = seed, epochs, 0

    def indices(self, num_frames: int, rng: np.random.Generator | None) -> list[np.ndarray]:
        """Frame indices of the clips of one output row (rng None: eval mode's evenly spread clips)."""
        if rng is None:  # each evenly spread clip once per spatial view
            stride = self.strides[0]
            starts = uniform_starts(num_frames, self.frames, stride, self.clips_per_row // self.eval_crops)
            return [np.minimum(s + stride * np.arange(self.frames), num_frames - 1)
                    for s in starts for _ in range(self.eval_crops)]
        return [sample_indices(num_frames, self.frames, int(rng.choice(self.strides)), rng, self.jitter)
                for _ in range(self.clips_per_row)]

    def decode_video(self, data: bytes, num_frames: int, out: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Write the `rows_per_video` output rows of one video into `out` (rows, clips_per_row, T, crop, crop, 3);
        returns their frame indices (rows, clips_per_row, T).

        All clips of the video come from ONE reader decoding the union of their frames once, in order:
        SEVERE's 10 random clips per video per epoch overlap, and one pass over them costs a fraction of
        ten separate seeks and decodes (measured: jobs/benchmark_data.py).
        """
        indices = np.array([self.indices(num_frames, rng) for _ in range(self.rows_per_video)])  # (rows, clips, T)
        wanted, where = np.unique(indices, return_inverse=True)
        frames = read_frames(data, wanted, self.backend)
        where = where.reshape(indices.shape)  # each index's position in `frames`
        for r, k in np.ndindex(*indices.shape[:2]):
            self.crop_clip(frames, where[r, k], out[r, k], rng, view=k % self.eval_crops)
        return indices

    def crop_clip(self, frames: np.ndarray, positions: np.ndarray, out: np.ndarray,
                  rng: np.random.Generator | None, view: int = 0) -> None:
        """One clip into `out`: `frames[positions]` cropped (random, resized, centred or spatial view `view`),
        maybe flipped."""
        height, width = frames.shape[1], frames.shape[2]
        rescaling = (self.resized_crop or self.scales or self.short_side_jitter) if rng is not None else self.eval_short_side
        in_order = rescaling is not None  # then `cropped` holds the clip's frames, in order
        if rng is not None and self.resized_crop:
            y, x, h, w = resized_crop_box(height, width, self.resized_crop, rng)
            cropped = resize(frames[positions, y:y + h, x:x + w], self.crop)
        elif rng is not None and self.short_side_jitter:
            size = scale_jitter_size(self.short_side_jitter, rng)
            y, x, h, w = scaled_crop_box(height, width, self.crop, size, rng)
            cropped = resize(frames[positions, y:y + h, x:x + w], self.crop)
        elif rng is None and self.eval_short_side is not None:
            y, x, h, w = scaled_crop_box(height, width, self.crop, self.eval_short_side, None, view, self.eval_crops)
            cropped = resize(frames[positions, y:y + h, x:x + w], self.crop)
        elif rng is not None and self.scales:
            w, h = self.scales[int(rng.integers(len(self.scales)))]
            y, x = crop_box(h, w, self.crop, rng)
            cropped = resize(frames[positions], (h, w))[:, y:y + self.crop, x:x + self.crop]
        else:  # `cropped`: every decoded frame, cropped
            y, x = crop_box(height, width, self.crop, rng, view, self.eval_crops)
            cropped = frames[:, y:y + self.crop, x:x + self.crop]
        if self.flip and rng is not None and rng.random() < 0.5:
            cropped = cropped[:, :, ::-1]
        if in_order:
            out[...] = cropped
        else:  # one copy, straight into the output block (mode="clip": no bounds-check buffer; the positions
            np.take(cropped, positions, axis=0, out=out, mode="clip")  # index `frames` by construction)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        per = self.rows_per_video
        clips = np.empty((len(batch["video"]) * per, self.clips_per_row, self.frames, self.crop, self.crop, 3),
                         np.uint8)
        keep, spans = [], []  # per output row: its video's position in the batch, its first and last frame
        hashes = batch.get("sha256")
        keys = [video_key(v) for v in batch["video_id"]]
        train = self.mode == "train"
        epoch = current_epoch(self.epochs, self.epoch) if train else self.epoch
        for i, (video_id, data, n) in enumerate(zip(batch["video_id"], batch["video"], batch["num_frames"])):
            try:
                check_bytes(data, None if hashes is None else hashes[i])
                rng = clip_rng(self.seed, epoch, keys[i]) if train else None
                indices = self.decode_video(data, int(n), clips[len(keep):len(keep) + per], rng)
                keep += [i] * per
                spans += [(int(r.min()), int(r.max())) if train else (0, int(n) - 1) for r in indices]
            except DecodeError as e:
                if self.failures is None:
                    raise
                self.failures.add.remote(str(video_id), str(e))
        keep = np.asarray(keep, dtype=np.int64)
        out = {
            "clip": clips[:len(keep)],
            "label": batch["label"].astype(np.int64)[keep],
            "video_key": np.array(keys, dtype=np.int64)[keep],
        }
        if self.num_classes and "labels" in batch:
            hot = np.zeros((len(keep), self.num_classes), np.float32)
            for j, (i, (first, last)) in enumerate(zip(keep, spans)):
                labels = (sorted(active_classes(batch["segments"][i], float(batch["fps"][i]), first, last))
                          if self.frame_labels else batch["labels"][i])
                hot[j, np.asarray(labels, dtype=np.int64)] = 1.0
            out["multi_hot"] = hot
        if "count" in batch:
            out["count"] = np.asarray([np.nan if c is None else c for c in batch["count"]], np.float32)[keep]
        return out
