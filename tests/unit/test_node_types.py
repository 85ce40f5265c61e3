"""Node types read from the deploy files themselves, and the pre-flight that refuses a run no node type can
hold (on an autoscaling cluster it would pend forever)."""

import shlex
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from tubelab import config, node_types, resources

ROOT = Path(__file__).resolve().parents[2]
AWS, K8S = ROOT / "infra" / "aws" / "cluster.yaml", ROOT / "infra" / "k8s" / "raycluster.yaml"


def submitted() -> list[str]:
    """The resources.* overrides infra/aws/submit_sweep.sh submits with."""
    words = shlex.split((ROOT / "infra" / "aws" / "submit_sweep.sh").read_text().replace("\\\n", " "))
    return [w for w in words if w.startswith("resources.") and "=" in w]


def res(*overrides: str, deployed: Path = AWS):
    return config.load("pretrain", [*submitted(), f"resources.cluster_config={deployed}", *overrides]).resources


def test_the_aws_cluster_yaml_as_ray_reads_it():
    types = {t.name: t for t in node_types.read(AWS)}
    raw = yaml.safe_load(AWS.read_text())["available_node_types"]
    assert set(types) == set(raw) == {"head", "decode", "train"}
    for name, t in types.items():
        assert t.resources == {k: float(v) for k, v in raw[name]["resources"].items()}
    assert (types["head"].max_nodes, types["decode"].max_nodes, types["train"].max_nodes) == (1, 8, 2)


def test_the_kuberay_manifest_offers_what_its_pods_give_ray():
    types = {t.name: t for t in node_types.read(K8S)}
    assert types["head"].resources == {"CPU": 0.0}
    assert types["decode"].resources == {"CPU": 15.0, "decode_node": 1.0} and types["decode"].max_nodes == 8
    assert types["train"].resources == {"CPU": 7.0, "GPU": 1.0, "train_node": 1.0} and types["train"].max_nodes == 2


@pytest.mark.parametrize("deployed", [AWS, K8S])
def test_the_documented_submission_fits_both_deployments(deployed):
    resources.check_node_types(res(deployed=deployed))


@pytest.mark.parametrize("override,fragments", [
    ("resources.cpus_per_decode_actor=32", ["8 x decode actor (CPU 32, decode_node 0.001 each)",
                                            "no node type of", "decode (up to 8: CPU 16, decode_node 1)"]),
    ("resources.decode_node_resource=cpu_node", ["8 x decode actor (CPU 1, cpu_node 0.001 each)", "no node type"]),
    ("resources.train_workers=3", ["3 x train worker (CPU 4, GPU 1, train_node 0.001 each)", "hold 2"]),
    ("resources.cluster_cpus=500", None),  # what the cluster can grow to is not a request: still fits
])
def test_a_request_no_node_type_can_hold_is_refused_with_the_node_types(override, fragments):
    r = res(override)
    if fragments is None:
        resources.check_node_types(r)
        return
    with pytest.raises(ValueError) as e:
        resources.check_node_types(r)
    message = str(e.value)
    assert message.startswith("this run can never be placed, so it would wait forever")
    assert "head (up to 1: CPU 0)" in message and "train (up to 2: CPU 8, GPU 1, train_node 1)" in message
    for fragment in fragments:
        assert fragment in message, message


def test_a_trial_larger_than_the_whole_cluster_is_refused():
    # each request fits somewhere (128 decode actors on 8 x 16 CPUs, 2 x 8-CPU train workers), all together not
    with pytest.raises(ValueError, match=r"one trial needs 145.75 CPUs but .* can grow to 144"):
        resources.check_node_types(res("resources.decode_actors=128", "resources.cpus_per_train_worker=8"))


def test_without_a_cluster_config_nothing_is_read():
    resources.check_node_types(config.load("pretrain", []).resources)


def test_a_missing_or_foreign_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="resources.cluster_config='nowhere.yaml': no such file"):
        node_types.read("nowhere.yaml")
    (tmp_path / "x.yaml").write_text("kind: Deployment\n")
    with pytest.raises(ValueError, match="neither a Ray cluster-launcher YAML"):
        node_types.read(tmp_path / "x.yaml")


def test_kubernetes_quantities():
    assert [node_types.quantity(q) for q in ("15", 2, "500m")] == [15.0, 2.0, 0.5]


def test_requests_follow_the_resources_config():
    r = OmegaConf.merge(config.load("pretrain", []).resources, {"train_node_resource": "train_node"})
    req = resources.trial_requests(r)
    assert req["train worker"] == (2, {"CPU": 1, "GPU": 0, "train_node": resources.MARKER_AMOUNT})
    assert req["decode actor"] == (1, {"CPU": 1})
