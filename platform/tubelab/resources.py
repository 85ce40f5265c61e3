"""Sizing Ray resources so a run never deadlocks, and starting the embedded Ray.

A trial needs, all at the same time: its driver, the train workers, the decode actors and room for
read tasks. With the logical CPUs equal to the physical ones, a 2-core machine cannot hold a
2-worker trainer plus one decode actor: the actor pool waits for CPUs that the trainer holds and
the run hangs forever. On the embedded default tubelab therefore declares as many logical CPUs as
the plan needs (the OS time-shares the cores); on a cluster the plan must fit what the cluster has.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import ray


@dataclass(frozen=True)
class Plan:
    cpus_per_trial: float
    logical_cpus: int
    max_concurrent_trials: int

    def describe(self) -> str:
        return (f"{self.logical_cpus} logical CPUs, {self.cpus_per_trial:g} per trial, "
                f"{self.max_concurrent_trials} trial(s) at a time")


LISTING_CPUS = 1.0  # Ray Data's file-listing task (ListFiles) asks for 1 CPU; it is not configurable


def cpus_per_trial(res) -> float:
    """Driver + train workers + decode actors + the listing task + one read task."""
    return (res.trial_driver_cpus + res.train_workers * res.cpus_per_train_worker
            + res.decode_actors * res.cpus_per_decode_actor + LISTING_CPUS + res.read_task_cpus)


def check(res) -> None:
    """Values that can never work, whatever the cluster."""
    for key in ("train_workers", "decode_actors"):
        if res[key] < 1:
            raise ValueError(f"resources.{key} must be >= 1, got {res[key]}")
    for key in ("cpus_per_train_worker", "cpus_per_decode_actor", "read_task_cpus", "trial_driver_cpus",
                "gpus_per_train_worker"):
        if res[key] < 0:
            raise ValueError(f"resources.{key} must be >= 0, got {res[key]}")


def plan(res, cluster_cpus: float | None = None) -> Plan:
    """How many logical CPUs to declare (embedded) and how many trials fit at once."""
    check(res)
    need = cpus_per_trial(res)
    if cluster_cpus is None:  # embedded: declare what the plan needs
        cluster_cpus = res.num_cpus or max(os.cpu_count() or 1, math.ceil(need))
    if cluster_cpus < need:
        raise ValueError(
            f"one trial needs {need:g} CPUs (driver {res.trial_driver_cpus}, {res.train_workers} train workers x "
            f"{res.cpus_per_train_worker}, {res.decode_actors} decode actors x {res.cpus_per_decode_actor}, "
            f"read tasks {res.read_task_cpus}) but the cluster has {cluster_cpus:g}; lower resources.* or add nodes"
        )
    fit = int(cluster_cpus // need)
    concurrent = min(fit, res.max_concurrent_trials) if res.max_concurrent_trials else fit
    return Plan(need, int(cluster_cpus), max(concurrent, 1))


def init_ray(res) -> Plan:
    """Connect to `resources.address` (or the cluster of a `ray job submit`), else start the embedded Ray."""
    if ray.is_initialized():
        return plan(res, ray.cluster_resources().get("CPU", 0))
    address = res.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return plan(res, ray.cluster_resources().get("CPU", 0))
    p = plan(res)
    ray.init(num_cpus=p.logical_cpus, log_to_driver=True)
    return p
