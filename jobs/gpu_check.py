"""GPU proof: what tubelab's torch core does on one GPU node, measured in one run.

    python jobs/gpu_check.py --kit .gpu-kit --out OUT [--budget-s 420] [--device cuda] [--quick]

It imports the torch-only core (models, objectives, tubelets), the plain training steps
(tubelab.training.steps) and ClipDecoder (numpy + decord), plus numpy and pyarrow; never ray, mlflow
or hydra, so it runs on a bare GPU image with the kit's wheels (`make gpu-kit`, README "Benchmarks").
Sections run in priority order; each is skipped, and listed as such, once the budget is spent:
  tests      the core's unit tests with CUDA (pytest subprocess; the CUDA overlay test must run)
  ceiling    bf16 8192^3 matmul TFLOP/s, beside the datasheet's 989
  pretrain   the production step (R(2+1)D-18, 16x112x112, MoCo-v2 queue 16384, tubelets on the GPU):
             precision x channels_last_3d x torch.compile x per-GPU batch -> clips/s, MFU, peak memory
  finetune   the SEVERE step (32x112x112 classification, bf16)
  tubelets   apply_tubelets pairs/s at batch 64-256 and its share of a step; a plain full-frame blend
  decode     decord clips/s per core on the kit's shards at 1/4/8/16 processes -> decode cores per GPU
  e2e        decode processes -> pinned memory -> GPU tubelets -> step, against in-memory input
Throughput is timed over whole steps between two device synchronisations after warm-up; FLOPs come
from torch.utils.flop_counter over one eager step (query forward + backward, key forward, the queue).
Writes gpu_check.json and gpu_check.md to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

from tubelab.data.decode import ClipDecoder  # noqa: E402
from tubelab.models import build_model  # noqa: E402
from tubelab.objectives.moco import MoCo  # noqa: E402
from tubelab.training import steps  # noqa: E402
from tubelab.tubelets import apply_tubelets, load_tubelet_config  # noqa: E402
from tubelab.tubelets.pairs import make_pair  # noqa: E402
from tubelab.tubelets.params import sample_params  # noqa: E402

CONF = ROOT / "platform" / "tubelab" / "conf"
DATASHEET_BF16_TFLOPS = 989.0  # H100/H200 SXM dense bf16
CORE_TESTS = ["tests/unit/tubelets/test_tubelets_overlay.py", "tests/unit/tubelets/test_tubelets_params.py",
              "tests/unit/tubelets/test_tubelets_pairs.py", "tests/unit/models", "tests/unit/objectives",
              "tests/unit/training/test_training_steps.py"]


class Budget:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate(fn, device, warmup: int, seconds: float, min_iters: int = 3) -> tuple[float, int]:
    """Calls per second of fn() after `warmup` calls, timed between two synchronisations."""
    for _ in range(warmup):
        fn()
    sync(device)
    n, start = 0, time.perf_counter()
    while n < min_iters or time.perf_counter() - start < seconds:
        fn()
        n += 1
        if n % 4 == 0:
            sync(device)
    sync(device)
    return n / (time.perf_counter() - start), n


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def peak_gb(device) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None


def reset_device(device) -> None:
    torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# ---- recipes, read from the project's configs (OmegaConf only: no Hydra on the GPU image) -----------

def recipe(name: str) -> OmegaConf:
    cfg = OmegaConf.load(CONF / name)
    cfg.pop("defaults", None)
    return cfg


def pretrain_recipe(quick: bool):
    p = recipe("pretrain/tiny.yaml")
    if not quick:
        p = OmegaConf.merge(p, recipe("pretrain/paper.yaml"))
    return p


# ---- sections ---------------------------------------------------------------------------------------

def run_tests(device) -> dict:
    """The core's unit tests in a subprocess (no conftest: the services fixtures need the full stack)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT / "tests"),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "--noconftest", "-p", "no:cacheprovider",
                           *CORE_TESTS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    lines = proc.stdout.splitlines()
    cuda_tests = [ln for ln in lines if "cuda" in ln.lower() and ln.startswith(("PASSED", "FAILED", "SKIPPED"))]
    return {"returncode": proc.returncode, "summary": lines[-1] if lines else proc.stderr[-500:],
            "cuda_tests": cuda_tests, "failures": [ln for ln in lines if ln.startswith("FAILED")][:10]}


