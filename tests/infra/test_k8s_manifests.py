"""infra/k8s/: core kinds pass Kubernetes' own OpenAPI schemas offline (the kubernetes-validate
package ships them), and the KubeRay kinds (no schema there) pass structural checks: apiVersion
ray.io/v1, autoscaling v2, the decode and train groups with their markers, min <= replicas <= max,
GPU limits on the train group, a RayJob entrypoint that is a file of this repository, and
credentials only through Secrets. Every check is also run on a deliberately broken copy."""

import copy
import json
import re
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
K8S_VERSION = kubernetes_validate.latest_version()  # schemas bundled with the package: no network
KUSTOMIZE = {"kustomization.yaml", "kustomizeconfig.yaml"}
DECODE, TRAIN = "decode_node", "train_node"
CORE = {"Namespace", "ConfigMap", "Deployment", "Service", "NetworkPolicy", "Secret"}
SENSITIVE = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|_URI$|USERNAME")


def manifests() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name not in KUSTOMIZE:
            docs += [(path, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def of_kind(kind: str) -> list[dict]:
    return [d for _, d in manifests() if d["kind"] == kind]


def one(kind: str) -> dict:
    (doc,) = of_kind(kind)
    return copy.deepcopy(doc)


def k8s_validate(doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def pod_templates(doc: dict) -> list[tuple[str, dict]]:
    """(where, pod template) of a KubeRay resource."""
    if doc["kind"] == "RayCluster":
        spec = doc["spec"]
        return [("head", spec["headGroupSpec"]["template"])] + [
            (g["groupName"], g["template"]) for g in spec["workerGroupSpecs"]]
    if doc["kind"] == "RayJob":
        return [("submitter", doc["spec"]["submitterPodTemplate"])]
    return []


def containers(doc: dict) -> list[dict]:
    if doc["kind"] == "Deployment":
        return doc["spec"]["template"]["spec"]["containers"]
    return [c for _, t in pod_templates(doc) for c in t["spec"]["containers"]]


# --- core kinds: Kubernetes' own schemas ---------------------------------------------------------

def test_every_manifest_has_a_known_kind():
    kinds = {d["kind"] for _, d in manifests()}
    assert kinds <= CORE | {"RayCluster", "RayJob"}, kinds
    assert {"RayCluster", "RayJob", "Deployment", "Service"} <= kinds


@pytest.mark.parametrize("index", range(len([d for _, d in manifests() if d["kind"] in CORE])))
def test_core_kinds_pass_kubernetes_schema_validation(index):
    doc = [d for _, d in manifests() if d["kind"] in CORE][index]
    k8s_validate(doc)


@pytest.mark.parametrize("where", ["head", "decode", "train", "submitter"])
def test_kuberay_pod_templates_pass_kubernetes_schema_validation(where):
    """The pod templates inside the KubeRay kinds are core PodTemplateSpecs: validate them as such."""
    templates = dict(t for kind in ("RayCluster", "RayJob") for t in pod_templates(one(kind)))
    k8s_validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": where},
                  "template": templates[where]})


@pytest.mark.parametrize("breakage", [
    lambda d: d["spec"].update(replicas="one"),                                      # wrong type
    lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolicy=1),
    lambda d: d["spec"]["template"]["spec"]["containers"][0].update(unknownField=True),  # strict: unknown key
    lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"),            # required key
])
def test_kubernetes_validation_rejects_a_broken_copy(breakage):
    doc = one("Deployment")
    breakage(doc)
    with pytest.raises(kubernetes_validate.ValidationError):
        k8s_validate(doc)


# --- KubeRay kinds: structure -------------------------------------------------------------------

