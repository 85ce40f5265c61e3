"""Sizing Ray resources so a run never deadlocks, and starting the embedded Ray.

A trial needs, all at the same time: its driver, the train workers, the decode actors and room for
read tasks. With the logical CPUs equal to the physical ones, a 2-core machine cannot hold a
2-worker trainer plus one decode actor: the actor pool waits for CPUs that the trainer holds and
the run hangs forever. On the embedded default tubelab therefore declares as many logical CPUs as
the plan needs (the OS time-shares the cores); on a cluster the plan must fit what the cluster has, or
can grow to (`resources.cluster_cpus`, for autoscaling clusters that start with no workers).

Placement is config: `resources.decode_node_resource` / `train_node_resource` name the custom resources
that mark decode and train nodes (infra/); decode actors and train workers request MARKER_AMOUNT of
them, which pins them to those nodes without limiting how many share a node.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import ray

from tubelab import node_types
from tubelab.config import FROM_URI


@dataclass(frozen=True)
class Plan:
    cpus_per_trial: float
    logical_cpus: int
    max_concurrent_trials: int

    def describe(self) -> str:
        return (f"{self.logical_cpus} logical CPUs, {self.cpus_per_trial:g} per trial, "
                f"{self.max_concurrent_trials} trial(s) at a time")


MARKER_AMOUNT = 0.001  # of a node marker per actor / worker: pins placement, never the limiting resource
EMBEDDED_MARKER = 1000.0  # the embedded Ray's one node carries every configured marker this much
RESERVED = {"CPU", "GPU", "memory", "object_store_memory"}
LISTING_CPUS = 1.0  # Ray Data's file-listing task (ListFiles) asks for 1 CPU; it is not configurable


def per_worker_batch(total: int, workers: int, key: str) -> int:
    """The per-worker batch of a total batch (`key`: the config key, for the error). Recipes give batch sizes as
    totals over all train workers (the papers' numbers), so a result does not depend on the cluster's shape; a
    total the workers cannot share evenly is refused, naming the worker counts that can."""
    if total < 1 or workers < 1:
        raise ValueError(f"{key}={total} with resources.train_workers={workers}: both must be >= 1")
    if total % workers:
        valid = [w for w in range(1, total + 1) if total % w == 0]
        raise ValueError(f"{key}={total} is the total batch over all train workers and cannot be split evenly over "
                         f"resources.train_workers={workers}; use a worker count that divides it ({', '.join(map(str, valid))}) "
                         f"or a total divisible by {workers}")
    return total // workers


def cpus_per_trial(res) -> float:
    """Driver + train workers + decode actors + the listing task + one read task."""
    return (res.trial_driver_cpus + res.train_workers * res.cpus_per_train_worker
            + res.decode_actors * res.cpus_per_decode_actor + LISTING_CPUS + res.read_task_cpus)


def check(res) -> None:
    """Values that can never work, whatever the cluster."""
    for key in ("train_workers", "decode_actors", "footer_reader_actors"):
        if res[key] < 1:
            raise ValueError(f"resources.{key} must be >= 1, got {res[key]}")
    for key in ("cpus_per_train_worker", "cpus_per_decode_actor", "read_task_cpus", "trial_driver_cpus",
                "gpus_per_train_worker"):
        if res[key] < 0:
            raise ValueError(f"resources.{key} must be >= 0, got {res[key]}")
    for key in ("decode_node_resource", "train_node_resource"):
        name = res.get(key)
        if name is not None and (not isinstance(name, str) or not name.strip() or name in RESERVED):
            raise ValueError(f"resources.{key} must be the name of a custom node resource (e.g. decode_node) or "
                             f"null, got {name!r}")
    if res.get("cluster_cpus") is not None and res.cluster_cpus <= 0:
        raise ValueError(f"resources.cluster_cpus must be > 0 or null, got {res.cluster_cpus}")


def markers(res) -> dict[str, str]:
    """The configured node markers: {resource name: key in resources.*}."""
    return {res[k]: k for k in ("decode_node_resource", "train_node_resource") if res.get(k)}


def placement(res, role: str) -> dict[str, float]:
    """Custom resources a decode actor (role "decode") or a train worker ("train") requests."""
    name = res.get(f"{role}_node_resource")
    return {name: MARKER_AMOUNT} if name else {}


def trial_requests(res) -> dict[str, tuple[int, dict[str, float]]]:
    """What one trial asks Ray for at the same time, by kind: (how many, the resources of one)."""
    return {
        "train worker": (res.train_workers, {"CPU": res.cpus_per_train_worker, "GPU": res.gpus_per_train_worker,
                                             **placement(res, "train")}),
        "decode actor": (res.decode_actors, {"CPU": res.cpus_per_decode_actor, **placement(res, "decode")}),
        "trial driver": (1, {"CPU": res.trial_driver_cpus}),
        "file-listing task": (1, {"CPU": LISTING_CPUS}),
    }


def check_node_types(res) -> None:
    """With `resources.cluster_config` (the cluster YAML or RayCluster manifest the cluster was deployed
    from): every request of a trial fits a node type that file can launch, and one trial's CPUs fit the
    cluster at its largest, or the run would pend forever on an autoscaling cluster. Before Ray starts."""
    path = res.get("cluster_config")
    if not path:
        return
    types = node_types.read(path)
    node_types.check(trial_requests(res), types, path)
    most = sum(t.resources.get("CPU", 0.0) * t.max_nodes for t in types)
    if most < cpus_per_trial(res):
        raise ValueError(f"one trial needs {cpus_per_trial(res):g} CPUs but {path} can grow to {most:g} "
                         f"({'; '.join(t.describe() for t in types)}); lower resources.* or raise max workers")


def check_cluster(res, cluster_resources: dict[str, float]) -> "Plan":
    """The plan on a connected cluster: it must fit what the cluster has (or `cluster_cpus`, what it
    can grow to), and a configured node marker must exist on some node unless the cluster autoscales."""
    check(res)
    autoscaling = res.get("cluster_cpus") is not None
    if not autoscaling:
        for name, key in markers(res).items():
            if cluster_resources.get(name, 0) <= 0:
                raise ValueError(
                    f"resources.{key}={name!r} but no node of the cluster has that resource (it has: "
                    f"{', '.join(sorted(k for k in cluster_resources if not k.startswith('node:')))}); start nodes "
                    f"with it (infra/) or, if the cluster autoscales from zero workers, set resources.cluster_cpus")
    cpus = cluster_resources.get("CPU", 0)
    return plan(res, cluster_cpus=max(cpus, res.cluster_cpus) if autoscaling else cpus)


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


FOOTER_ACTORS_ENV = "RAY_DATA_PARQUET_FOOTER_NUM_ACTORS"
VERBOSE_ENV = "TUBELAB_VERBOSE"
RAY_DATA_LOGGING = Path(__file__).resolve().parent / "conf" / "ray_data_logging.yaml"


def verbose() -> bool:
    """`tubelab COMMAND -v` or TUBELAB_VERBOSE=1: Ray's and torch's internals in the terminal too."""
    return os.environ.get(VERBOSE_ENV, "0") not in ("", "0")


def hush(train_worker: bool = False) -> None:
    """Unless verbose: keep library internals out of the terminal (driver and train workers), so that
    progress and results are what a command prints. Ray's own log files keep everything
    (/tmp/ray/session_latest/logs)."""
    if verbose():
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per artifact read
    # Ray Data's "Execution plan / Starting execution / finished" lines per dataset and epoch; set before
    # the embedded Ray starts, its workers inherit it (a connected cluster's nodes keep their own)
    os.environ.setdefault("RAY_DATA_LOGGING_CONFIG", str(RAY_DATA_LOGGING))
    warnings.filterwarnings("ignore", message="Grad strides do not match")  # DDP, once per worker
    warnings.filterwarnings("ignore", message=r".*exclude_resources.*deprecated")  # Ray Train's own use
    if train_worker:  # a line per report and checkpoint: "ray.train" loggers and one named by its file path
        logging.getLogger("ray.train").setLevel(logging.WARNING)
        logging.getLogger().setLevel(logging.WARNING)  # (tubelab itself prints, it does not log)


def worker_env(res) -> dict[str, str]:
    """Environment the Ray workers need beyond what they already have.

    Ray Data's Parquet reader starts RAY_DATA_PARQUET_FOOTER_NUM_ACTORS (default 32) FooterReader actors,
    each a new Python process, every time a split is read, which is every epoch. tubelab's shards are few
    and bounded (a manifest lists them), so `resources.footer_reader_actors` of them suffice; the
    default's process churn dominates short runs on few cores (docs/benchmarks.md "Ray process churn").
    A value the user's environment (or a job's runtime env) sets wins.

    MLflow credentials that config.load took out of a `tracking.uri` live only in this process's
    environment; a connected cluster's workers (trials, train rank 0) log to MLflow too, so they go
    along (they were in the job's command line or env_vars already) unless the job sets them itself
    (Ray refuses a runtime env that repeats a job's variable). Credentials the nodes' own environment
    holds (the infra/ way) are never copied into a runtime env, where the dashboard would show them.
    """
    env = {} if FOOTER_ACTORS_ENV in os.environ else {FOOTER_ACTORS_ENV: str(res.footer_reader_actors)}
    if verbose():
        env[VERBOSE_ENV] = "1"
    job = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}"))
    job_env = (job.get("runtime_env") or {}).get("env_vars") or {}
    env.update({k: os.environ[k] for k in FROM_URI if k in os.environ and k not in job_env})
    return env


def keep_ray_data_actors_here() -> None:
    """Start Ray Data's three cluster-wide detached actors (dataset stats, actor locations, autoscaling
    coordinator: 0 CPUs each) on this driver's node, the head under `ray job submit`.

    Ray Data starts them on the node of the first process that runs a dataset and they live as long as the
    cluster. In a sweep that is a trial on a worker node, and a node holding actors never counts as idle:
    the autoscaler never removes it (seen in tests/e2e/test_cluster_submit_e2e.py: one decode node up for
    good after the first sweep, paid by the hour). Once they exist, Ray Data finds them by name.
    (Ray-internal functions; Ray is pinned.)"""
    from ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator import (
        get_or_create_autoscaling_coordinator)
    from ray.data._internal.execution.node_trackers.actor_location import get_or_create_actor_location_tracker
    from ray.data._internal.stats import get_or_create_stats_actor

    for start in (get_or_create_stats_actor, get_or_create_actor_location_tracker,
                  get_or_create_autoscaling_coordinator):
        start()


def cluster_address(res) -> str | None:
    """The GCS address of the cluster this process has joined (`resources.address`, or the cluster of a
    `ray job submit`); None on the embedded Ray. After init_ray."""
    if not (res.address or os.environ.get("RAY_ADDRESS")):
        return None
    return ray.get_runtime_context().gcs_address


def init_ray(res) -> Plan:
    """Connect to `resources.address` (or the cluster of a `ray job submit`), else start the embedded Ray."""
    if ray.is_initialized():
        return check_cluster(res, ray.cluster_resources())
    check(res)
    check_node_types(res)
    env = worker_env(res)
    address = res.address or os.environ.get("RAY_ADDRESS")
    if address:
        # per-key merge with a `ray job submit` runtime env (worker_env never repeats a key the job sets)
        ray.init(address=address, log_to_driver=True, runtime_env={"env_vars": env} if env else None,
                 logging_level=logging.INFO if verbose() else logging.WARNING)
        keep_ray_data_actors_here()
        return check_cluster(res, ray.cluster_resources())
    p = plan(res)
    os.environ.update(env)  # the embedded Ray's workers inherit the driver's environment
    # address="local": always a new embedded Ray; a bare ray.init() would join any cluster that a
    # `ray start` left on this machine (/tmp/ray/ray_current_cluster) and fail or steal its resources.
    ray.init(address="local", num_cpus=p.logical_cpus, resources={name: EMBEDDED_MARKER for name in markers(res)} or None,
             log_to_driver=True, logging_level=logging.INFO if verbose() else logging.WARNING)
    return p
