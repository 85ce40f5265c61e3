"""Benchmark the video data plane: tubelab's Ray Data pipeline vs the decode bound vs a naive DataLoader.

    python jobs/benchmark_data.py [--out FILE.json] [--clips 2000] [--skip-s3] [--skip-naive]
                                  [--try gen2 cached rayshuffle] [--backend pyav]

All in one run, on the same cores, each figure a steady-state rate (clips/s) after a warm-up, over at
least `--clips` clips. A clip is 16 frames at stride 2 with a random start, cropped to 112 x 112 at a
random place from frames whose short side is 128 (the paper's input).

- decode bound: one plain process per core (multiprocessing) decoding the same clips from the same
  shards in a loop: the Parquet columns read with pyarrow, tubelab's ClipDecoder called as a decode
  actor calls it (2 videos per call, clips_per_video clips of each, all clips of a video from one
  reader). The same clips every time, so its runs differ only by the machine. It is measured before the
  first tubelab figure and after every one, and each tubelab figure is compared with the mean of the
  two bounds around it: this shared VM changes speed by up to 1.7x from minute to minute (the same
  2,000 clips: ~210 or ~350 clips/s). Measured once for context: the same processes with one reader
  per clip (ClipDecoder before it decoded a video's clips together).
- tubelab: shards -> Ray Data (tubelab.data.pipeline.clip_dataset, mode train) -> the driver consuming
  shuffled batches of 16 from the train loops' buffer (training.common.train_batches: 16 batches,
  256 rows; 64 rows before 2026-12-06), in a fresh embedded Ray started by
  tubelab.resources.init_ray(cfg.resources) per setting: the config's resources (decode_actors=1) and
  decode_actors=2 from local disk, then decode_actors=2 from a real S3 endpoint (a moto_server started
  here, the shard folder copied in with s3fs, `storage=s3 storage.url=s3://...`). A warm-up epoch (1
  clip per video), then one epoch of clip.clips_per_video clips per video; steady state from the first
  batch after `--warmup` clips to the last. The warm-up also drains clips decoded ahead while the
  consumer waited for its first batch (with a 100-clip warm-up one decode actor appeared to beat two
  plain processes). Reported with each: the per-epoch start-up (epoch time beyond clips / steady
  rate), and from /proc the CPU cores the decode actors and all of the run's processes used (a
  pipeline that stalls shows actors using less than the cores they were given).
- what-ifs (--try): the same tubelab measurement with other pipeline settings, passed as arguments
  to tubelab.data.pipeline (Ray's default output buffer, bytes read once per run) or to the consumer
  (Ray's shuffle buffer); see Setting and WHAT_IFS.
- consumer CPU: the shuffled-batch consumer alone on materialized clip blocks (consumer_cost).
- naive: what most repositories do. A torch DataLoader with num_workers = cores, each item opening
  its SOURCE file (10 s, 320x240, 30 fps, x264 default GOP, written here with PyAV from the same
  synthetic renderer) with decord.VideoReader(path, width, height) resizing to short side 128,
  decoding a random 16-frame clip at stride 2, and cropping 112.

Data: the synthetic dataset prepared by tubelab.data.prepare.prepare with dataset.encode.short_side=128
(defaults otherwise: 240 train videos of 48 frames, GOP 8), and 40 naive sources, generated once
under --home (default .tubelab/bench/data) and reused by later runs. Default run: ~3.5 minutes on
2 cores once the data exist (+1.5 minutes the first time); each --try adds ~40 s.
"""


from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAMES, STRIDE, CROP, SHORT_SIDE = 16, 2, 112, 128
BATCH = 16
TARGET_VS_BOUND, TARGET_VS_NAIVE = 0.8, 3.0
DRIFT_LIMIT = 0.15  # a figure's ratio is reliable when the decode bounds around it differ by at most this


def log(msg: str) -> None:
    print(msg, flush=True)


# ---- data ---------------------------------------------------------------------------------------------------------

def prepare_overrides(home: Path, train_per_class: int) -> list[str]:
    return [f"home={home}", f"dataset.encode.short_side={SHORT_SIDE}",
            f"dataset.generator.train_per_class={train_per_class}"]


