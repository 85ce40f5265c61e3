"""Drawing for the synthetic dataset: textured backgrounds, shapes and the appearance pools.

Everything is vectorised numpy on float32 images in [0, 255]. A style is a set of appearance pools
(background textures, background palette, object colours); all classes draw from the same pools,
so a single frame carries no information about the class.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np


def _hue(h):
    """Fully saturated RGB (0-255) for a hue in [0, 1)."""
    return 255 * np.clip(np.abs((h * 6 + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)


def _grid(h, w):
    return np.mgrid[0:h, 0:w].astype(np.float32)  # (y, x)


def _wave_coord(rng, h, w):
    """Pixel coordinates (u, v) on axes turned by a random angle: for stripes, checkers and plaids."""
    y, x = _grid(h, w)
    a = rng.uniform(0, np.pi)
    return x * np.cos(a) + y * np.sin(a), -x * np.sin(a) + y * np.cos(a)


def _value_noise(rng, h, w, cell):
    """Random values on a coarse grid, bilinearly upsampled: smooth blobs of about `cell` px."""
    gh, gw = h // cell + 2, w // cell + 2
    coarse = rng.random((gh, gw)).astype(np.float32)
    y, x = _grid(h, w) / cell
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = y - y0, x - x0
    top = coarse[y0, x0] * (1 - fx) + coarse[y0, x0 + 1] * fx
    bottom = coarse[y0 + 1, x0] * (1 - fx) + coarse[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


# Texture fields: (rng, h, w) -> float32 (h, w); the palette maps them to colour afterwards.

def noise(rng, h, w):
    return _value_noise(rng, h, w, rng.integers(12, 32)) + 0.5 * _value_noise(rng, h, w, rng.integers(3, 8))


def stripes(rng, h, w):
    u, _ = _wave_coord(rng, h, w)
    return np.sin(2 * np.pi * u / rng.uniform(8, 30))


def checker(rng, h, w):
    u, v = _wave_coord(rng, h, w)
    cell = rng.uniform(6, 20)
    return ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)


def gradient(rng, h, w):
    u, _ = _wave_coord(rng, h, w)
    return u + 0.3 * max(h, w) * _value_noise(rng, h, w, 24)


def blobs(rng, h, w):
    y, x = _grid(h, w)
    field = np.zeros((h, w), np.float32)
    for _ in range(rng.integers(5, 12)):
        cy, cx, s = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(6, 25)
        field += rng.choice([-1, 1]) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s))
    return field


def plaid(rng, h, w):
    u, v = _wave_coord(rng, h, w)
    return np.sin(2 * np.pi * u / rng.uniform(10, 30)) + np.sin(2 * np.pi * v / rng.uniform(10, 30))


def rings(rng, h, w):
    y, x = _grid(h, w)
    d = np.hypot(y - rng.uniform(0, h), x - rng.uniform(0, w))
    return np.sin(2 * np.pi * d / rng.uniform(6, 18))


def dots(rng, h, w):
    u, v = _wave_coord(rng, h, w)
    period = rng.uniform(8, 18)
    du, dv = (u % period) - period / 2, (v % period) - period / 2
    return (np.hypot(du, dv) < period * rng.uniform(0.2, 0.4)).astype(np.float32)


def cells(rng, h, w):
    """Voronoi cells, each with its own shade."""
    y, x = _grid(h, w)
    n = rng.integers(8, 20)
    sy, sx, shade = rng.uniform(0, h, n), rng.uniform(0, w, n), rng.random(n).astype(np.float32)
    nearest = np.argmin((y[..., None] - sy) ** 2 + (x[..., None] - sx) ** 2, -1)
    return shade[nearest]


def _muted_palette(rng):
    """Two or three soft mid-tone colours: a calm scene that saturated objects stand out from."""
    k = rng.integers(2, 4)
    s, v = rng.uniform(0.15, 0.5, (k, 1)), rng.uniform(0.35, 0.8, (k, 1))
    return v * ((1 - s) * 255 + s * np.stack([_hue(h) for h in rng.random(k)]))


def _neon_palette(rng):
    """A dark base with one or two neon colours: a high-contrast look for the domain-shift style."""
    dark = rng.uniform(0.05, 0.2) * (255 * 0.6 + 0.4 * _hue(rng.random()))
    neon = [rng.uniform(0.85, 1) * _hue(h) for h in rng.random(rng.integers(1, 3))]
    return np.stack([dark, *neon])


@dataclass(frozen=True)
class Style:
    backgrounds: dict[str, Callable]
    palette: Callable
    object_colors: dict[str, tuple[int, int, int]]


STYLES = {
    "default": Style(
        backgrounds={f.__name__: f for f in (noise, stripes, checker, gradient, blobs)},
        palette=_muted_palette,
        object_colors={"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 230),
                       "yellow": (240, 215, 40), "cyan": (40, 210, 220), "magenta": (210, 50, 200),
                       "orange": (245, 135, 30), "white": (245, 245, 245)},
    ),
    "alt": Style(
        backgrounds={f.__name__: f for f in (plaid, rings, dots, cells)},
        palette=_neon_palette,
        object_colors={"pink": (250, 170, 200), "mint": (170, 240, 200), "lavender": (190, 170, 250),
                       "peach": (250, 200, 160), "sky": (160, 210, 250), "lemon": (250, 245, 160),
                       "grey": (150, 150, 150), "black": (15, 15, 15)},
    ),
}


def render_background(rng, style, t, width, height):
    """Background frames (T, H, W, 3) float32; half of the clips pan slowly (same for every class)."""
    pan = np.zeros(2)
    if rng.random() < 0.5:
        a = rng.uniform(0, 2 * np.pi)
        pan = rng.uniform(0.05, 0.15) * width * np.array([np.cos(a), np.sin(a)])
    offsets = np.round(np.outer(t, pan)).astype(int)
    offsets -= offsets.min(0)
    pad_x, pad_y = offsets.max(0)
    kind = rng.choice(sorted(style.backgrounds))
    field = style.backgrounds[kind](rng, height + pad_y, width + pad_x)
    field = (field - field.min()) / (np.ptp(field) + 1e-6)
    palette = style.palette(rng)
    stops = np.linspace(0, 1, len(palette))
    image = np.stack([np.interp(field, stops, palette[:, c]) for c in range(3)], -1).astype(np.float32)
    frames = np.stack([image[oy:oy + height, ox:ox + width] for ox, oy in offsets])
    return frames, {"background": str(kind), "background_colors": palette.round().astype(int).tolist(),
                    "pan": pan.round(2).tolist()}


_TRIANGLE_NORMALS = [(np.cos(a), np.sin(a)) for a in np.deg2rad([60, 180, 300])]  # a vertex points along +u
_MARKER = (0.6, 0.18)  # a dot on every object (position along +u, radius): rotation shows on any shape

# Shapes: (u, v) in units of the object's radius, rotated with the object -> roughly the distance to
# the outline plus one, so "f <= 1" is inside and (1 - f) * radius antialiases the edge over ~1 px.
SHAPES = {
    "disc": lambda u, v: np.hypot(u, v),
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) + 0.2,
    "triangle": lambda u, v: 0.5 + np.max([u * c + v * s for c, s in _TRIANGLE_NORMALS], 0),
    "ring": lambda u, v: 0.72 + np.abs(np.hypot(u, v) - 0.72),
    "cross": lambda u, v: np.minimum(np.maximum(np.abs(u), np.abs(v) + 0.7),
                                     np.maximum(np.abs(u) + 0.7, np.abs(v))),
    "star": lambda u, v: 1 + np.hypot(u, v) - (0.65 + 0.35 * np.cos(5 * np.arctan2(v, u))),
}


def draw_object(frames, shape, color, center, radius, angle):
    """Composite one object into frames (T, H, W, 3) in place: outline, fill, and the marker dot.

    Each frame only touches the object's bounding box, so the cost does not grow with the frame size.
    """
    height, width = frames.shape[1:3]
    color = np.asarray(color, np.float32)
    ink = np.float32(25 if color.mean() > 120 else 235)  # outline and marker contrast with the fill
    f_shape = SHAPES[shape]
    for frame, (cx, cy), r, a in zip(frames, center, radius, angle):
        reach = 1.2 * r + 2
        x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 2, width)
        y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 2, height)
        if x0 >= x1 or y0 >= y1:
            continue
        dy, dx = np.arange(y0, y1)[:, None] - cy, np.arange(x0, x1) - cx
        c, s = np.cos(a) / r, np.sin(a) / r
        u, v = dx * c + dy * s, dy * c - dx * s
        f = f_shape(u, v)
        border = max(1.0, 0.12 * r) / r
        outline = np.clip((1 - f) * r + 0.5, 0, 1)
        fill = np.clip((1 - border - f) * r + 0.5, 0, 1)
        marker = np.clip((_MARKER[1] - np.hypot(u - _MARKER[0], v)) * r + 0.5, 0, 1) * fill
        alpha = outline[..., None]
        paint = ink + (fill * (1 - marker))[..., None] * (color - ink)
        patch = frame[y0:y1, x0:x1]
        patch += alpha * (paint - patch)
