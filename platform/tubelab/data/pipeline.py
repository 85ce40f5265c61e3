"""Ray Data pipeline: shards -> (read tasks) -> ClipDecoder actors -> batches for Ray Train workers."""

from __future__ import annotations

import sys

import numpy as np
import ray
from ray.data.expressions import col

from tubelab.data import shards, storage
from tubelab.data.decode import ClipDecoder
from tubelab.data.spans import SpanDecoder
from tubelab.resources import placement

# Decoded clips are raw pixels, far larger than their mp4 bytes. With Ray Data's default 128 MiB target
# block, a decode actor buffers a whole epoch of a small dataset before emitting anything, and training
# waits for all of it; small blocks stream clips to the trainer as they are decoded.
DECODED_BLOCK_BYTES = 8 * 1024 * 1024
VIDEOS_PER_BLOCK = 8
# A decode call pauses once this many of its output blocks wait for the driver's executor to take them.
# A call yields only a couple of blocks (two videos' clips), so Ray's default of 2 leaves the decode
# actors idle whenever the executor is a little late; a deeper buffer keeps them decoding (figures:
# docs/benchmarks.md "Data pipeline", what-if gen2). Ray 2.60 exposes it only as a private DataContext
# field.
OUTPUT_BLOCKS_BUFFERED = 16
# The shard columns a decode actor reads.
DECODE_COLUMNS = ["video_id", "label", "labels", "segments", "count", "cycles", "num_frames", "fps", "sha256",
                  "video"]


_data_context_configured = False


def configure_data_context(output_blocks_buffered: int = OUTPUT_BLOCKS_BUFFERED,
                           progress_bars: bool | None = None) -> None:
    """Set this process's Ray DataContext for decoded-clip datasets: small blocks, the decode actors'
    output buffer, progress bars (None: only in a terminal).

    Why here, and once: a read copies the process's current DataContext into the Dataset it creates,
    and every dataset derived from it (the decode stage included) shares that copy; so the settings
    must be in place before the first read of a process. The first read_videos / clip_dataset call
    applies them (not init_ray: datasets are also built in processes that never call it, e.g. a Tune
    trial, and resources sits below data). After that they are left alone, so a caller can set other
    values for its later datasets (the data benchmark's what-ifs call this with other arguments)
    without every clip_dataset call putting them back.
    """
    global _data_context_configured
    ctx = ray.data.DataContext.get_current()
    ctx.target_max_block_size = DECODED_BLOCK_BYTES
    ctx._max_num_blocks_in_streaming_gen_buffer = output_blocks_buffered
    # One progress bar per dataset in a terminal; none in logs (per-operator bars re-printed every
    # epoch make a long run's log mostly progress lines).
    ctx.enable_operator_progress_bars = False
    ctx.enable_progress_bars = sys.stdout.isatty() if progress_bars is None else progress_bars
    _data_context_configured = True


def shard_url(cfg, dataset_name: str) -> str:
    return storage.join(storage.resolve(cfg.storage.url), "shards", dataset_name)


def check_clip_fits(manifest: dict, clip, split: str) -> None:
    """Reject clips that need more frames or pixels than the shards hold, before any training starts."""
    for key in ("frames", "clips_per_video", "eval_clips"):
        if clip[key] < 1:
            raise ValueError(f"clip.{key} must be >= 1, got {clip[key]}")
    if not clip.strides or min(clip.strides) < 1:
        raise ValueError(f"clip.strides must be a non-empty list of strides >= 1, got {list(clip.strides)}")
    span = (clip.frames - 1) * max(clip.strides) + 1
    shortest = manifest["splits"][split]["min_frames"]
    if span > shortest:
        raise ValueError(f"a clip of {clip.frames} frames at stride {max(clip.strides)} spans {span} frames but the "
                         f"shortest {split} video of {manifest['dataset']!r} has {shortest}; lower clip.frames or "
                         f"clip.strides")
    for w, h in clip.get("scales") or []:
        if clip.crop > min(w, h):
            raise ValueError(f"clip.crop={clip.crop} is larger than the {w}x{h} of clip.scales; lower clip.crop or "
                             f"use larger scales")
    if clip.crop > manifest["encode"]["short_side"]:
        raise ValueError(f"clip.crop={clip.crop} is larger than the shards' short side "
                         f"{manifest['encode']['short_side']}; lower clip.crop or re-prepare with a larger "
                         f"encode.short_side")


