"""A simulated autoscaling cluster on this machine, derived from the file a user deploys.

Ray's fake multi-node provider runs the real autoscaler (v2) on the head; when it launches a node it starts a
real raylet here, and when it terminates one it stops that raylet. `simulated_cluster` builds its config from
infra/aws/cluster.yaml (or a KubeRay RayCluster manifest) through tubelab's own reader (tubelab.node_types), so
the node types under test are the deployed ones: names, markers (decode_node, train_node), min/max workers and
upscaling speed. Only what this machine cannot have is scaled: CPUs per node, no GPUs (the train marker stands
for them), and the idle timeout. `RayHead(..., autoscaling=...)` starts the head with it
(../shared/reference/stack-notes.md: never `AutoscalingCluster`, never `ray stop`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from ray.autoscaler._private.fake_multi_node.node_provider import FakeMultiNodeProvider

from tubelab import node_types

FAKE_HEAD_NODE_ID = "fffffffffffffffffffffffffffffffffffffffffffffffffff00000"  # the provider's fixed head id
FAKE_HEAD_NODE_TYPE = "ray.head.default"  # and the type it gives the head, whatever the config calls it
PROVIDER = "autoscaling.OneMachineProvider"  # the class below (tests/ is on the head's PYTHONPATH)
# What the head (and so its autoscaler, and the nodes it starts) needs in its environment.
HEAD_ENV = {"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1", "RAY_enable_autoscaler_v2": "1",
            "RAY_CLOUD_INSTANCE_ID": FAKE_HEAD_NODE_ID, "RAY_OVERRIDE_NODE_ID_FOR_TESTING": FAKE_HEAD_NODE_ID,
            "RAY_NODE_IP_ADDRESS": "127.0.0.1"}


class OneMachineProvider(FakeMultiNodeProvider):
    """Ray's fake multi-node provider with one change: each node it starts gets a temp dir of its own, under the
    head's (RAY_TMPDIR). By default every node joins the head's session dir, and one machine's nodes then share
    one runtime_resources/ folder (their runtime-env agents removed each other's unpacked job files: the job
    driver's working dir vanished mid-sweep) and one logs/ folder (every node's log monitor sent every worker's
    lines to the driver: each line arrived once per node). On a real cluster each node has its own disk."""

    def _create_node_with_resources_and_labels(self, node_config, tags, count, resources, labels):
        import os

        import ray._private.parameter as parameter

        with self.lock:
            original = parameter.RayParams
            own = os.path.join(os.environ["RAY_TMPDIR"], f"n{self._next_node_id + 1}")  # short: socket paths
            parameter.RayParams = functools.partial(original, temp_dir=own)
            try:
                super()._create_node_with_resources_and_labels(node_config, tags, count, resources, labels)
            finally:
                parameter.RayParams = original


def scaling(deploy_file: str | Path) -> dict:
    """The deploy file's scaling settings: head type, {type: min workers}, upscaling speed, idle timeout
    (minutes)."""
    docs = [d for d in yaml.safe_load_all(Path(deploy_file).read_text()) if isinstance(d, dict)]
    for doc in docs:
        if "available_node_types" in doc:
            mins = {name: int(t.get("min_workers", 0)) for name, t in doc["available_node_types"].items()}
            return {"head": doc["head_node_type"], "min_workers": mins, "upscaling_speed": float(doc.get("upscaling_speed", 1.0)),
                    "idle_timeout_minutes": float(doc.get("idle_timeout_minutes", 5))}
        if doc.get("kind") == "RayCluster":
            spec = doc["spec"]
            options = spec.get("autoscalerOptions") or {}
            # KubeRay's upscalingMode maps onto the launcher's upscaling_speed as the operator does.
            speed = {"Conservative": 1.0, "Default": 1.0, "Aggressive": 1000.0}[options.get("upscalingMode", "Default")]
            mins = {g["groupName"]: int(g.get("minReplicas", 0)) for g in spec.get("workerGroupSpecs") or []}
            return {"head": "head", "min_workers": mins, "upscaling_speed": speed,
                    "idle_timeout_minutes": float(options.get("idleTimeoutSeconds", 60)) / 60}
    raise ValueError(f"{deploy_file}: neither a cluster-launcher YAML nor a RayCluster manifest")


def node_plan(deploy_file: str | Path, cpus_per_node: float = 2) -> dict[str, dict]:
    """The simulated node types: {name: {resources, min_workers, max_workers}}; the head first.

    CPU becomes `cpus_per_node` on every worker type (0 stays 0: a head that schedules no work keeps it),
    GPU is dropped, custom resources and counts are kept."""
    settings = scaling(deploy_file)
    types = sorted(node_types.read(deploy_file), key=lambda t: t.name != settings["head"])
    out = {}
    for t in types:
        resources = {k: v for k, v in t.resources.items() if k not in ("CPU", "GPU")}
        resources["CPU"] = cpus_per_node if t.resources.get("CPU", 0) > 0 else 0
        worker = t.name != settings["head"]
        out[t.name] = {"resources": resources, "min_workers": settings["min_workers"].get(t.name, 0) if worker else 0,
                       "max_workers": t.max_nodes if worker else 0}
    return out


def simulated_cluster(deploy_file: str | Path, gcs_address: str, *, cpus_per_node: float = 2,
                      idle_timeout_minutes: float = 0.25) -> dict:
    """The fake provider's cluster config for the node types of `deploy_file`, joining the GCS at
    `gcs_address` ("127.0.0.1:PORT": any free port, so it can run beside other clusters). The head type is
    renamed to the provider's fixed name; the worker types keep theirs."""
    settings = scaling(deploy_file)
    types = node_plan(deploy_file, cpus_per_node)
    types = {FAKE_HEAD_NODE_TYPE if name == settings["head"] else name: t for name, t in types.items()}
    return {
        "cluster_name": "tubelab-simulated",
        "max_workers": sum(t["max_workers"] for t in types.values()),
        "upscaling_speed": settings["upscaling_speed"],
        "idle_timeout_minutes": idle_timeout_minutes,
        "provider": {"type": "external", "module": PROVIDER, "gcs_address": gcs_address,
                     "use_node_id_as_ip": True, "disable_node_updaters": True, "disable_launch_config_check": True,
                     "launch_multiple": True, "head_node_id": FAKE_HEAD_NODE_ID},
        "auth": {"ssh_user": "ubuntu"},
        "docker": {},
        "head_node_type": FAKE_HEAD_NODE_TYPE,
        "available_node_types": {name: {"node_config": {}, **t} for name, t in types.items()},
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False, "rsync_exclude": [],
        "rsync_filter": [], "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
    }


def simulated_cpus(config_file: str | Path) -> float:
    """The CPUs a simulated cluster can grow to (resources.cluster_cpus of a run on it)."""
    cfg = yaml.safe_load(Path(config_file).read_text())
    return sum(t["resources"].get("CPU", 0) * t["max_workers"] for t in cfg["available_node_types"].values())
