"""Benchmark the tubelet engine: batched torch vs per-sample numpy, and vs decoding a clip.

    python jobs/benchmark_tubelets.py [--batch 32] [--seconds 60] [--out FILE]

Measured in one run, interleaved round by round so that load from other processes hits every
measurement alike; each figure is the median over rounds:
- batched: tubelab.tubelets.apply_tubelets on a batch of uint8 pairs (3 x 16 x 112 x 112, default
  config: 2 tubelets, non-linear motion, rotation), on CUDA when available. The headline figure is
  the call right after the other measurements (cold caches, fresh memory, as between training
  steps); a second call straight after it is reported as back to back;
- reference: the released code's per-sample algorithm re-implemented in numpy (below): one pair at a
  time, frame by frame; the patch and its mask resized to each frame's box, rotated/sheared onto an
  enlarged canvas, pasted with clipping, separately for each clip;
- fused reference: tubelab.tubelets.reference, the engine's maths per pair/tubelet/frame in numpy
  (one bilinear warp per frame and tubelet, shared by both clips): a stronger per-sample baseline;
- decode: decord.VideoReader(io.BytesIO(mp4), num_threads=1).get_batch(16 indices) on a synthetic
  170x128 H.264 clip (171 is odd, and 4:2:0 H.264 needs even sides), encoded in memory with PyAV
  with the project's settings (crf 23, veryfast, GOP 8, no B-frames); clip starts are random, stride 1
  (and, for the record, the paper's strides 1-4).
Both baselines get their parameters drawn ahead of time (not timed); the batched figure includes its
parameter draw, which is also timed on its own (tubelab.tubelets.params.sample_params for the batch)
to split the engine into drawing and pasting. CPU work runs on one thread (torch.set_num_threads(1))
for a per-core comparison.
"""

import argparse
import io
import json
import os
import platform
import statistics
import time

import av
import decord
import numpy as np
import torch

from tubelab.tubelets import apply_tubelets, load_tubelet_config
from tubelab.tubelets.params import sample_params
from tubelab.tubelets.reference import reference_paste

FRAMES, SIZE, VIDEO_W, VIDEO_H, VIDEO_FRAMES = 16, 112, 170, 128, 128


# ---- the released per-sample algorithm, numpy in place of cv2 ------------------------------------

def released_pair(a, b, p):
    """Tubelets onto one pair a, b (C, T, H, W) uint8, the released code's way; p: numpy params (N, T, ...)."""
    C, T, H, W = a.shape
    boxes = np.concatenate([p["center"] - p["size"] / 2, p["center"] + p["size"] / 2], -1).round().astype(int)
    boxes[..., 0::2], boxes[..., 1::2] = boxes[..., 0::2].clip(0, W), boxes[..., 1::2].clip(0, H)
    frames = [np.ascontiguousarray(clip.transpose(1, 2, 3, 0)) for clip in (a, b)]  # T x (H, W, C) images
    patches, alphas = [], []
    for n in range(len(boxes)):  # pick_patches / pick_alphas: resize the cut patch and mask to every frame
        x1, y1, x2, y2 = boxes[n, p["source_frame"][n]]
        crop = frames[0][p["source_frame"][n], y1:y2, x1:x2].astype(np.float32)
        base = _mask(x2 - x1, y2 - y1, p["mask"][n], p["edge"][n])
        sizes = [(max(x2 - x1, 1), max(y2 - y1, 1)) for x1, y1, x2, y2 in boxes[n]]
        patches.append([_resize(crop, w, h) for w, h in sizes])
        alphas.append([_resize(base[..., None], w, h)[..., 0] * p["opacity"][n, t] for t, (w, h) in enumerate(sizes)])
    out = []
    for clip in frames:  # _apply_image: frame by frame, tubelet by tubelet, for each clip
        result = []
        for t in range(T):
            img = clip[t].copy()
            for n in range(len(boxes)):
                if not p["active"][n, t] or min(patches[n][t].shape[:2]) == 0:
                    continue
                M = _matrix(p["angle"][n, t], p["shear"][n, t])
                patch, alpha = _warp_bound(patches[n][t], M), _warp_bound(alphas[n][t][..., None], M)
                cx, cy = (boxes[n, t, 0] + boxes[n, t, 2]) / 2, (boxes[n, t, 1] + boxes[n, t, 3]) / 2
                h, w = patch.shape[:2]
                x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
                fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
                if fx1 <= fx0 or fy1 <= fy0:
                    continue
                px, py = slice(fx0 - x0, fx1 - x0), slice(fy0 - y0, fy1 - y0)
                region = img[fy0:fy1, fx0:fx1].astype(np.float32)
                img[fy0:fy1, fx0:fx1] = np.round(region * (1 - alpha[py, px]) + patch[py, px] * alpha[py, px])
            result.append(img)
        out.append(np.stack(result).transpose(3, 0, 1, 2))
    return out


