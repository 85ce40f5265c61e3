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
