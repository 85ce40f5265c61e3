"""A result must not depend on the cluster's shape: one step of pretraining (MoCo) and of fine-tuning on the
same total batch gives the same loss and the same gradients on 1 worker and on 2 (real gloo processes on
127.0.0.1, DDP as Ray Train wraps it), with global BatchNorm (`batchnorm: global`, the official SyncBN).
With per-worker BN the two differ: the control that shows the comparison can fail."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel

from services import free_port
from tubelab import config
from tubelab.models import build_model
from tubelab.models.batchnorm import global_batchnorm
from tubelab.objectives.moco import MoCo
from tubelab.training import steps

TOTAL = 4  # clips per step, over all workers
FRAMES, CROP, CLASSES = 8, 32, 10


def inputs():
    g = torch.Generator().manual_seed(7)
    clips = torch.randint(0, 256, (2, TOTAL, 3, FRAMES, CROP, CROP), dtype=torch.uint8, generator=g)
    return clips[0], clips[1], torch.randint(0, CLASSES, (TOTAL,), generator=g)


def one_step(task: str, batchnorm: str, rank: int = 0, world: int = 1) -> dict:
    """One optimiser step on this rank's share of inputs(); returns the loss and every gradient."""
    cfg = config.load("pretrain")
    torch.manual_seed(0)  # the same initial weights (and MoCo queue) on every rank
    device = torch.device("cpu")
    query, key, labels = (x[rank * TOTAL // world:(rank + 1) * TOTAL // world] for x in inputs())
    if task == "pretrain":
        net = MoCo(build_model(cfg.model, num_classes=1), dim=16, queue=32, momentum=0.99, batchnorm=batchnorm)
    else:
        net = build_model(cfg.model, num_classes=CLASSES)
    if batchnorm == "global":
        net = global_batchnorm(net, device)
    model = DistributedDataParallel(net) if world > 1 else net
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    if task == "pretrain":
        jitter = OmegaConf.merge(cfg.pretrain.colour_jitter, {"prob": 0.0})
        loss, _ = steps.pretrain_step(model, optimizer, query, key, jitter=jitter, generator=torch.Generator(),
                                      grad_clip=40.0)
    else:
        loss = steps.finetune_step(model, optimizer, query, labels, "single_label")
    if world > 1:  # DDP averages gradients; the losses are of each rank's half: their mean is the total's
        dist.all_reduce(loss)
        loss /= world
    return {"loss": loss.item(), **{n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}}


def worker(rank: int, port: int, task: str, batchnorm: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    out = one_step(task, batchnorm, rank, world=2)
    if rank == 0:
        results.put({k: v.numpy() if torch.is_tensor(v) else v for k, v in out.items()})
    dist.destroy_process_group()


def two_workers(task: str, batchnorm: str) -> dict:
    ctx = mp.get_context("spawn")
    results, port = ctx.Queue(), free_port()
    procs = [ctx.Process(target=worker, args=(r, port, task, batchnorm, results)) for r in range(2)]
    for p in procs:
        p.start()
    out = results.get(timeout=120)
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    return {k: torch.as_tensor(v) if not isinstance(v, float) else v for k, v in out.items()}


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max() / (a[k].abs().max() + 1e-12)) for k in a if k != "loss")


@pytest.mark.parametrize("task,local", [("pretrain", "shuffle"), ("finetune", "local")])
def test_one_step_on_one_and_on_two_workers_is_the_same_step(task, local):
    one = one_step(task, "global")
    two = two_workers(task, "global")
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)
    assert len(one) > 10 and max_difference(one, two) < 1e-4  # every gradient, relative to its largest entry
    # per-worker BN normalises each half by its own statistics: another step
    control = two_workers(task, local)
    assert max_difference(one, control) > 1e-2
