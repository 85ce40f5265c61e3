"""What pretraining and fine-tuning share: Ray Train configs, worker set-up, inputs, schedules, checkpoints."""

from __future__ import annotations

import json
import math
import os
import resource
import tempfile
import time

import numpy as np
import pyarrow.fs
import ray.train
import torch
import torch.distributed as dist
from omegaconf import OmegaConf
from ray.exceptions import NodeDiedError, ObjectLostError, RayActorError

from tubelab import resources
from tubelab.data import storage
from tubelab.data.batches import shuffled_batches
from tubelab.tracking import mlflow_runs

CHECKPOINT_FILE = "checkpoint.pt"


def scaling_config(res) -> ray.train.ScalingConfig:
    gpus = res.gpus_per_train_worker
    per_worker = {"CPU": res.cpus_per_train_worker, **({"GPU": gpus} if gpus else {}),
                  **resources.placement(res, "train")}  # the train-node marker (resources.*), if any
    return ray.train.ScalingConfig(num_workers=res.train_workers, use_gpu=gpus > 0, resources_per_worker=per_worker)


def storage_target(cfg, folder: str) -> tuple[str, pyarrow.fs.FileSystem | None]:
    """(storage_path, storage_filesystem) for Ray Train / Tune: object stores go through our fsspec
    filesystem (s3fs, with the configured endpoint) rather than pyarrow's own S3 client."""
    url = storage.join(storage.resolve(cfg.storage.url), folder)
    if storage.is_local(url):
        return url, None
    fs, path = storage.filesystem(url, cfg.storage.get("endpoint_url"))
    return path, pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs))


def run_config(cfg, name: str, num_to_keep: int | None = None) -> ray.train.RunConfig:
    path, filesystem = storage_target(cfg, "checkpoints")
    return ray.train.RunConfig(
        name=name,
        storage_path=path,
        storage_filesystem=filesystem,
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=num_to_keep),
        failure_config=ray.train.FailureConfig(max_failures=0),  # fit() retries lost workers, not bugs
        logging_config=ray.train.LoggingConfig(log_level="INFO" if resources.verbose() else "WARNING"),
    )


def worker_lost(error: ray.train.WorkerGroupError) -> bool:
    """Whether a failed worker group lost a worker or a Ray actor/object it read from (node loss, OOM kill,
    preemption, an idle node the autoscaler took away under a Ray Data actor): a fault worth a restart. When
    a rank dies its peers fail too (collective aborts), so one death is enough. Anything else is an exception
    raised by the training code, which fails the same way again; so is an actor whose constructor raised."""
    return any(infrastructure_fault(e) for e in error.worker_failures.values())


def infrastructure_fault(error: BaseException | None) -> bool:
    """Whether `error`, or what it wraps (a user exception Ray Train carries as `_base_exc`, a health check's
    failure, a chained cause), is a dead actor, a dead node or a lost object rather than a bug."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, RayActorError) and not error.actor_init_failed:
            return True
        if isinstance(error, (ObjectLostError, NodeDiedError)):
            return True
        error = (getattr(error, "_base_exc", None) or getattr(error, "health_check_failure", None)
                 or error.__cause__ or error.__context__)
    return False


def fit(make_trainer, restarts: int = 2) -> ray.train.Result:
    """`make_trainer().fit()`, started again from the run's last checkpoint (the same name resumes) after
    a lost worker, up to `restarts` times. An exception in the training code is raised at once: Ray
    Train's own FailureConfig would retry it like a lost node, three attempts of the same traceback."""
    for attempt in range(restarts + 1):
        try:
            return make_trainer().fit()
        except ray.train.WorkerGroupError as error:
            if attempt == restarts or not worker_lost(error):
                raise
            print(f"tubelab: a train worker was lost; restarting from the last checkpoint "
                  f"(restart {attempt + 1} of {restarts})", flush=True)


def worker_seed(seed: int, rank: int) -> int:
    """Each worker's torch seed (recorded on the run as the `worker_seeds` tag)."""
    return seed * 1000 + rank


def begin_epoch(epochs, seed: int, rank: int, epoch: int, generator: torch.Generator | None = None) -> None:
    """Tell the run's EpochClock (`epochs`) this worker starts `epoch`, so the decode actors draw this
    epoch's clips, and reseed torch (and `generator`) from (seed, rank, epoch), so a run restored from a
    checkpoint draws what the uninterrupted run drew."""
    ray.get(epochs.start.remote(rank, epoch))
    torch_seed = int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1)[0])
    torch.manual_seed(torch_seed)
    if generator is not None:
        generator.manual_seed(torch_seed)


