"""The cluster path end to end, on an autoscaling cluster: `ray job submit` of a small sweep to a real local
Ray head whose autoscaler launches the node types of infra/aws/cluster.yaml from zero (Ray's fake multi-node
provider: real raylets on this machine, tests/autoscaling.py), tracked into a real `mlflow server`, then the
sweep's runs found in the MLflow UI by headless Chromium.

Once per module: start a private head with the real CLI (`ray start --head --block`, own temp dir, own
ports, token authentication with its own token, no CPUs, the autoscaler on), run README's
`export RAY_AUTH_MODE=token ...` and `ray job submit ... --runtime-env-json '{...}' -- python jobs/sweep.py
ablation=demo tracking=server` as written (bash; tiny overrides and infra/README.md's placement appended), and
keep what came back. The tests then check the job, the auth, the upload, the MLflow runs and table, the UI,
which nodes the autoscaler launched and what ran on them, a train node lost mid-run (replaced, the run
resumes), the scale back to zero with the sweep's timeline, and that stopping the head leaves nothing behind.
"""

import csv
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from documented import documented, documented_line
from autoscaling import simulated_cpus
from services import BIN, RayHead, http_status, processes_using, wait_gone
from tiny import tiny_sweep

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = "cluster-e2e"
SWEEP = "cluster-e2e-sweep"
# One pretraining epoch: the point here is the cluster path. Batches of 4 (totals): one train worker per trial
# gets what each of the 2 workers gets in test_sweep_e2e.
SMALL = [o.replace("batch_size=8", "batch_size=4") for o in tiny_sweep(pretrain_epochs=1)]
# infra/README.md's placement: decode actors on decode nodes, train workers on train nodes. One train worker
# per trial keeps the process count down on 2 cores (test_sweep_e2e covers 2 workers).
PLACED = ["resources.decode_node_resource=decode_node", "resources.train_node_resource=train_node",
          "resources.train_workers=1"]
# infra/aws/cluster.yaml says 5: the one timing scaled for the test (at 0.25 nodes churned between a trial's stages)
IDLE_MINUTES = 0.5
# Fake secrets the job gets the way README says real ones come: from the nodes' environment (here the head's,
# which its job drivers and workers inherit), never in the runtime env. None may reach MLflow or the logs.
SECRETS = {"AWS_ACCESS_KEY_ID": "AKIAFAKESCANTUBELAB1", "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-7f3a9c",
           "MLFLOW_TRACKING_TOKEN": "fake-mlflow-token-51e2d0", "MLFLOW_TRACKING_PASSWORD": "fake-mlflow-password-0b8d"}
# README's two lines, run as written by bash (the runtime-env JSON holds a `$(git rev-parse HEAD)`).
EXPORT = "export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=<token>"
SUBMIT = ("ray job submit --address http://HEAD:8265 --working-dir . --runtime-env-json '{\"py_modules\": "
          "[\"platform/tubelab\"], \"env_vars\": {\"TUBELAB_HOME\": \"/shared/tubelab\", \"MLFLOW_TRACKING_URI\": "
          "\"http://MLFLOW:5000\", \"TUBELAB_GIT_COMMIT\": \"'$(git rev-parse HEAD)'\"}}' -- python jobs/sweep.py "
          "ablation=demo tracking=server")
REPORT = ("tubelab report sweep=SWEEP_NAME tracking=server resources.address=http://127.0.0.1:8265 "
          "resources.cluster_config=infra/aws/cluster.yaml")
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def submit_script(head, home, mlflow_server, overrides, entrypoint="python jobs/sweep.py ablation=demo") -> str:
    """README's two lines for this head (bash), the entrypoint swapped if asked, with `overrides`, the
    experiment and the placement on the simulated node types appended."""
    submit = documented_line("README.md", SUBMIT, {"http://HEAD:8265": head.dashboard_url, "/shared/tubelab": str(home),
                                                   "http://MLFLOW:5000": mlflow_server})
    return "\n".join([documented_line("README.md", EXPORT, {"<token>": head.token}),
                      submit.replace("python jobs/sweep.py ablation=demo", entrypoint) + " " + shlex.join([
                          *overrides, f"tracking.experiment={EXPERIMENT}", *PLACED,
                          f"resources.cluster_config={head.cluster_config}",
                          f"resources.cluster_cpus={simulated_cpus(head.cluster_config)}"])])


