"""`tubelab tubelets preview [tubelet=...]`: a PNG contact sheet and a GIF of tubelet pairs from real shards."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from tubelab import config
from tubelab.data.prepare import ensure_shards
from tubelab.training.preview import PREVIEW_PAIRS, sample_clips, write_preview
from tubelab.tubelets.pairs import make_pair


def preview(overrides: list[str]) -> list[str]:
    """`tubelab tubelets preview [tubelet=...]`: pairs as the pretraining loop would make them."""
    cfg = config.load("pretrain", overrides)
    ensure_shards(cfg, cfg.dataset.name)
    clips, keys = sample_clips(cfg, PREVIEW_PAIRS * 2)
    query, key, _ = make_pair(clips, keys, cfg.tubelet, torch.Generator().manual_seed(cfg.seed))
    out = Path(cfg.home) / "previews"
    return write_preview(query, key, out, f"tubelet-{cfg.choices.tubelet}-{time.strftime('%Y%m%d-%H%M%S')}")
