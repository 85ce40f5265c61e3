"""The cluster path end to end: `ray job submit` of a small sweep to a real local Ray head, tracked into a
real `mlflow server`, then the sweep's runs found in the MLflow UI by headless Chromium.

Once per module: start a private head with the real CLI (`ray start --head --block`, own temp dir, own
ports, token authentication with its own token), run README's `export RAY_AUTH_MODE=token ...` and
`ray job submit ... --runtime-env-json '{...}' -- python jobs/sweep.py ablation=demo tracking=server` as
written (bash; tiny overrides appended), and keep what came back. The tests then check the job, the
auth, the upload, the MLflow runs and table, the UI, and that stopping the head leaves nothing behind.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from documented import documented_line
from services import BIN, RayHead, http_status, processes_using, wait_gone
from tiny import tiny_sweep

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = "cluster-e2e"
SWEEP = "cluster-e2e-sweep"
SMALL = tiny_sweep(pretrain_epochs=1)  # one pretraining epoch: the point here is the cluster path
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
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


class Submitted:
    def __init__(self, head, proc, submission_id, tracking_uri, home):
        self.head, self.proc, self.submission_id = head, proc, submission_id
        self.tracking_uri, self.home = tracking_uri, home
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.output = proc.stdout + proc.stderr

    def runs(self, filter_string):
        exp = self.client.get_experiment_by_name(EXPERIMENT)
        return self.client.search_runs([exp.experiment_id], filter_string)

    def parent(self):
        (parent,) = self.runs(f"tags.`tubelab.kind` = 'sweep' and tags.`tubelab.sweep` = '{SWEEP}'")
        return parent

    def trials(self, parent):
        return self.runs(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`tubelab.kind` = 'trial'")


@pytest.fixture(scope="module")
def submitted(tmp_path_factory, mlflow_server):
    root = tmp_path_factory.mktemp("rayhead")
    home = root / "home"
    # 2 trials x (driver 0.5 + 1 train worker + 1 decode actor + listing 1 + read 0.25) CPUs: both at once.
    # One train worker per trial keeps the process count down on 2 cores (test_sweep_e2e covers 2 workers).
    head = RayHead(root, num_cpus=8, env={"MLFLOW_TRACKING_USERNAME": "e2e", **SECRETS})
    try:
        script = "\n".join([
            documented_line("README.md", EXPORT, {"<token>": head.token}),
            documented_line("README.md", SUBMIT, {"http://HEAD:8265": head.dashboard_url, "/shared/tubelab": str(home),
                                                  "http://MLFLOW:5000": mlflow_server})
            + " " + shlex.join([f"name={SWEEP}", f"tracking.experiment={EXPERIMENT}", "resources.train_workers=1",
                                "ablation.baselines=[]", *SMALL])])  # the demo's grid only (test_sweep_e2e runs its baseline)
        env = {k: v for k, v in head.client_env.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # the venv's `ray`
        try:  # `ray job submit` uploads, submits, streams the job's logs and exits with the job's outcome
            proc = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired as e:
            (root / "job-submit.log").write_bytes((e.stdout or b"") + (e.stderr or b""))
            raise
        (root / "job-submit.log").write_text(proc.stdout + proc.stderr)
        submitted = re.search(r"Job '([^']+)' submitted successfully", proc.stdout + proc.stderr)
        assert submitted, (proc.stdout + proc.stderr)[-3000:]
        submission_id = submitted.group(1)
        yield Submitted(head, proc, submission_id, mlflow_server, home)
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
    leaks = [(where, key) for where, text in seen.items() for key, secret in SECRETS.items() if secret in text]
    assert not leaks, leaks
    # the tracking URI was logged (it holds no credentials: those came from the environment)
    assert {r.data.params.get("tracking.uri") for r in runs} - {None} == {submitted.tracking_uri}


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
