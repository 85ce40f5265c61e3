"""The one Ray Tune set-up: a list of prepared trials run as a grid over their indices.

Sweeps and SEVERE both hand over plain trial dicts (configs resolved and checked before Ray started)
and a trainable that reads `trials[params["index"]]`. A failed trial never stops the others
(max_failures=0: a deterministic error is not retried); the caller counts what finished.
"""

from __future__ import annotations

import time

import ray.tune
from ray.tune.execution import class_cache

from tubelab import resources
from tubelab.training.common import storage_target


class Progress(ray.tune.Callback):
    """One line per trial start/end: done / running / pending and an ETA from the finished trials."""

    def __init__(self, what: str, total: int, concurrency: int):
        self.what, self.total, self.concurrency = what, total, concurrency
        self.started: dict[str, float] = {}
        self.durations: list[float] = []

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.monotonic()
        self._print()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial)

    def _finish(self, trial):
        if trial.trial_id in self.started:
            self.durations.append(time.monotonic() - self.started.pop(trial.trial_id))
        self._print()

    def _print(self):
        done, running = len(self.durations), len(self.started)
        pending = self.total - done - running
        eta = "n/a"
        if self.durations:
            mean = sum(self.durations) / len(self.durations)
            eta = f"~{mean * (pending + running) / self.concurrency / 60:.0f} min"
        print(f"{self.what} progress: {done}/{self.total} done, {running} running, {pending} pending; ETA {eta}",
              flush=True)


# Ray Tune copies these from the driver's environment into every trial actor's runtime env, which the dashboard
# shows and Ray's runtime-env agent writes to its log. The trials do not need the copy: on the embedded Ray they
# inherit the driver's environment, on a cluster the node's own (infra/: instance roles, Secrets).
CREDENTIALS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"}


def run_trials(cfg, trainable, trials: list[dict], indices: list[int], *, name: str, what: str,
               plan: resources.Plan, dirname) -> ray.tune.ResultGrid:
    """trainable(params, trials) for each index in `indices`, at most plan.max_concurrent_trials at once,
    each trial driver holding resources.trial_driver_cpus; Tune state under storage `tune/<name>`.
    `dirname(index)` names each trial's folder."""
    path, fs = storage_target(cfg, "tune")
    class_cache.ENV_VARS_TO_PROPAGATE.difference_update(CREDENTIALS)  # (a Ray-internal set; Ray is pinned)
    tuner = ray.tune.Tuner(
        ray.tune.with_resources(ray.tune.with_parameters(trainable, trials=trials),
                                {"cpu": cfg.resources.trial_driver_cpus}),
        param_space={"index": ray.tune.grid_search(indices)},
        tune_config=ray.tune.TuneConfig(max_concurrent_trials=plan.max_concurrent_trials,
                                        trial_dirname_creator=lambda t: dirname(t.config["index"])),
        run_config=ray.tune.RunConfig(name=name, storage_path=path, storage_filesystem=fs,
                                      failure_config=ray.tune.FailureConfig(max_failures=0), verbose=0,
                                      callbacks=[Progress(what, len(indices), plan.max_concurrent_trials)]),
    )
    return tuner.fit()
