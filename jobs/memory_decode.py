"""Decode-actor memory check: does a long-lived decoding process grow in memory?

    python jobs/memory_decode.py [--clips 5000] [--every 100] [--clips-per-video 10] [--backends decord pyav]
                                 [--out FILE.json] [--check]

decord is unmaintained and its readers are known to grow in memory when reused. tubelab opens one
reader per video and releases it (tubelab.data.decoders). This job runs tubelab's ClipDecoder as a
decode actor does (calls of 2 videos, `--clips-per-video` train clips of each decoded with one reader;
16 frames at stride 2, random start, 64 px crop) in ONE process per backend, like a Ray Data decode
actor that lives for a whole run, until `--clips` clips, and samples the process's resident memory
(RSS, /proc/self/statm) every `--every` clips.

Reported per backend: peak RSS, RSS at 10% of the clips and at the end, and the slope of RSS over
the second half (least squares, MB per 1,000 clips). Flat means a second-half slope < 1 MB per 1,000
clips. With --out: the figures as JSON, and a PNG of RSS vs clips beside it (same name, .png).

Data: the built-in synthetic dataset at its default size (160x120 sources, 48 frames, re-encoded to
short side 72, GOP 8), prepared once by `tubelab.data.prepare.prepare` under the benchmark state dir
(--home, default .tubelab/bench/memory) and reused by later runs. Each backend runs in a fresh
process (spawned after the shards are read), one after the other.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAMES, STRIDE, CROP = 16, 2, 64
FLAT_MB_PER_1000 = 1.0


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load_train_rows(home: str) -> dict[str, np.ndarray]:
    """The train split's columns a decode actor reads, from the default synthetic shards (prepared if missing)."""
    import ray

    from tubelab import config
    from tubelab.data.pipeline import DECODE_COLUMNS
    from tubelab.data.prepare import prepare
    from tubelab.data.shards import read_split

    started = not ray.is_initialized()
    manifest, url = prepare(config.load("prepare", [f"home={home}"]), progress=False)
    if started and ray.is_initialized():
        ray.shutdown()  # the decode processes below must not share the machine with an idle Ray
    table = read_split(manifest, url, "train", DECODE_COLUMNS)
    return {c: table[c].to_numpy(zero_copy_only=False) for c in DECODE_COLUMNS}


def decode_loop(backend: str, rows: dict, clips: int, every: int, clips_per_video: int, seed: int) -> dict:
    """Runs in a fresh process: decode `clips` clips with ClipDecoder, sampling RSS every `every` clips."""
    from tubelab.data.decode import ClipDecoder

    decoder = ClipDecoder(frames=FRAMES, strides=[STRIDE], crop=CROP, rows_per_video=clips_per_video,
                          mode="train", seed=seed, backend=backend)
    rng = np.random.default_rng(seed)
    samples = [(0, rss_mb())]
    started = time.monotonic()
    checksum = done = 0
    while done < clips:
        pick = rng.integers(len(rows["video"]), size=2)  # one map_batches call: 2 videos
        out = decoder({k: v[pick] for k, v in rows.items()})["clip"]
        checksum += int(out[0, 0, 0, 0, 0, 0])  # use the clips, then drop them (an actor hands them on)
        if (done + len(out)) // every > done // every:
            samples.append((done + len(out), rss_mb()))
        done += len(out)
    return {"samples": samples, "seconds": time.monotonic() - started, "checksum": checksum, "clips": done}


def _child(backend, rows, clips, every, clips_per_video, seed, queue):
    try:
        queue.put(decode_loop(backend, rows, clips, every, clips_per_video, seed))
    except BaseException as e:  # report, do not hang the parent
        queue.put({"error": f"{type(e).__name__}: {e}"})


def summarise(samples: list[tuple[int, float]], clips: int) -> dict:
    x = np.array([s[0] for s in samples], dtype=float)
    y = np.array([s[1] for s in samples], dtype=float)
    tenth = y[np.searchsorted(x, clips * 0.1)]
    half = x >= clips / 2
    slope = float(np.polyfit(x[half], y[half], 1)[0] * 1000)
    first = x >= clips * 0.1
    return {
        "rss_start_mb": round(float(y[0]), 1),
        "rss_at_10pct_mb": round(float(tenth), 1),
        "rss_end_mb": round(float(y[-1]), 1),
        "rss_peak_mb": round(float(y.max()), 1),
        "growth_10pct_to_end_mb": round(float(y[-1] - tenth), 2),
        "slope_second_half_mb_per_1000_clips": round(slope, 3),
        "slope_from_10pct_mb_per_1000_clips": round(float(np.polyfit(x[first], y[first], 1)[0] * 1000), 3),
        "flat": bool(slope < FLAT_MB_PER_1000),
    }


