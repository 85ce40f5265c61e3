"""What a pretraining run trains on, as pictures: tubelet pairs from real shards, PNG + GIF.

Used by every pretraining run (logged to MLflow as an artifact) and by `tubelab tubelets preview`
(experiments/preview.py).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import torch

from tubelab.data import shards, storage
from tubelab.data.decode import ClipDecoder
from tubelab.data.pipeline import shard_url
from tubelab.tubelets.preview import save_preview

PREVIEW_PAIRS = 4


def sample_clips(cfg, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n training clips (n, 1 or 2, 3, T, H, W) uint8 and their video keys, decoded in this process."""
    p = cfg.pretrain
    url = shard_url(cfg, cfg.dataset.name)
    fs, _ = storage.filesystem(url, cfg.storage.get("endpoint_url"))
    manifest = shards.read_manifest(url, cfg.storage.get("endpoint_url"))
    with fs.open(shards.shard_paths(manifest, url, p.split)[0], "rb") as f:
        table = pq.read_table(io.BytesIO(f.read())).slice(0, n)
    clips_per_row = 2 if cfg.tubelet.mode == "video_contrast" else 1
    decoder = ClipDecoder(p.clip.frames, list(p.clip.strides), p.clip.crop, clips_per_row=clips_per_row,
                          flip=p.clip.flip, seed=cfg.seed)
    batch = decoder({c: table[c].to_numpy(zero_copy_only=False) for c in table.column_names})
    clips = torch.from_numpy(batch["clip"]).movedim(-1, -4)  # -> (n, K, 3, T, H, W)
    return clips, torch.from_numpy(batch["video_key"])


def write_preview(query: torch.Tensor, key: torch.Tensor, out_dir: str | Path, stem: str) -> list[str]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return save_preview(query, key, out_dir / f"{stem}.png", out_dir / f"{stem}.gif", max_pairs=PREVIEW_PAIRS)


def log_preview(cfg, run_id: str, query: torch.Tensor, key: torch.Tensor) -> None:
    """Rank 0 of a pretraining run: the first batch's pairs as an MLflow artifact."""
    from tubelab.tracking import mlflow_runs

    with tempfile.TemporaryDirectory() as d:
        for path in write_preview(query, key, d, "tubelet_pairs"):
            mlflow_runs.log_artifact(cfg, run_id, path, "preview")