# The shuffle buffer of training batches, in batches. A deterministic run sees the blocks in one seeded
# order every epoch (data.pipeline.clip_dataset), so the buffer is the only mixing across blocks: on the
# synthetic proxy 4 batches left test top-1 at 56.5 % after 8 epochs where a full per-epoch permutation
# reached 71.0 %, 16 batches 68.5 % (one initialisation, +-6.5-point intervals: a direction, not an effect
# size; jobs/finetune_probe.py, docs/results.md "Proxy recipe search, part 2").
# Memory: 16 x batch clips per worker (the paper's 8 x 16 x 112 x 112 x 3 clips: ~80 MB); the first
# batch of an epoch waits for 16 batches to be decoded.
SHUFFLE_BUFFER_BATCHES = 16


def train_batches(shard, batch_size: int, seed: int, rank: int, epoch: int):
    """One epoch of shuffled, full training batches (dicts of tensors) from this worker's dataset shard,
    drawn from a buffer of SHUFFLE_BUFFER_BATCHES batches (tubelab.data.batches: under half of Ray's
    local-shuffle CPU cost)."""
    blocks = shard.iter_batches(batch_size=None, batch_format="numpy")
    return shuffled_batches(blocks, batch_size, SHUFFLE_BUFFER_BATCHES * batch_size,
                            np.random.default_rng([seed, rank, epoch]))


def all_workers(flag: bool, device: torch.device) -> bool:
    """Whether `flag` holds on every train worker (an all-reduce). A loop whose length depends on each worker's
    data (the counting model's episodes) ends on all workers at once: every step's collectives (DDP's
    gradient sync, global BN) then have all workers."""
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def setup_worker(cfg) -> tuple[torch.device, int, int]:
    """Threads, seeds and device for this worker; returns (device, rank, world size)."""
    resources.hush(train_worker=True)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(max(1, int(cfg.resources.cpus_per_train_worker)))
    torch.manual_seed(worker_seed(cfg.seed, rank))
    device = ray.train.torch.get_device()
    # CPU kernels have deterministic versions of everything tubelab uses; CUDA ones do not (docs/recipes.md)
    torch.use_deterministic_algorithms(bool(cfg.deterministic) and device.type == "cpu")
    return device, rank, world


def data_config(cfg, split: list[str] | None = None) -> ray.train.DataConfig:
    """How Ray Train hands the datasets to the workers (`split`: the ones divided among them; None = all).
    With cfg.deterministic Ray Data keeps block order (preserve_order), so each worker gets the same
    clips in the same order on a rerun; a slow block then holds back the ones behind it."""
    options = ray.train.DataConfig.default_ingest_options()
    options.preserve_order = bool(cfg.deterministic)
    return ray.train.DataConfig(datasets_to_split=split or "all", execution_options=options)


def scaled_lr(opt, total_batch: int) -> float:
    """The configured lr is for `reference_batch`; the linear rule scales it to the actual total batch."""
    if opt.lr_scaling == "none":
        return opt.lr
    if opt.lr_scaling != "linear":
        raise ValueError(f"optimizer.lr_scaling={opt.lr_scaling!r} is not valid; choose one of: linear, none")
    return opt.lr * total_batch / opt.reference_batch