def prepare_shards(overrides: list[str]) -> tuple[dict, str]:
    import ray

    from tubelab import config
    from tubelab.data.prepare import prepare

    started = not ray.is_initialized()
    manifest, url = prepare(config.load("prepare", overrides), progress=False)
    if started and ray.is_initialized():
        ray.shutdown()
    return manifest, url


def train_rows(manifest: dict, url: str) -> dict[str, np.ndarray]:
    """The train split's columns the decode actors read, as the numpy batch they get."""
    from tubelab.data.pipeline import DECODE_COLUMNS
    from tubelab.data.shards import read_split

    table = read_split(manifest, url, "train", DECODE_COLUMNS)
    return {c: table[c].to_numpy(zero_copy_only=False) for c in DECODE_COLUMNS}


def _write_source(path: Path, seed: int) -> None:
    import av

    from tubelab.data.synthetic import CLASSES, render_video

    rng = np.random.default_rng(seed)
    frames, _ = render_video(CLASSES[seed % len(CLASSES)], rng, num_frames=300, width=320, height=240)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), mode="w") as c:
        s = c.add_stream("libx264", rate=30)  # x264 defaults: preset medium, GOP 250, B-frames
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 30)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    tmp.rename(path)


def naive_sources(folder: Path, count: int) -> list[str]:
    """`count` 10 s 320x240 30 fps sources with x264's default GOP (made once, reused)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"source-{i:03d}.mp4" for i in range(count)]
    missing = [i for i, p in enumerate(paths) if not p.exists()]
    if missing:
        log(f"writing {len(missing)} naive-baseline sources (10 s, 320x240, 30 fps) to {folder}")
        with mp.get_context("spawn").Pool(os.cpu_count() or 1) as pool:
            pool.starmap(_write_source, [(paths[i], i) for i in missing])
    return [str(p) for p in paths]


# ---- a) decode bound ------------------------------------------------------------------------------------------------

def _bound_worker(rows, backend, rows_per_video, warmup, clips, seed, barrier, queue):
    from tubelab.data.decode import ClipDecoder

    rng = np.random.default_rng(seed)
    decoder = ClipDecoder(frames=FRAMES, strides=[STRIDE], crop=CROP, rows_per_video=rows_per_video, mode="train",
                          seed=seed, backend=backend)

    def some():  # what a decode actor does with one map_batches call: 2 videos, rows_per_video clips each
        pick = rng.integers(len(rows["video"]), size=2)
        return len(decoder({k: v[pick] for k, v in rows.items()})["clip"])

    done = 0
    while done < warmup:
        done += some()
    barrier.wait()
    start, cpu, done = time.monotonic(), time.process_time(), 0
    while done < clips:
        done += some()
    queue.put((start, time.monotonic(), done, time.process_time() - cpu))


def decode_bound(rows, backend: str, procs: int, clips: int, rows_per_video: int, warmup: int = 50) -> dict:
    """Clips/s of `procs` plain processes running tubelab's ClipDecoder on the shards' rows, 2 videos and
    `rows_per_video` clips per video per call as the decode actors do (1: one reader per clip)."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    each = -(-clips // procs)
    workers = [ctx.Process(target=_bound_worker, args=(rows, backend, rows_per_video, warmup, each, i, barrier, queue))
               for i in range(procs)]
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    span = max(r[1] for r in results) - min(r[0] for r in results)
    total = sum(r[2] for r in results)
    return {"clips_per_s": round(total / span, 1), "clips": total, "seconds": round(span, 2), "procs": procs,
            "backend": backend, "rows_per_video": rows_per_video,
            "per_proc_clips_per_s": [round(r[2] / (r[1] - r[0]), 1) for r in results],
            "cpu_ms_per_clip": round(1000 * sum(r[3] for r in results) / total, 2)}