def _mask(w, h, kind, edge):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = np.abs(xs - (w - 1) // 2) / max(w, 1), np.abs(ys - (h - 1) // 2) / max(h, 1)
    d = [np.maximum(dx, dy), np.sqrt(dx ** 2 + dy ** 2), dx + dy][int(kind)]
    hard = np.ones_like(d) if kind == 0 else (d < 0.5).astype(np.float32)
    return hard * np.clip((0.5 - d) / max(edge, 1e-4), 0, 1) if edge > 1e-3 else hard


def _resize(image, w, h):
    """Bilinear resize of (h0, w0, C) to (h, w, C), cv2.resize's pixel-centre convention."""
    h0, w0 = image.shape[:2]
    x = np.clip((np.arange(w) + 0.5) * w0 / w - 0.5, 0, w0 - 1)
    y = np.clip((np.arange(h) + 0.5) * h0 / h - 0.5, 0, h0 - 1)
    return _bilinear(image, x[None, :].repeat(h, 0), y[:, None].repeat(w, 1), zero_outside=False)


def _matrix(angle, shear):
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    return np.array([[c, -s], [s, c]]) @ np.array([[1, shear[0]], [shear[1], shear[0] * shear[1] + 1]])


def _warp_bound(image, M):
    """imutils.rotate_bound / the released shear: warp about the centre onto a canvas holding it all."""
    if np.allclose(M, np.eye(2)):
        return image
    h, w = image.shape[:2]
    nw, nh = np.abs(M) @ np.array([w, h])
    nw, nh = int(np.ceil(nw)), int(np.ceil(nh))
    ys, xs = np.mgrid[0:nh, 0:nw] + 0.5
    inv = np.linalg.inv(M)
    sx = inv[0, 0] * (xs - nw / 2) + inv[0, 1] * (ys - nh / 2) + w / 2 - 0.5
    sy = inv[1, 0] * (xs - nw / 2) + inv[1, 1] * (ys - nh / 2) + h / 2 - 0.5
    return _bilinear(image, sx, sy, zero_outside=True)


def _bilinear(image, x, y, zero_outside):
    """image (h, w, C) at pixel coordinates x, y (pixel centres at integers)."""
    h, w = image.shape[:2]
    inside = (x > -1) & (x < w) & (y > -1) & (y < h)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    xa, xb, ya, yb = x0.clip(0, w - 1), (x0 + 1).clip(0, w - 1), y0.clip(0, h - 1), (y0 + 1).clip(0, h - 1)
    top = image[ya, xa] * (1 - fx) + image[ya, xb] * fx
    out = top * (1 - fy) + (image[yb, xa] * (1 - fx) + image[yb, xb] * fx) * fy
    return out * inside[..., None] if zero_outside else out


# ---- measurement ---------------------------------------------------------------------------------

def synthetic_mp4(seed=0):
    """An H.264 mp4 (bytes) of a textured scene panning under a moving object, with sensor noise."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (VIDEO_H // 8 + 40, VIDEO_W // 8 + 40, 3)).astype(np.float32)
    texture = np.kron(texture, np.ones((8, 8, 1), np.float32))  # blocky texture with real edges
    data = io.BytesIO()
    with av.open(data, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = VIDEO_W, VIDEO_H, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast", "g": "8", "keyint_min": "8", "sc_threshold": "0",
                          "bf": "0", "threads": "1"}
        for i in range(VIDEO_FRAMES):
            frame = texture[i:i + VIDEO_H, i * 2:i * 2 + VIDEO_W].copy()
            cx, cy = int(85 + 50 * np.sin(i / 9)), int(64 + 40 * np.cos(i / 7))
            frame[max(cy - 16, 0):cy + 16, max(cx - 16, 0):cx + 16] = (250, 200, 40)
            frame += rng.normal(0, 6, frame.shape)
            image = av.VideoFrame.from_ndarray(frame.clip(0, 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return data.getvalue()


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def decode_clip(data, rng, strides):
    stride = int(rng.choice(strides))
    start = int(rng.integers(0, VIDEO_FRAMES - (FRAMES - 1) * stride))
    reader = decord.VideoReader(io.BytesIO(data), num_threads=1)
    return reader.get_batch(list(range(start, start + FRAMES * stride, stride))).asnumpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60, help="time budget for the measuring rounds")
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument("--quick", action="store_true", help="seconds-long form for the test suite: batch 4, 1 s")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.seconds = 4, 1.0

    torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cfg = load_tubelet_config()
    shape = (args.batch, 3, FRAMES, SIZE, SIZE)
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.integers(0, 256, shape, dtype=np.uint8))
    b = torch.from_numpy(rng.integers(0, 256, shape, dtype=np.uint8))
    a_dev, b_dev = a.to(device), b.to(device)
    generator = torch.Generator(device).manual_seed(0)
    params = sample_params(torch.Generator().manual_seed(1), cfg, args.batch, FRAMES, SIZE, SIZE)
    pairs = [{k: v[i].numpy() for k, v in params.items()} for i in range(args.batch)]
    video = synthetic_mp4()

    def batched(_):
        apply_tubelets(a_dev, b_dev, cfg, generator)
        sync()

    per_round = 4  # pairs / clips per round for the per-sample measurements
    jobs = {  # name: (fn(picked pairs), items done); batched twice: after the other work, then again
        "batched": (batched, args.batch),
        "batched_warm": (batched, args.batch),
        "reference": (lambda picks: [released_pair(a[i].numpy(), b[i].numpy(), pairs[i]) for i in picks], per_round),
        "fused_reference": (lambda picks: [reference_paste(a[i].numpy(), b[i].numpy(), pairs[i]) for i in picks],
                            per_round),
        "sample": (lambda _: sample_params(generator, cfg, args.batch, FRAMES, SIZE, SIZE), args.batch),
        "decode": (lambda _: [decode_clip(video, rng, [1]) for _ in range(per_round)], per_round),
        "decode_paper_strides": (lambda _: [decode_clip(video, rng, [1, 2, 3, 4]) for _ in range(per_round)],
                                 per_round),
    }
    for fn, _ in jobs.values():  # warm up
        fn(range(per_round))
    times = {name: [] for name in jobs}
    deadline = time.perf_counter() + args.seconds
    while time.perf_counter() < deadline or len(times["batched"]) < 5:
        picks = rng.choice(args.batch, per_round, replace=False)
        for name, (fn, count) in jobs.items():
            start = time.perf_counter()
            fn(picks)
            times[name].append((time.perf_counter() - start) / count)
    per_item = {name: statistics.median(t) for name, t in times.items()}

    result = {
        "batched_pairs_per_s": 1 / per_item["batched"],
        "batched_pairs_per_s_back_to_back": 1 / per_item["batched_warm"],
        "batched_ms_per_pair": per_item["batched"] * 1e3,
        "sample_ms_per_pair": per_item["sample"] * 1e3,
        "decode_ms_per_clip": per_item["decode"] * 1e3,
        "reference_pairs_per_s": 1 / per_item["reference"],
        "fused_reference_pairs_per_s": 1 / per_item["fused_reference"],
        "decode_clips_per_s": 1 / per_item["decode"],
        "decode_clips_per_s_paper_strides": 1 / per_item["decode_paper_strides"],
        "speedup_vs_reference": per_item["reference"] / per_item["batched"],
        "speedup_vs_fused_reference": per_item["fused_reference"] / per_item["batched"],
        "engine_fraction_of_decode": per_item["batched"] / per_item["decode"],
        "engine_fraction_of_decode_paper_strides": per_item["batched"] / per_item["decode_paper_strides"],
        "device": device.type,
        "torch_threads": torch.get_num_threads(),
        "batch": args.batch,
        "clip": list(shape[1:]),
        "config": "tubelet/default (2 tubelets, nonlinear, rotation)",
        "rounds": len(times["batched"]),
        "video": {"width": VIDEO_W, "height": VIDEO_H, "frames": VIDEO_FRAMES, "fps": 25, "gop": 8,
                  "kbit_per_s": round(len(video) * 8 / (VIDEO_FRAMES / 25) / 1000)},
        "machine": f"{cpu_name()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch thread(s)",
        "torch": torch.__version__,
    }
    print(f"device {device.type}, {torch.get_num_threads()} thread(s), batch {args.batch}, "
          f"{result['rounds']} rounds")
    print(f"batched          {result['batched_pairs_per_s']:8.1f} pairs/s  "
          f"({per_item['batched'] * 1e3:.2f} ms/pair; back to back {per_item['batched_warm'] * 1e3:.2f} ms/pair)")
    print(f"  of which draw  {per_item['sample'] * 1e3:8.3f} ms/pair (sample_params alone)")
    print(f"reference        {result['reference_pairs_per_s']:8.1f} pairs/s  "
          f"({per_item['reference'] * 1e3:.2f} ms/pair)  speedup {result['speedup_vs_reference']:.1f}x")
    print(f"fused reference  {result['fused_reference_pairs_per_s']:8.1f} pairs/s  "
          f"({per_item['fused_reference'] * 1e3:.2f} ms/pair)  speedup {result['speedup_vs_fused_reference']:.1f}x")
    print(f"decode           {result['decode_clips_per_s']:8.1f} clips/s  ({per_item['decode'] * 1e3:.2f} ms/clip)"
          f"  engine/decode {result['engine_fraction_of_decode']:.0%}")
    print(f"decode (1-4)     {result['decode_clips_per_s_paper_strides']:8.1f} clips/s  "
          f"({per_item['decode_paper_strides'] * 1e3:.2f} ms/clip)  "
          f"engine/decode {result['engine_fraction_of_decode_paper_strides']:.0%}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