def cli_env(head) -> dict:
    """A shell without the token (README's export line sets it) and with the venv's `ray`."""
    env = {k: v for k, v in head.client_env.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


class Submitted:
    def __init__(self, head, proc, submission_id, tracking_uri, home, submit_time):
        self.head, self.proc, self.submission_id = head, proc, submission_id
        self.tracking_uri, self.home, self.submit_time = tracking_uri, home, submit_time
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.output = proc.stdout + proc.stderr

    def runs(self, filter_string):
        exp = self.client.get_experiment_by_name(EXPERIMENT)
        return self.client.search_runs([exp.experiment_id], filter_string)

    def parent(self):
        (parent,) = self.runs(f"tags.`tubelab.kind` = 'sweep' and tags.`tubelab.sweep` = '{SWEEP}'")
        return parent

    def parent_metrics(self) -> dict:
        return self.client.get_run(self.parent().info.run_id).data.metrics

    def trials(self, parent):
        return self.runs(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`tubelab.kind` = 'trial'")


@pytest.fixture(scope="module")
def submitted(tmp_path_factory, mlflow_server):
    root = tmp_path_factory.mktemp("rayhead")
    home = root / "home"
    # The node types of infra/aws/cluster.yaml, simulated: the head schedules nothing, so every trial waits for
    # the autoscaler to launch decode and train nodes (2 CPUs each here).
    head = RayHead(root, autoscaling=ROOT / "infra" / "aws" / "cluster.yaml", idle_timeout_minutes=IDLE_MINUTES,
                   env={"MLFLOW_TRACKING_USERNAME": "e2e", **SECRETS})
    try:
        # the demo's grid only (test_sweep_e2e runs its baseline)
        script = submit_script(head, home, mlflow_server, [f"name={SWEEP}", "ablation.baselines=[]", *SMALL])
        submit_time = time.time()
        try:  # `ray job submit` uploads, submits, streams the job's logs and exits with the job's outcome
            proc = subprocess.run(["bash", "-c", script], cwd=ROOT, env=cli_env(head), capture_output=True, text=True,
                                  timeout=900)
        except subprocess.TimeoutExpired as e:
            (root / "job-submit.log").write_bytes((e.stdout or b"") + (e.stderr or b""))
            raise
        (root / "job-submit.log").write_text(proc.stdout + proc.stderr)
        submitted = re.search(r"Job '([^']+)' submitted successfully", proc.stdout + proc.stderr)
        assert submitted, (proc.stdout + proc.stderr)[-3000:]
        submission_id = submitted.group(1)
        yield Submitted(head, proc, submission_id, mlflow_server, home, submit_time)
    finally:
        head.stop()
        head.remove_temp_dir()


def test_the_head_enforces_token_auth(submitted):
    head = submitted.head
    jobs = f"{head.dashboard_url}/api/jobs/"
    assert http_status(jobs) == 401  # no token
    assert http_status(jobs, {"Authorization": "Bearer " + "0" * 64}) == 403  # someone else's token
    assert http_status(jobs, head.auth_header) == 200
    without_token = {k: v for k, v in head.client_env.items() if k != "RAY_AUTH_TOKEN"}
    without_token["RAY_AUTH_TOKEN_PATH"] = str(submitted.home.parent / "no-such-token")
    denied = subprocess.run([str(BIN / "ray"), "job", "list", "--address", head.dashboard_url], cwd=ROOT,
                            env=without_token, capture_output=True, text=True, timeout=60)
    assert denied.returncode != 0 and "Authentication" in denied.stdout + denied.stderr
    # a driver (ray.init on the GCS port, not the HTTP API) with another token is refused too
    probe = [sys.executable, "-c", f"import ray; ray.init(address={head.gcs_address!r}); print('CONNECTED')"]
    bad = subprocess.run(probe, env={**head.client_env, "RAY_AUTH_TOKEN": "f" * 64}, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "CONNECTED" not in bad.stdout and "auth" in bad.stderr.lower(), bad.stderr[-2000:]


def test_job_submit_succeeds_and_prints_the_table(submitted):
    proc, out = submitted.proc, submitted.output
    assert proc.returncode == 0, out[-6000:]
    assert f"Job '{submitted.submission_id}' succeeded" in out, out[-3000:]
    status = subprocess.run([str(BIN / "ray"), "job", "status", "--address", submitted.head.dashboard_url,
                             submitted.submission_id], cwd=ROOT, env=submitted.head.client_env,
                            capture_output=True, text=True, timeout=60)
    assert f"Job '{submitted.submission_id}' succeeded" in status.stdout + status.stderr, status.stdout + status.stderr
    assert job_info(submitted)["status"] == "SUCCEEDED"
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert table and table[0].startswith("| tubelet |") and "synthetic/top1" in table[0], out[-3000:]
    rows = {line.split("|")[1].strip() for line in table[2:]}
    assert {"no_motion", "default"} <= rows


def test_the_upload_honours_gitignore(submitted):
    # the head unpacks the uploaded working dir here (Ray may keep more than one unpacked copy)
    pkgs = [p for p in submitted.head.temp_dir.glob("session_*/runtime_resources/working_dir_files/_ray_pkg_*")
            if p.is_dir()]
    assert pkgs
    for pkg in pkgs:
        assert sum(f.stat().st_size for f in pkg.rglob("*") if f.is_file()) < 20 * 2**20  # without .venv (GBs)
        assert (pkg / "jobs" / "sweep.py").is_file() and (pkg / "platform" / "tubelab").is_dir()
        uploaded = {part for p in pkg.rglob("*") for part in p.relative_to(pkg).parts}
        # (__pycache__ folders appear when the job imports from the unpacked tree: not a test of the upload)
        assert not {".venv", ".tubelab", ".git"} & uploaded
    assert list(submitted.head.temp_dir.glob("session_*/runtime_resources/py_modules_files/_ray_pkg_*/tubelab"))


def test_mlflow_holds_the_parent_run_and_one_child_per_trial(submitted):
    assert submitted.proc.returncode == 0, submitted.output[-3000:]
    parent = submitted.parent()
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tubelab.ablation"] == "demo"
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert parent.data.tags["git_commit"] == commit  # README's TUBELAB_GIT_COMMIT (the upload holds no .git)
    trials = submitted.trials(parent)
    assert len(trials) == 2
    assert {t.data.params["grid.tubelet"] for t in trials} == {"no_motion", "default"}
    for t in trials:
        assert t.info.status == "FINISHED"
        assert t.data.tags["tubelab.sweep"] == SWEEP
        assert 0.0 <= t.data.metrics["score/synthetic/top1"] <= 100.0
        assert t.data.tags["checkpoint_uri"].startswith(str(submitted.home))


def test_the_parent_run_holds_the_table(submitted, tmp_path):
    assert submitted.proc.returncode == 0, submitted.output[-3000:]
    parent = submitted.parent()
    names = {a.path for a in submitted.client.list_artifacts(parent.info.run_id)}
    assert {"results.md", "results.csv", "results.png"} <= names
    md = Path(mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="results.md",
                                                  dst_path=str(tmp_path), tracking_uri=submitted.tracking_uri))
    table = [line for line in md.read_text().splitlines() if line.startswith("|")]
    assert table and all(line in submitted.output for line in table)


def test_no_secret_reaches_mlflow_the_job_logs_or_the_store(submitted, tmp_path):
    assert submitted.proc.returncode == 0, submitted.output[-3000:]
    logs = subprocess.run([str(BIN / "ray"), "job", "logs", "--address", submitted.head.dashboard_url,
                           submitted.submission_id], cwd=ROOT, env=submitted.head.client_env, capture_output=True,
                          text=True, timeout=60)
    assert logs.returncode == 0 and "sweep progress" in logs.stdout, logs.stderr[-2000:]
    seen = {"job submit output": submitted.output, "ray job logs": logs.stdout + logs.stderr}
    exp = submitted.client.get_experiment_by_name(EXPERIMENT)
    runs = submitted.client.search_runs([exp.experiment_id], "")
    assert len(runs) >= 5  # the sweep, 2 trials and their stages
    for run in runs:
        seen[f"run {run.info.run_id} params/tags/metrics"] = json.dumps([run.data.params, run.data.tags,
                                                                         sorted(run.data.metrics)])
        local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / run.info.run_id),
                                                    tracking_uri=submitted.tracking_uri)
        for f in Path(local).rglob("*"):
            if f.is_file():
                seen[f"artifact {f.relative_to(tmp_path)}"] = f.read_bytes().decode("latin-1")
    for f in submitted.home.rglob("*"):  # checkpoints, Tune's trial dirs and results
        if f.is_file():
            seen[f"store {f.relative_to(submitted.home)}"] = f.read_bytes().decode("latin-1")
    assert any(name.startswith("store checkpoints") for name in seen)
    # Ray's own logs on every node (runtime-env agents log each runtime env; Ray Tune used to copy the AWS keys
    # into its trials' runtime envs, where the dashboard shows them too)
    for f in submitted.head.temp_dir.glob("**/logs/*"):
        if f.is_file():
            seen[f"ray log {f.relative_to(submitted.head.temp_dir)}"] = f.read_bytes().decode("latin-1")
    assert any("runtime_env_agent" in name for name in seen)
    leaks = [(where, key) for where, text in seen.items() for key, secret in SECRETS.items() if secret in text]
    assert not leaks, leaks
    # the tracking URI was logged (it holds no credentials: those came from the environment)
    assert {r.data.params.get("tracking.uri") for r in runs} - {None} == {submitted.tracking_uri}