def plot(results: dict, path: Path, clips: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for backend, r in results.items():
        x, y = zip(*r["samples"])
        s = r["summary"]
        ax.plot(x, y, label=f"{backend}: peak {s['rss_peak_mb']:.0f} MB, second-half slope "
                            f"{s['slope_second_half_mb_per_1000_clips']:+.2f} MB/1k clips")
    ax.axvline(clips * 0.1, color="grey", lw=0.8, ls=":")
    ax.axvline(clips / 2, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("clips decoded in one process")
    ax.set_ylabel("RSS (MB)")
    ax.set_title(f"Decode-process memory: ClipDecoder, {FRAMES} frames at stride {STRIDE}, one reader per video")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> dict:
    from tubelab.data.decoders import BACKENDS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=5000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--clips-per-video", type=int, default=10, help="clips per video per decode (SEVERE's epoch: 10)")
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    ap.add_argument("--home", default=str(ROOT / ".tubelab" / "bench" / "memory"),
                    help="benchmark state dir (generated sources and shards, reused)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write JSON here and the RSS plot beside it (.png)")
    ap.add_argument("--check", action="store_true", help="exit 1 if any backend's memory grows (make soak)")
    args = ap.parse_args(argv)
    if args.clips < 10 * args.every:
        ap.error("--clips must be at least 10 x --every")

    rows = load_train_rows(str(Path(args.home).resolve()))
    print(f"{len(rows['video'])} train videos, {np.mean([len(d) for d in rows['video']]) / 1024:.1f} KiB each on "
          f"average; {args.clips} clips of {FRAMES} frames at stride {STRIDE}, crop {CROP}, "
          f"{args.clips_per_video} per video per decode, per backend")
    ctx = mp.get_context("spawn")  # a fresh interpreter per backend: no reader or library state inherited
    results = {}
    for backend in args.backends:
        queue = ctx.Queue()
        proc = ctx.Process(target=_child,
                           args=(backend, rows, args.clips, args.every, args.clips_per_video, args.seed, queue))
        proc.start()
        out = queue.get()
        proc.join()
        if "error" in out:
            raise RuntimeError(f"{backend} decode process failed: {out['error']}")
        out["summary"] = summarise(out["samples"], args.clips)
        out["clips_per_s"] = round(out["clips"] / out["seconds"], 1)
        results[backend] = out
        s = out["summary"]
        print(f"{backend:>6}: peak RSS {s['rss_peak_mb']:.1f} MB; RSS at 10% {s['rss_at_10pct_mb']:.1f} MB, "
              f"at the end {s['rss_end_mb']:.1f} MB ({s['growth_10pct_to_end_mb']:+.2f} MB); second-half slope "
              f"{s['slope_second_half_mb_per_1000_clips']:+.3f} MB per 1,000 clips -> "
              f"{'flat' if s['flat'] else 'GROWING'} (threshold {FLAT_MB_PER_1000} MB/1k); "
              f"{out['clips_per_s']} clips/s")

    report = {
        "clips": args.clips, "every": args.every, "frames": FRAMES, "stride": STRIDE, "crop": CROP,
        "clips_per_video": args.clips_per_video, "videos": len(rows["video"]),
        "flat_threshold_mb_per_1000_clips": FLAT_MB_PER_1000,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average": os.getloadavg()},
        "backends": {b: {**r["summary"], "clips_per_s": r["clips_per_s"], "samples": r["samples"]}
                     for b, r in results.items()},
    }
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        plot(results, out.with_suffix(".png"), args.clips)
        print(f"wrote {out} and {out.with_suffix('.png')}")
    growing = [b for b, r in results.items() if not r["summary"]["flat"]]
    if args.check and growing:
        raise SystemExit(f"decode memory grows with {', '.join(growing)} (see the figures above)")
    return report


if __name__ == "__main__":
    main()
