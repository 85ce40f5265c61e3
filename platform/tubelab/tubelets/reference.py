"""Per-sample reference of the batched engine: the same maths, one pair, tubelet and frame at a time.

For each frame the patch (clip A's source box plus its mask as an alpha channel) is warped onto the
frame by a numpy bilinear sampler over the bounding box of the transformed box, then blended into
both clips. It takes the parameters of overlay.paste, so the two agree to rounding: the tests use it
as an oracle, and jobs/benchmark_tubelets.py times it as the fused per-sample baseline.
"""

import numpy as np


def reference_paste(a, b, p):
    """Pasted copies of one pair a, b (C, T, H, W) numpy; p: numpy params of that pair (N, T, ...)."""
    a_out, b_out = a.copy(), b.copy()
    C, T, H, W = a.shape
    for n in range(len(p["center"])):
        src = a[:, p["source_frame"][n]].astype(np.float32)
        patch = np.concatenate([src, _mask(p["source_center"][n], p["source_size"][n], p["mask"][n],
                                           p["edge"][n], H, W)[None]])
        for t in range(T):
            if not p["active"][n, t]:
                continue
            M = _rotation(p["angle"][n, t]) @ _shear(p["shear"][n, t])
            center, size = p["center"][n, t], p["size"][n, t]
            reach = np.abs(M) @ (size / 2)
            x0, y0 = np.maximum(np.floor(center - reach), 0).astype(int)
            x1, y1 = np.minimum(np.ceil(center + reach), [W, H]).astype(int)
            if x1 <= x0 or y1 <= y0:
                continue
            ys, xs = np.mgrid[y0:y1, x0:x1] + 0.5
            d = np.stack([xs - center[0], ys - center[1]])
            u = np.einsum("ij,jhw->ihw", np.diag(2 / size) @ np.linalg.inv(M), d)
            q = p["source_center"][n][:, None, None] + u * (p["source_size"][n] / 2)[:, None, None]
            rgba = _bilinear(patch, q[0], q[1])
            alpha = rgba[C] * p["opacity"][n, t] * (np.abs(u).max(0) <= 1)
            for clip in (a_out, b_out):
                region = clip[:, t, y0:y1, x0:x1].astype(np.float32)
                mixed = region * (1 - alpha) + rgba[:C] * alpha
                clip[:, t, y0:y1, x0:x1] = np.round(mixed) if clip.dtype == np.uint8 else mixed
    return a_out, b_out


def _rotation(degrees):
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    return np.array([[c, -s], [s, c]])


def _shear(sxy):
    sx, sy = sxy
    return np.array([[1, sx], [sy, sx * sy + 1]])


def _mask(center, size, kind, edge, H, W):
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    ax, ay = np.abs(xs - center[0]) / (size[0] / 2), np.abs(ys - center[1]) / (size[1] / 2)
    d = [np.maximum(ax, ay), np.sqrt(ax ** 2 + ay ** 2), ax + ay][int(kind)]
    return np.clip((1 - d) / (2 * edge), 0, 1).astype(np.float32)


def _bilinear(image, x, y):
    """image (C, H, W) at continuous positions x, y (pixel centres at i + 0.5), edges replicated."""
    H, W = image.shape[1:]
    x, y = np.clip(x - 0.5, 0, W - 1), np.clip(y - 0.5, 0, H - 1)
    x0, y0 = np.minimum(np.floor(x).astype(int), W - 2), np.minimum(np.floor(y).astype(int), H - 2)
    fx, fy = x - x0, y - y0
    top = image[:, y0, x0] * (1 - fx) + image[:, y0, x0 + 1] * fx
    bottom = image[:, y0 + 1, x0] * (1 - fx) + image[:, y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy
