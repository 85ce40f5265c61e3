"""Training throughput: clips/s with the real data pipeline vs the same loop fed in-memory tensors.

    python jobs/benchmark_train.py [--out FILE] [--epochs N] [overrides ...]

CPU: the tiny model on the synthetic shards (2 train workers, 1 decode actor: the embedded default).
GPU (when CUDA is present): R(2+1)D-18, 16x112x112, bf16, one GPU worker, decode actors on the
remaining CPUs; also reports model FLOPs utilisation. Both runs are the production pretraining loop
(`tubelab.training.pretrain`); the baseline only swaps the batch source, the shard iterator, for random
uint8 clips of the same shape (`run_pretrain(..., batch_source=in_memory_batches)`). Steady state =
the last epoch.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))
os.environ.setdefault("TUBELAB_HOME", str(ROOT / ".tubelab" / "bench"))

import ray  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from tubelab import config, resources  # noqa: E402
from tubelab.data.prepare import ensure_shards  # noqa: E402
from tubelab.models import build_model  # noqa: E402
from tubelab.training.pretrain import run_pretrain  # noqa: E402

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}  # dense, per GPU

GPU = ["model=r2plus1d_18", "pretrain.clip.frames=16", "pretrain.clip.crop=112", "pretrain.clip.strides=[1,2]",
       "pretrain.batch_size=32", "pretrain.moco.queue=1024", "pretrain.precision=bf16", "pretrain.channels_last=true",
       "dataset.encode.short_side=128", "dataset.generator.num_frames=64", "dataset.generator.width=170",
       "dataset.generator.height=128", "resources.train_workers=1", "resources.gpus_per_train_worker=1",
       "resources.cpus_per_train_worker=2"]

# --quick: the tiny synthetic set of the test suite (tests/tiny.py), prepared under TUBELAB_HOME.
QUICK = ["dataset.generator.train_per_class=2", "dataset.generator.test_per_class=1", "dataset.generator.num_frames=24",
         "dataset.generator.width=64", "dataset.generator.height=48", "dataset.encode.short_side=48",
         "pretrain.batch_size=4", "pretrain.clip.crop=40", "pretrain.moco.queue=16", "resources.train_workers=1"]


def forward_flops(cfg) -> float:
    """FLOPs of one backbone forward of one clip (counted by torch's FlopCounterMode)."""
    model = build_model(cfg.model, num_classes=1).eval()
    x = torch.zeros(1, 3, cfg.pretrain.clip.frames, cfg.pretrain.clip.crop, cfg.pretrain.clip.crop)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return float(counter.get_total_flops())


def in_memory_batches(*, batch_size: int, clip_shape: tuple, steps: int, rank: int, epoch: int):
    """The baseline's batch source: random uint8 clips shaped like the pipeline's, already in memory."""
    clips = torch.randint(0, 256, (batch_size, *clip_shape), dtype=torch.uint8)
    keys = torch.arange(batch_size) + rank * batch_size
    for _ in range(steps):
        yield {"clip": clips, "video_key": keys}


def measure(overrides: list[str], label: str, batch_source=None) -> dict:
    cfg = config.load("pretrain", overrides)
    ensure_shards(cfg, cfg.dataset.name)
    resources.init_ray(cfg.resources)
    result = run_pretrain(cfg, name=f"bench-{label}-{time.strftime('%Y%m%d-%H%M%S')}", batch_source=batch_source)
    m = result.metrics
    print(f"{label}: {m['clips_per_s']:.1f} clips/s (data-wait {m['data_wait_fraction']:.2f}), last epoch")
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="seconds-long form for the test suite: 1 epoch, 1 worker, 2 tiny videos per class (the figures mean nothing)")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    on_gpu = torch.cuda.is_available()
    base = [*(GPU if on_gpu else []), f"pretrain.epochs={1 if args.quick else args.epochs}",
            *(QUICK if args.quick else []), *args.overrides]
    if on_gpu:
        decode = max(int((os.cpu_count() or 2) - 3), 1)
        base += [f"resources.decode_actors={decode}"]
    pipeline = measure(base, "pipeline")
    memory = measure(base, "in-memory", batch_source=in_memory_batches)
    cfg = config.load("pretrain", base)
    out = {
        "device": torch.cuda.get_device_name(0) if on_gpu else f"cpu ({os.cpu_count()} cores)",
        "model": cfg.model.name,
        "clip": f"{cfg.pretrain.clip.frames}x{cfg.pretrain.clip.crop}x{cfg.pretrain.clip.crop}",
        "train_workers": cfg.resources.train_workers,
        "decode_actors": cfg.resources.decode_actors,
        "pipeline_clips_per_s": pipeline["clips_per_s"],
        "in_memory_clips_per_s": memory["clips_per_s"],
        "data_stall_ratio": pipeline["clips_per_s"] / memory["clips_per_s"],
        "pipeline_data_wait_fraction": pipeline["data_wait_fraction"],
    }
    if on_gpu:
        # Per pair: query forward + backward (~3 forwards) and the key encoder's forward.
        flops_per_clip = 4 * forward_flops(cfg)
        peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in out["device"]), None)
        out["mfu"] = flops_per_clip * pipeline["clips_per_s"] / peak if peak else None
        out["mfu_in_memory"] = flops_per_clip * memory["clips_per_s"] / peak if peak else None
    print(f"data-stall ratio (pipeline / in-memory): {out['data_stall_ratio']:.2f}")
    if "mfu" in out:
        print(f"MFU: {out['mfu']}")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    ray.shutdown()


if __name__ == "__main__":
    main()
