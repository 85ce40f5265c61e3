"""Pretraining survives interruptions: a rerun under the same name resumes from the last checkpoint,
and a train worker killed mid-epoch is replaced and restored; MLflow keeps one run with one value per
epoch and the planned number of steps. A resumed run computes what the uninterrupted run computes."""

import os
import signal
import sqlite3
import subprocess
import time

import psutil
import pytest
from mlflow.tracking import MlflowClient

from services import BIN

pytestmark = pytest.mark.slow

SMALL = ["dataset.generator.train_per_class=4", "dataset.generator.test_per_class=1",
         "dataset.generator.num_frames=24", "dataset.generator.width=64", "dataset.generator.height=48",
         "dataset.encode.short_side=48", "pretrain.batch_size=4", "pretrain.clip.crop=40",
         "pretrain.clip.clips_per_video=2", "pretrain.moco.queue=32"]
STEPS_PER_EPOCH = 40 * 2 // (4 * 2)  # videos x clips per video / (batch x workers)


def env(home):
    return {**os.environ, "TUBELAB_HOME": str(home)}


def pretrain(home, *args):
    return subprocess.run([str(BIN / "tubelab"), "pretrain", *SMALL, *args], env=env(home), capture_output=True,
                          text=True, timeout=600)


def the_run(home, name):
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tubelab")
    (run,) = client.search_runs([exp.experiment_id], f"tags.`tubelab.name` = '{name}'")
    history = {key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
               for key in ("pretrain/loss", "pretrain/steps")}
    return run, history


def test_rerun_with_the_same_name_resumes(tmp_path):
    first = pretrain(tmp_path, "name=resume-me", "pretrain.epochs=3", "pretrain.stop_epoch=1")
    assert first.returncode == 0, first.stderr[-3000:]
    run, history = the_run(tmp_path, "resume-me")
    assert [s for s, _ in history["pretrain/loss"]] == [0]

    second = pretrain(tmp_path, "name=resume-me", "pretrain.epochs=3")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "restored the checkpoint of epoch 0; continuing at epoch 1" in second.stdout + second.stderr
    for internal in ("Reporting training result", "Checkpoint successfully created", "Grad strides",
                     "Starting execution of Dataset"):
        assert internal not in second.stdout + second.stderr  # quiet by default (-v brings them back)
    again, history = the_run(tmp_path, "resume-me")  # one MLflow run, not two
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert [s for s, _ in history["pretrain/loss"]] == [0, 1, 2]
    assert sum(v for _, v in history["pretrain/steps"]) == 3 * STEPS_PER_EPOCH

    # deterministic (the default): the same seed in one go gives the resumed run's numbers, bit for bit
    straight = pretrain(tmp_path, "name=straight", "pretrain.epochs=3")
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert the_run(tmp_path, "straight")[1]["pretrain/loss"] == history["pretrain/loss"]
    other = pretrain(tmp_path, "name=other-seed", "seed=1", "pretrain.epochs=3", "pretrain.stop_epoch=1")
    assert other.returncode == 0, other.stderr[-3000:]
    assert the_run(tmp_path, "other-seed")[1]["pretrain/loss"][0] != history["pretrain/loss"][0]


def epoch_logged(db) -> bool:
    """Epoch 0 is in MLflow. Plain sqlite reads: an MlflowClient here would race the run's own process
    creating the store's tables."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return con.execute("SELECT count(*) FROM metrics WHERE key = 'pretrain/loss'").fetchone()[0] > 0
    except sqlite3.OperationalError:  # not created yet
        return False


def test_killed_train_worker_is_restored_from_its_checkpoint(tmp_path):
    proc = subprocess.Popen([str(BIN / "tubelab"), "pretrain", "-v", *SMALL, "name=kill-me", "pretrain.epochs=4"],
                            env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        checkpoints = tmp_path / "checkpoints" / "kill-me"
        # Epoch 0 logged and its checkpoint registered by Ray Train (the snapshot is written after that).
        while time.monotonic() < deadline and not (epoch_logged(tmp_path / "mlflow.db")
                                                   and (checkpoints / "checkpoint_manager_snapshot.json").exists()):
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            time.sleep(0.5)
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if "RayTrainWorker" in " ".join(p.cmdline())]
        assert len(workers) == 2
        os.kill(workers[1].pid, signal.SIGKILL)  # ours: a descendant of the run we started
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    assert "tubelab: restored the checkpoint of epoch" in out  # the new worker group restored, not restarted
    assert "Reporting training result" in out and "Starting execution of Dataset" in out  # -v: Ray's lines too
    run, history = the_run(tmp_path, "kill-me")
    assert [s for s, _ in history["pretrain/loss"]] == [0, 1, 2, 3]  # continuous, no duplicates
    assert sum(v for _, v in history["pretrain/steps"]) == 4 * STEPS_PER_EPOCH
    assert run.info.status == "FINISHED"