# --- The autoscaler: what it launched, what ran where, the timeline at the sweep's end -------------------------

def state(head, what: str) -> list[dict]:
    """The head's State API (`ray list nodes|actors --detail`: alive and dead), over HTTP with the token."""
    request = urllib.request.Request(f"{head.dashboard_url}/api/v0/{what}?detail=1&limit=10000", headers=head.auth_header)
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read())["data"]["result"]["result"]


def worker_nodes(head) -> dict[str, dict]:
    """Every worker node the autoscaler started, alive or gone, with its type ("decode"/"train": the marker
    infra/aws/cluster.yaml gives it) under "type"."""
    types = {"decode_node": "decode", "train_node": "train"}
    nodes = {}
    for n in state(head, "nodes"):
        if not n["is_head_node"]:
            (kind,) = [types[k] for k in n["resources_total"] if k in types]
            nodes[n["node_id"]] = {**n, "type": kind}
    return nodes


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    most = up = 0
    for _, step in edges:
        up += step
        most = max(most, up)
    return most


def test_the_autoscaler_launched_decode_and_train_nodes_from_zero(submitted):
    assert submitted.proc.returncode == 0, submitted.output[-3000:]
    nodes = worker_nodes(submitted.head)
    assert {n["type"] for n in nodes.values()} == {"decode", "train"}
    # the head started with no worker nodes: every one was launched for the job, after the submission
    assert all(n["start_time_ms"] / 1000 >= submitted.submit_time for n in nodes.values())
    assert "Adding 1 node(s) of type decode" in submitted.output and "Adding 1 node(s) of type train" in submitted.output
    now_ms = time.time() * 1000
    for kind, most in (("decode", 8), ("train", 2)):  # infra/aws/cluster.yaml's max_workers per type
        spans = [(n["start_time_ms"], n["end_time_ms"] or now_ms) for n in nodes.values() if n["type"] == kind]
        assert 1 <= most_at_once(spans) <= most