def check_raycluster(rc: dict) -> None:
    assert rc["apiVersion"] == "ray.io/v1"
    spec = rc["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["version"] == "v2"
    assert str(spec["headGroupSpec"]["rayStartParams"]["num-cpus"]) == "0", "the head must schedule no work"
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"decode", "train"}
    for name, g in groups.items():
        assert 0 == g["minReplicas"] <= g.get("replicas", 0) <= g["maxReplicas"], f"{name}: min <= replicas <= max"
        assert g["maxReplicas"] > 0
        assert g["template"]["spec"].get("restartPolicy") == "Never", f"{name}: autoscaler v2 replaces pods"
    markers = {name: json.loads(json.loads(g["rayStartParams"]["resources"])) for name, g in groups.items()}
    assert markers == {"decode": {DECODE: 1}, "train": {TRAIN: 1}}
    gpus = {name: [c["resources"]["limits"].get("nvidia.com/gpu") for c in g["template"]["spec"]["containers"]]
            for name, g in groups.items()}
    assert all(int(n or 0) >= 1 for n in gpus["train"]), "GPU limits on the train group"
    assert not any(gpus["decode"]), "no GPUs on the decode group"
    assert "SPOT" in json.dumps(groups["decode"]["template"]["spec"].get("nodeSelector", {})).upper()


def test_raycluster_structure():
    check_raycluster(one("RayCluster"))


@pytest.mark.parametrize("breakage", [
    lambda rc: rc.update(apiVersion="ray.io/v1alpha1"),
    lambda rc: rc["spec"]["autoscalerOptions"].update(version="v1"),
    lambda rc: rc["spec"].update(enableInTreeAutoscaling=False),
    lambda rc: rc["spec"]["headGroupSpec"]["rayStartParams"].pop("num-cpus"),
    lambda rc: rc["spec"]["workerGroupSpecs"][0].update(groupName="cpu"),
    lambda rc: rc["spec"]["workerGroupSpecs"][0].update(replicas=9),                  # above max
    lambda rc: rc["spec"]["workerGroupSpecs"][1].update(minReplicas=3),               # above replicas
    lambda rc: rc["spec"]["workerGroupSpecs"][1]["rayStartParams"].update(resources='"{\\"gpu\\": 1}"'),
    lambda rc: rc["spec"]["workerGroupSpecs"][1]["template"]["spec"]["containers"][0]["resources"]["limits"]
    .pop("nvidia.com/gpu"),
])
def test_raycluster_checks_reject_a_broken_copy(breakage):
    rc = one("RayCluster")
    breakage(rc)
    with pytest.raises((AssertionError, KeyError)):
        check_raycluster(rc)


def image_workdir() -> str:
    """Where the Dockerfile puts the project inside the image."""
    (workdir,) = re.findall(r"^WORKDIR\s+(\S+)", (K8S / "Dockerfile").read_text(), re.M)
    return workdir


