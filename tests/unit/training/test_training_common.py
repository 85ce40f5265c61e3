"""training.common: all_workers across real processes; fit: a lost worker is restarted from the last checkpoint,
an exception raised by the training code is not (the real runs: tests/integration/training/test_training_resume.py)."""

import pytest
import torch
from ray.exceptions import ActorDiedError, ObjectLostError, RayTaskError
from ray.train import WorkerGroupError
from ray.train.v2._internal.exceptions import UserExceptionWithTraceback, WorkerHealthCheckFailedError

from tubelab.training import common


def failed(**ranks) -> WorkerGroupError:
    return WorkerGroupError("workers failed", {int(k[1:]): e for k, e in ranks.items()})


def test_a_dead_worker_is_a_lost_worker_and_an_exception_is_not():
    dead = WorkerHealthCheckFailedError("health check failed", ActorDiedError())
    assert common.worker_lost(failed(r0=RuntimeError("gloo: connection closed by peer"), r1=dead))
    assert common.worker_lost(failed(r1=ActorDiedError()))
    assert not common.worker_lost(failed(r0=ValueError("bad shape"), r1=ValueError("bad shape")))


def test_a_ray_data_actor_lost_under_the_training_loop_is_a_lost_worker():
    # What the training loop raises when a Ray Data actor it reads through (here Parquet's FooterReader) was
    # on a node the autoscaler took away: Ray Train hands the exception back wrapped.
    def user(e):
        return UserExceptionWithTraceback(e, traceback_str="Traceback ...")
    assert common.worker_lost(failed(r0=user(ActorDiedError())))
    # the same, raised through a Ray task that called the dead actor
    assert common.worker_lost(failed(r0=user(RayTaskError("read", "Traceback ...", ActorDiedError()).as_instanceof_cause())))
    try:  # a lost block, re-raised by code that wraps it
        try:
            raise ObjectLostError("ab" * 14, b"", "")
        except ObjectLostError as lost:
            raise RuntimeError("iterating the shard failed") from lost
    except RuntimeError as e:
        assert common.worker_lost(failed(r1=user(e)))
    # a bug stays a bug: in the training code, or in an actor's constructor (it fails the same way again)
    assert not common.worker_lost(failed(r0=user(ValueError("bad shape"))))
    init_failed = ActorDiedError(RayTaskError("ClipDecoder.__init__", "Traceback ...", ValueError("no such codec")))
    assert init_failed.actor_init_failed
    assert not common.worker_lost(failed(r0=user(init_failed)))


class Attempts:
    """A trainer factory whose fits fail with the given errors, then return "done"."""

    def __init__(self, *errors):
        self.errors, self.calls = list(errors), 0

    def __call__(self):
        self.calls += 1
        return self

    def fit(self):
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_fit_restarts_after_lost_workers_up_to_its_limit(capsys):
    attempts = Attempts(failed(r1=ActorDiedError()), failed(r0=ActorDiedError()))
    assert common.fit(attempts, restarts=2) == "done" and attempts.calls == 3
    assert capsys.readouterr().out.count("restarting from the last checkpoint") == 2
    attempts = Attempts(*[failed(r1=ActorDiedError())] * 3)
    with pytest.raises(WorkerGroupError):
        common.fit(attempts, restarts=2)
    assert attempts.calls == 3


def test_fit_raises_an_error_of_the_training_code_at_once():
    attempts = Attempts(failed(r0=KeyError("model")), failed(r0=KeyError("model")))
    with pytest.raises(WorkerGroupError, match="workers failed"):
        common.fit(attempts)
    assert attempts.calls == 1


def _all_workers_on(rank: int, port: int, results) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    device = torch.device("cpu")
    results.put((rank, common.all_workers(True, device), common.all_workers(rank == 0, device),
                 common.all_workers(False, device)))
    dist.destroy_process_group()


def test_all_workers_is_true_only_when_every_worker_says_so():
    """Two real gloo processes: the counting episodes end together through this all-reduce."""
    import torch.multiprocessing as mp

    from services import free_port

    ctx = mp.get_context("spawn")
    results, port = ctx.Queue(), free_port()
    procs = [ctx.Process(target=_all_workers_on, args=(r, port, results)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    assert sorted(results.get(timeout=5) for _ in range(2)) == [(0, True, False, False), (1, True, False, False)]