def matmul_ceiling(device, quick: bool) -> dict:
    n = 1024 if quick else 8192
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    per_s, _ = rate(lambda: a @ b, device, warmup=3, seconds=1 if quick else 3, min_iters=10)
    return {"n": n, "dtype": str(dtype), "tflops": round(2 * n**3 * per_s / 1e12, 3),
            "datasheet_tflops": DATASHEET_BF16_TFLOPS}


def pretrain_case(device, p, model_name: str, batch: int, precision: str, channels_last: bool, compile: bool,
                  seconds: float) -> dict:
    """One configuration of the production pretraining step on resident uint8 clips."""
    reset_device(device)
    torch.manual_seed(0)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    moco = MoCo(build_model({"name": model_name}, num_classes=1), dim=p.moco.dim, queue=p.moco.queue,
                momentum=p.moco.momentum, temperature=p.moco.temperature, bn_splits=p.moco.bn_splits)
    moco = moco.to(device, memory_format=fmt)
    params = [x for x in moco.parameters() if x.requires_grad]
    opt = torch.optim.SGD(params, lr=p.optimizer.lr, momentum=p.optimizer.momentum,
                          weight_decay=p.optimizer.weight_decay)
    tubelet = load_tubelet_config("default")
    clip = p.clip
    clips = torch.randint(0, 256, (batch, 1, 3, clip.frames, clip.crop, clip.crop), dtype=torch.uint8, device=device)
    keys = torch.arange(batch, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step():
        query, key, _ = make_pair(clips, keys, tubelet, gen)
        return steps.pretrain_step(moco, opt, query, key, jitter=p.colour_jitter, generator=gen, autocast_dtype=dtype,
                                   memory_format=fmt, grad_clip=p.optimizer.grad_clip)

    flops = count_flops(step)  # eager, before compiling
    if compile:
        moco.encoder_q.compile()
        moco.encoder_k.compile()
    started = time.perf_counter()
    step()
    sync(device)
    first_s = time.perf_counter() - started
    per_s, n = rate(step, device, warmup=2, seconds=seconds)
    return {"batch": batch, "precision": precision, "channels_last": channels_last, "compile": compile,
            "clips_per_s": round(batch * per_s, 1), "step_ms": round(1000 / per_s, 2), "steps_timed": n,
            "flops_per_step": flops, "achieved_tflops": round(flops * per_s / 1e12, 3),
            "first_step_s": round(first_s, 1), "peak_memory_gb": peak_gb(device)}


def finetune_case(device, model_name: str, frames: int, crop: int, batch: int, precision: str, channels_last: bool,
                  seconds: float) -> dict:
    reset_device(device)
    torch.manual_seed(0)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    net = build_model({"name": model_name}, num_classes=101).to(device, memory_format=fmt)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    clips = torch.randint(0, 256, (batch, 3, frames, crop, crop), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 101, (batch,), device=device)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step():
        return steps.finetune_step(net, opt, clips, labels, "single_label", autocast_dtype=dtype, memory_format=fmt)

    flops = count_flops(step)
    per_s, n = rate(step, device, warmup=2, seconds=seconds)
    return {"batch": batch, "frames": frames, "precision": precision, "channels_last": channels_last,
            "clips_per_s": round(batch * per_s, 1), "step_ms": round(1000 / per_s, 2), "steps_timed": n,
            "flops_per_step": flops, "achieved_tflops": round(flops * per_s / 1e12, 3),
            "peak_memory_gb": peak_gb(device)}


def plain_blend(a, b, params):
    """A cost model of the plain blend: every tubelet's patch (source frame + mask) warped over WHOLE
    frames with affine_grid + grid_sample, alpha-blended into both clips. Same work shape as
    tubelets.overlay.paste, not the same pixels (edges and masks are simplified): it times the approach."""
    B, C, T, H, W = a.shape
    N = params["center"].shape[1]
    dev = a.device
    src = a[torch.arange(B, device=dev)[:, None], :, params["source_frame"]].float()  # (B, N, C, H, W)
    patch = torch.cat([src, torch.ones_like(src[:, :, :1])], 2).flatten(0, 1)  # (B*N, C+1, H, W): colour, mask
    theta = torch.zeros(B, N, T, 2, 3, device=dev)
    rad = params["angle"] * math.pi / 180
    scale = params["size"] / torch.tensor([W, H], device=dev)
    theta[..., 0, 0], theta[..., 0, 1] = torch.cos(rad) / scale[..., 0], -torch.sin(rad) / scale[..., 0]
    theta[..., 1, 0], theta[..., 1, 1] = torch.sin(rad) / scale[..., 1], torch.cos(rad) / scale[..., 1]
    theta[..., 0, 2] = -(2 * params["center"][..., 0] / W - 1) / scale[..., 0]
    theta[..., 1, 2] = -(2 * params["center"][..., 1] / H - 1) / scale[..., 1]
    grid = torch.nn.functional.affine_grid(theta.flatten(0, 2), (B * N * T, C + 1, H, W), align_corners=False)
    warped = torch.nn.functional.grid_sample(patch.repeat_interleave(T, 0), grid, align_corners=False)
    warped = warped.view(B, N, T, C + 1, H, W)
    out_a, out_b = a.float(), b.float()
    for n in range(N):
        alpha = warped[:, n, :, C:].transpose(1, 2) * params["opacity"][:, n, None, :, None, None]
        colour = warped[:, n, :, :C].transpose(1, 2)
        out_a = out_a + alpha * (colour - out_a)
        out_b = out_b + alpha * (colour - out_b)
    return out_a.round().clamp(0, 255).to(a.dtype), out_b.round().clamp(0, 255).to(b.dtype)


def tubelet_cases(device, frames: int, crop: int, batches: list[int], seconds: float) -> list[dict]:
    cfg = load_tubelet_config("default")
    out = []
    for batch in batches:
        reset_device(device)
        a = torch.randint(0, 256, (batch, 3, frames, crop, crop), dtype=torch.uint8, device=device)
        b = torch.randint(0, 256, a.shape, dtype=torch.uint8, device=device)
        gen = torch.Generator(device=device).manual_seed(0)
        per_s, _ = rate(lambda: apply_tubelets(a, b, cfg, gen), device, warmup=2, seconds=seconds)
        params = {k: v.to(device) for k, v in sample_params(gen, cfg, batch, frames, crop, crop).items()}
        plain_s, _ = rate(lambda: plain_blend(a, b, params), device, warmup=2, seconds=seconds)
        draw_s, _ = rate(lambda: sample_params(gen, cfg, batch, frames, crop, crop), device, warmup=2,
                         seconds=seconds / 2)
        out.append({"batch": batch, "pairs_per_s": round(batch * per_s, 1), "ms": round(1000 / per_s, 2),
                    "param_draw_ms": round(1000 / draw_s, 2), "plain_blend_ms": round(1000 / plain_s, 2)})
    return out


# ---- decoding on the CPU cores ----------------------------------------------------------------------

def kit_rows(kit: Path) -> dict:
    manifest = json.loads((kit / "shards" / "manifest.json").read_text())
    paths = [kit / "shards" / name for name in manifest["splits"]["train"]["shards"]]
    cols = ["video_id", "video", "num_frames", "label"]
    table = pa.concat_tables([pq.read_table(path, columns=cols) for path in paths])
    return {c: table.column(c).to_numpy(zero_copy_only=False) for c in cols}


def decode_worker(args) -> tuple[int, float]:
    """In a fresh process: decode clips from the kit for `seconds`; returns (clips, seconds)."""
    kit, decoder_args, seconds, seed = args
    torch.set_num_threads(1)
    rows = kit_rows(Path(kit))
    decoder = ClipDecoder(seed=seed, **decoder_args)
    rng = np.random.default_rng(seed)
    decoder(pick(rows, rng, 2))  # warm-up
    clips, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        clips += len(decoder(pick(rows, rng, 2))["clip"]) * decoder.clips_per_row
    return clips, time.perf_counter() - start


def pick(rows: dict, rng, n: int) -> dict:
    idx = rng.choice(len(rows["video"]), n, replace=False)
    return {k: v[idx] for k, v in rows.items()}


def decode_cases(kit: Path, clip_kinds: dict, procs: list[int], seconds: float) -> list[dict]:
    out = []
    ctx = mp.get_context("spawn")  # decord readers must not cross a fork
    for n in procs:
        with ctx.Pool(n) as pool:
            for kind, decoder_args in clip_kinds.items():
                results = pool.map(decode_worker, [(str(kit), decoder_args, seconds, i) for i in range(n)])
                total = sum(c / s for c, s in results)
                out.append({"clips": kind, "processes": n, "clips_per_s": round(total, 1),
                            "clips_per_s_per_process": round(total / n, 1)})
    return out


class KitClips(torch.utils.data.IterableDataset):
    """Batches of decoded pretraining clips from the kit, decoded in DataLoader worker processes."""

    def __init__(self, kit: str, decoder_args: dict, batch: int):
        self.kit, self.decoder_args, self.batch = kit, decoder_args, batch

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        seed = info.id if info else 0
        torch.set_num_threads(1)
        rows, rng = kit_rows(Path(self.kit)), np.random.default_rng(seed)
        decoder = ClipDecoder(seed=seed, **self.decoder_args)
        while True:
            out = decoder(pick(rows, rng, self.batch))
            yield {"clip": torch.from_numpy(out["clip"]), "video_key": torch.from_numpy(out["video_key"])}


def e2e_case(device, p, model_name: str, kit: Path, decoder_args: dict, batch: int, workers: int, precision: str,
             channels_last: bool, seconds: float) -> dict:
    """The node-local loop (decode workers -> pinned memory -> GPU tubelets -> step) and the same step fed
    one resident batch, on one model, measured back to back: stall ratio = pipeline / in-memory clips/s."""
    reset_device(device)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    moco = MoCo(build_model({"name": model_name}, num_classes=1), dim=p.moco.dim, queue=p.moco.queue,
                momentum=p.moco.momentum, temperature=p.moco.temperature, bn_splits=p.moco.bn_splits).to(device,
                                                                                                         memory_format=fmt)
    opt = torch.optim.SGD([x for x in moco.parameters() if x.requires_grad], lr=p.optimizer.lr, momentum=0.9)
    tubelet, gen = load_tubelet_config("default"), torch.Generator(device=device).manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step(batch_):
        clips = steps.to_model_input(batch_["clip"], device)
        query, key, _ = make_pair(clips, batch_["video_key"].to(device, non_blocking=True), tubelet, gen)
        steps.pretrain_step(moco, opt, query, key, jitter=p.colour_jitter, generator=gen, autocast_dtype=dtype,
                            memory_format=fmt, grad_clip=p.optimizer.grad_clip)

    loader = torch.utils.data.DataLoader(KitClips(str(kit), decoder_args, batch), batch_size=None,
                                         num_workers=workers, pin_memory=device.type == "cuda", prefetch_factor=4,
                                         multiprocessing_context="spawn", persistent_workers=False)
    it = iter(loader)
    for _ in range(3):  # workers start, first batches
        step(next(it))
    sync(device)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or n < 3:
        step(next(it))
        n += 1
    sync(device)
    pipeline = batch * n / (time.perf_counter() - start)
    resident = {k: v.to(device) for k, v in next(it).items()}
    del it, loader
    per_s, _ = rate(lambda: step(resident), device, warmup=1, seconds=seconds / 2)
    memory = batch * per_s
    return {"batch": batch, "decode_workers": workers, "pipeline_clips_per_s": round(pipeline, 1),
            "in_memory_clips_per_s": round(memory, 1), "stall_ratio": round(pipeline / memory, 3)}


# ---- the run ----------------------------------------------------------------------------------------

def section(results: dict, name: str, budget: Budget, need_s: float, fn):
    """Run fn() into results[name] if the budget has need_s left; errors are recorded, not raised."""
    if budget.left() < need_s:
        results["skipped"].append(f"{name}: {budget.left():.0f} s left of the budget, needs ~{need_s:.0f} s")
        return None
    started = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as e:  # one failing section must not lose the others' figures
        results["errors"][name] = f"{type(e).__name__}: {e}"[:2000]
    print(f"[gpu_check] {name}: {time.perf_counter() - started:.1f} s", flush=True)
    return results.get(name)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kit", default=".gpu-kit", help="folder made by `make gpu-kit` (shards/ with manifest.json)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget-s", type=float, default=420)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="tiny model and clips: checks the script, not the machine")
    args = ap.parse_args(argv)
    budget, device, quick, kit = Budget(args.budget_s), torch.device(args.device), args.quick, Path(args.kit)
    gpu = device.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
    started = time.perf_counter()
    results = {"env": {"torch": torch.__version__, "device": torch.cuda.get_device_name() if gpu else "cpu",
                       "cuda": torch.version.cuda, "cpu_cores": os.cpu_count(), "quick": quick,
                       "budget_s": args.budget_s, "cudnn_benchmark": gpu},
               "skipped": [], "errors": {}}
    p = pretrain_recipe(quick)
    if quick:
        p.clip.frames, p.clip.crop, p.moco.queue = 8, 48, 64
    model = "r2plus1d_tiny" if quick else "r2plus1d_18"
    seconds = 0.5 if quick else 4.0
    severe = OmegaConf.merge(recipe("setting/_severe.yaml"), {"clip": {"frames": 12, "crop": 48}} if quick else {})
    clip_kinds = {
        "pretrain": {"frames": p.clip.frames, "strides": list(p.clip.strides), "crop": p.clip.crop,
                     "flip": True, "jitter": bool(p.clip.jitter)},
        "severe": {"frames": severe.clip.frames, "strides": list(severe.clip.strides), "crop": severe.clip.crop,
                   "flip": True, "resized_crop": tuple(severe.clip.resized_crop), "rows_per_video": 10},
    }
    base_batch = 4 if quick else 64
    bf16 = "bf16" if gpu else "fp32"

    if gpu:
        section(results, "tests", budget, 60, lambda: run_tests(device))
    ceiling = section(results, "ceiling", budget, 10, lambda: matmul_ceiling(device, quick))
    cases = results["pretrain"] = []
    plan = [(base_batch, bf16, gpu, False)] + ([(base_batch, "fp32", False, False), (base_batch, "bf16", False, False)]
                                               if gpu else [])
    for batch, precision, cl, comp in plan:
        section(results, "_case", budget, 20, lambda: pretrain_case(device, p, model, batch, precision, cl, comp,
                                                                     seconds))
        if "_case" in results:
            cases.append(results.pop("_case"))
    section(results, "tubelets", budget, 20,
            lambda: tubelet_cases(device, p.clip.frames, p.clip.crop, [4, 8] if quick else [64, 128, 256], seconds))
    section(results, "finetune", budget, 20, lambda: [
        finetune_case(device, model, severe.clip.frames, severe.clip.crop, 2 if quick else 32, bf16, gpu, seconds)])
    procs = [1, 2] if quick else [p_ for p_ in (1, 4, 8, 16) if p_ <= (os.cpu_count() or 1)]
    section(results, "decode", budget, 40, lambda: decode_cases(kit, clip_kinds, procs, 1.0 if quick else 4.0))
    workers = 1 if quick else max(1, min(15, (os.cpu_count() or 2) - 1))
    section(results, "e2e", budget, 60, lambda: e2e_case(device, p, model, kit, clip_kinds["pretrain"], base_batch,
                                                         workers, bf16, gpu, 2.0 if quick else 15.0))
    if gpu:  # the rest of the matrix, as the budget allows: compile, then the per-GPU batch
        for batch, precision, cl, comp in [(base_batch, "bf16", True, True), (32, "bf16", True, False),
                                           (128, "bf16", True, False)]:
            section(results, "_case", budget, 150 if comp else 25,
                    lambda: pretrain_case(device, p, model, batch, precision, cl, comp, seconds))
            if "_case" in results:
                cases.append(results.pop("_case"))
    summarise(results, ceiling)
    results["imported"] = sorted({m.split(".")[0] for m in sys.modules})
    results["wall_s"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    (out / "gpu_check.md").write_text(markdown(results))
    print(markdown(results))
    return results


def summarise(results: dict, ceiling: dict | None) -> None:
    """MFU per case against both ceilings, and the targets of the GPU-proof issue."""
    measured = ceiling["tflops"] if ceiling else None
    for case in results["pretrain"] + results.get("finetune", []):
        case["mfu_measured"] = round(case["achieved_tflops"] / measured, 3) if measured else None
        case["mfu_datasheet"] = round(case["achieved_tflops"] / DATASHEET_BF16_TFLOPS, 3)
    best = max(results["pretrain"], key=lambda c: c["clips_per_s"], default=None)
    targets = {}
    if best:
        targets["pretrain_mfu_vs_measured"] = {"value": best["mfu_measured"], "target": 0.35, "case": best}
        tub = next((t for t in results.get("tubelets", []) if t["batch"] == best["batch"]), None)
        if tub:
            share = tub["ms"] / best["step_ms"]
            targets["tubelet_share_of_step"] = {"value": round(share, 3), "target": 0.05}
        per_core = [d for d in results.get("decode", []) if d["clips"] == "pretrain"]
        if per_core:
            widest = max(per_core, key=lambda d: d["processes"])
            targets["decode_cores_per_gpu"] = {
                "value": round(best["clips_per_s"] / widest["clips_per_s_per_process"], 1),
                "per_core_clips_per_s": widest["clips_per_s_per_process"], "at_processes": widest["processes"]}
    if "e2e" in results:
        targets["stall_ratio"] = {"value": results["e2e"]["stall_ratio"], "target": 0.95}
    results["targets"] = targets


def markdown(r: dict) -> str:
    lines = [f"# gpu_check on {r['env']['device']} (torch {r['env']['torch']}, {r['env']['cpu_cores']} cores)", ""]
    if "ceiling" in r:
        c = r["ceiling"]
        lines += [f"matmul {c['n']}^3 {c['dtype']}: {c['tflops']} TFLOP/s (datasheet {c['datasheet_tflops']})", ""]
    lines += ["| step | batch | precision | channels_last | compile | clips/s | step ms | TFLOP/s | MFU meas. | "
              "MFU sheet | peak GB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind in ("pretrain", "finetune"):
        for c in r.get(kind, []):
            lines.append(f"| {kind} | {c['batch']} | {c['precision']} | {c['channels_last']} | {c.get('compile', False)} "
                         f"| {c['clips_per_s']} | {c['step_ms']} | {c['achieved_tflops']} | {c.get('mfu_measured')} "
                         f"| {c.get('mfu_datasheet')} | {c['peak_memory_gb']} |")
    for t in r.get("tubelets", []):
        lines.append(f"\ntubelets batch {t['batch']}: {t['pairs_per_s']} pairs/s ({t['ms']} ms; draw "
                     f"{t['param_draw_ms']} ms; plain full-frame blend {t['plain_blend_ms']} ms)")
    for d in r.get("decode", []):
        lines.append(f"\ndecode {d['clips']} x {d['processes']} processes: {d['clips_per_s']} clips/s "
                     f"({d['clips_per_s_per_process']} per process)")
    if "e2e" in r:
        lines.append(f"\ne2e: {r['e2e']}")
    lines += ["", f"targets: {json.dumps(r['targets'], default=str)}", f"tests: {r.get('tests')}",
              f"skipped: {r['skipped']}", f"errors: {r['errors']}", f"wall: {r.get('wall_s')} s"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
