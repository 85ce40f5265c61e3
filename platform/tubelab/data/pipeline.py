"""Ray Data pipeline: shards -> (read tasks) -> ClipDecoder actors -> batches for Ray Train workers."""

from __future__ import annotations

import ray

from tubelab.data import shards, storage
from tubelab.data.decode import ClipDecoder

# Decoded clips are ~100x larger than their mp4 bytes. With Ray Data's default 128 MiB target block,
# a decode actor buffers a whole epoch of a small dataset before emitting anything, and training
# waits for all of it; small blocks stream clips to the trainer as they are decoded.
DECODED_BLOCK_BYTES = 8 * 1024 * 1024


def shard_url(cfg, dataset_name: str) -> str:
    return storage.join(storage.resolve(cfg.storage.url), "shards", dataset_name)


def check_clip_fits(manifest: dict, clip, split: str) -> None:
    """Reject clips that need more frames or pixels than the shards hold, before any training starts."""
    enc = manifest["encode"]
    span = (clip.frames - 1) * max(clip.strides) + 1
    shortest = manifest["splits"][split]["min_frames"]
    if span > shortest:
        raise ValueError(f"a clip of {clip.frames} frames at stride {max(clip.strides)} spans {span} frames but the "
                         f"shortest {split} video of {manifest['dataset']!r} has {shortest}; lower clip.frames or "
                         f"clip.strides")
    if clip.crop > enc["short_side"]:
        raise ValueError(f"clip.crop={clip.crop} is larger than the shards' short side {enc['short_side']}; "
                         f"lower clip.crop or re-prepare with a larger encode.short_side")
    if any(s < 1 for s in clip.strides) or clip.frames < 1 or clip.clips_per_video < 1:
        raise ValueError(f"clip.frames, clip.strides and clip.clips_per_video must be >= 1, got {clip.frames}, "
                         f"{list(clip.strides)} and {clip.clips_per_video}")


def clip_dataset(cfg, dataset_name: str, split: str, clip, *, mode: str, clips_per_row: int = 1,
                 seed: int) -> tuple[ray.data.Dataset, dict]:
    """A Ray Dataset of decoded clips for one split, and the shards' manifest.

    Train mode yields `clip.clips_per_video` rows per video per epoch; eval mode one centred clip.
    """
    url = shard_url(cfg, dataset_name)
    endpoint = cfg.storage.get("endpoint_url")
    manifest = shards.read_manifest(url, endpoint)
    shards.shard_paths(manifest, url, split)  # names the available splits if `split` is wrong
    check_clip_fits(manifest, clip, split)
    fs, _ = storage.filesystem(url, endpoint)
    paths = shards.shard_paths(manifest, url, split)
    res = cfg.resources
    ray.data.DataContext.get_current().target_max_block_size = DECODED_BLOCK_BYTES
    ds = ray.data.read_parquet(
        paths,
        filesystem=None if storage.is_local(url) else fs,
        columns=["video_id", "label", "num_frames", "width", "height", "video"],
        ray_remote_args={"num_cpus": res.read_task_cpus},
    )
    if mode == "train":
        # Shards are class-mixed at prepare time; block order + the consumer's local shuffle buffer
        # randomise each epoch without an all-to-all shuffle of the video bytes.
        ds = ds.randomize_block_order()
    ds = ds.map_batches(
        ClipDecoder,
        fn_constructor_kwargs=dict(frames=clip.frames, strides=list(clip.strides), crop=clip.crop,
                                   clips_per_row=clips_per_row, flip=clip.flip, mode=mode, seed=seed,
                                   rows_per_video=clip.clips_per_video if mode == "train" else 1),
        batch_size=8,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=res.decode_actors),
        num_cpus=res.cpus_per_decode_actor,
    )
    return ds, manifest
