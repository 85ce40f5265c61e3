"""Overrides that make commands small enough for the test suite: tiny synthetic videos, tiny clips, few
epochs. Shared by the tests that run whole commands."""

TINY_VIDEOS = ["dataset.generator.num_frames=24", "dataset.generator.width=64", "dataset.generator.height=48",
               "dataset.encode.short_side=48"]
# The pretraining of tests/conftest.py's `my_run` (40 videos, 2 clips each: 10 steps per epoch on 2 workers).
TINY_PRETRAIN = ["dataset.generator.train_per_class=4", "dataset.generator.test_per_class=1", *TINY_VIDEOS,
                 "pretrain.batch_size=4", "pretrain.clip.crop=40", "pretrain.clip.clips_per_video=2",
                 "pretrain.moco.queue=32"]
# A fine-tune of the synthetic setting on my_run's dataset (the same card, so its shards are reused).
TINY_FINETUNE = [f"card.synthetic.{o.removeprefix('dataset.')}" for o in TINY_PRETRAIN if o.startswith("dataset.")] + [
    "setting.epochs=1", "setting.batch_size=4", "setting.clip.crop=40", "setting.clip.clips_per_video=1"]


def tiny_sweep(pretrain_epochs: int = 2) -> list[str]:
    return [
        "dataset.generator.train_per_class=2",
        "dataset.generator.test_per_class=1",
        *TINY_VIDEOS,
        f"pretrain.epochs={pretrain_epochs}",
        "pretrain.batch_size=4",
        "pretrain.clip.crop=40",
        "pretrain.clip.clips_per_video=1",
        "pretrain.moco.queue=16",
        "setting.epochs=1",
        "setting.batch_size=4",
        "setting.clip.crop=40",
        "setting.clip.clips_per_video=1",
    ]