def tree_cpu(root: int) -> tuple[float, float, int]:
    """(CPU seconds of process `root` and its live descendants, of those that are decode actors, number of
    decode actors), user + system, from /proc: the driver, the Ray processes it started, their workers."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu, actor = {}, {}, set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read(64)
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(pid)] = int(fields[1])
        cpu[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
        if cmd.startswith(b"ray::MapWorker"):
            actor.add(int(pid))
    total = actors = 0.0
    n = 0
    for pid in cpu:
        p = pid
        while p not in (0, 1) and p != root:
            p = parent.get(p, 0)
        if p == root:
            total += cpu[pid]
            if pid in actor:
                actors += cpu[pid]
                n += 1
    return total, actors, n


class CpuSampler:
    """Samples tree_cpu(this process) twice a second in a thread, with the consumer's clip count, so that
    CPU over a window is known even when the decode actors exit before the last batch arrives."""

    def __init__(self, period: float = 0.5):
        import threading

        self.period, self.samples, self.clips = period, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            total, actors, n = tree_cpu(os.getpid())
            self.samples.append((time.monotonic(), self.clips, total, actors, n))
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def window(self, start: float) -> dict:
        """CPU figures from the first sample at or after `start` to the last sample that still saw the actors."""
        inside = [x for x in self.samples if x[0] >= start and x[4] > 0]
        if len(inside) < 2:
            return {}
        (t0, c0, tot0, act0, _), (t1, c1, tot1, act1, _) = inside[0], inside[-1]
        n = max(x[4] for x in inside)
        return {"cpu_ms_per_clip": round(1000 * (tot1 - tot0) / max(c1 - c0, 1), 2),
                "actor_cpu_ms_per_clip": round(1000 * (act1 - act0) / max(c1 - c0, 1), 2),
                "decode_actor_cores": round((act1 - act0) / (t1 - t0), 2), "decode_actors_seen": n,
                "cpu_cores_used": round((tot1 - tot0) / (t1 - t0), 2), "cpu_window_s": round(t1 - t0, 1)}


# ---- b) tubelab -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """How one tubelab measurement runs the pipeline: the arguments it passes to tubelab.data.pipeline
    and the consumer it uses. The defaults are tubelab's own; a what-if changes one of them."""
    what: str = "tubelab as configured"
    output_blocks_buffered: int | None = None  # pipeline.configure_data_context(...); None: tubelab's default
    read_once: bool = False  # pipeline.read_videos(...).materialize() once, then clip_dataset(..., videos=it)
    ray_shuffle: bool = False  # consumer: Ray's iter_torch_batches(local_shuffle_buffer_size) for shuffled_batches


TUBELAB = Setting()
WHAT_IFS = {
    "gen2": Setting(what="Ray's default DataContext._max_num_blocks_in_streaming_gen_buffer = 2 (tubelab sets "
                         "pipeline.OUTPUT_BLOCKS_BUFFERED = 16): a decode actor pauses when 2 of its output blocks "
                         "wait for the executor", output_blocks_buffered=2),
    "rayshuffle": Setting(what="the consumer uses Ray Data's local shuffle buffer (iter_torch_batches("
                               "local_shuffle_buffer_size=64)) instead of tubelab.data.batches.shuffled_batches",
                          ray_shuffle=True),
    "cached": Setting(what="the video bytes read once per run (pipeline.read_videos(...).materialize() before the "
                           "first epoch, passed to clip_dataset as `videos`): no listing or read per epoch",
                      read_once=True),
}


def _epoch(cfg, clip, seed: int, warmup: int = 0, ray_shuffle: bool = False, videos=None) -> dict:
    """One epoch through clip_dataset, consumed as the train loops do.

    Times from the clip_dataset() call; the steady window runs from the first batch after `warmup`
    clips to the last batch (CPU figures: see CpuSampler)."""
    from tubelab.data.pipeline import clip_dataset
    from tubelab.training.common import train_batches

    t0 = time.monotonic()
    ds, _ = clip_dataset(cfg, cfg.dataset.name, "train", clip, mode="train", seed=seed, videos=videos)
    if ray_shuffle:
        batches = ds.iter_torch_batches(batch_size=BATCH, drop_last=True, local_shuffle_buffer_size=4 * BATCH)
    else:
        batches = train_batches(ds, BATCH, seed, rank=0, epoch=0)
    first = window = None
    with CpuSampler() as sampler:
        for batch in batches:
            assert tuple(batch["clip"].shape[1:]) == (1, FRAMES, CROP, CROP, 3), batch["clip"].shape
            now = time.monotonic()
            first = first or now
            if window is None and sampler.clips >= warmup:
                window = (now, sampler.clips)
            sampler.clips += int(batch["clip"].shape[0])
        end = time.monotonic()
    clips = sampler.clips
    out = {"clips": clips, "seconds": round(end - t0, 2), "first_batch_s": round(first - t0, 2)}
    if warmup:
        start, done = window
        out.update(steady_clips=clips - done, steady_seconds=round(end - start, 2), **sampler.window(start))
    return out


