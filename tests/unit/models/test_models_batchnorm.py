"""global_batchnorm keeps a model's parameters, buffers and frozen flags; with one worker it is BatchNorm.
Its statistics across workers: tests/unit/training/test_training_batch_equivalence.py."""

import torch

from tubelab import config
from tubelab.models import build_model
from tubelab.models.batchnorm import GlobalBatchNorm, global_batchnorm
from tubelab.objectives.moco import MoCo


def test_conversion_keeps_every_parameter_buffer_and_frozen_flag():
    torch.manual_seed(0)
    moco = MoCo(build_model(config.load("pretrain").model, num_classes=1), dim=16, queue=32, batchnorm="global")
    before = {k: v.clone() for k, v in moco.state_dict().items()}
    frozen = {n for n, p in moco.named_parameters() if not p.requires_grad}
    params = {n: p for n, p in moco.named_parameters()}
    converted = global_batchnorm(moco, torch.device("cpu"))
    bns = [m for m in converted.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and all(isinstance(m, GlobalBatchNorm) for m in bns)
    after = converted.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    # the key encoder's BN weights stay frozen (the optimiser and DDP must not see them) and are the same objects
    assert {n for n, p in converted.named_parameters() if not p.requires_grad} == frozen
    key_bns = [n for n, m in converted.named_modules() if isinstance(m, GlobalBatchNorm) and n.startswith("encoder_k")]
    assert key_bns and all(f"{n}.weight" in frozen and f"{n}.bias" in frozen for n in key_bns)
    assert all(p is params[n] for n, p in converted.named_parameters())


def test_one_worker_is_plain_batchnorm_in_train_and_eval_mode():
    torch.manual_seed(0)
    plain = torch.nn.BatchNorm3d(4)
    torch.nn.init.uniform_(plain.weight)
    same = global_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm3d(4)), torch.device("cpu"))
    same.load_state_dict({f"0.{k}": v for k, v in plain.state_dict().items()})
    x = torch.randn(6, 4, 3, 5, 5) * 3 + 1
    for train in (True, False):
        plain.train(train), same.train(train)
        assert torch.allclose(same(x), plain(x), atol=1e-5)
    assert torch.allclose(same[0].running_var, plain.running_var) and int(same[0].num_batches_tracked) == 1
