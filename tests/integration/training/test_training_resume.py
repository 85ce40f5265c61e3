"""Pretraining survives interruptions: a rerun under the same name resumes from the last checkpoint;
MLflow keeps one run with one value per epoch and the planned number of steps. A resumed run computes
what the uninterrupted run computes. An exception in the training code is not retried like a lost
worker. (A lost worker, replaced and restored from its checkpoint: tests/e2e/test_cluster_submit_e2e.py,
which takes every train node of an autoscaling cluster away mid-run; training.common.fit's retry
policy: tests/unit/training/test_training_common.py.)"""

import os
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from services import BIN
from tiny import TINY_FINETUNE, TINY_PRETRAIN

pytestmark = pytest.mark.slow

STEPS_PER_EPOCH = 40 * 2 // 8  # videos x clips per video / the total batch


def env(home):
    return {**os.environ, "TUBELAB_HOME": str(home)}


def pretrain(home, *args):
    return subprocess.run([str(BIN / "tubelab"), "pretrain", *TINY_PRETRAIN, *args], env=env(home), capture_output=True,
                          text=True, timeout=600)


def the_run(home, name):
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tubelab")
    (run,) = client.search_runs([exp.experiment_id], f"tags.`tubelab.name` = '{name}'")
    history = {key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
               for key in ("pretrain/loss", "pretrain/steps")}
    return run, history


def test_rerun_with_the_same_name_resumes(my_run):
    """my_run (tests/conftest.py): `tubelab pretrain name=my-run ... pretrain.stop_epoch=1`, then the same
    command without the stop."""
    assert "restored the checkpoint" not in my_run.first.stdout + my_run.first.stderr
    second = my_run.second.stdout + my_run.second.stderr
    assert "restored the checkpoint of epoch 0; continuing at epoch 1" in second
    for internal in ("Reporting training result", "Checkpoint successfully created", "Grad strides",
                     "Starting execution of Dataset"):
        assert internal not in second  # quiet by default (-v brings them back)
    run, history = the_run(my_run.home, "my-run")  # one MLflow run, not two
    assert run.info.status == "FINISHED"
    assert [s for s, _ in history["pretrain/loss"]] == [0, 1, 2]
    assert sum(v for _, v in history["pretrain/steps"]) == 3 * STEPS_PER_EPOCH
    assert my_run.checkpoint.is_dir() and (my_run.checkpoint / "checkpoint.pt").is_file()

    # deterministic (the default): the same seed in one go gives the resumed run's numbers, bit for bit
    straight = pretrain(my_run.home, "name=straight", "pretrain.epochs=3")
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert the_run(my_run.home, "straight")[1]["pretrain/loss"] == history["pretrain/loss"]


def test_an_exception_in_the_training_code_is_not_retried(my_run, tmp_path):
    """A checkpoint.pt that is not a checkpoint passes the check before Ray (it exists) and fails in
    every worker's torch.load: one attempt, not Ray Train's three, and the MLflow run ends FAILED."""
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "checkpoint.pt").write_bytes(b"not a torch checkpoint")
    proc = subprocess.run([str(BIN / "tubelab"), "finetune", "-v", "setting=synthetic", f"checkpoint={tmp_path / 'broken'}",
                           "name=broken", *TINY_FINETUNE], env=env(my_run.home), capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "UnpicklingError" in out and "[FailurePolicy] RAISE" in out  # -v: Ray Train's decision is shown
    assert "[FailurePolicy] RETRY" not in out and "restarting from the last checkpoint" not in out
    client = MlflowClient(f"sqlite:///{my_run.home / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tubelab")
    (run,) = client.search_runs([exp.experiment_id], "tags.`tubelab.name` = 'broken'")
    assert run.info.status == "FAILED"