def tubelab_rate(overrides: list[str], *, clips_per_video: int, warmup: int, label: str, backend: str,
                 setting: Setting = TUBELAB) -> dict:
    """Steady-state clips/s of the pipeline, and its per-epoch start-up, in one fresh embedded Ray.

    A short warm-up epoch (1 clip per video: worker processes, imports, caches; not counted), then
    one long epoch (`clips_per_video` clips per video). Steady state: from the first batch after
    `warmup` clips to the last batch. The warm-up also drains the clips decoded ahead while the
    consumer waited for its first batch, which would otherwise inflate the rate (seen: 1.8x with a
    100-clip warm-up). Per-epoch start-up = the long epoch's time beyond clips / steady rate.
    """
    import ray
    from omegaconf import OmegaConf

    from tubelab import config
    from tubelab.data.pipeline import OUTPUT_BLOCKS_BUFFERED, configure_data_context, read_videos
    from tubelab.resources import init_ray

    cfg = config.load("prepare", overrides)
    plan = init_ray(cfg.resources)
    # Every measurement sets the DataContext itself (it outlives ray.shutdown in this process).
    configure_data_context(output_blocks_buffered=setting.output_blocks_buffered or OUTPUT_BLOCKS_BUFFERED,
                           progress_bars=False)
    try:
        def clip(cpv):
            return OmegaConf.create({"frames": FRAMES, "strides": [STRIDE], "crop": CROP, "flip": False,
                                     "jitter": False, "clips_per_video": cpv, "eval_clips": 1, "decoder": backend,
                                     "resized_crop": None})
        videos = read_videos(cfg, cfg.dataset.name, "train").materialize() if setting.read_once else None
        warm = _epoch(cfg, clip(1), seed=0, ray_shuffle=setting.ray_shuffle, videos=videos)
        long = _epoch(cfg, clip(clips_per_video), seed=1, warmup=warmup, ray_shuffle=setting.ray_shuffle,
                      videos=videos)
    finally:
        ray.shutdown()
    steady = long["steady_clips"] / long["steady_seconds"]
    startup = long["seconds"] - long["clips"] / steady
    res = cfg.resources
    out = {"label": label, "clips_per_s": round(steady, 1), "steady_clips": long["steady_clips"],
           "per_epoch_startup_s": round(startup, 2), "first_batch_s": long["first_batch_s"],
           **{k: long.get(k) for k in ("cpu_ms_per_clip", "actor_cpu_ms_per_clip", "decode_actor_cores",
                                       "decode_actors_seen", "cpu_cores_used")},
           "epoch_clips_per_s_with_startup": round(long["clips"] / long["seconds"], 1),
           "epochs": {"warmup": warm, "measured": long},
           "decode_actors": res.decode_actors, "cpus_per_decode_actor": res.cpus_per_decode_actor,
           "read_task_cpus": res.read_task_cpus, "logical_cpus": plan.logical_cpus, "storage": cfg.storage.url}
    log(f"  {label}: {out['clips_per_s']} clips/s steady over {out['steady_clips']} clips (epoch of {long['clips']}, "
        f"{out['epoch_clips_per_s_with_startup']} clips/s with its start-up); start-up {startup:.1f} s per epoch "
        f"(first batch after {long['first_batch_s']:.1f} s); decode actors used {long.get('decode_actor_cores')} "
        f"cores and everything (driver, Ray, actors) {long.get('cpu_cores_used')}; CPU per clip "
        f"{long.get('actor_cpu_ms_per_clip')} ms in actors, {long.get('cpu_ms_per_clip')} ms in all")
    return out


