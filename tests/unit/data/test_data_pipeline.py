"""Subsets (budgets), clip checks: the parts of the Ray Data pipeline that need no cluster."""

import math

import pytest
from omegaconf import OmegaConf

from tubelab.data.pipeline import check_clip_fits, check_no_empty_class, select_videos

ROWS = [{"video_id": f"c{c}/v{i:02d}", "label": c} for c in range(4) for i in range(10 + c)]


def test_budget_takes_the_same_number_of_videos_from_every_class():
    per_class = math.ceil(20 / 4)  # SEVERE: ceil(budget / num_classes)
    ids = select_videos(ROWS, per_class=per_class, seed=3)
    assert len(ids) == 20 and ids == sorted(ids)
    assert {c: sum(i.startswith(f"c{c}/") for i in ids) for c in range(4)} == {0: 5, 1: 5, 2: 5, 3: 5}
    assert select_videos(ROWS, per_class=per_class, seed=3) == ids  # recorded seed -> the same ids
    assert select_videos(list(reversed(ROWS)), per_class=per_class, seed=3) == ids  # row order does not matter
    assert select_videos(ROWS, per_class=per_class, seed=4) != ids


def test_fraction_keeps_the_class_mix():
    ids = select_videos(ROWS, fraction=0.5, seed=0)
    assert {c: sum(i.startswith(f"c{c}/") for i in ids) for c in range(4)} == {0: 5, 1: round(5.5), 2: 6, 3: round(6.5)}
    assert len(select_videos(ROWS, fraction=1.0, seed=0)) == len(ROWS)


@pytest.mark.parametrize("kwargs,message", [
    ({"per_class": 11}, "class 0 has 10 videos, fewer than the 11"),
    ({"per_class": 0}, "at least one video per class"),
    ({"fraction": 0.0}, r"must be in \(0, 1\]"),
    ({"fraction": 1.5}, r"must be in \(0, 1\]"),
])
def test_impossible_budgets_fail_with_the_numbers(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_videos(ROWS, seed=0, **kwargs)


def test_a_class_without_training_videos_is_named():
    rows = [{"video_id": "a", "label": 0}, {"video_id": "b", "label": 2}]
    check_no_empty_class(rows, [0, 2], ["Run", "Jump", "Swim"], "split")  # class 1 left out: fine
    with pytest.raises(ValueError, match=r"the train split of 'd' has no videos of class 1 'Jump'; .*setting.classes"):
        check_no_empty_class(rows, range(3), ["Run", "Jump", "Swim"], "the train split of 'd'")


def clip(**kw):
    base = {"frames": 8, "strides": [2], "crop": 64, "clips_per_video": 1, "eval_clips": 1}
    return OmegaConf.create({**base, **kw})


MANIFEST = {"dataset": "d", "encode": {"short_side": 72}, "splits": {"train": {"min_frames": 20}}}


def test_clip_checks():
    check_clip_fits(MANIFEST, clip(), "train")  # 15-frame span in 20 frames, 64 <= 72
    with pytest.raises(ValueError, match="spans 22 frames but the shortest train video of 'd' has 20"):
        check_clip_fits(MANIFEST, clip(strides=[3]), "train")
    with pytest.raises(ValueError, match="clip.crop=80 is larger than the shards' short side 72"):
        check_clip_fits(MANIFEST, clip(crop=80), "train")
    with pytest.raises(ValueError, match="clip.eval_clips must be >= 1"):
        check_clip_fits(MANIFEST, clip(eval_clips=0), "train")
    with pytest.raises(ValueError, match="clip.strides must be a non-empty list"):
        check_clip_fits(MANIFEST, clip(strides=[]), "train")
    check_clip_fits(MANIFEST, clip(scales=[[149, 112], [86, 64]]), "train")
    with pytest.raises(ValueError, match=r"clip.crop=64 is larger than the 80x60 of clip.scales"):
        check_clip_fits(MANIFEST, clip(scales=[[149, 112], [80, 60]]), "train")


class _Read:
    def select_columns(self, columns):
        return self


def test_data_context_is_set_once_before_the_first_read(monkeypatch, tmp_path):
    """The first read of a process applies tubelab's DataContext; a caller's later values are not put back."""
    import ray

    from tubelab.data import pipeline

    ctx = ray.data.DataContext()
    monkeypatch.setattr(ray.data.DataContext, "get_current", staticmethod(lambda: ctx))
    monkeypatch.setattr(pipeline, "_data_context_configured", False)
    seen = []

    def read_parquet(paths, **kwargs):  # what a Dataset would copy: the context at read time
        seen.append((ctx.target_max_block_size, ctx._max_num_blocks_in_streaming_gen_buffer))
        return _Read()

    monkeypatch.setattr(ray.data, "read_parquet", read_parquet)
    monkeypatch.setattr(pipeline.shards, "read_manifest", lambda url, endpoint=None: {})
    monkeypatch.setattr(pipeline.shards, "shard_paths", lambda manifest, url, split: [f"{url}/{split}-0.parquet"])
    cfg = OmegaConf.create({"storage": {"url": str(tmp_path)}, "resources": {"read_task_cpus": 1}})
    pipeline.read_videos(cfg, "d", "train")
    assert seen == [(pipeline.DECODED_BLOCK_BYTES, pipeline.OUTPUT_BLOCKS_BUFFERED)]
    assert ctx.enable_operator_progress_bars is False
    pipeline.configure_data_context(output_blocks_buffered=2, progress_bars=False)
    pipeline.read_videos(cfg, "d", "train")
    assert seen[-1] == (pipeline.DECODED_BLOCK_BYTES, 2) and ctx.enable_progress_bars is False
