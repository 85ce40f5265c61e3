"""Placement and node loss on a simulated multi-node cluster (ray.cluster_utils.Cluster, one machine).

The head schedules no work (0 CPUs), a "cpu" node carries the decode marker and a "gpu" node the train
marker (CPU only here: num_gpus=0), as in infra/aws/cluster.yaml and infra/k8s/raycluster.yaml. Token
authentication is on, as on a real cluster. A small pretraining run submitted with the markers in
resources.* must put its decode actors on the cpu node and its train workers on the gpu node. Then the
gpu node is lost mid-run (a spot preemption) while a replacement train node joins: the run must
continue from its last checkpoint there and finish. Only the nodes these tests start are stopped
(`cluster.shutdown()`; never `ray stop --force`).
"""

import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from services import free_port

pytestmark = pytest.mark.slow

DECODE, TRAIN = "decode_node", "train_node"  # the names infra/ gives the node markers
SMALL = ["dataset.generator.train_per_class=4", "dataset.generator.test_per_class=1",
         "dataset.generator.num_frames=24", "dataset.generator.width=64", "dataset.generator.height=48",
         "dataset.encode.short_side=48", "pretrain.batch_size=4", "pretrain.clip.crop=40",
         "pretrain.clip.clips_per_video=2", "pretrain.moco.queue=32"]
EPOCHS = 3
NODE = dict(object_store_memory=200 * 1024**2)
ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_TMPDIR", "RAY_ADDRESS")