def consumer_cost(clips: int = 1600, repeats: int = 3) -> dict:
    """CPU of the consumer alone, in ms per clip: the same decoded-clip blocks (materialized in the object
    store, so no decoding runs) drawn into shuffled batches by Ray's local shuffle buffer and by
    tubelab.data.batches, and plainly iterated (no shuffle) as the floor. Best of `repeats` passes."""
    import ray

    from tubelab.data.pipeline import configure_data_context
    from tubelab.training.common import train_batches

    configure_data_context(progress_bars=False)  # the pipeline's block size, as the decoded clips have

    def block(batch):
        n = len(batch["id"])
        return {"clip": np.random.default_rng(0).integers(0, 255, (n, 1, FRAMES, CROP, CROP, 3), dtype=np.uint8),
                "label": batch["id"], "video_key": batch["id"]}

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        ds = ray.data.range(clips, override_num_blocks=clips // 22).map_batches(block, batch_size=22).materialize()
        ways = {
            "ray_local_shuffle": lambda: ds.iter_torch_batches(batch_size=BATCH, drop_last=True,
                                                              local_shuffle_buffer_size=4 * BATCH),
            "tubelab_shuffled_batches": lambda: train_batches(ds, BATCH, seed=0, rank=0, epoch=0),
            "no_shuffle": lambda: ds.iter_torch_batches(batch_size=BATCH, drop_last=True),
        }
        out = {}
        for name, batches in ways.items():
            best = float("inf")
            for _ in range(repeats):
                cpu, n = time.process_time(), 0
                for batch in batches():
                    n += len(batch["clip"])
                best = min(best, (time.process_time() - cpu) / n)
            out[name] = round(1000 * best, 3)
    finally:
        ray.shutdown()
    log(f"d) consumer CPU per clip (ms, best of {repeats}): " + ", ".join(f"{k} {v}" for k, v in out.items()))
    return out


class MotoServer:
    """A real S3 endpoint on 127.0.0.1 (moto_server), stopped with its process group on exit."""

    def __init__(self):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def __enter__(self):
        exe = Path(sys.executable).parent / "moto_server"
        self.log = open(os.devnull, "w")
        self.proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("moto_server did not start within 60 s")
                time.sleep(0.3)

    def __exit__(self, *exc):
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # only the group we started
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def upload_shards(local_url: str, endpoint: str, bucket: str, prefix: str) -> str:
    import s3fs

    fs = s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": endpoint})
    fs.mkdir(bucket)
    target = f"{bucket}/{prefix}/shards/synthetic"
    fs.put(local_url.rstrip("/") + "/", target + "/", recursive=True)
    names = sorted(Path(p).name for p in fs.ls(target))
    local = sorted(p.name for p in Path(local_url).iterdir())
    if names != local:
        raise RuntimeError(f"upload to s3://{target} holds {names}, expected {local}")
    return f"s3://{bucket}/{prefix}"


# ---- c) naive baseline ---------------------------------------------------------------------------------------------

class NaiveClips:
    """torch Dataset: each item opens a source file and decodes a random clip (the common recipe)."""

    def __init__(self, paths: list[str], length: int, seed: int = 0):
        self.paths, self.length, self.seed = paths, length, seed

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        import decord
        import torch

        rng = np.random.default_rng([self.seed, i])
        path = self.paths[int(rng.integers(len(self.paths)))]
        # decord resizes in its decoder (short side 128: 320x240 -> 170x128, even for yuv420p)
        vr = decord.VideoReader(path, num_threads=1, width=170, height=SHORT_SIDE)
        span = (FRAMES - 1) * STRIDE + 1
        start = int(rng.integers(0, len(vr) - span + 1))
        frames = vr.get_batch(list(range(start, start + span, STRIDE))).asnumpy()
        y = int(rng.integers(0, frames.shape[1] - CROP + 1))
        x = int(rng.integers(0, frames.shape[2] - CROP + 1))
        return torch.from_numpy(np.ascontiguousarray(frames[:, y:y + CROP, x:x + CROP]))


def naive_rate(paths: list[str], clips: int, warmup: int, workers: int) -> dict:
    import torch

    loader = torch.utils.data.DataLoader(NaiveClips(paths, clips + warmup), batch_size=BATCH, num_workers=workers)
    t0, marks = time.monotonic(), []
    for batch in loader:
        assert batch.shape[1:] == (FRAMES, CROP, CROP, 3)
        marks.append((time.monotonic(), batch.shape[0]))
    times, counts = np.array([m[0] for m in marks]), np.cumsum([m[1] for m in marks])
    w = int(np.searchsorted(counts, warmup))
    steady_clips = int(counts[-1] - counts[w])
    return {"clips_per_s": round(float(steady_clips / (times[-1] - times[w])), 1), "steady_clips": steady_clips,
            "workers": workers, "first_batch_s": round(float(times[0] - t0), 2), "sources": len(paths)}


# ---- the run: measurements in order, each tubelab figure between two decode bounds ---------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    from tubelab.data.decoders import BACKENDS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=2000, help="clips measured per figure, after the warm-up")
    ap.add_argument("--warmup", type=int, default=480, help="clips before timing (decode bound, tubelab)")
    ap.add_argument("--train-per-class", type=int, default=24, help="synthetic train videos per class (10 classes)")
    ap.add_argument("--backend", default="decord", choices=BACKENDS,
                    help="decoder of the decode bound and of the pipeline (clip.decoder)")
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 1, help="decode-bound processes / naive workers")
    ap.add_argument("--actors", type=int, nargs="+", default=None,
                    help="decode_actors settings to run locally (default: the config's, then 2)")
    ap.add_argument("--try", dest="variants", nargs="*", default=[], choices=sorted(WHAT_IFS),
                    help="also measure these what-ifs for pipeline.py (local, best actor count): "
                         + "; ".join(f"{k}: {v.what}" for k, v in WHAT_IFS.items()))
    ap.add_argument("--sources", type=int, default=40, help="naive-baseline source videos")
    ap.add_argument("--home", default=str(Path(os.environ.get("TUBELAB_HOME", ROOT / ".tubelab")) / "bench" / "data"),
                    help="benchmark state dir (generated data and shards, reused across runs)")
    ap.add_argument("--skip-s3", action="store_true")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--quick", action="store_true",
                    help="seconds-long form for the test suite: 3 videos per class, 192 clips, one local setting, "
                         "no S3, no naive baseline, a 160-clip consumer pass (tubelab's code paths once; the figures "
                         "mean nothing)")
    args = ap.parse_args(argv)
    if args.quick:
        args.clips, args.warmup, args.train_per_class, args.actors = 192, 32, 2, [1]
        args.skip_s3 = args.skip_naive = True
    return args


