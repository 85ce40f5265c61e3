"""The walking skeleton end to end: `tubelab sweep` through a real local Ray and a real MLflow store.

One small sweep (the random-init baseline, a fine-tune only; then 2 grid points, each: Ray Train pretraining
with 2 workers -> fine-tune -> score) is run once per module as README's `make demo` with tiny overrides
appended, interrupted after its first trial and finished with `--resume`; the tests then read what it left
behind: the printed table, the MLflow parent and child runs with params, metrics and artifacts, `tubelab
report`, a second sweep that reuses the trials, and a third that trains one again and must print the same row.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from documented import ROOT, documented
from services import stop_group
from tiny import tiny_sweep

from tubelab.data.synthetic import CLASSES

pytestmark = pytest.mark.slow

SMALL = [
    "name=e2e-sweep",
    *tiny_sweep(pretrain_epochs=1),  # epochs on and after a restore: my_run (tests/conftest.py)
    "resources.max_concurrent_trials=1",   # one trial at a time: the interruption finds one finished
]
# README's sweep line; the appended SMALL sets the epochs again, so it is the demo's config, and its trials
# are found finished (reused) instead of trained again.
SWEEP = ".venv/bin/tubelab sweep ablation=demo pretrain.epochs=5 setting.epochs=10"


def tubelab(home: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUBELAB_HOME": str(home)}
    cmd = [str(Path(sys.executable).parent / "tubelab"), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """`make demo` (README) is interrupted (make, the driver and its embedded Ray killed) as soon as its
    first trial has finished, then finished with `--resume`: the other tests read what the resumed sweep left."""
    home = tmp_path_factory.mktemp("tubelab-home")
    log = open(home / "first.log", "w")
    first = subprocess.Popen([*documented("README.md", "make demo"), f"ARGS={' '.join(SMALL)}"], cwd=ROOT, stdout=log,
                             stderr=subprocess.STDOUT, env={**os.environ, "TUBELAB_HOME": str(home)},
                             start_new_session=True)
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    deadline = time.monotonic() + 900
    try:
        while not trials(client, "FINISHED"):
            assert first.poll() is None and time.monotonic() < deadline, (home / "first.log").read_text()[-3000:]
            time.sleep(1)
    finally:
        stop_group(first)
        log.close()
    before = trials(client)
    resumed = tubelab(home, "sweep", "--resume", "ablation=demo", *[o for o in SMALL if not o.startswith("name=")])
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-5000:]
    return home, resumed.stdout, client, before


def runs(client, filter_string):
    exp = client.get_experiment_by_name("tubelab")
    return client.search_runs([exp.experiment_id], filter_string)


def first_table(stdout: str) -> dict[str, str]:
    """The printed table: row label (its axis values, blanks left out) -> score cell."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    width = lines[0].count("|")
    rows = {}
    for line in lines[2:]:
        if line.count("|") != width:  # the next table (the paired differences) has fewer columns
            break
        cells = [c.strip() for c in line.split("|")[1:-1]]
        rows[", ".join(c for c in cells[:-1] if c)] = cells[-1]
    return rows


def test_sweep_prints_one_row_per_grid_point_after_the_random_init_baseline(sweep):
    _, stdout, _, _ = sweep
    assert stdout.splitlines()[[ln.startswith("|") for ln in stdout.splitlines()].index(True)] == \
        "| checkpoint | tubelet | synthetic/top1 |"
    cells = first_table(stdout)
    assert list(cells) == ["random", "no_motion", "default", "*chance*"]
    assert float(cells.pop("*chance*")) == 100 / len(CLASSES)  # one test video per class: majority = 1 in N
    for cell in cells.values():  # "score [low, high]": the 95 % interval from the per-video predictions
        score, low, high = (float(x) for x in cell.replace("[", "").replace("]", "").replace(",", "").split())
        assert 0.0 <= low <= score <= high <= 100.0
    # paired differences: against random init (the first row), then against no_motion (the first grid row)
    assert "Paired difference against the first row (random)" in stdout
    assert "Paired difference against the first grid row (no_motion)" in stdout
    diffs = [line for line in stdout.splitlines() if line.startswith("| default | ")]
    assert len(diffs) == 2 and all("[" in line for line in diffs)
    # the protocol line under the title: one protocol (the synthetic setting's), with its switches
    assert "\nProtocol: model selected on a 10 % validation split of train; no colour jitter, per-worker BN.\n" in stdout


