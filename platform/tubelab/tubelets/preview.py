"""Look at tubelet pairs: a PNG contact sheet and an optional animated GIF.

Inputs are clips (B, C, T, H, W) before normalisation: uint8 in [0, 255], or float in [0, 255] or
[0, 1] (a float clip whose maximum is <= 1 is taken as [0, 1]). The PNG is drawn with matplotlib's
Agg backend; the GIF is written with Pillow, which matplotlib depends on.
"""

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

GAP = 2  # pixels between tiles


def save_preview(a, b, png_path, gif_path=None, max_pairs=4, frames=8):
    """Write the contact sheet (rows: clip A above clip B per pair; columns: `frames` frames spread
    over the clip) to png_path, and, if given, an animation of the pairs to gif_path.

    Returns the list of written paths.
    """
    a, b = _to_uint8(a[:max_pairs]), _to_uint8(b[:max_pairs])  # (P, T, H, W, C)
    pairs, T, H, W, _ = a.shape
    cols = np.linspace(0, T - 1, min(frames, T)).round().astype(int)

    sheet = _tile([[clip[i, t] for t in cols] for i in range(pairs) for clip in (a, b)])
    left, top = 70, 24  # pixels of margin for the labels; the sheet itself is drawn 1:1
    fig = Figure(figsize=((sheet.shape[1] + left + 8) / 100, (sheet.shape[0] + top + 8) / 100), dpi=100)
    FigureCanvasAgg(fig)
    fw, fh = fig.get_size_inches() * 100
    ax = fig.add_axes([left / fw, 8 / fh, sheet.shape[1] / fw, sheet.shape[0] / fh])
    ax.imshow(sheet, interpolation="nearest")
    ax.set_yticks([(r + 0.5) * (H + GAP) for r in range(2 * pairs)],
                  [f"pair {r // 2} {'AB'[r % 2]}" for r in range(2 * pairs)], fontsize=7)
    ax.set_xticks([(c + 0.5) * (W + GAP) for c in range(len(cols))], [f"t={t}" for t in cols], fontsize=7)
    ax.xaxis.tick_top()
    fig.savefig(png_path)
    written = [str(png_path)]

    if gif_path is not None:  # each frame: pairs down, A | B across
        images = [Image.fromarray(_tile([[a[i, t], b[i, t]] for i in range(pairs)])) for t in range(T)]
        images[0].save(gif_path, save_all=True, append_images=images[1:], duration=125, loop=0)
        written.append(str(gif_path))
    return [str(Path(p)) for p in written]


def _to_uint8(clips):
    x = clips.detach().float().cpu()
    if not clips.dtype.is_floating_point or x.max() > 1:
        x = x / 255
    return (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 4, 1).numpy()


def _tile(rows):
    """Grid of equal-size (H, W, C) images with GAP white pixels between them."""
    H, W, C = rows[0][0].shape
    out = np.full((len(rows) * (H + GAP) - GAP, len(rows[0]) * (W + GAP) - GAP, C), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            out[r * (H + GAP):r * (H + GAP) + H, c * (W + GAP):c * (W + GAP) + W] = image
    return out