def start_cluster():
    """Head (no work) + cpu node (decode marker) + gpu node (train marker), in a fresh RAY_TMPDIR."""
    from ray.cluster_utils import Cluster
    from ray.util import get_node_ip_address

    tmp = tempfile.mkdtemp(prefix="tlc", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = free_port()
    os.environ.update(RAY_TMPDIR=tmp, RAY_ADDRESS=f"{get_node_ip_address()}:{port}")
    c = Cluster(initialize_head=False)
    c.tmp = tmp
    try:
        # Own dashboard port: 8265 may belong to another Ray on this machine.
        c.add_node(num_cpus=0, gcs_server_port=port, dashboard_port=free_port(), **NODE)
        assert c.address == os.environ["RAY_ADDRESS"]
        c.cpu = c.add_node(num_cpus=3, resources={DECODE: 1}, **NODE)
        c.gpu = c.add_node(num_cpus=2, num_gpus=0, resources={TRAIN: 1}, **NODE)
    except Exception:
        stop_cluster(c)
        raise
    return c


def stop_cluster(c) -> None:
    """The Cluster's own shutdown, then any process of ours it lost track of (a node whose start timed
    out is not in its lists): children of this process whose command line names this cluster's
    private temp dir."""
    try:
        c.shutdown()
    finally:
        for proc in psutil.Process().children(recursive=True):
            try:
                if c.tmp in " ".join(proc.cmdline()):
                    proc.kill()
            except psutil.NoSuchProcess:
                pass
        for _ in range(5):  # exiting Ray processes may still write logs there for a moment
            shutil.rmtree(c.tmp, ignore_errors=True)
            if not os.path.exists(c.tmp):
                break
            time.sleep(1)


@pytest.fixture(scope="module")
def cluster():
    """The simulated cluster, token auth on: every node process and every driver gets the same token
    through RAY_AUTH_TOKEN (docs/operations.md).

    Other Ray instances may run on this machine at the same time (other tests), so the cluster is
    isolated: its own RAY_TMPDIR (a Cluster records its address in <tmp>/ray/ray_current_cluster, and
    a bare `ray.init()` elsewhere would join it), and RAY_ADDRESS in every node's environment (Ray
    Train's PlacementGroupCleaner resolves the State API address by scanning the machine for GCS
    processes when it is unset, and may query, and act on, another instance). Ray gives a node 30 s
    to register; on a heavily loaded machine that can run out, so the start is tried twice.
    """
    from ray._raylet import AuthenticationTokenLoader, Config

    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    Config.initialize("")  # this process (the Cluster's GCS client) uses token mode too
    AuthenticationTokenLoader.instance().reset_cache()
    c = None
    try:
        try:
            c = start_cluster()
        except Exception as e:  # a node that did not register in time
            print(f"cluster start failed ({e}); trying once more")
            c = start_cluster()
        yield c
    finally:
        if c is not None:
            stop_cluster(c)  # only what this fixture started
        for k, v in saved.items():  # later tests in this process get back the settings they had
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def actors(c, class_part: str) -> list[dict]:
    """Every actor, alive or dead, whose class name contains `class_part` (the GCS actor table)."""
    return [a for a in c.global_state.actor_table(None).values() if class_part in a["ActorClassName"]]


def nodes_of(actor_rows) -> set[str]:
    return {a["Address"]["NodeID"] for a in actor_rows}


def epoch_logged(db) -> bool:
    """Epoch 0 is in MLflow (plain read-only sqlite: no MLflow client racing the run's table creation)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return con.execute("SELECT count(*) FROM metrics WHERE key = 'pretrain/loss'").fetchone()[0] > 0
    except sqlite3.OperationalError:
        return False


def test_a_driver_without_the_cluster_token_is_refused(cluster):
    probe = [sys.executable, "-c", f"import ray; ray.init(address={cluster.address!r}); print('CONNECTED')"]
    good = subprocess.run(probe, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert good.returncode == 0 and "CONNECTED" in good.stdout, good.stderr[-2000:]
    bad = subprocess.run(probe, env={**os.environ, "RAY_AUTH_TOKEN": "not-the-token"}, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0 and "CONNECTED" not in bad.stdout
    assert "auth" in bad.stderr.lower(), bad.stderr[-2000:]


def test_decode_on_cpu_nodes_training_on_gpu_nodes_and_a_lost_gpu_node_resumes(tmp_path, cluster):
    cmd = [str(Path(sys.executable).parent / "tubelab"), "pretrain", *SMALL, "name=placed", f"pretrain.epochs={EPOCHS}",
           f"resources.address={cluster.address}", f"resources.decode_node_resource={DECODE}",
           f"resources.train_node_resource={TRAIN}"]
    log = tmp_path / "run.log"  # a file, not a pipe: nothing reads a pipe while we wait, and a full one blocks
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, env={**os.environ, "TUBELAB_HOME": str(tmp_path)}, stdout=f,
                                stderr=subprocess.STDOUT)
    try:
        checkpoints = tmp_path / "checkpoints" / "placed"
        deadline = time.monotonic() + 420  # ~1 min on an idle 2-core machine; generous for a shared one
        # Epoch 0 logged and its checkpoint registered by Ray Train.
        while time.monotonic() < deadline and not (epoch_logged(tmp_path / "mlflow.db")
                                                   and (checkpoints / "checkpoint_manager_snapshot.json").exists()):
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        assert proc.poll() is None, "the run ended before it could lose a node: " + log.read_text()[-3000:]

        # Placement: decode actors on the cpu node only, the train workers on the gpu node only.
        decoders = actors(cluster, "MapWorker(MapBatches(ClipDecoder))")
        trainers = [a for a in actors(cluster, "RayTrainWorker") if a["State"] == "ALIVE"]
        assert decoders and nodes_of(decoders) == {cluster.cpu.node_id}
        assert len(trainers) == 2 and nodes_of(trainers) == {cluster.gpu.node_id}
        assert nodes_of(actors(cluster, "FailureLog")) == {cluster.head_node.node_id}  # pinned to the driver's node

        # A spot preemption: the gpu node goes away mid-run; the autoscaler's replacement joins.
        spare = cluster.add_node(num_cpus=2, num_gpus=0, resources={TRAIN: 1}, **NODE)
        lost = cluster.gpu.node_id
        cluster.remove_node(cluster.gpu)
        proc.wait(timeout=480)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert proc.returncode == 0, out[-3000:]
    assert "tubelab: restored the checkpoint of epoch" in out  # resumed, not restarted from scratch
    workers = actors(cluster, "RayTrainWorker")
    assert nodes_of(workers) == {lost, spare.node_id}  # the new worker group went to the other train node
    assert len([a for a in workers if a["Address"]["NodeID"] == spare.node_id]) == 2
    assert nodes_of(actors(cluster, "MapWorker(MapBatches(ClipDecoder))")) == {cluster.cpu.node_id}
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        epochs = [r[0] for r in con.execute("SELECT step FROM metrics WHERE key = 'pretrain/loss' ORDER BY step")]
    assert epochs == list(range(EPOCHS))  # one value per epoch: no epoch repeated, none missing
