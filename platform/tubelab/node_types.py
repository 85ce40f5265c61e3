"""The node types an autoscaling cluster can launch, read from the files that deploy it, and whether what a
trial asks Ray for can ever be placed on them.

On an autoscaling cluster a request that no node type can satisfy is not an error in Ray: the task or actor
pends forever (the autoscaler logs it as infeasible), and so does the sweep. `check` finds such requests
before anything starts, from the deploy file itself: a cluster-launcher YAML (`available_node_types`,
infra/aws/cluster.yaml) or a KubeRay RayCluster manifest (head and worker groups, infra/k8s/raycluster.yaml).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class NodeType:
    name: str
    resources: dict[str, float]  # what one node offers Ray: CPU, GPU, custom markers
    max_nodes: int               # how many the cluster can have at once (the head: 1)

    def describe(self) -> str:
        offer = ", ".join(f"{k} {v:g}" for k, v in sorted(self.resources.items())) or "nothing"
        return f"{self.name} (up to {self.max_nodes}: {offer})"


def read(path: str | Path) -> list[NodeType]:
    """The node types of a cluster-launcher YAML or a KubeRay RayCluster manifest (the first RayCluster of
    a multi-document file)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"resources.cluster_config={str(path)!r}: no such file; give the cluster YAML you deploy "
                         f"(e.g. infra/aws/cluster.yaml or infra/k8s/raycluster.yaml)")
    docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    for doc in docs:
        if "available_node_types" in doc:
            return from_launcher(doc)
        if doc.get("kind") == "RayCluster":
            return from_kuberay(doc)
    raise ValueError(f"{path}: neither a Ray cluster-launcher YAML (available_node_types) nor a KubeRay "
                     f"RayCluster manifest")


def from_launcher(cfg: dict) -> list[NodeType]:
    head = cfg.get("head_node_type")
    return [NodeType(name, {k: float(v) for k, v in (t.get("resources") or {}).items()},
                     1 if name == head else int(t.get("max_workers", cfg.get("max_workers", 0))))
            for name, t in cfg["available_node_types"].items()]


def from_kuberay(doc: dict) -> list[NodeType]:
    spec = doc["spec"]
    head = spec["headGroupSpec"]
    types = [NodeType("head", kuberay_resources(head), 1)]
    for group in spec.get("workerGroupSpecs") or []:
        most = group.get("maxReplicas", group.get("replicas", 0))
        types.append(NodeType(group["groupName"], kuberay_resources(group), int(most)))
    return types


def kuberay_resources(group: dict) -> dict[str, float]:
    """What Ray on a pod of this group offers: rayStartParams first, else the container's limits (as Ray
    reads them), plus the custom resources of rayStartParams.resources (a quoted JSON string)."""
    params = group.get("rayStartParams") or {}
    container = group["template"]["spec"]["containers"][0]
    limits = (container.get("resources") or {}).get("limits") or {}
    out = {"CPU": float(params["num-cpus"]) if "num-cpus" in params else quantity(limits.get("cpu", 0))}
    gpus = float(params["num-gpus"]) if "num-gpus" in params else quantity(limits.get("nvidia.com/gpu", 0))
    if gpus:
        out["GPU"] = gpus
    custom = params.get("resources")
    if custom:
        out.update({k: float(v) for k, v in json.loads(custom.strip().strip("'\"").replace('\\"', '"')).items()})
    return out


def quantity(value) -> float:
    """A Kubernetes CPU/GPU quantity: "15", 2, "500m"."""
    value = str(value)
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def fits(request: dict[str, float], offer: dict[str, float]) -> int:
    """How many of `request` one node with `offer` holds (0: none)."""
    counts = [math.floor(offer.get(k, 0.0) / v + 1e-9) for k, v in request.items() if v > 0]
    return min(counts) if counts else math.inf


def check(requests: dict[str, tuple[int, dict[str, float]]], types: list[NodeType], source: str) -> None:
    """Each request ({what: (how many at once, resources of one)}) must fit on some node type, that many
    times over the nodes the cluster can launch. ValueError naming the request and every node type."""
    problems = []
    for what, (count, request) in requests.items():
        room = sum(min(fits(request, t.resources), 10**9) * t.max_nodes for t in types)
        if room < count:
            ask = ", ".join(f"{k} {v:g}" for k, v in sorted(request.items()) if v > 0)
            problems.append(f"{count} x {what} ({ask} each): " + (
                f"no node type of {source} can hold one" if room == 0 else f"the node types of {source} hold {room}"))
    if problems:
        raise ValueError("this run can never be placed, so it would wait forever: " + "; ".join(problems) + ". "
                         "Node types: " + "; ".join(t.describe() for t in types) + ". Lower resources.* to fit "
                         "(or point resources.*_node_resource at a marker a node type carries), or add a node type")
