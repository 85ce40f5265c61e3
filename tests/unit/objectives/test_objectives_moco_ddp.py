"""Batch-shuffle BN across two real DDP processes (gloo on 127.0.0.1)."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from services import free_port
from tubelab.models import r2plus1d_tiny
from tubelab.objectives.moco import MoCo

WORLD, PER_RANK = 2, 4


def run(rank: int, port: int, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    torch.manual_seed(0)  # the same model and data on both ranks
    m = MoCo(r2plus1d_tiny(num_classes=1), dim=16, queue=32)
    x_all = torch.randn(WORLD * PER_RANK, 3, 4, 32, 32)
    x = x_all[rank * PER_RANK:(rank + 1) * PER_RANK]
    with torch.no_grad():
        # Eval mode (running statistics, identical on both ranks as DDP keeps them): the shuffle must be
        # invisible, rows back in their own order.
        m.eval()
        eval_ok = torch.allclose(m._keys(x), m.encoder_k(x), atol=1e-5)
        m.train()
        # Train mode: each rank's keys come from a shuffled chunk of the global batch, then are put back.
        torch.manual_seed(5)
        keys = m._keys(x)
        torch.manual_seed(5)
        perm = torch.randperm(WORLD * PER_RANK)
        chunks = perm.view(WORLD, -1)
        computed = torch.cat([m.encoder_k(x_all[c]) for c in chunks])  # what every rank computed, in perm order
        expected = computed[torch.argsort(perm)][rank * PER_RANK:(rank + 1) * PER_RANK]
        shuffled_ok = torch.allclose(keys, expected, atol=1e-5)
        differs_from_local_bn = not torch.allclose(keys, m.encoder_k(x), atol=1e-3)
        # The queue receives the keys of both ranks.
        m._enqueue(keys)
        queue_ok = int(m.queue_ptr) == WORLD * PER_RANK
    results.put((rank, shuffled_ok, differs_from_local_bn, eval_ok, queue_ok))
    dist.destroy_process_group()


def test_batch_shuffle_bn_across_two_workers():
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=run, args=(r, port, results)) for r in range(WORLD)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    got = sorted(results.get(timeout=5) for _ in range(WORLD))
    assert got == [(0, True, True, True, True), (1, True, True, True, True)]