@dataclass
class Bench:
    """What the measurements of one run share: the data, the clip counts, and the decode bounds so far.

    The machine is shared: the decode bound is measured before the first tubelab figure and after
    every one, and each tubelab figure is compared with the mean of the bounds right before and after it."""
    args: argparse.Namespace
    home: Path
    base: list[str]  # prepare overrides
    manifest: dict
    url: str  # the local shards
    rows: dict[str, np.ndarray]  # the train split's decode columns
    clips_per_video: int  # of the measured epoch: the warm-up and at least --clips clips after it
    config_actors: int
    bounds: list[dict] = field(default_factory=list)

    @classmethod
    def prepare(cls, args) -> "Bench":
        from tubelab import config

        home = Path(args.home).resolve()
        base = prepare_overrides(home, args.train_per_class) + (["dataset.generator.test_per_class=1"] if args.quick else [])
        manifest, url = prepare_shards(base)
        rows = train_rows(manifest, url)
        videos = len(rows["video"])
        bench = cls(args, home, base, manifest, url, rows, -(-(args.warmup + args.clips + BATCH) // videos),
                    int(config.load("prepare", base).resources.decode_actors))
        log(f"{videos} train videos ({np.mean([len(d) for d in rows['video']]) / 1024:.1f} KiB, "
            f"{int(np.mean(rows['num_frames']))} frames each, short side {SHORT_SIDE}); clips: {FRAMES} frames at "
            f"stride {STRIDE}, crop {CROP}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        return bench

    def decode_bound(self, rows_per_video: int) -> dict:
        a = self.args
        return decode_bound(self.rows, a.backend, a.procs, a.clips, rows_per_video, warmup=a.warmup // a.procs)

    def bound(self) -> dict:
        b = self.decode_bound(self.clips_per_video)
        self.bounds.append(b)
        log(f"a) decode bound ({self.args.procs} processes, {self.args.backend}): {b['clips_per_s']} clips/s "
            f"(per process {b['per_proc_clips_per_s']}), {b['cpu_ms_per_clip']} ms CPU per clip")
        return b

    def tubelab(self, overrides: list[str], label: str, setting: Setting = TUBELAB) -> dict:
        """One tubelab figure, with its ratio to the decode bounds measured right before and after it."""
        return self.compare(self.rate(overrides, label, setting))

    def rate(self, overrides: list[str], label: str, setting: Setting = TUBELAB) -> dict:
        return tubelab_rate(self.base + overrides, clips_per_video=self.clips_per_video, warmup=self.args.warmup,
                            label=label, backend=self.args.backend, setting=setting)

    def compare(self, result: dict) -> dict:
        """Measure the decode bound after `result` and add its ratio to the mean of the bounds around it."""
        before, after = self.bounds[-1], self.bound()
        modes = [before["clips_per_s"], after["clips_per_s"]]
        result["decode_bound_around_clips_per_s"] = modes
        result["vs_decode_bound"] = round(result["clips_per_s"] / (sum(modes) / 2), 3)
        result["bound_drift"] = round(max(modes) / min(modes) - 1, 3)
        log(f"  -> {result['vs_decode_bound']:.2f}x the decode bound around it ({modes[0]} / {modes[1]} clips/s"
            f"{'; the machine changed speed in between' if result['bound_drift'] > DRIFT_LIMIT else ''})")
        return result


def measure_local(bench: Bench) -> dict[int, dict]:
    """tubelab from local disk, per decode_actors setting (default: the config's, then 2)."""
    c = bench.config_actors
    actors = bench.args.actors or sorted({c, 2}, key=lambda a: (a != c, a))
    return {a: bench.tubelab([f"resources.decode_actors={a}"],
                             f"local, decode_actors={a}" + (" (config)" if a == c else "")) for a in actors}


@contextlib.contextmanager
def s3_credentials(endpoint: str):
    """The moto endpoint and its fake credentials in this process's environment (Ray's workers inherit it)."""
    keys = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict(zip(keys, (endpoint, "testing", "testing", "us-east-1"))))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def measure_s3(bench: Bench, actors: int) -> tuple[dict | None, str | None]:
    """tubelab reading the shards from a real S3 endpoint (a moto_server here): (result, None) or (None, why not)."""
    if bench.args.skip_s3:
        return None, "skipped (--skip-s3)"
    try:
        with MotoServer() as moto, s3_credentials(moto.url):
            storage_url = upload_shards(bench.url, moto.url, "tubelab-bench", "data")
            s3 = bench.rate([f"resources.decode_actors={actors}", "storage=s3", f"storage.url={storage_url}"],
                            f"S3 (moto_server, {storage_url}), decode_actors={actors}")
    except Exception as e:  # report precisely and go on with the other figures
        import traceback

        log(f"  S3 read path FAILED: {type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}")
        return None, f"{type(e).__name__}: {e}"
    return bench.compare(s3), None  # the bound after it with the endpoint stopped


def measure_naive(bench: Bench) -> dict:
    args = bench.args
    paths = naive_sources(bench.home / "naive-sources", args.sources)
    log(f"c) naive: torch DataLoader, {args.procs} workers, decord on {len(paths)} source files per item")
    naive = naive_rate(paths, args.clips, warmup=4 * BATCH, workers=args.procs)  # no start-up to amortise
    log(f"  {naive['clips_per_s']} clips/s over {naive['steady_clips']} clips")
    return naive


def build_report(bench: Bench, per_clip: dict, local: dict, s3: dict | None, s3_reason: str | None, tried: dict,
                 naive: dict | None, consumer: dict, load_before) -> dict:
    args = bench.args
    # Headline: the best ratio among those whose surrounding bounds agree (the machine kept its speed).
    best_actors = max(local, key=lambda a: (local[a]["bound_drift"] <= DRIFT_LIMIT, local[a]["vs_decode_bound"]))
    best = local[best_actors]
    return {
        "decode_bound_clips_per_s": round(float(np.mean([b["clips_per_s"] for b in bench.bounds])), 1),
        "tubelab_local_clips_per_s": best["clips_per_s"],
        "tubelab_s3_clips_per_s": s3["clips_per_s"] if s3 else None,
        "naive_clips_per_s": naive["clips_per_s"] if naive else None,
        "ratio_tubelab_vs_decode_bound": best["vs_decode_bound"],
        "ratio_reliable": best["bound_drift"] <= DRIFT_LIMIT,  # the two bounds around it within 15%
        "ratio_tubelab_s3_vs_decode_bound": s3["vs_decode_bound"] if s3 else None,
        "ratio_tubelab_vs_naive": round(best["clips_per_s"] / naive["clips_per_s"], 2) if naive else None,
        "tubelab_local_decode_actors": best_actors,
        "tubelab_local": {str(a): r for a, r in local.items()},
        "tubelab_s3": s3 if s3 else {"reason": s3_reason},
        "what_ifs": {name: {**r, "what": WHAT_IFS[name].what} for name, r in tried.items()},
        "decode_bound_runs": bench.bounds,
        "decode_bound_one_reader_per_clip": per_clip,
        "consumer_cpu_ms_per_clip": consumer,
        "naive": naive,
        "targets": {"vs_decode_bound": TARGET_VS_BOUND, "vs_naive": TARGET_VS_NAIVE},
        "settings": {
            "clips": args.clips, "warmup": args.warmup, "frames": FRAMES, "stride": STRIDE, "crop": CROP,
            "short_side": SHORT_SIDE, "batch_size": BATCH, "local_shuffle_buffer_size": 4 * BATCH,
            "train_videos": len(bench.rows["video"]), "clips_per_video": bench.clips_per_video,
            "decode_backend": args.backend, "procs": args.procs, "prepare_overrides": bench.base[1:],
            "shards": bench.url, "encode": bench.manifest["encode"]},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
    }


def print_summary(report: dict, bench: Bench) -> None:
    procs = bench.args.procs

    def row(what, r):
        log(f"  {what:<34}{r['clips_per_s']:8.1f}   {r['vs_decode_bound']:.2f}x bound   start-up "
            f"{r['per_epoch_startup_s']:4.1f} s/epoch   decode actors used {r.get('decode_actor_cores')} of "
            f"{os.cpu_count()} cores")

    log("\nclips/s (steady state; ratio to the decode bound measured right before and after each figure):")
    log(f"  {'decode bound (%d procs)' % procs:<34}{report['decode_bound_clips_per_s']:8.1f}   "
        f"(runs: {', '.join(str(b['clips_per_s']) for b in bench.bounds)})")
    for a, r in report["tubelab_local"].items():
        row(f"tubelab local, decode_actors={a}" + (" (cfg)" if int(a) == bench.config_actors else ""), r)
    s3 = report["tubelab_s3"]
    if "reason" in s3:
        log(f"  {'tubelab S3':<34}    null   ({s3['reason']})")
    else:
        row(f"tubelab S3, decode_actors={s3['decode_actors']}", s3)
    for name, r in report["what_ifs"].items():
        row(f"what-if {name}", r)
    if report["naive"]:
        log(f"  {'naive DataLoader (%d workers)' % procs:<34}{report['naive_clips_per_s']:8.1f}")
    log(f"tubelab/decode-bound = {report['ratio_tubelab_vs_decode_bound']:.2f} (target >= {TARGET_VS_BOUND}, "
        f"decode_actors={report['tubelab_local_decode_actors']})"
        + (f"; tubelab/naive = {report['ratio_tubelab_vs_naive']:.1f} (target >= {TARGET_VS_NAIVE})"
           if report["naive"] else ""))


def main(argv=None) -> dict:
    import ray

    args = parse_args(argv)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # per-operator progress lines every few seconds
    ray.data.DataContext.get_current().enable_progress_bars = False  # also while the data are prepared
    bench = Bench.prepare(args)
    load_before = os.getloadavg()
    per_clip = bench.decode_bound(rows_per_video=1)
    log(f"a') decode bound with one reader per clip (context): {per_clip['clips_per_s']} clips/s, "
        f"{per_clip['cpu_ms_per_clip']} ms CPU per clip")
    log("b) tubelab: shards -> Ray Data -> shuffled batches in the driver")
    bench.bound()
    local = measure_local(bench)
    wide = max(local)  # S3 and the what-ifs: the setting that can use every core
    s3, s3_reason = measure_s3(bench, wide)
    tried = {name: bench.tubelab([f"resources.decode_actors={wide}"], f"what-if {name}, decode_actors={wide}",
                                 WHAT_IFS[name]) for name in args.variants}
    naive = None if args.skip_naive else measure_naive(bench)
    consumer = consumer_cost(**({"clips": 160, "repeats": 1} if args.quick else {}))
    report = build_report(bench, per_clip, local, s3, s3_reason, tried, naive, consumer, load_before)
    print_summary(report, bench)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2, default=str))
        log(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
