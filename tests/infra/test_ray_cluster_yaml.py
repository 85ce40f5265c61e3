"""infra/aws/cluster.yaml passes Ray's own cluster-launcher schema validation offline (there is no
`ray up --dry-run`), and keeps the invariants tubelab relies on: a head that schedules no work, a
spot CPU decode group and a GPU train group scaling from zero, the node markers that
resources.*_node_resource name, and setup commands that install the project. Each check is also
run on a deliberately broken copy, which must fail."""

import copy
import re
import shlex
from pathlib import Path

import pytest
import yaml
from jsonschema import ValidationError
from omegaconf import OmegaConf

from documented import documented
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]
AWS = ROOT / "infra" / "aws"
DECODE, TRAIN = "decode_node", "train_node"


def load() -> dict:
    return yaml.safe_load((AWS / "cluster.yaml").read_text())


def ray_validate(cfg: dict) -> None:
    """What `ray up` checks before it touches AWS: defaults filled in, then the JSON schema."""
    validate_config(prepare_config(copy.deepcopy(cfg)))


def check_tubelab(cfg: dict) -> None:
    """tubelab's own invariants of the cluster YAML (AssertionError names the broken one)."""
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    assert head["resources"].get("CPU") == 0, "the head must schedule no work"
    groups = {name: t for name, t in types.items() if name != cfg["head_node_type"]}
    decode = [t for t in groups.values() if DECODE in t["resources"]]
    train = [t for t in groups.values() if TRAIN in t["resources"]]
    assert len(decode) == 1 and len(train) == 1, "one decode group and one train group, each marked"
    (decode,), (train,) = decode, train
    assert decode["resources"].get("GPU", 0) == 0 and decode["resources"].get("CPU", 0) > 0
    assert train["resources"].get("GPU", 0) >= 1, "the train group must have GPUs"
    assert TRAIN not in decode["resources"] and DECODE not in train["resources"]
    assert decode["node_config"].get("InstanceMarketOptions", {}).get("MarketType") == "spot"
    for t in (decode, train):
        assert t["min_workers"] == 0 < t["max_workers"], "worker groups must scale to zero"
        cmds = " ; ".join(t["worker_setup_commands"])
        assert "torch==" in cmds and "-e ~/tubelab" in cmds, "setup must install pinned torch, then the project"
        assert cmds.index("torch==") < cmds.index("-e ~/tubelab"), "torch before the project (no CUDA surprise)"
    assert "download.pytorch.org/whl/cpu" in " ".join(decode["worker_setup_commands"]), "CPU torch on decode nodes"
    assert "download.pytorch.org/whl/cpu" not in " ".join(train["worker_setup_commands"]), "CUDA torch on GPU nodes"
    assert cfg["max_workers"] >= decode["max_workers"] + train["max_workers"]
    assert 0 < cfg["idle_timeout_minutes"] <= 30
    assert cfg["file_mounts"].get("~/tubelab") == ".", "the project must reach the nodes"
    starts = " ".join(cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"])
    assert "--dashboard-host=0.0.0.0" not in starts, "the dashboard stays on localhost (SSH tunnel)"
    assert starts.count("node_env.sh") == 2, "every node starts with token auth and MLflow credentials"


def test_cluster_yaml_passes_rays_schema_validation():
    ray_validate(load())


@pytest.mark.parametrize("breakage", [
    lambda c: c["available_node_types"]["decode"].update(unknown_key=1),          # unknown key
    lambda c: c["available_node_types"]["decode"]["resources"].update(decode_node=0.5),  # not an integer
    lambda c: c.update(head_node="legacy"),                                         # legacy top-level key
    lambda c: c.update(head_node_type="nope"),                                      # no such node type
])
def test_rays_validation_rejects_a_broken_copy(breakage):
    cfg = load()
    breakage(cfg)
    with pytest.raises((ValidationError, ValueError)):
        ray_validate(cfg)


def test_cluster_yaml_keeps_tubelabs_invariants():
    check_tubelab(load())


@pytest.mark.parametrize("breakage", [
    lambda c: c["available_node_types"]["head"]["resources"].pop("CPU"),
    lambda c: c["available_node_types"]["train"]["resources"].pop("GPU"),
    lambda c: c["available_node_types"]["decode"]["resources"].pop("decode_node"),
    lambda c: c["available_node_types"]["decode"]["node_config"].pop("InstanceMarketOptions"),
    lambda c: c["available_node_types"]["train"].update(min_workers=1),
    lambda c: c["available_node_types"]["decode"]["worker_setup_commands"].reverse(),
    lambda c: c.update(max_workers=3),
])
def test_tubelab_checks_reject_a_broken_copy(breakage):
    cfg = load()
    breakage(cfg)
    ray_validate(cfg)  # still valid for Ray's schema: only tubelab's checks catch it
    with pytest.raises(AssertionError):
        check_tubelab(cfg)


def test_node_markers_match_what_tubelab_is_told():
    """The marker names in the YAML are those the submit command passes as resources.*_node_resource,
    and those keys exist in the resources config (struct mode would reject them otherwise)."""
    submit = (AWS / "submit_sweep.sh").read_text()
    assert f"resources.decode_node_resource={DECODE}" in submit
    assert f"resources.train_node_resource={TRAIN}" in submit
    keys = OmegaConf.load(ROOT / "platform/tubelab/conf/resources/auto.yaml")
    assert {"decode_node_resource", "train_node_resource", "cluster_cpus"} <= set(keys)


def submit_command() -> list[str]:
    text = (AWS / "submit_sweep.sh").read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if "ray job submit" in ln)
    return shlex.split(line)