def test_decode_actors_and_train_workers_ran_on_their_node_types(submitted):
    assert submitted.proc.returncode == 0, submitted.output[-3000:]
    nodes = worker_nodes(submitted.head)
    actors = [a for a in state(submitted.head, "actors") if a["node_id"]]  # placed (a cancelled request has none)
    decoders = [a for a in actors if "ClipDecoder" in a["class_name"]]
    trainers = [a for a in actors if a["class_name"] == "RayTrainWorker"]
    assert decoders and trainers
    assert {nodes[a["node_id"]]["type"] for a in decoders} == {"decode"}
    assert {nodes[a["node_id"]]["type"] for a in trainers} == {"train"}


def timeline(submitted, tmp_path) -> list[dict]:
    path = mlflow.artifacts.download_artifacts(run_id=submitted.parent().info.run_id, artifact_path="timeline.csv",
                                               dst_path=str(tmp_path), tracking_uri=submitted.tracking_uri)
    return list(csv.DictReader(io.StringIO(Path(path).read_text())))


def test_the_sweep_logs_its_scaling_timeline(submitted, tmp_path):
    assert submitted.proc.returncode == 0, submitted.output[-3000:]
    assert re.search(r"timeline: \d+ worker node\(s\) launched", submitted.output), submitted.output[-3000:]
    names = {a.path for a in submitted.client.list_artifacts(submitted.parent().info.run_id)}
    assert {"timeline.csv", "timeline.png"} <= names
    rows = timeline(submitted, tmp_path)
    seen = [(r["event"], r["what"].split(" ")[0]) for r in rows]
    assert ("node up", "decode") in seen and ("node up", "train") in seen
    assert [e for e, _ in seen].count("trial finished") == 2 and [e for e, _ in seen].count("first epoch logged") == 2
    assert [float(r["t"]) for r in rows] == sorted(float(r["t"]) for r in rows)
    first_node = min(float(r["t"]) for r in rows if r["event"] == "node up")
    first_epoch = min(float(r["t"]) for r in rows if r["event"] == "first epoch logged")
    assert 0 <= first_node < first_epoch  # training waited for a node the autoscaler launched


