import math

import torch

from tubelab.models import r2plus1d_tiny
from tubelab.objectives.moco import MoCo


def make(queue=32, momentum=0.9):
    torch.manual_seed(0)
    return MoCo(r2plus1d_tiny(num_classes=1), dim=16, queue=queue, momentum=momentum, temperature=0.2)


def clips(n=4):
    return torch.randn(n, 3, 4, 32, 32)


def test_queue_receives_keys_and_pointer_wraps():
    m = make(queue=6)
    m.eval()  # BN from running statistics: keys do not depend on the split-BN shuffle
    x = clips(4)
    m(x, x)
    assert int(m.queue_ptr) == 4
    with torch.no_grad():
        keys = m.encoder_k(x)
    assert torch.allclose(m.queue[:4], keys, atol=1e-5)
    m(x, x)
    assert int(m.queue_ptr) == (8 % 6)
    assert torch.allclose(m.queue[4:6], keys[:2], atol=1e-5)  # wrapped: slots 4, 5 then 0, 1
    assert torch.allclose(m.queue[0:2], keys[2:4], atol=1e-5)


def test_momentum_update_moves_key_encoder_toward_query_encoder():
    m = make(momentum=0.9)
    with torch.no_grad():
        for p in m.encoder_q.parameters():
            p.add_(1.0)
    before = [p.clone() for p in m.encoder_k.parameters()]
    q_params = [p.clone() for p in m.encoder_q.parameters()]
    m._momentum_update()
    for k0, k1, q in zip(before, m.encoder_k.parameters(), q_params):
        assert torch.allclose(k1, 0.9 * k0 + 0.1 * q, atol=1e-6)


def test_loss_gradients_reach_only_the_query_encoder():
    m = make()
    loss, stats = m(clips(), clips())
    assert math.isfinite(loss.item()) and 0 <= stats["contrast_acc"].item() <= 1
    loss.backward()
    assert all(p.grad is None for p in m.encoder_k.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder_q.parameters())


def test_identical_pairs_are_easy_positives():
    """Query == key should beat random queue negatives (loss well below chance log(K + 1))."""
    m = make(queue=64, momentum=0.0)
    x = clips(8)
    m.eval()  # same BN statistics for both encoders
    loss, stats = m(x, x)
    assert loss.item() < math.log(65)
    assert stats["contrast_acc"].item() == 1.0


def test_single_worker_split_bn_shuffles_and_unshuffles():
    m = make()
    x = clips(8)
    torch.manual_seed(123)
    keys = m._keys(x)
    torch.manual_seed(123)
    perm = torch.randperm(8)
    expected = torch.cat([m.encoder_k(c) for c in x[perm].chunk(2)])[torch.argsort(perm)]
    assert torch.allclose(keys, expected, atol=1e-5)
    # BN statistics of a chunk differ from those of the whole batch: the split is real.
    assert not torch.allclose(keys, m.encoder_k(x), atol=1e-3)
    m.eval()
    assert torch.allclose(m._keys(x), m.encoder_k(x), atol=1e-5)  # rows come back in their own order