def check_splits(cfg, dataset_name: str, splits: list[str], clip) -> None:
    """The splits exist in the shards and the clip fits their shortest video: checked before Ray starts."""
    url = shard_url(cfg, dataset_name)
    manifest = shards.read_manifest(url, cfg.storage.get("endpoint_url"))
    for split in splits:
        shards.shard_paths(manifest, url, split)
        check_clip_fits(manifest, clip, split)


def select_videos(rows: list[dict], *, per_class: int | None = None, fraction: float | None = None,
                  seed: int = 0) -> list[str]:
    """A reproducible subset of a split's videos (rows: video_id, label), sorted.

    per_class: SEVERE's sample budgets, ceil(budget / num_classes) videos of every class;
    fraction: pretraining-data budgets (e.g. 0.25), drawn per class so the class mix is kept.
    """
    if per_class is not None and per_class < 1:
        raise ValueError(f"a budget must leave at least one video per class, got {per_class} per class")
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"a data fraction must be in (0, 1], got {fraction}")
    by_class: dict[int, list[str]] = {}
    for row in sorted(rows, key=lambda r: r["video_id"]):
        by_class.setdefault(int(row["label"]), []).append(row["video_id"])
    rng = np.random.default_rng(seed)
    chosen = []
    for label in sorted(by_class):
        ids = by_class[label]
        k = len(ids) if per_class is None else per_class
        if fraction is not None:
            k = max(1, round(len(ids) * fraction))
        if k > len(ids):
            raise ValueError(f"class {label} has {len(ids)} videos, fewer than the {k} the budget asks for; "
                             f"lower the budget")
        chosen += [ids[j] for j in rng.choice(len(ids), size=k, replace=False)]
    return sorted(chosen)


def check_no_empty_class(rows: list[dict], labels, classes: list[str], where: str) -> None:
    """Every class a classifier is asked to learn has training videos (rows: video_id, label)."""
    present = {int(r["label"]) for r in rows}
    empty = [f"{i} {classes[i]!r}" for i in labels if i not in present]
    if empty:
        raise ValueError(f"{where} has no videos of class {', '.join(empty)}; add videos of it and re-prepare, or "
                         f"leave it out with setting.classes")


def split_rows(cfg, dataset_name: str, split: str) -> list[dict]:
    """(video_id, label) of every video of a split, read from the shards without the video bytes."""
    url = shard_url(cfg, dataset_name)
    endpoint = cfg.storage.get("endpoint_url")
    return shards.read_split(shards.read_manifest(url, endpoint), url, split, ["video_id", "label"],
                             endpoint).to_pylist()


def read_videos(cfg, dataset_name: str, split: str) -> ray.data.Dataset:
    """The split's shard rows (DECODE_COLUMNS, the video bytes included) as a lazy Ray Dataset.

    clip_dataset reads them like this on every call (every epoch); a caller that wants them read once
    per run can `materialize()` this and pass it to clip_dataset as `videos`."""
    url = shard_url(cfg, dataset_name)
    manifest = shards.read_manifest(url, cfg.storage.get("endpoint_url"))
    return _read_rows(cfg, url, shards.shard_paths(manifest, url, split))


def _read_rows(cfg, url: str, paths: list[str]) -> ray.data.Dataset:
    if not _data_context_configured:  # the read copies the DataContext; every dataset derived from it shares it
        configure_data_context()
    fs, _ = storage.filesystem(url, cfg.storage.get("endpoint_url"))
    return ray.data.read_parquet(
        paths,
        filesystem=None if storage.is_local(url) else fs,
        num_cpus=cfg.resources.read_task_cpus,
    ).select_columns(DECODE_COLUMNS)