def chromium(*args, timeout=90):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--no-first-run", "--virtual-time-budget=15000", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (`make test` installs it: "
                                              "apt-get install chromium)")
def test_the_mlflow_ui_shows_the_sweeps_child_runs(submitted, tmp_path):
    assert submitted.proc.returncode == 0, submitted.output[-3000:]
    parent = submitted.parent()
    trials = submitted.trials(parent)
    names = {t.info.run_name for t in trials}
    assert len(names) == 2
    # The experiment's runs page, filtered to the sweep's children. With a filter and a non-date order
    # the UI lists runs flat; ordered by start time it nests children (collapsed) under their parent.
    query = urllib.parse.urlencode({"searchFilter": f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
                                    "orderByKey": "attributes.run_name", "orderByAsc": "true"},
                                   quote_via=urllib.parse.quote)
    url = f"{submitted.tracking_uri}/#/experiments/{parent.info.experiment_id}/runs?{query}"
    dom = chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    (tmp_path / "experiment.html").write_text(dom.stdout)
    assert f"{len(trials)} matching runs" in re.sub(r"<[^>]+>", "", dom.stdout)
    for name in names:
        assert f">{name}<" in dom.stdout.replace("&amp;", "&"), f"{name!r} not on {url}"
    shot = tmp_path / "experiment.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1600,1000", url)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000  # a rendered page, not a blank one


# --- A train node lost mid-run, then the scale back to zero ---------------------------------------------------