def test_parent_and_child_runs_with_params_and_metrics(sweep):
    home, _, client, _ = sweep
    (parent,) = runs(client, "tags.`tubelab.kind` = 'sweep' and tags.`tubelab.sweep` = 'e2e-sweep'")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tubelab.ablation"] == "demo"
    assert parent.data.tags["git_commit"] and parent.data.tags["git_dirty"] in ("true", "false")
    assert parent.data.tags["decord_version"] != "not installed" and parent.data.tags["torch_version"]
    assert "CPUs" in parent.data.tags["tubelab.cluster"]
    children = runs(client, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    points = {(c.data.params.get("grid.checkpoint"), c.data.params.get("grid.tubelet")): c for c in children}
    assert len(children) == 3 and set(points) == {("random", None), (None, "no_motion"), (None, "default")}
    baseline = points.pop(("random", None))  # fine-tuned from random initialisation: no pretraining stage
    assert baseline.info.status == "FINISHED" and baseline.data.tags["checkpoint_uri"] == "random"
    assert 0.0 <= baseline.data.metrics["score/synthetic/top1"] <= 100.0
    stages = runs(client, f"tags.`mlflow.parentRunId` = '{baseline.info.run_id}'")
    assert [r.info.run_name for r in stages] == ["finetune-synthetic"]
    for child in points.values():
        assert child.info.status == "FINISHED"
        params = child.data.params
        assert params["pretrain.epochs"] == "1" and params["resources.train_workers"] == "2"
        expected_motion = "none" if params["grid.tubelet"] == "no_motion" else "nonlinear"
        assert params["tubelet.motion"] == expected_motion
        assert 0.0 <= child.data.metrics["score/synthetic/top1"] <= 100.0
        assert child.data.metrics["cost/cpu_hours"] > 0 and child.data.metrics["cost/gpu_hours"] == 0
        assert len(child.data.tags["tubelab.fingerprint"]) == 24 and child.data.tags["tubelab.data.synthetic"]
        assert Path(child.data.tags["checkpoint_uri"]).is_dir()
        assert "config.yaml" in {a.path for a in client.list_artifacts(child.info.run_id)}
        # one nested run per stage
        stages = {r.info.run_name: r for r in runs(client, f"tags.`mlflow.parentRunId` = '{child.info.run_id}'")}
        assert set(stages) == {"pretrain", "finetune-synthetic"}
        assert all(r.info.status == "FINISHED" for r in stages.values())
        losses = client.get_metric_history(stages["pretrain"].info.run_id, "pretrain/loss")
        assert [m.step for m in losses] == [0]  # one value per epoch, rank 0 only
        assert client.get_metric_history(stages["finetune-synthetic"].info.run_id, "finetune/synthetic/loss")
        assert stages["finetune-synthetic"].data.metrics["score/synthetic/top1"] == child.data.metrics["score/synthetic/top1"]
        assert {a.path for a in client.list_artifacts(stages["pretrain"].info.run_id, "preview")} == {
            "preview/tubelet_pairs.png", "preview/tubelet_pairs.gif"}


def test_parent_holds_the_table(sweep, tmp_path):
    _, stdout, client, _ = sweep
    (parent,) = runs(client, "tags.`tubelab.kind` = 'sweep' and tags.`tubelab.sweep` = 'e2e-sweep'")
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"results.md", "results.csv", "results.png", "config.yaml"} <= names
    md = Path(mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="results.md",
                                                  dst_path=str(tmp_path), tracking_uri=client._tracking_client.tracking_uri)).read_text()
    assert md.strip() in stdout


