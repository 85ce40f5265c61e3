"""Precise BN statistics (SlowFast's USE_PRECISE_STATS): every BN layer's running statistics become the
average of its batch statistics over n batches, each layer seeing inputs normalised by batch statistics."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tubelab.models.batchnorm import GlobalBatchNorm, global_batchnorm
from tubelab.training.precise_bn import update_bn_stats


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(),
                         nn.Conv3d(4, 5, 3, padding=1), nn.BatchNorm3d(5))


def by_hand(net, batches):
    """Each batch through the net with batch statistics (F.batch_norm in training mode, no running buffers);
    per BN layer the mean over batches of the batch mean and of the unbiased batch variance."""
    conv1, _, _, conv2, _ = net
    stats = {1: [], 4: []}
    for x in batches:
        h = conv1(x)
        stats[1].append((h.mean((0, 2, 3, 4)), h.var((0, 2, 3, 4), unbiased=True)))
        h = F.relu(F.batch_norm(h, None, None, net[1].weight, net[1].bias, training=True, eps=net[1].eps))
        h = conv2(h)
        stats[4].append((h.mean((0, 2, 3, 4)), h.var((0, 2, 3, 4), unbiased=True)))
    return {i: (torch.stack([m for m, _ in s]).mean(0), torch.stack([v for _, v in s]).mean(0)) for i, s in stats.items()}


def test_running_statistics_become_the_average_over_the_batches():
    net = small_net()
    batches = [torch.randn(4, 3, 2, 6, 6) * (k + 1) + k for k in range(5)]  # batches that differ: an EMA would not match
    with torch.no_grad():
        expected = by_hand(net, batches[:3])
    net[1].running_mean.fill_(7.0)  # whatever was there before is replaced
    net.eval()
    assert update_bn_stats(net, iter(batches), 3) == 3
    for i, (mean, var) in expected.items():
        torch.testing.assert_close(net[i].running_mean, mean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(net[i].running_var, var, rtol=1e-5, atol=1e-5)
    assert not net.training  # the mode, the momentum and the forward are given back
    assert all(m.momentum == 0.1 and "forward" not in vars(m) for m in (net[1], net[4]))


def test_global_bn_layers_use_the_local_batch_and_no_collectives(monkeypatch):
    """Only the evaluating worker computes them: a layer that all-reduced would wait for the others forever."""
    net = global_batchnorm(small_net(), torch.device("cpu"))
    assert isinstance(net[1], GlobalBatchNorm)
    expected_net = small_net()
    monkeypatch.setattr(GlobalBatchNorm, "forward", lambda self, x: pytest.fail("GlobalBatchNorm.forward ran"))
    batches = [torch.randn(4, 3, 2, 6, 6) + k for k in range(2)]
    update_bn_stats(net, batches, 2)
    with torch.no_grad():
        expected = by_hand(expected_net, batches)
    torch.testing.assert_close(net[4].running_var, expected[4][1], rtol=1e-5, atol=1e-5)
    with pytest.raises(pytest.fail.Exception):  # the class's forward is in place again
        net(batches[0])


def test_fewer_batches_than_asked_is_an_error():
    net = small_net()
    with pytest.raises(RuntimeError, match="need 4 training batches, the training split gave 2; lower setting.precise_bn_batches"):
        update_bn_stats(net, [torch.randn(2, 3, 2, 6, 6)] * 2, 4)
    assert net[1].momentum == 0.1 and "forward" not in vars(net[1])
