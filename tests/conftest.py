"""Shared fixtures: real services on 127.0.0.1, started by the tests and stopped by them (only them)."""

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from documented import documented
from services import BIN, free_port, start_mlflow_server, stop_group, wait_http
from tiny import TINY_PRETRAIN


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` (sqlite backend, local artifacts) on a free port; yields its URI."""
    port = free_port()
    proc = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A real S3 HTTP endpoint (moto_server) on a free port, with fake credentials in the environment.

    Yields (endpoint_url, bucket); Ray started later in the session inherits the credentials.
    """
    import os

    import s3fs

    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    try:
        wait_http(f"{endpoint}/moto-api/", proc)
        s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir("tubelab-test")
        yield endpoint, "tubelab-test"
    finally:
        stop_group(proc)
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class PretrainRun:
    home: Path
    first: subprocess.CompletedProcess   # stopped after epoch 0 of 3
    second: subprocess.CompletedProcess  # the same command again: resumes and finishes
    checkpoint: Path                     # the `checkpoint:` line of the second


@pytest.fixture(scope="session")
def my_run(tmp_path_factory) -> PretrainRun:
    """README's `tubelab pretrain name=my-run` on the tiny set (tests/tiny.py), stopped after the first of
    three epochs (`pretrain.stop_epoch=1`), then the same command again, which resumes. The resume tests
    read both outputs; the fine-tune, SEVERE and docs tests use its checkpoint and its prepared shards."""
    home = tmp_path_factory.mktemp("my-run-home")
    command = [*documented("README.md", ".venv/bin/tubelab pretrain name=my-run"), *TINY_PRETRAIN, "pretrain.epochs=3"]

    def run(*extra):
        proc = subprocess.run([*command, *extra], env={**os.environ, "TUBELAB_HOME": str(home)}, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        return proc

    first, second = run("pretrain.stop_epoch=1"), run()
    (line,) = [ln for ln in second.stdout.splitlines() if ln.startswith("checkpoint: ")]
    return PretrainRun(home, first, second, Path(line.removeprefix("checkpoint: ")))
