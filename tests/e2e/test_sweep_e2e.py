"""The walking skeleton end to end: `tubelab sweep` through a real local Ray and a real MLflow store.

One small sweep (2 grid points, each: Ray Train pretraining with 2 workers -> fine-tune -> score) is
run once per module through the real CLI; the tests then read what it left behind: the printed
table, the MLflow parent and child runs with params, metrics and artifacts, and `tubelab report`.
"""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

SMALL = [
    "ablation=demo",
    "name=e2e-sweep",
    "dataset.generator.train_per_class=2",
    "dataset.generator.test_per_class=1",
    "dataset.generator.num_frames=24",
    "dataset.generator.width=64",
    "dataset.generator.height=48",
    "dataset.encode.short_side=48",
    "pretrain.epochs=2",
    "pretrain.batch_size=4",
    "pretrain.clip.crop=40",
    "pretrain.clip.clips_per_video=1",
    "pretrain.moco.queue=16",
    "setting.epochs=1",
    "setting.batch_size=4",
    "setting.clip.crop=40",
    "setting.clip.clips_per_video=1",
]


def tubelab(home: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUBELAB_HOME": str(home)}
    cmd = [str(Path(sys.executable).parent / "tubelab"), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    home = tmp_path_factory.mktemp("tubelab-home")
    proc = tubelab(home, "sweep", *SMALL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    return home, proc.stdout, client


def runs(client, filter_string):
    exp = client.get_experiment_by_name("tubelab")
    return client.search_runs([exp.experiment_id], filter_string)


def test_sweep_prints_one_row_per_grid_point(sweep):
    _, stdout, _ = sweep
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    assert lines[0] == "| tubelet | synthetic/top1 |"
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in lines[2:]}
    assert set(rows) == {"no_motion", "default"}
    assert all(0.0 <= v <= 100.0 for v in rows.values())


def test_parent_and_child_runs_with_params_and_metrics(sweep):
    home, _, client = sweep
    (parent,) = runs(client, "tags.`tubelab.kind` = 'sweep' and tags.`tubelab.sweep` = 'e2e-sweep'")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tubelab.ablation"] == "demo"
    assert parent.data.tags["git_commit"]
    children = runs(client, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 2
    assert {c.data.params["grid.tubelet"] for c in children} == {"no_motion", "default"}
    for child in children:
        assert child.info.status == "FINISHED"
        params = child.data.params
        assert params["pretrain.epochs"] == "2" and params["resources.train_workers"] == "2"
        expected_motion = "none" if params["grid.tubelet"] == "no_motion" else "nonlinear"
        assert params["tubelet.motion"] == expected_motion
        assert 0.0 <= child.data.metrics["score/synthetic/top1"] <= 100.0
        losses = client.get_metric_history(child.info.run_id, "pretrain/loss")
        assert sorted(m.step for m in losses) == [0, 1]  # one value per epoch, rank 0 only
        assert client.get_metric_history(child.info.run_id, "finetune/synthetic/loss")
        assert Path(child.data.tags["checkpoint_uri"]).is_dir()
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert "config.yaml" in artifacts
        assert {a.path for a in client.list_artifacts(child.info.run_id, "preview")} == {
            "preview/tubelet_pairs.png", "preview/tubelet_pairs.gif"}


def test_parent_holds_the_table(sweep, tmp_path):
    _, stdout, client = sweep
    (parent,) = runs(client, "tags.`tubelab.kind` = 'sweep' and tags.`tubelab.sweep` = 'e2e-sweep'")
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"results.md", "results.csv", "results.png", "config.yaml"} <= names
    md = Path(mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="results.md",
                                                  dst_path=str(tmp_path), tracking_uri=client._tracking_client.tracking_uri)).read_text()
    assert md.strip() in stdout


def test_report_rebuilds_the_table_from_mlflow(sweep):
    home, stdout, _ = sweep
    proc = tubelab(home, "report", "sweep=e2e-sweep", timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    printed = [line for line in stdout.splitlines() if line.startswith("|")]
    assert sorted(table) == sorted(printed)