EPOCHS = 2
# A pretraining on the sweep's shards (its dataset overrides: nothing to prepare), 10 steps per epoch.
PREEMPTED = [o for o in SMALL if o.startswith("dataset.")] + [
    "pretrain.batch_size=4", "pretrain.clip.crop=40", "pretrain.clip.clips_per_video=2", "pretrain.moco.queue=16",
    f"pretrain.epochs={EPOCHS}"]


def kill_node(node_id: str) -> int:
    """A spot preemption: SIGKILL the node's raylet and everything under it (the fake provider gives the raylet
    RAY_OVERRIDE_NODE_ID_FOR_TESTING=<node id>). Returns how many processes went."""
    killed = 0
    for p in psutil.process_iter(["name"]):
        try:
            if p.info["name"] == "raylet" and p.environ().get("RAY_OVERRIDE_NODE_ID_FOR_TESTING") == node_id:
                for q in [*p.children(recursive=True), p]:
                    q.kill()
                    killed += 1
        except psutil.NoSuchProcess:
            continue
    return killed


def pretrain_run(submitted, name: str):
    exp = submitted.client.get_experiment_by_name(EXPERIMENT)
    return submitted.client.search_runs([exp.experiment_id], f"tags.`tubelab.name` = '{name}' and "
                                        f"tags.`tubelab.kind` = 'pretrain'")


def test_a_lost_train_node_is_replaced_and_the_run_resumes(submitted, tmp_path):
    head, home = submitted.head, submitted.home
    script = submit_script(head, home, submitted.tracking_uri, ["name=preempted", *PREEMPTED],
                           entrypoint="python jobs/pretrain.py")
    log = tmp_path / "job.log"  # a file, not a pipe: nothing reads a pipe while we wait
    with open(log, "w") as f:
        proc = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=cli_env(head), stdout=f, stderr=subprocess.STDOUT)
    try:
        snapshot = home / "checkpoints" / "preempted" / "checkpoint_manager_snapshot.json"
        deadline = time.monotonic() + 420
        while not (snapshot.exists() and (runs := pretrain_run(submitted, "preempted"))
                   and submitted.client.get_metric_history(runs[0].info.run_id, "pretrain/loss")):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint of epoch 0 within 7 min: " + log.read_text()[-3000:]
            time.sleep(0.5)
        trainers = [a for a in state(head, "actors") if a["class_name"] == "RayTrainWorker" and a["state"] == "ALIVE"]
        assert trainers, "the run finished before it could lose a node: " + log.read_text()[-3000:]
        (job,) = {a["job_id"] for a in trainers}
        # The spot train capacity goes: every train node up now, the one holding the workers included, so
        # the run can only go on on a train node the autoscaler launches after the loss.
        lost = {i for i, n in worker_nodes(head).items() if n["type"] == "train" and n["state"] == "ALIVE"}
        assert {a["node_id"] for a in trainers} <= lost
        lost_at = time.time()
        assert all(kill_node(n) > 0 for n in lost)
        proc.wait(timeout=480)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert proc.returncode == 0, out[-4000:]
    assert "tubelab: a train worker was lost; restarting from the last checkpoint (restart 1 of 2)" in out, out[-4000:]
    assert "tubelab: restored the checkpoint of epoch" in out, out[-4000:]  # resumed, not restarted
    nodes = worker_nodes(head)
    assert all(nodes[n]["state"] == "DEAD" for n in lost)
    # the new worker group ran on a train node the autoscaler launched after the loss
    actors = [a for a in state(head, "actors") if a["job_id"] == job]
    later = {a["node_id"] for a in actors if a["class_name"] == "RayTrainWorker"} - lost
    assert later and all(nodes[n]["type"] == "train" and nodes[n]["start_time_ms"] / 1000 > lost_at for n in later)
    # the run's failure log lives beside its driver (the job's entrypoint, on the head), not on a spot node
    failure_logs = {a["node_id"] for a in actors if a["class_name"] == "FailureLog"}
    assert failure_logs and not failure_logs & set(nodes)
    (run,) = pretrain_run(submitted, "preempted")  # one MLflow run, one value per epoch
    epochs = sorted(m.step for m in submitted.client.get_metric_history(run.info.run_id, "pretrain/loss"))
    assert epochs == list(range(EPOCHS))  # continuous, no duplicates
    steps = submitted.client.get_metric_history(run.info.run_id, "pretrain/steps")
    assert sum(m.value for m in steps) == EPOCHS * 10 and run.info.status == "FINISHED"  # the planned steps


