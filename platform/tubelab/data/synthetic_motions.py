"""Motion patterns of the synthetic dataset: the class of a clip is the motion of its main object.

A pattern maps normalised time t in [0, 1] (shape (T,)) to a path (T, 2) in pixels relative to an
arbitrary origin, an extra rotation (T,) in radians and a size factor (T,). Everything else (shape,
colour, base size, where the path lies in the frame, the background, the distractors) is drawn by the
renderer from pools shared by all classes, so adding a class means adding one function to MOTIONS.

`speed` comes from one range for all classes (SPEED_RANGE) and scales each pattern's nominal rate,
so how fast something moves says nothing about the class either.
"""

import numpy as np

SPEED_RANGE = (0.6, 1.4)


def _span(width, height, radius):
    """Free room (px) for the object's centre along the shorter side."""
    return min(width, height) - 2 * radius


def _translate(dx, dy):
    def motion(rng, t, speed, width, height, radius):
        room = (width if dx else height) - 2 * radius
        xy = np.outer(t, (dx, dy)) * 0.45 * speed * room  # 27-63% of the room: stays in frame
        return xy, np.zeros_like(t), np.ones_like(t)
    return motion


def _circle(sign):
    # Image y points down, so (cos a, sin a) with a growing turns clockwise as seen on screen.
    def motion(rng, t, speed, width, height, radius):
        r = rng.uniform(0.25, 0.45) * _span(width, height, radius)
        a = rng.uniform(0, 2 * np.pi) + sign * 2 * np.pi * speed * t
        return r * np.stack([np.cos(a), np.sin(a)], 1), np.zeros_like(t), np.ones_like(t)
    return motion


def zigzag(rng, t, speed, width, height, radius):
    """Travel along a random direction with a triangle-wave oscillation across it."""
    room = _span(width, height, radius)
    a = rng.uniform(0, 2 * np.pi)
    along, across = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    zigs = rng.integers(2, 4)
    wave = 2 * np.abs(2 * ((zigs * t) % 1) - 1) - 1  # triangle wave in [-1, 1]
    amp = rng.uniform(0.12, 0.2) * room
    xy = np.outer(t * 0.4 * speed * room, along) + np.outer(wave * amp, across)
    return xy, np.zeros_like(t), np.ones_like(t)


def bounce(rng, t, speed, width, height, radius):
    """A ball bouncing on a floor (|sin| profile), with a little sideways drift."""
    room_x, room_y = width - 2 * radius, height - 2 * radius
    y = -rng.uniform(0.5, 0.9) * room_y * np.abs(np.sin(np.pi * (2 * speed * t + rng.uniform(0, 1))))
    x = rng.uniform(-0.1, 0.1) * room_x * t
    return np.stack([x, y], 1), np.zeros_like(t), np.ones_like(t)


def spin(rng, t, speed, width, height, radius):
    """Stay in place and turn; every object carries a marker, so the turning is visible."""
    turns = 2 * speed * rng.choice([-1, 1])
    return np.zeros((len(t), 2)), 2 * np.pi * turns * t, np.ones_like(t)


def grow_shrink(rng, t, speed, width, height, radius):
    """Stay in place while the size oscillates."""
    scale = 1 + rng.uniform(0.3, 0.45) * np.sin(2 * np.pi * speed * t + rng.uniform(0, 2 * np.pi))
    return np.zeros((len(t), 2)), np.zeros_like(t), scale


MOTIONS = {
    "MoveLeft": _translate(-1, 0),
    "MoveRight": _translate(1, 0),
    "MoveUp": _translate(0, -1),
    "MoveDown": _translate(0, 1),
    "CircleClockwise": _circle(1),
    "CircleCounterClockwise": _circle(-1),
    "ZigZag": zigzag,
    "Bounce": bounce,
    "Spin": spin,
    "GrowShrink": grow_shrink,
}


def place(rng, xy, radius, width, height):
    """Shift a path to a random spot where the object (radius per frame) stays inside the frame.

    A path too big for the frame is centred, so it leaves the frame as little as possible.
    """
    lo = (xy - radius[:, None]).min(0)
    hi = (xy + radius[:, None]).max(0)
    slack = np.array([width - 1, height - 1]) - (hi - lo)
    shift = np.where(slack > 0, rng.uniform(0, 1, 2) * slack, slack / 2)
    return xy - lo + shift


def wander(rng, t, width, height, radius):
    """Path of a distractor: still, or a slow smoothed random walk that follows no class pattern."""
    start = rng.uniform(radius, (width - radius, height - radius))
    if rng.random() < 0.3:
        return np.tile(start, (len(t), 1))
    steps = rng.normal(0, 0.04 * min(width, height) / np.sqrt(len(t)), (len(t) + 4, 2))
    walk = np.cumsum(steps, 0)
    walk = (walk[4:] + walk[3:-1] + walk[2:-2] + walk[1:-3] + walk[:-4]) / 5  # smooth the jitter away
    return np.clip(start + walk - walk[0], radius, (width - radius, height - radius))


# Fine-grained classes (the `synthetic_fine` proxy of SEVERE's "actions" factor, FX-S1 / UB-S1): three
# families whose classes differ in one parameter only, in disjoint bands. The shared SPEED_RANGE factor
# is not used (speed is a class here); instead every clip is mirrored left-right with probability 1/2,
# so a horizontal flip (a standard fine-tuning augmentation) keeps the class. A fine motion returns
# a fourth item, the parameters it drew, which the renderer stores in the clip's metadata.

