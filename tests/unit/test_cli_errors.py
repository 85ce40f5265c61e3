"""User errors and reruns, as a user types them: one line, exit 2, found before Ray starts (issue 17).

Every command runs as a subprocess with its own TUBELAB_HOME; none of them reaches Ray: each stops at
the error (or the "already finished" line) it is about, and the tests assert that Ray did not start.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tubelab import config
from tubelab.data import storage
from tubelab.experiments.severe import row_label
from tubelab.tracking import mlflow_runs

TUBELAB = str(Path(sys.executable).parent / "tubelab")
RAY_STARTED = "Started a local Ray instance"


def run(*args, home, cwd=None):
    env = {**os.environ, "TUBELAB_HOME": str(home), "TUBELAB_VERBOSE": "1"}  # verbose: Ray's start line shows
    return subprocess.run([TUBELAB, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and RAY_STARTED not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def runs_by_status(home: Path) -> dict[str, int]:
    if not (home / "mlflow.db").exists():
        return {}
    c = mlflow_runs.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    out: dict[str, int] = {}
    for exp in c.search_experiments():
        for r in c.search_runs([exp.experiment_id]):
            out[r.info.status] = out.get(r.info.status, 0) + 1
    return out


def fake_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "checkpoint.pt").write_bytes(b"not read by these tests")
    return folder


# 2. relative checkpoint paths are resolved before Ray starts

def test_relative_checkpoint_paths_are_made_absolute_at_load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path / "home"))
    assert config.load("finetune", ["checkpoint=runs/r1/checkpoint_1"]).checkpoint == str(tmp_path / "runs/r1/checkpoint_1")
    assert config.load("severe", ["checkpoint=r1"]).checkpoint == str(tmp_path / "r1")
    assert config.load("finetune", ["checkpoint=s3://bucket/r1/checkpoint_1"]).checkpoint == "s3://bucket/r1/checkpoint_1"
    assert config.load("finetune", ["checkpoint=file:///x/r1"]).checkpoint == "file:///x/r1"
    assert config.load("finetune").checkpoint is None
    assert config.load("sweep", ["checkpoint=random"]).checkpoint == "random"  # the sweep's random-init sentinel
    assert config.load("sweep", ["checkpoint=ckpt"]).checkpoint == str(tmp_path / "ckpt")


def test_finetune_accepts_a_relative_checkpoint_that_exists(tmp_path):
    """Run from another cwd with checkpoint=<relative dir>: the check passes (the command goes on to the
    next problem, the missing ucf101 shards) instead of failing in the Ray workers."""
    fake_checkpoint(tmp_path / "ckpts" / "my-run" / "checkpoint_000")
    proc = run("finetune", "setting=ucf101", "checkpoint=ckpts/my-run/checkpoint_000", home=tmp_path / "home",
               cwd=tmp_path)
    assert_one_line_error(proc, "no manifest.json at", "ucf101", "tubelab prepare")


# 3. finetune checks its checkpoint before Ray; the error is one line and no run stays RUNNING

def test_finetune_with_a_missing_checkpoint_is_one_line_before_ray(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run("finetune", "checkpoint=empty", home=tmp_path / "home", cwd=tmp_path)
    assert_one_line_error(proc, f"checkpoint={tmp_path / 'empty'} has no checkpoint.pt",
                          "the `checkpoint:` line of `tubelab pretrain`")
    assert "RUNNING" not in runs_by_status(tmp_path / "home")


def test_the_checkpoint_check_names_the_problem(tmp_path, monkeypatch):
    from tubelab.training.common import CHECKPOINT_FILE

    assert config.CHECKPOINT_FILE == CHECKPOINT_FILE  # the file load_pretrained opens
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path / "home"))
    with pytest.raises(config.ConfigError, match=f"checkpoint={tmp_path / 'nowhere/c1'} does not exist; pass"):
        storage.check_checkpoint(config.load("finetune", ["checkpoint=nowhere/c1"]))
    fake_checkpoint(tmp_path / "ok")
    storage.check_checkpoint(config.load("finetune", ["checkpoint=ok"]))
    storage.check_checkpoint(config.load("finetune"))  # random initialisation
    storage.check_checkpoint(config.load("sweep", ["checkpoint=random"]))


def test_a_sweep_grid_checkpoint_that_does_not_exist_fails_before_ray(tmp_path):
    proc = run("sweep", "ablation=severe", "ablation.grid.checkpoint=[random,missing-ckpt]",
               "ablation.downstream=[proxy_ssv2]", home=tmp_path / "home", cwd=tmp_path)
    assert_one_line_error(proc, "grid point checkpoint=missing-ckpt", f"{tmp_path / 'missing-ckpt'} does not exist")
    assert not runs_by_status(tmp_path / "home")


def test_a_sweep_no_node_type_can_hold_fails_before_ray(tmp_path):
    """resources.cluster_config: the deploy file's node types; a decode actor larger than a decode node would
    pend forever on the autoscaling cluster, so the sweep stops at its pre-flight."""
    root = Path(__file__).resolve().parents[2]
    proc = run("sweep", "ablation=demo", "resources.cluster_config=infra/aws/cluster.yaml",
               "resources.decode_node_resource=decode_node", "resources.cpus_per_decode_actor=32",
               home=tmp_path / "home", cwd=root)
    assert_one_line_error(proc, "this run can never be placed", "1 x decode actor (CPU 32, decode_node 0.001 each)",
                          "decode (up to 8: CPU 16, decode_node 1)")
    assert not runs_by_status(tmp_path / "home")


@pytest.mark.parametrize("command,fragment", [
    (["pretrain", "pretrain.batch_size=33"], "pretrain.batch_size=33 is the total batch over all train workers"),
    (["finetune", "setting.batch_size=15"], "setting synthetic: setting.batch_size=15 is the total batch"),
    (["sweep", "ablation=demo", "setting.batch_size=15"], "setting.batch_size=15 is the total batch"),
])
def test_a_total_batch_the_workers_cannot_share_fails_before_ray(command, fragment, tmp_path):
    """Batch sizes are totals over the train workers (2 on the embedded default): an odd total names the
    worker counts that divide it."""
    proc = run(*command, home=tmp_path / "home", cwd=tmp_path)
    line = assert_one_line_error(proc, fragment, "resources.train_workers=2")
    assert "(1, 3, 5, 15)" in line or "(1, 3, 11, 33)" in line
    assert not runs_by_status(tmp_path / "home")


def test_a_pretraining_batch_of_one_clip_per_worker_fails_before_ray(tmp_path):
    proc = run("pretrain", "pretrain.batch_size=2", home=tmp_path / "home", cwd=tmp_path)
    assert_one_line_error(proc, "pretrain.batch_size=2 over 2 train workers leaves under 2 clips per worker")


@pytest.mark.parametrize("command,overrides,fragment", [
    ("pretrain", ["pretrain.batchnorm=sync"], "pretrain.batchnorm='sync' is not valid; choose one of: global, shuffle"),
    ("pretrain", ["pretrain.colour_jitter.contrast_mode=mean"],
     "pretrain.colour_jitter.contrast_mode='mean' is not valid; choose one of: multiply, about_mean"),
    ("finetune", ["setting.batchnorm=sync"], "setting.batchnorm='sync' is not valid; choose one of: global, local"),
    ("finetune", ["setting.clip.aggregate=avg"], "setting.clip.aggregate='avg' is not valid; choose one of: mean, max"),
    ("finetune", ["setting.clip.eval_crops=2"], "setting.clip.eval_crops=2 is not valid; choose one of: 1, 3"),
    ("finetune", ["setting.clip.labels=clip"], "setting.clip.labels='clip' is not valid; choose one of: frames, video"),
    ("finetune", ["setting.counting.method=density"],
     "setting.counting.method='density' is not valid; choose one of: context, clip"),
    ("finetune", ["setting.clip.channels=gbr"], "setting.clip.channels='gbr' is not valid; choose one of: rgb, bgr"),
    ("finetune", ["setting.clip.std=[0.2,0.2,0]"], "setting.clip.std=[0.2, 0.2, 0] must be 3 numbers, one per RGB "
                                                   "channel, each above 0"),
    ("finetune", ["setting.clip.mean=[0.45]"], "setting.clip.mean=[0.45] must be 3 numbers, one per RGB channel"),
    ("finetune", ["setting.optimizer.nesterov=true"], "setting.optimizer.nesterov=true needs setting.optimizer.name=sgd"),
    ("finetune", ["setting=proxy_ucf_rc", "setting.precise_bn_batches=2"],
     "setting.precise_bn_batches works on clips and the counting model"),
])
def test_a_switch_with_an_unknown_value_is_a_config_error(command, overrides, fragment):
    """The official-or-tubelab switches are enums: a value their code does not know is found by the checks
    that run before Ray (plan.validate_run, plan.validate_setting), not inside a train worker minutes later."""
    from tubelab.config import ConfigError
    from tubelab.experiments.plan import validate_run, validate_setting

    cfg = config.load(command, overrides)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        validate_run(cfg) if command == "pretrain" else validate_setting(cfg)


def test_a_sweep_with_an_unknown_switch_value_is_one_line_before_ray(tmp_path):
    proc = run("sweep", "ablation=demo", "setting.clip.eval_crops=2", home=tmp_path / "home", cwd=tmp_path)
    assert_one_line_error(proc, "setting.clip.eval_crops=2 is not valid; choose one of: 1, 3")
    assert not runs_by_status(tmp_path / "home")


# 4. prepare input errors

@pytest.mark.parametrize("source,fragments", [
    (None, ["dataset 'ucf101' needs `source=DIR`", "tubelab prepare dataset=ucf101 source="]),
    ("empty", ["classInd.txt is missing", "point `source=` at the folder holding them"]),
    ("not-there", ["is not a folder; point `source=` at the folder of the official ucf101 tree"]),
])
def test_prepare_input_errors_are_one_line(tmp_path, source, fragments):
    (tmp_path / "empty").mkdir()
    args = ["prepare", "dataset=ucf101"] + ([f"source={source}"] if source else [])
    assert_one_line_error(run(*args, home=tmp_path / "home", cwd=tmp_path), "tubelab prepare: error: ", *fragments)
    assert not list(tmp_path.rglob("manifest.json"))


# 6. rerunning a finished pretraining run; resuming under a changed config

def finished_pretrain(home: Path, monkeypatch, name: str, overrides: list[str]) -> Path:
    """A pretraining run as `tubelab pretrain` leaves it: params, checkpoint_uri tag, FINISHED."""
    monkeypatch.setenv("TUBELAB_HOME", str(home))
    cfg = config.load("pretrain", [f"name={name}", *overrides])
    ckpt = fake_checkpoint(home / "checkpoints" / name / "checkpoint_2026-01-01_00-00-00.000000")
    run_id = mlflow_runs.start_run(cfg, name, kind="pretrain", resume=True)
    mlflow_runs.log_params(cfg, run_id, config.to_container(cfg))
    mlflow_runs.set_tags(cfg, run_id, {"checkpoint_uri": str(ckpt)})
    mlflow_runs.end_run(cfg, run_id)
    return ckpt


def test_rerunning_a_finished_pretrain_says_so_without_ray(tmp_path, monkeypatch):
    # dataset=ucf101 has no shards here: a rerun that went past the check would fail on them, not exit 0
    ckpt = finished_pretrain(tmp_path, monkeypatch, "done-run", ["dataset=ucf101", "pretrain.epochs=2"])
    proc = run("pretrain", "name=done-run", "dataset=ucf101", "pretrain.epochs=2", home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "pretraining run 'done-run' already finished" in lines[0], proc.stdout
    assert lines[0].endswith(f"checkpoint: {ckpt}")
    assert RAY_STARTED not in proc.stdout + proc.stderr and "warning" not in proc.stderr


def test_a_finished_pretrain_in_a_copied_home_is_still_finished(tmp_path, monkeypatch):
    finished_pretrain(tmp_path / "a", monkeypatch, "done-run", ["dataset=ucf101", "pretrain.epochs=2"])
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    proc = run("pretrain", "name=done-run", "dataset=ucf101", "pretrain.epochs=2", home=tmp_path / "b")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"this state folder moved from {tmp_path / 'a'} to {tmp_path / 'b'}" in proc.stderr
    assert "warning" not in proc.stderr and RAY_STARTED not in proc.stdout + proc.stderr
    (line,) = proc.stdout.strip().splitlines()
    assert "already finished" in line and line.endswith(f"checkpoint: {tmp_path / 'b' / 'checkpoints' / 'done-run'}"
                                                       f"/checkpoint_2026-01-01_00-00-00.000000")


def test_resuming_under_a_changed_config_warns_with_the_changed_keys(tmp_path, monkeypatch):
    finished_pretrain(tmp_path, monkeypatch, "grown", ["dataset=ucf101", "pretrain.epochs=2"])
    proc = run("pretrain", "name=grown", "dataset=ucf101", "pretrain.epochs=3", "tubelet=linear",
               "pretrain.stop_epoch=3", home=tmp_path)
    warning = [ln for ln in proc.stderr.splitlines() if "warning" in ln]
    assert len(warning) == 1, proc.stderr
    assert "resuming run 'grown' (finished) under a changed config: " in warning[0]
    assert "pretrain.epochs (2 -> 3)" in warning[0] and "choices.tubelet (default -> linear)" in warning[0]
    assert "stop_epoch" not in warning[0]  # stopping early and continuing is not a change worth a warning
    assert "already finished" not in proc.stdout
    # it goes on as a resume: here into the missing ucf101 shards (one line), not into Ray
    assert proc.returncode == 2 and "no manifest.json at" in proc.stderr and RAY_STARTED not in proc.stderr


def test_changed_params_read_the_values_of_the_last_resume():
    class Run:
        class data:
            params = {"pretrain.epochs": "2", "seed": "0"}
            tags = {"changed_on_resume.pretrain.epochs": "2 -> 4"}

    assert mlflow_runs.changed_params(Run, {"pretrain": {"epochs": 4}, "seed": 0}) == {}
    assert mlflow_runs.changed_params(Run, {"pretrain": {"epochs": 2}, "seed": 1, "new": 1}) == {
        "pretrain.epochs": ("4", "2"), "seed": ("0", "1")}


# 8. small ones

def test_a_typo_in_a_command_line_setting_override_is_a_command_line_error(tmp_path):
    proc = run("sweep", "ablation=demo", "setting.epoch=1", home=tmp_path)
    line = assert_one_line_error(proc, "on the command line: unknown config key 'setting.epoch'",
                                 "valid keys under 'setting': ")
    assert "ablations/demo.yaml" not in line and "epochs" in line


@pytest.mark.parametrize("label,checkpoint,expected", [
    (None, "/x/checkpoints/my-run/checkpoint_2026-01-01_00-00-00.000000", "my-run"),
    (None, "s3://bucket/checkpoints/r7/checkpoint_2026-01-01_00-00-00.000000/", "r7"),
    (None, "/x/exported-weights", "exported-weights"),
    ("mine", "/x/checkpoints/my-run/checkpoint_2026", "mine"),
    (None, None, "random init"),
])
def test_severe_rows_are_labelled_by_run_name(label, checkpoint, expected):
    assert row_label(OmegaConf.create({"label": label, "checkpoint": checkpoint})) == expected


def test_command_help_lists_config_groups_and_their_choices(tmp_path):
    proc = run("sweep", "--help", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # choices wrap over lines
    for group, default in (("ablation", "demo"), ("dataset", "synthetic"), ("tubelet", "default"), ("model", "tiny")):
        choices = [f"{c}*" if c == default else c for c in config.choices(group)]
        assert f"{group} {', '.join(choices)}" in text, group
    assert "setting.KEY=VALUE" in text
    proc = run("finetune", "--help", home=tmp_path)
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0 and f"setting {', '.join(c + '*' if c == 'synthetic' else c for c in config.choices('setting'))}" in text
    assert "ablation " not in text and "tubelet " not in text  # finetune composes neither group


@pytest.mark.parametrize("command", ["sweep", "severe"])
def test_failed_trials_end_in_one_line_and_exit_1(command, monkeypatch, capsys):
    """What finished is recorded; the failures' tracebacks were printed as they happened. The end of the run is
    one line naming what to do, not another traceback (cmd_sweep / cmd_severe raise Incomplete)."""
    from tubelab import cli

    def fails(overrides, **_):
        raise cli.Incomplete("1 of 2 trials did not finish; rerun with --resume to run only those. t2: ValueError: x")

    monkeypatch.setattr(cli, f"cmd_{command}", fails)
    assert cli.main([command, "ablation=demo"]) == 1
    err = capsys.readouterr().err
    assert err == f"tubelab {command}: error: 1 of 2 trials did not finish; rerun with --resume to run only those. " \
                  "t2: ValueError: x\n"