def test_idle_nodes_go_and_the_report_adds_them_to_the_timeline(submitted, tmp_path):
    head = submitted.head
    deadline = time.monotonic() + 240  # idle timeout IDLE_MINUTES, then the autoscaler's next rounds
    while any(n["state"] == "ALIVE" for n in worker_nodes(head).values()):
        assert time.monotonic() < deadline, [(n["type"], n["state"]) for n in worker_nodes(head).values()]
        time.sleep(2)
    # infra/README.md's report line, against this head: the table again, and the timeline with the terminations
    report = subprocess.run(
        documented("infra/README.md", REPORT, {"SWEEP_NAME": SWEEP, "http://127.0.0.1:8265": head.dashboard_url,
                                               "infra/aws/cluster.yaml": str(head.cluster_config)})
        + [f"tracking.experiment={EXPERIMENT}"],
        cwd=ROOT, env={**head.client_env, "MLFLOW_TRACKING_URI": submitted.tracking_uri,
                       "TUBELAB_HOME": str(submitted.home)}, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    assert re.search(r"timeline: \d+ worker node\(s\) launched, 0 still up", report.stdout), report.stdout[-2000:]
    rows = timeline(submitted, tmp_path)
    ups = sorted(r["what"] for r in rows if r["event"] == "node up")
    assert ups and ups == sorted(r["what"] for r in rows if r["event"] == "node down")  # every node went
    assert [r["event"] for r in rows].count("sweep finished") == 1
    hours = {k: v for k, v in submitted.parent_metrics().items() if k.startswith("nodes/")}
    assert set(hours) == {"nodes/decode_hours", "nodes/train_hours"} and all(v > 0 for v in hours.values())


def test_a_sweep_no_node_type_can_hold_fails_at_once(submitted):
    """A decode actor larger than a decode node (3 CPUs; the simulated nodes have 2) would pend forever on an
    autoscaling cluster: the pre-flight against the deployed config refuses it before any trial or node."""
    head = submitted.head
    before = worker_nodes(head)
    script = submit_script(head, submitted.home, submitted.tracking_uri,
                           ["name=cluster-e2e-too-big", "ablation.baselines=[]", *SMALL, "resources.cpus_per_decode_actor=3"])
    started = time.monotonic()
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, env=cli_env(head), capture_output=True, text=True, timeout=300)
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "failed" in out, out[-3000:]
    assert "this run can never be placed, so it would wait forever" in out, out[-3000:]
    assert "decode actor (CPU 3, decode_node 0.001 each)" in out and "decode (up to 8: CPU 2, decode_node 1)" in out
    assert took < 120, took  # the upload and the job's start; no waiting for nodes
    assert set(worker_nodes(head)) == set(before)  # no node was launched for it


def test_stopping_the_head_leaves_none_of_its_processes(submitted):
    head = submitted.head
    assert processes_using(head.temp_dir), "the head should be running before it is stopped"
    head.stop()
    assert head.proc.returncode is not None
    left = wait_gone(head.temp_dir, timeout=30)
    assert not left, left
    assert http_status_or_none(f"{head.dashboard_url}/api/version") is None


def http_status_or_none(url):
    try:
        return http_status(url, timeout=2)
    except OSError:
        return None


def job_info(submitted) -> dict:
    """The job as the head's REST API reports it (status, runtime_env with the uploaded package URIs)."""
    url = f"{submitted.head.dashboard_url}/api/jobs/{submitted.submission_id}"
    request = urllib.request.Request(url, headers=submitted.head.auth_header)
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())