def check_rayjob(job: dict, rc: dict) -> None:
    assert job["apiVersion"] == "ray.io/v1"
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == rc["metadata"]["name"]
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[0] == "python"
    script = Path(argv[1])
    assert script.is_absolute() and script.is_relative_to(image_workdir()), "a path inside the image's project"
    assert (ROOT / script.relative_to(image_workdir())).is_file(), f"{script} is not a file of this repository"
    overrides = dict(a.split("=", 1) for a in argv[2:])
    assert overrides["resources.decode_node_resource"] == DECODE
    assert overrides["resources.train_node_resource"] == TRAIN
    assert overrides["storage"] == "s3" and overrides["tracking"] == "server"
    most = sum(g["maxReplicas"] * int(g["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
               for g in rc["spec"]["workerGroupSpecs"])
    assert int(overrides["resources.cluster_cpus"]) == most, "cluster_cpus must be what the groups can grow to"
    gpus = sum(g["maxReplicas"] * int(g["template"]["spec"]["containers"][0]["resources"]["limits"]
                                      .get("nvidia.com/gpu", 0)) for g in rc["spec"]["workerGroupSpecs"])
    assert int(overrides["resources.train_workers"]) * int(overrides["resources.gpus_per_train_worker"]) <= gpus
    deployed = Path(overrides["resources.cluster_config"])
    assert (ROOT / deployed.relative_to(image_workdir())).resolve() == (ROOT / "infra" / "k8s" / "raycluster.yaml")


def test_rayjob_runs_a_sweep_file_of_this_repo_on_the_raycluster():
    check_rayjob(one("RayJob"), one("RayCluster"))


@pytest.mark.parametrize("breakage", [
    lambda j: j.update(apiVersion="ray.io/v1alpha1"),
    lambda j: j["spec"].update(entrypoint=j["spec"]["entrypoint"].replace("jobs/sweep.py", "jobs/sweeps.py")),
    lambda j: j["spec"].update(entrypoint=j["spec"]["entrypoint"].replace("cluster_cpus=134", "cluster_cpus=100")),
    lambda j: j["spec"].update(entrypoint=j["spec"]["entrypoint"].replace("=train_node", "=gpu_node")),
    lambda j: j["spec"]["clusterSelector"].update({"ray.io/cluster": "other"}),
])
def test_rayjob_checks_reject_a_broken_copy(breakage):
    job = one("RayJob")
    breakage(job)
    with pytest.raises((AssertionError, KeyError)):
        check_rayjob(job, one("RayCluster"))


def test_sweep_entrypoint_config_is_valid_for_tubelab():
    """The RayJob's overrides compose into a valid sweep config (unknown keys would fail on the cluster)."""
    from tubelab import config, resources

    argv = shlex.split(one("RayJob")["spec"]["entrypoint"])
    cfg = config.load("sweep", argv[2:])
    assert cfg.resources.decode_node_resource == DECODE and cfg.resources.cluster_cpus == 134
    # the sweep's pre-flight against the RayCluster (read here from the repository, in the image from its copy)
    resources.check_node_types(OmegaConf.merge(cfg.resources, {"cluster_config": str(ROOT / "infra" / "k8s" /
                                                                                      "raycluster.yaml")}))


# --- MLflow ---------------------------------------------------------------------------------------

def check_mlflow(deployment: dict, service: dict) -> None:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    command = " ".join(c.get("command", []) + c.get("args", []))
    assert "mlflow server" in command and "--app-name basic-auth" in command, "authentication on"
    env = {e["name"]: e for e in c["env"]}
    assert "secretKeyRef" in env["MLFLOW_BACKEND_STORE_URI"].get("valueFrom", {}), "PostgreSQL URI from a Secret"
    assert "secretKeyRef" in env["MLFLOW_AUTH_ADMIN_PASSWORD"].get("valueFrom", {})
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"].startswith("s3://"), "S3 artifacts"
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP", "not exposed outside the cluster"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items(), "the Service selects the MLflow pods"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert all(p["targetPort"] in ports or p["targetPort"] in ports.values() for p in service["spec"]["ports"])


def test_mlflow_server_has_auth_postgres_and_s3():
    check_mlflow(one("Deployment"), one("Service"))


@pytest.mark.parametrize("breakage", [
    lambda d, s: d["spec"]["template"]["spec"]["containers"][0].update(
        args=[d["spec"]["template"]["spec"]["containers"][0]["args"][0].replace("--app-name basic-auth", "")]),
    lambda d, s: s["spec"].update(type="LoadBalancer"),
    lambda d, s: s["spec"].update(selector={"app": "other"}),
    lambda d, s: d["spec"]["template"]["spec"]["containers"][0]["env"].__setitem__(
        [e["name"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]].index("MLFLOW_BACKEND_STORE_URI"),
        {"name": "MLFLOW_BACKEND_STORE_URI", "value": "sqlite:///mlflow.db"}),
])
def test_mlflow_checks_reject_a_broken_copy(breakage):
    d, s = one("Deployment"), one("Service")
    breakage(d, s)
    with pytest.raises((AssertionError, KeyError)):
        check_mlflow(d, s)


# --- credentials only through Secrets --------------------------------------------------------------

def documented_secrets() -> set[tuple[str, str]]:
    """(secret, key) pairs that infra/README.md tells the operator to create (`kubectl create secret`)."""
    readme = (ROOT / "infra" / "README.md").read_text().replace("\\\n", " ")
    pairs = set()
    for line in readme.splitlines():
        if "kubectl" in line and "create secret generic" in line:
            argv = shlex.split(line[line.index("kubectl"):])
            name = argv[argv.index("generic") + 1]
            pairs |= {(name, a.split("=", 1)[1].split("=")[0]) for a in argv if a.startswith("--from-literal=")
                      or a.startswith("--from-file=")}
    return pairs


def check_credentials(docs: list[dict], documented: set[tuple[str, str]]) -> None:
    for doc in docs:
        assert doc["kind"] != "Secret", "Secrets are created out of band, never committed"
        for c in containers(doc) + [{"name": "autoscaler", "env": doc.get("spec", {}).get("autoscalerOptions", {})
                                     .get("env", [])}]:
            for e in c.get("env", []):
                if SENSITIVE.search(e["name"]) and e["name"] not in {"MLFLOW_AUTH_CONFIG_PATH", "MLFLOW_TRACKING_URI"}:
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    assert ref and "value" not in e, f"{doc['kind']}/{c['name']}: {e['name']} must come from a Secret"
                    assert (ref["name"], ref["key"]) in documented, f"{ref} is not in infra/README.md"
    ray_containers = [c for d in docs if d["kind"] in ("RayCluster", "RayJob") for c in containers(d)]
    ray_containers.append({"name": "autoscaler", "env": one("RayCluster")["spec"]["autoscalerOptions"]["env"]})
    for c in ray_containers:
        names = {e["name"] for e in c.get("env", [])}
        assert "RAY_AUTH_TOKEN" in names, f"{c['name']} cannot authenticate to the Ray cluster"


def test_credentials_only_through_documented_secrets():
    documented = documented_secrets()
    assert ("tubelab-ray-auth", "auth_token") in documented
    check_credentials([d for _, d in manifests()], documented)


@pytest.mark.parametrize("breakage", [
    lambda docs: docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                              "stringData": {"password": "hunter2"}}),
    lambda docs: next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    .append({"name": "MLFLOW_AUTH_ADMIN_PASSWORD", "value": "hunter2"}),
    lambda docs: next(d for d in docs if d["kind"] == "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]
    ["containers"][0]["env"].append({"name": "AWS_SECRET_ACCESS_KEY",
                                     "valueFrom": {"secretKeyRef": {"name": "undocumented", "key": "k"}}}),
    lambda docs: next(d for d in docs if d["kind"] == "RayJob")["spec"]["submitterPodTemplate"]["spec"]
    ["containers"][0].update(env=[]),
])
def test_credential_checks_reject_a_broken_copy(breakage):
    docs = [copy.deepcopy(d) for _, d in manifests()]
    breakage(docs)
    with pytest.raises(AssertionError):
        check_credentials(docs, documented_secrets())


def test_no_literal_secret_values_in_any_infra_file():
    for path in (ROOT / "infra").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"AKIA[0-9A-Z]{16}", text), path
            assert not re.search(r"postgres(ql)?://[^\s:@/]+:(?!PASSWORD@)[^\s@]+@", text), path
            assert not re.search(r"(?i)\b(password|secret)\s*[:=]\s*['\"]?[A-Za-z0-9+/]{8,}", text), path


# --- kustomize ------------------------------------------------------------------------------------

def test_kustomizations_list_existing_files_and_cover_every_manifest():
    listed = set()
    for k in K8S.rglob("kustomization.yaml"):
        spec = yaml.safe_load(k.read_text())
        for name in spec["resources"] + spec.get("configurations", []):
            assert (k.parent / name).is_file(), f"{k}: {name}"
            listed.add((k.parent / name).resolve())
        assert {i["name"] for i in spec["images"]} <= {"tubelab", "tubelab-mlflow"}
    manifests_on_disk = {p.resolve() for p in K8S.rglob("*.yaml") if p.name not in KUSTOMIZE}
    assert manifests_on_disk <= listed, manifests_on_disk - listed
    images = {c["image"].split(":")[0] for _, d in manifests() for c in containers(d)}
    assert images <= {"tubelab", "tubelab-mlflow"}, "every image is one kustomize rewrites"