def test_report_rebuilds_the_table_from_mlflow(sweep):
    home, stdout, _, _ = sweep
    proc = subprocess.run(documented("README.md", ".venv/bin/tubelab report sweep=<sweep name>",
                                     {"<sweep name>": "e2e-sweep"}), env={**os.environ, "TUBELAB_HOME": str(home)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    printed = [line for line in stdout.splitlines() if line.startswith("|")]
    assert sorted(table) == sorted(printed)


def test_a_second_sweep_reuses_finished_trials_instead_of_rerunning_them(sweep):
    home, stdout, client, _ = sweep
    same_name = tubelab(home, "sweep", "ablation=demo", *SMALL, timeout=120)
    assert same_name.returncode == 2 and "a sweep named 'e2e-sweep' already exists" in same_name.stderr
    assert "--resume" in same_name.stderr
    again = subprocess.run([*documented("README.md", SWEEP), *[o for o in SMALL if not o.startswith("name=")],
                            "name=e2e-again"], env={**os.environ, "TUBELAB_HOME": str(home)}, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    # nothing was trained, and Ray was not started (its resource plan would end the line)
    assert "sweep e2e-again: 3 trials (demo): 0 to run, 3 reused from earlier sweeps, 0 already finished\n" in again.stdout
    assert "RayTrainWorker" not in again.stdout + again.stderr and "logical CPUs" not in again.stdout
    (first,) = runs(client, "tags.`tubelab.kind` = 'sweep' and tags.`tubelab.sweep` = 'e2e-sweep'")
    (second,) = runs(client, "tags.`tubelab.kind` = 'sweep' and tags.`tubelab.sweep` = 'e2e-again'")
    originals = {c.info.run_id: c for c in runs(client, f"tags.`mlflow.parentRunId` = '{first.info.run_id}'")}
    links = runs(client, f"tags.`mlflow.parentRunId` = '{second.info.run_id}'")
    assert len(links) == 3 and {c.data.tags["tubelab.reused_from"] for c in links} == set(originals)
    for link in links:
        source = originals[link.data.tags["tubelab.reused_from"]]
        assert link.data.metrics["score/synthetic/top1"] == source.data.metrics["score/synthetic/top1"]
        assert link.data.tags["tubelab.fingerprint"] == source.data.tags["tubelab.fingerprint"]
    assert first_table(again.stdout) == first_table(stdout)
    assert "3 finished trial(s), 3 reused from earlier sweeps" in again.stdout


def test_table3_motion_reuses_the_demo_trial_and_its_resume_finds_it_finished(sweep):
    """README's two table3_motion lines, cut to the demo's no_motion point and column (appended overrides):
    that trial is the demo's (the fingerprint ignores the ablation), so it is reused, not trained; `--resume`
    then finds the sweep finished and prints its table again without touching the run."""
    home, stdout, client, _ = sweep
    small = [*[o for o in SMALL if not o.startswith("name=")], "ablation.grid.tubelet=[no_motion]",
             "ablation.downstream=[synthetic]"]

    def table3(command):
        proc = subprocess.run([*command, *small], env={**os.environ, "TUBELAB_HOME": str(home)},
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "RayTrainWorker" not in proc.stdout + proc.stderr and "logical CPUs" not in proc.stdout  # no Ray
        return proc.stdout

    def ours(out):  # the first table's no_motion score (table3's table has the paper's columns, no interval)
        return float(next(ln for ln in out.splitlines() if ln.startswith("| no_motion |")).split("|")[2].split()[0])

    first = table3(documented("README.md", ".venv/bin/tubelab sweep ablation=table3_motion"))
    assert "1 trials (table3_motion): 0 to run, 1 reused from earlier sweeps, 0 already finished" in first
    assert ours(first) == float(first_table(stdout)["no_motion"].split()[0])  # the demo's score
    (parent,) = runs(client, "tags.`tubelab.kind` = 'sweep' and tags.`tubelab.ablation` = 'table3_motion'")
    assert "tubelab.cluster" not in parent.data.tags  # no cluster was asked for: nothing to train
    again = table3(documented("README.md", ".venv/bin/tubelab sweep ablation=table3_motion --resume"))
    assert "every sweep of ablation 'table3_motion' finished" in again and "0 to run" in again
    assert ours(again) == ours(first)
    resumed = client.get_run(parent.info.run_id)
    assert resumed.info.end_time == parent.info.end_time and resumed.data.tags == parent.data.tags  # read, not run again


def test_a_rerun_with_the_same_seed_prints_the_same_table(sweep):
    """Deterministic on CPU (the default): training the trial that was interrupted and resumed (`default`,
    the second) again, uninterrupted, gives its score and interval exactly."""
    home, stdout, _, _ = sweep
    rerun = tubelab(home, "sweep", "ablation=demo", *[o for o in SMALL if not o.startswith("name=")], "name=e2e-rerun",
                    "reuse=false", "ablation.grid.tubelet=[default]", "ablation.baselines=[]")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "1 to run, 0 reused from earlier sweeps" in rerun.stdout

    assert first_table(rerun.stdout)["default"] == first_table(stdout)["default"]


def test_the_interrupted_sweep_resumed_only_its_unfinished_trial(sweep):
    _, stdout, client, before = sweep
    assert "sweep e2e-sweep: 3 trials (demo): 2 to run, 0 reused from earlier sweeps, 1 already finished" in stdout
    (done,) = [r for r in before if r.info.status == "FINISHED"]
    assert len(before) <= 2
    (parent,) = runs(client, "tags.`tubelab.kind` = 'sweep' and tags.`tubelab.sweep` = 'e2e-sweep'")
    assert parent.info.status == "FINISHED"
    children = runs(client, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 3 and all(c.info.status == "FINISHED" for c in children)  # no duplicates
    assert done.info.run_id in {c.info.run_id for c in children}
    assert client.get_run(done.info.run_id).info.end_time == done.info.end_time  # not run again


def trials(client, status=None):
    found = runs(client, "tags.`tubelab.kind` = 'trial'") if client.get_experiment_by_name("tubelab") else []
    return [r for r in found if status is None or r.info.status == status]
