"""The simulated autoscaling cluster of the e2e tests (tests/autoscaling.py) is the deployed one: its node
types come from infra/aws/cluster.yaml (names, markers, min/max workers, upscaling speed), only CPUs, GPUs and
the idle timeout scaled for one machine; Ray's own schema accepts it; and the KubeRay manifest's worker groups
simulate to the same cluster, so the one e2e run covers both deployments."""

import copy
from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from autoscaling import FAKE_HEAD_NODE_TYPE, node_plan, scaling, simulated_cluster, simulated_cpus

ROOT = Path(__file__).resolve().parents[2]
AWS, K8S = ROOT / "infra" / "aws" / "cluster.yaml", ROOT / "infra" / "k8s" / "raycluster.yaml"


def test_the_simulated_node_types_are_the_deployed_ones():
    deployed = yaml.safe_load(AWS.read_text())
    sim = simulated_cluster(AWS, "127.0.0.1:6380", cpus_per_node=2, idle_timeout_minutes=0.25)
    workers = {k: v for k, v in deployed["available_node_types"].items() if k != deployed["head_node_type"]}
    assert set(sim["available_node_types"]) == {FAKE_HEAD_NODE_TYPE, *workers}
    for name, t in workers.items():
        s = sim["available_node_types"][name]
        assert (s["min_workers"], s["max_workers"]) == (t["min_workers"], t["max_workers"])
        markers = {k: v for k, v in t["resources"].items() if k not in ("CPU", "GPU")}
        assert s["resources"] == {**markers, "CPU": 2}  # GPUs dropped: the train marker stands for them
    assert sim["available_node_types"][FAKE_HEAD_NODE_TYPE]["resources"] == {"CPU": 0}  # schedules no work
    assert sim["upscaling_speed"] == deployed["upscaling_speed"] and sim["idle_timeout_minutes"] == 0.25
    assert sim["provider"]["gcs_address"] == "127.0.0.1:6380"


def test_rays_schema_accepts_it():
    validate_config(prepare_config(copy.deepcopy(simulated_cluster(AWS, "127.0.0.1:6380"))))


def test_the_kuberay_worker_groups_simulate_to_the_same_cluster():
    assert node_plan(K8S) == node_plan(AWS)
    aws, k8s = scaling(AWS), scaling(K8S)
    assert (k8s["upscaling_speed"], k8s["idle_timeout_minutes"]) == (aws["upscaling_speed"], aws["idle_timeout_minutes"])


def test_the_cpus_it_can_grow_to(tmp_path):
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(simulated_cluster(AWS, "127.0.0.1:6380", cpus_per_node=2)))
    assert simulated_cpus(path) == 8 * 2 + 2 * 2