def clip_dataset(cfg, dataset_name: str, split: str, clip, *, mode: str, clips_per_row: int = 1, seed: int,
                 video_ids: list[str] | None = None, failures=None, epochs=None,
                 videos: ray.data.Dataset | None = None, deterministic: bool = False) -> tuple[ray.data.Dataset, dict]:
    """A Ray Dataset of decoded clips for one split, and the shards' manifest.

    Train mode yields `clip.clips_per_video` rows per video per epoch; eval mode one row per video with
    `clip.eval_clips` clips. `video_ids` restricts the split (budgets); `failures` is a FailureLog
    actor that receives the videos that cannot be decoded (they are skipped, never replaced); `epochs` the
    run's EpochClock, which the clips' random draws depend on (ClipDecoder). `deterministic`: the same
    block order every epoch (the seed's), so that with Ray Data's preserve_order (training.common.data_config)
    a rerun sees the same batches; otherwise a new random block order each epoch.
    `videos`: the split's rows from read_videos (e.g. materialized once per run) instead of reading
    the shards again.
    """
    url = shard_url(cfg, dataset_name)
    manifest = shards.read_manifest(url, cfg.storage.get("endpoint_url"))
    paths = shards.shard_paths(manifest, url, split)  # names the available splits if `split` is wrong
    check_clip_fits(manifest, clip, split)
    ds = _read_rows(cfg, url, paths) if videos is None else videos
    res = cfg.resources
    if video_ids is not None:
        ds = ds.filter(expr=col("video_id").is_in(list(video_ids)))
    # The Parquet reader hands a small split over as one block, and one block means one decode task on
    # one actor however many there are (measured: jobs/benchmark_data.py); small blocks spread the work
    # and give the block-order shuffle something to shuffle.
    ds = ds.repartition(target_num_rows_per_block=VIDEOS_PER_BLOCK)
    if mode == "train":
        # Shards are class-mixed at prepare time; block order + the consumer's local shuffle buffer
        # randomise each epoch without an all-to-all shuffle of the video bytes.
        ds = ds.randomize_block_order(seed=seed if deterministic else None)
    multi_label = manifest["task"] == "multi_label"
    frame_labels = multi_label and clip.get("labels", "frames") == "frames"
    if frame_labels and not manifest.get("action_intervals"):
        raise ValueError(f"clip.labels=frames labels each clip with the actions of its frames, but the shards of "
                         f"{dataset_name!r} hold no action intervals; use clip.labels=video")
    ds = ds.map_batches(
        ClipDecoder,
        fn_constructor_kwargs=dict(frames=clip.frames, strides=list(clip.strides), crop=clip.crop,
                                   clips_per_row=clips_per_row, rows_per_video=clip.clips_per_video,
                                   flip=clip.flip, jitter=clip.jitter, eval_clips=clip.eval_clips, mode=mode,
                                   seed=seed, backend=clip.decoder, failures=failures, epochs=epochs,
                                   resized_crop=clip.get("resized_crop"), scales=clip.get("scales"),
                                   eval_crops=clip.get("eval_crops", 1), frame_labels=frame_labels,
                                   short_side_jitter=clip.get("short_side_jitter"),
                                   eval_short_side=clip.get("eval_short_side"),
                                   num_classes=len(manifest["classes"]) if multi_label else 0),
        batch_size=2,  # small calls keep an actor from stalling on its full output buffer
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=res.decode_actors),
        num_cpus=res.cpus_per_decode_actor,
        resources=placement(res, "decode") or None,  # the decode-node marker (resources.*), if any
    )
    return ds, manifest


def span_dataset(cfg, dataset_name: str, split: str, counting, *, size: int, flip: bool, backend: str, mode: str,
                 seed: int, video_ids: list[str] | None = None, failures=None, epochs=None,
                 deterministic: bool = False) -> ray.data.Dataset:
    """The counting model's rows of one split (data.spans.SpanDecoder): `counting.subclips` random sub-clips
    of at most `counting.sample_duration` frames per training video (flipped with p = 0.5 if `flip`); each
    evaluation video's annotated span, padded to the split's longest video; frames letterboxed to `size`."""
    url = shard_url(cfg, dataset_name)
    manifest = shards.read_manifest(url, cfg.storage.get("endpoint_url"))
    paths = shards.shard_paths(manifest, url, split)
    if not manifest.get("cycle_bounds"):
        raise ValueError(f"setting.counting.method=context trains on the repetitions' boundaries, but the shards "
                         f"of {dataset_name!r} hold none (prepare them from the official annotations or a CSV "
                         f"with a cycles column, datasets/README.md); or use setting.counting.method=clip")
    ds = _read_rows(cfg, url, paths)
    if video_ids is not None:
        ds = ds.filter(expr=col("video_id").is_in(list(video_ids)))
    ds = ds.repartition(target_num_rows_per_block=VIDEOS_PER_BLOCK)
    if mode == "train":
        ds = ds.randomize_block_order(seed=seed if deterministic else None)
    res = cfg.resources
    max_frames = counting.sample_duration if mode == "train" else manifest["splits"][split]["max_frames"]
    return ds.map_batches(
        SpanDecoder,
        fn_constructor_kwargs=dict(size=size, max_frames=max_frames, mode=mode, seed=seed,
                                   rows_per_video=counting.subclips, flip=flip, backend=backend,
                                   failures=failures, epochs=epochs),
        batch_size=2,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=res.decode_actors),
        num_cpus=res.cpus_per_decode_actor,
        resources=placement(res, "decode") or None,
    )
