"""Object storage end to end against a real S3 endpoint (moto_server on 127.0.0.1) that fails some
requests: prepare writes shards to S3 with Ray tasks, Ray Data streams clips from S3, Ray Train
checkpoints to S3, and a fine-tune loads the pretrained backbone from S3, all through a proxy that
answers every 7th request with S3's 503 SlowDown (the clients retry; nothing partial is taken)."""

import ray
import s3fs
from ray.util.state import list_actors
from omegaconf import OmegaConf

from services import FlakyS3Proxy

from tubelab import config
from tubelab.data.pipeline import clip_dataset
from tubelab.data.prepare import ensure_shards
from tubelab.experiments.plan import finetune_config
from tubelab.experiments.stages import checkpoint_uri
from tubelab.training.finetune import run_finetune
from tubelab.training.pretrain import run_pretrain

SMALL = ["dataset.generator.train_per_class=2", "dataset.generator.test_per_class=1",
         "dataset.generator.num_frames=32", "dataset.generator.width=64", "dataset.generator.height=48",
         "dataset.encode.short_side=48", "pretrain.epochs=1", "pretrain.batch_size=8", "pretrain.clip.crop=40",
         "pretrain.clip.clips_per_video=1", "pretrain.moco.queue=16"]


def test_prepare_stream_checkpoint_and_load_through_s3(s3_endpoint, tmp_path, monkeypatch):
    moto, bucket = s3_endpoint
    proxy = FlakyS3Proxy(moto, fail_every=7)
    endpoint = proxy.url
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path))
    cfg = config.load("pretrain", [*SMALL, "storage=s3", f"storage.url=s3://{bucket}/e2e",
                                   f"storage.endpoint_url={endpoint}"])
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": moto})  # checks read the store itself, not the proxy
    try:
        url = ensure_shards(cfg, "synthetic")
        assert url == f"s3://{bucket}/e2e/shards/synthetic"
        assert fs.exists(f"{bucket}/e2e/shards/synthetic/manifest.json")
        assert fs.exists(f"{bucket}/e2e/shards/synthetic/prepare_report.json")
        assert len(fs.glob(f"{bucket}/e2e/shards/synthetic/train-*.parquet")) >= 1
        assert not (tmp_path / "shards").exists()  # nothing went to the local disk instead

        def footer_readers():  # this session's Ray by address: a bare lookup fails beside other local Rays
            return len(list_actors(address=ray.get_runtime_context().gcs_address,
                                   filters=[("class_name", "=", "FooterReader")], limit=1000))

        before = footer_readers()
        ds, manifest = clip_dataset(cfg, "synthetic", "train", cfg.pretrain.clip, mode="train", seed=0)
        batches = list(ds.iter_batches(batch_size=8, batch_format="numpy"))
        # the listing started resources.footer_reader_actors Parquet footer readers, not Ray's default 32
        assert footer_readers() - before == cfg.resources.footer_reader_actors == 1
        assert sum(len(b["clip"]) for b in batches) == manifest["splits"]["train"]["videos"] == 20
        assert batches[0]["clip"].shape[1:] == (1, 8, 40, 40, 3)

        result = run_pretrain(cfg, name="s3-pretrain")
        uri = checkpoint_uri(cfg, result.checkpoint)
        assert uri.startswith(f"s3://{bucket}/e2e/checkpoints/s3-pretrain/")
        assert fs.exists(uri[len("s3://"):] + "/checkpoint.pt")

        # precise BN (Charades' recipe): the evaluating worker's own pass over the training clips, from S3 too
        setting = finetune_config(cfg, "synthetic", ["setting.epochs=1", "setting.batch_size=8",
                                                     "setting.clip.crop=40", "setting.clip.clips_per_video=1",
                                                     "setting.precise_bn_batches=2"])
        ft = run_finetune(OmegaConf.create({**setting, "checkpoint": uri}), name="s3-finetune")
        assert 0.0 <= ft.metrics["score"] == ft.metrics["test_top1"] <= 100.0 and ft.metrics["test_videos"] == 10
        assert ft.metrics["precise_bn_batches"] == 2
        assert proxy.failed >= 10 and proxy.failed == proxy.requests // 7  # faults were injected, all retried
    finally:
        ray.shutdown()
        proxy.stop()
