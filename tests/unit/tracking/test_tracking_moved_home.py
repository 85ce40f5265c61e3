"""A copied state folder (`home`) points its MLflow store at the copy, not at the original: artifact
location, run artifact URIs and `checkpoint_uri` tags are rewritten once, and nothing outside the old
home is touched."""

import hashlib
import shutil
import sqlite3

from mlflow.tracking._tracking_service import utils as mlflow_tracking_utils

from tubelab import config
from tubelab.tracking import mlflow_runs, moved_home


def snapshot(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def home_cfg(monkeypatch, home, *overrides):
    monkeypatch.setenv("TUBELAB_HOME", str(home))
    return config.load("finetune", list(overrides))


def test_a_copied_home_writes_into_the_copy_and_leaves_the_original_alone(tmp_path, monkeypatch, capsys):
    a, b = tmp_path.resolve() / "a", tmp_path.resolve() / "b"
    cfg = home_cfg(monkeypatch, a)
    run = mlflow_runs.start_run(cfg, "r", kind="pretrain")
    mlflow_runs.log_text(cfg, run, "first", "first.txt")
    mlflow_runs.set_tags(cfg, run, {"checkpoint_uri": str(a / "ray" / "r" / "checkpoint_000001")})
    mlflow_runs.end_run(cfg, run)
    before = snapshot(a)
    shutil.copytree(a, b)
    capsys.readouterr()
    mlflow_tracking_utils._artifact_repos_cache.clear()  # as in a new process (MLflow caches run -> artifact place)

    cfg = home_cfg(monkeypatch, b)
    c = mlflow_runs.client(cfg)
    assert capsys.readouterr().err == f"tubelab: this state folder moved from {a} to {b}; rewrote 3 MLflow paths\n"
    exp = c.get_experiment(mlflow_runs.experiment_id(cfg))
    assert exp.artifact_location == (b / "mlartifacts").as_uri() and exp.tags[moved_home.HOME_TAG] == str(b)
    got = c.get_run(run)
    assert got.info.artifact_uri == (b / "mlartifacts" / run / "artifacts").as_uri()
    assert got.data.tags["checkpoint_uri"] == str(b / "ray" / "r" / "checkpoint_000001")

    mlflow_runs.log_text(cfg, run, "second", "second.txt")
    assert (b / "mlartifacts" / run / "artifacts" / "second.txt").read_text() == "second"
    assert snapshot(a) == before  # the original: not one byte changed
    assert moved_home.relocate(b / "mlflow.db", b) == 0  # once only
    assert capsys.readouterr().err == ""


def test_paths_outside_the_old_home_and_other_stores_are_left_alone(tmp_path, monkeypatch, capsys):
    a, b = tmp_path.resolve() / "a", tmp_path.resolve() / "b"
    cfg = home_cfg(monkeypatch, a)
    elsewhere = {"outside": "/elsewhere/ckpt", "lookalike": f"{a}-other/ckpt", "s3": "s3://bucket/a/ckpt"}
    for name, uri in elsewhere.items():
        run = mlflow_runs.start_run(cfg, name, kind="pretrain")
        mlflow_runs.set_tags(cfg, run, {"checkpoint_uri": uri})
    with sqlite3.connect(a / "mlflow.db") as con:  # a store made before tubelab recorded its home
        con.execute("DELETE FROM experiment_tags WHERE key = ?", (moved_home.HOME_TAG,))
    shutil.copytree(a, b)

    other = home_cfg(monkeypatch, b, f"tracking.uri=sqlite:///{b / 'mlflow.db'}")  # not the home's own store
    assert mlflow_runs.client(other).get_experiment_by_name("tubelab").artifact_location == (a / "mlartifacts").as_uri()
    capsys.readouterr()

    cfg = home_cfg(monkeypatch, b)
    c = mlflow_runs.client(cfg)
    assert capsys.readouterr().err == f"tubelab: this state folder moved from {a} to {b}; rewrote 4 MLflow paths\n"
    exp = c.get_experiment(mlflow_runs.experiment_id(cfg))
    assert exp.artifact_location == (b / "mlartifacts").as_uri() and exp.tags[moved_home.HOME_TAG] == str(b)
    for name, uri in elsewhere.items():
        got = mlflow_runs.find_run(cfg, name, "pretrain")
        assert got.data.tags["checkpoint_uri"] == uri
        assert got.info.artifact_uri.startswith((b / "mlartifacts").as_uri() + "/")
