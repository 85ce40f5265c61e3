"""Overrides that make a sweep small enough for the test suite: 30 tiny synthetic videos, tiny clips,
one fine-tuning epoch. Shared by the end-to-end sweep tests."""


def tiny_sweep(pretrain_epochs: int = 2) -> list[str]:
    return [
        "dataset.generator.train_per_class=2",
        "dataset.generator.test_per_class=1",
        "dataset.generator.num_frames=24",
        "dataset.generator.width=64",
        "dataset.generator.height=48",
        "dataset.encode.short_side=48",
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