FINE_LENGTHS = {"Slow": (0.22, 0.32), "Medium": (0.45, 0.55), "Fast": (0.68, 0.78)}  # x free room
FINE_HEADING_JITTER = 4.0  # degrees either way; headings of different classes are 20 degrees apart
FINE_RADII = {"Small": (0.14, 0.2), "Large": (0.3, 0.38)}  # x free room
FINE_TURNS = {"Slow": (0.45, 0.6), "Fast": (0.85, 1.0)}  # turns over the clip


def _mirror(rng, xy, params):
    mirrored = bool(rng.random() < 0.5)
    params["mirrored"] = mirrored
    return (xy * np.array([-1.0, 1.0]) if mirrored else xy), np.zeros(len(xy)), np.ones(len(xy)), params


def _fine_translate(length_band, heading_deg):
    """Straight line at a heading (degrees above the horizontal, rightwards before mirroring)."""
    def motion(rng, t, speed, width, height, radius):
        length = rng.uniform(*length_band)
        heading = heading_deg + rng.uniform(-FINE_HEADING_JITTER, FINE_HEADING_JITTER)
        a = np.deg2rad(heading)
        xy = np.outer(t * length * _span(width, height, radius), (np.cos(a), -np.sin(a)))  # image y down
        return _mirror(rng, xy, {"family": "translate", "length": float(length), "heading": float(heading)})
    return motion


def _fine_orbit(radius_band, turns_band):
    """Clockwise arc or circle (counter-clockwise once mirrored) of a given radius and number of turns."""
    def motion(rng, t, speed, width, height, radius):
        r, turns = rng.uniform(*radius_band), rng.uniform(*turns_band)
        a = rng.uniform(0, 2 * np.pi) + 2 * np.pi * turns * t
        xy = r * _span(width, height, radius) * np.stack([np.cos(a), np.sin(a)], 1)
        return _mirror(rng, xy, {"family": "orbit", "radius": float(r), "turns": float(turns)})
    return motion


FINE_MOTIONS = {
    **{f"Slide{band}": _fine_translate(FINE_LENGTHS[band], 0) for band in ("Slow", "Medium", "Fast")},
    **{f"Rise{deg}": _fine_translate(FINE_LENGTHS["Medium"], deg) for deg in (20, 40, 60)},
    **{f"Orbit{size}{rate}": _fine_orbit(FINE_RADII[size], FINE_TURNS[rate])
       for size in ("Small", "Large") for rate in ("Slow", "Fast")},
}


def segment_time(t, start, end):
    """Normalised time of a motion that runs from `start` to `end` (fractions of the clip) and holds
    still before and after: 0 until start, 1 from end on."""
    return np.clip((t - start) / (end - start), 0, 1)


OSCILLATIONS = ("swing", "bounce")


def oscillate(rng, t, count, width, height, radius, min_cycle_frames=6):
    """`count` repetitions (the `synthetic_count` proxy of UCF-RC) -> path, turn, scale, params.

    swing: out and back along a random direction, (1 - cos) profile; bounce: `count` hops off a floor,
    |sin| profile with a small sideways drift. The repetitions fill a random part of the clip (at least
    55%, and at least `min_cycle_frames` frames a repetition) starting at a random onset, and the tempo
    varies smoothly within the clip by up to +-20%, so neither the period nor the phase gives the count
    away. The object stands still before the onset and after the last repetition. params["cycles"]: the
    count + 1 repetition boundaries, as fractions of the clip (t), where the object is back at rest.
    """
    frames = len(t) - 1
    if count * min_cycle_frames > frames:
        raise ValueError(f"count={count} needs at least {count * min_cycle_frames + 1} frames "
                         f"({min_cycle_frames} a repetition); got {len(t)}")
    active = rng.uniform(max(0.55, count * min_cycle_frames / frames), 1.0)
    onset = rng.uniform(0, 1 - active)
    tau = segment_time(t, onset, onset + active)
    tempo, harmonics = rng.uniform(-0.2, 0.2), rng.integers(1, 3)

    def warp(x):  # monotone, 0 -> 1: the tempo varies within the clip
        return x - tempo * np.sin(2 * np.pi * harmonics * x) / (2 * np.pi * harmonics)

    tau = warp(tau)
    # repetition k ends where count * tau = k: invert the warp on a fine grid (it is strictly increasing)
    grid = np.linspace(0, 1, 20001)
    bounds = onset + active * np.interp(np.arange(count + 1) / count, warp(grid), grid)
    kind = str(rng.choice(OSCILLATIONS))
    if kind == "swing":
        a = rng.uniform(0, 2 * np.pi)
        amplitude = rng.uniform(0.3, 0.6) * _span(width, height, radius)
        xy = np.outer(amplitude * (1 - np.cos(2 * np.pi * count * tau)) / 2, (np.cos(a), np.sin(a)))
    else:
        amplitude = rng.uniform(0.35, 0.7) * (height - 2 * radius)
        y = -amplitude * np.abs(np.sin(np.pi * count * tau))
        xy = np.stack([rng.uniform(-0.05, 0.05) * (width - 2 * radius) * tau, y], 1)
    params = {"kind": kind, "count": int(count), "onset": round(float(onset), 4),
              "active": round(float(active), 4), "amplitude": round(float(amplitude), 2),
              "tempo": round(float(tempo), 4), "cycles": [round(float(b), 6) for b in bounds]}
    return xy, np.zeros_like(t), np.ones_like(t), params
