"""training.common.fit: a lost worker is restarted from the last checkpoint, an exception raised by the
training code is not (the real runs: tests/integration/training/test_training_resume.py)."""

import pytest
from ray.exceptions import ActorDiedError
from ray.train import WorkerGroupError
from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError

from tubelab.training import common


def failed(**ranks) -> WorkerGroupError:
    return WorkerGroupError("workers failed", {int(k[1:]): e for k, e in ranks.items()})


def test_a_dead_worker_is_a_lost_worker_and_an_exception_is_not():
    dead = WorkerHealthCheckFailedError("health check failed", ActorDiedError())
    assert common.worker_lost(failed(r0=RuntimeError("gloo: connection closed by peer"), r1=dead))
    assert common.worker_lost(failed(r1=ActorDiedError()))
    assert not common.worker_lost(failed(r0=ValueError("bad shape"), r1=ValueError("bad shape")))


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