def test_submit_command_runs_a_file_of_the_repo_with_the_clusters_capacity():
    argv = submit_command()
    assert "--working-dir" in argv and argv[argv.index("--working-dir") + 1] == "."
    runtime_env = AWS / argv[argv.index("--runtime-env") + 1].removeprefix("infra/aws/")
    env = yaml.safe_load(runtime_env.read_text())
    assert set(env) <= {"env_vars", "excludes", "pip", "py_modules", "working_dir"}
    entry = argv[argv.index("--") + 1:]
    assert entry[0] == "python" and (ROOT / entry[1]).is_file(), entry[:2]
    overrides = dict(a.split("=", 1) for a in entry[2:] if "=" in a)
    types = load()["available_node_types"]
    most = sum(t["max_workers"] * t["resources"]["CPU"] for t in types.values() if "max_workers" in t)
    assert int(overrides["resources.cluster_cpus"]) == most, "cluster_cpus must be what the groups can grow to"


def test_submit_overrides_compose_into_a_valid_sweep_config(monkeypatch):
    """Unknown keys or values would only fail on the cluster, after `ray up`: compose them here; the
    sweep's pre-flight against this cluster YAML (resources.cluster_config) passes."""
    from tubelab import config, resources

    argv = submit_command()
    overrides = [a for a in argv[argv.index("--") + 3:] if "=" in a]
    cfg = config.load("sweep", overrides)
    assert cfg.resources.decode_node_resource == DECODE and cfg.resources.train_node_resource == TRAIN
    assert cfg.choices.storage == "s3" and cfg.choices.tracking == "server"
    assert (ROOT / cfg.resources.cluster_config).resolve() == AWS / "cluster.yaml"
    monkeypatch.chdir(ROOT)  # the job's working dir is the uploaded repository
    resources.check_node_types(cfg.resources)


README_SUBMIT = ("ray job submit --runtime-env infra/aws/runtime_env.yaml --working-dir . -- python jobs/sweep.py "
                 "ablation=demo storage=s3 tracking=server resources.decode_node_resource=decode_node "
                 "resources.train_node_resource=train_node resources.train_workers=2 resources.gpus_per_train_worker=1 "
                 "resources.cpus_per_train_worker=4 resources.decode_actors=8 resources.cluster_cpus=144 "
                 "resources.max_concurrent_trials=1 resources.cluster_config=infra/aws/cluster.yaml")


def test_the_readme_submit_line_is_the_scripts_and_composes():
    """infra/README.md's submit line (it needs an AWS cluster to run) is submit_sweep.sh's, and its overrides
    compose into a sweep config; tests/docs/test_documented_commands.py lists it as not run here."""
    from tubelab import config

    argv = documented("infra/README.md", README_SUBMIT)
    script = submit_command()
    assert argv[1:] == script[script.index("ray") + 1:script.index("$@")]  # the same arguments after `ray`
    cfg = config.load("sweep", argv[argv.index("--") + 3:])
    assert cfg.resources.decode_node_resource == DECODE and cfg.choices.storage == "s3"


def test_region_is_the_same_everywhere():
    cfg = load()
    region = cfg["provider"]["region"]
    starts = " ".join(cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"])
    assert set(re.findall(r"node_env\.sh \S+ (\S+?);", starts)) == {region}
    assert set(re.findall(r"start_mlflow\.sh \S+ (\S+)", starts)) == {region}
    assert all(z.startswith(region) for z in cfg["provider"]["availability_zone"].split(","))


def test_no_secret_values_in_the_aws_files():
    for path in AWS.iterdir():
        text = path.read_text()
        assert not re.search(r"AKIA[0-9A-Z]{16}", text), path               # AWS access key ids
        assert not re.search(r"postgres(ql)?://[^\s:@/]+:[^\s@]+@", text), path  # URIs with a password
        assert not re.search(r"(?i)(password|secret|token)\s*[:=]\s*['\"]?[A-Za-z0-9+/]{12,}", text), path


@pytest.mark.parametrize("script", sorted(p.name for p in AWS.glob("*.sh")))
def test_shell_scripts_parse(script, tmp_path):
    import subprocess

    ok = subprocess.run(["bash", "-n", str(AWS / script)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    broken = tmp_path / script
    broken.write_text((AWS / script).read_text() + "\nif then\n")
    assert subprocess.run(["bash", "-n", str(broken)], capture_output=True).returncode != 0
