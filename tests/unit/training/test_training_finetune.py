"""How fine-tuning loads a pretrained backbone: strict by default, the SEVERE code's strict=False on request."""

import pytest
import torch

from tubelab import config
from tubelab.models import build_model
from tubelab.models.checkpoint import CheckpointMismatchError
from tubelab.training.finetune import load_pretrained


def test_strict_load_fails_on_a_stray_key_and_strict_load_false_passes_it(tmp_path):
    cfg = config.load("finetune")
    state = {k: v for k, v in build_model(cfg.model, num_classes=1).state_dict().items()
             if not k.startswith("fc.")}  # a pretraining checkpoint's backbone has no classifier
    state.pop(next(k for k in state if k.endswith("running_mean")))  # a missing key ...
    state["projection.weight"] = torch.zeros(2, 2)  # ... and one the model does not have
    torch.save({"model": state}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointMismatchError, match="missing from checkpoint"):
        load_pretrained(build_model(cfg.model, num_classes=10), str(tmp_path))
    summary = load_pretrained(build_model(cfg.model, num_classes=10), str(tmp_path), strict=False)
    assert "unexpected (allowed): projection.weight" in summary and "running_mean" in summary, summary