def device_features(cfg_section, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, channels_last) from `precision` / `channels_last` ("auto" = on CUDA)."""
    on_gpu = device.type == "cuda"
    precision = cfg_section.precision
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision={precision!r} is not valid; choose one of: auto, bf16, fp32")
    bf16 = precision == "bf16" or (precision == "auto" and on_gpu)
    channels_last = on_gpu if cfg_section.channels_last == "auto" else bool(cfg_section.channels_last)
    return (torch.bfloat16 if bf16 else None), channels_last


def cosine_lr(base_lr: float, progress: float) -> float:
    """Cosine decay from base_lr to 0 over progress in [0, 1]."""
    return base_lr * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def restore(model: torch.nn.Module, optimizer: torch.optim.Optimizer, key: str) -> dict | None:
    """Load the latest Ray Train checkpoint if there is one (worker restart, driver rerun) into `model`
    (from the entry `key`) and `optimizer`; returns the whole checkpoint (its "epoch" is the last one done)."""
    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        state = torch.load(os.path.join(d, CHECKPOINT_FILE), map_location="cpu", weights_only=True)
    model.load_state_dict(state[key])
    optimizer.load_state_dict(state["optimizer"])
    if ray.train.get_context().get_world_rank() == 0:
        print(f"tubelab: restored the checkpoint of epoch {state['epoch']}; continuing at epoch {state['epoch'] + 1}")
    return state


def report(metrics: dict, rank: int, state: dict | None = None) -> None:
    """ray.train.report from every worker; rank 0 attaches the checkpoint when `state` is given."""
    if state is None or rank != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as d:
        torch.save(state, os.path.join(d, CHECKPOINT_FILE))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))


class EpochTimer:
    """Clips/s and the data-wait fraction: time blocked on the next batch over total step time."""

    def __init__(self):
        self.wait = 0.0
        self.clips = 0
        self._t = time.perf_counter()

    def batches(self, iterator):
        it = iter(iterator)
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            self.wait += time.perf_counter() - t0
            yield batch

    def step_done(self, clips: int) -> None:
        self.clips += clips

    def summary(self) -> dict[str, float]:
        total = time.perf_counter() - self._t
        return {"clips_per_s": self.clips / max(total, 1e-9), "data_wait_fraction": self.wait / max(total, 1e-9)}


class RankZeroLogger:
    """Per-epoch metrics to the MLflow run named in the config, from rank 0 only.

    After a restore (worker failure, driver rerun) epochs already in MLflow are not logged again, so
    the run's history stays one value per epoch. When the tracking server is down, training goes on:
    each epoch's metrics wait in a buffer (in their order, with their original timestamps) and are
    delivered at the next epoch the server answers. Whatever is still undelivered after the last epoch
    is written to `<home>/undelivered-metrics/<run id>.json` and the gap is printed.
    """

    def __init__(self, cfg, run_id: str | None, prefix: str, rank: int):
        self.cfg, self.run_id, self.prefix = cfg, run_id, prefix
        self.enabled = run_id is not None and rank == 0
        self.logged = mlflow_runs.last_step(cfg, run_id, f"{prefix}/loss") if self.enabled else -1
        self.pending: list[tuple[dict[str, float], int, int]] = []  # (metrics, step, timestamp ms)
        # A down server should cost an epoch seconds, not MLflow's default minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

    def log(self, metrics: dict[str, float], step: int, last: bool = False) -> None:
        if not self.enabled or step <= self.logged:
            return
        self.pending.append(({f"{self.prefix}/{k}": float(v) for k, v in metrics.items()}, step,
                             int(time.time() * 1000)))
        self.logged = step
        try:
            while self.pending:
                values, at, timestamp = self.pending[0]
                mlflow_runs.log_metrics(self.cfg, self.run_id, values, at, timestamp=timestamp)
                self.pending.pop(0)
        except Exception as e:  # MLflow raises its own, requests' and OSError subclasses when down
            print(f"MLflow unreachable ({type(e).__name__}); training continues, metrics of epoch(s) "
                  f"{[p[1] for p in self.pending]} are kept for the next epoch", flush=True)
        if last and self.pending:
            self.save_undelivered()

    def save_undelivered(self) -> None:
        path = os.path.join(storage.resolve(self.cfg.home), "undelivered-metrics", f"{self.run_id}.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump([{"step": at, "timestamp": ts, "metrics": values} for values, at, ts in self.pending], f)
        print(f"MLflow run {self.run_id} misses the metrics of epoch(s) {[p[1] for p in self.pending]}: the "
              f"tracking server did not come back before training ended; they are in {path}", flush=True)


def check_decode_failures(failure_log, videos: int, max_fraction: float) -> int:
    """Videos that failed to decode so far (skipped, never replaced); past the threshold the run stops
    with their ids."""
    failed = ray.get(failure_log.get.remote())
    if len(failed) > max_fraction * videos:
        shown = "; ".join(f"{v}: {e}" for v, e in list(failed.items())[:10])
        raise RuntimeError(f"{len(failed)} of {videos} videos failed to decode (> clip.max_failed_fraction "
                           f"{max_fraction}): {shown}. Re-prepare the dataset or raise the threshold.")
    return len(failed)


def peak_memory_gb(device: torch.device) -> dict[str, float]:
    """Peak device memory on CUDA; peak resident memory of this worker process on CPU."""
    if device.type == "cuda":
        return {"peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30}
    return {"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}  # ru_maxrss is KiB on Linux


def loop_config(cfg, **extra) -> dict:
    """What a train loop receives: the resolved config as plain data, plus extras (run ids, URIs)."""
    return {"cfg": OmegaConf.to_container(cfg, resolve=True), **extra}
