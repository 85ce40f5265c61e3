"""Tiny real videos for the indexer tests: one encode per container per session, copied where needed."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

# suffix -> (container, encoder): the official containers of the datasets indexed here
CODECS = {".mp4": ("mp4", "libx264"), ".avi": ("avi", "mpeg4"), ".webm": ("webm", "libvpx")}
FRAMES, WIDTH, HEIGHT, FPS = 8, 32, 24, 16


def encode_tiny(suffix: str) -> bytes:
    """FRAMES frames of a square moving right on grey, WIDTHxHEIGHT, in the container of `suffix`."""
    container, codec = CODECS[suffix]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        for i in range(FRAMES):
            image = np.full((HEIGHT, WIDTH, 3), 96, np.uint8)
            image[8:16, 2 + 3 * i:10 + 3 * i] = (230, 60, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@pytest.fixture(scope="session")
def write_video():
    """write_video(path) writes a tiny real video at `path` (container from its suffix) and returns it."""
    cache: dict[str, bytes] = {}

    def write(path: str | Path) -> Path:
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in cache:
            cache[suffix] = encode_tiny(suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(cache[suffix])
        return path

    return write


@pytest.fixture(scope="session")
def decoded_frames():
    """decoded_frames(path) -> the (T, H, W, 3) frames PyAV decodes from the file."""

    def decode(path: str | Path) -> np.ndarray:
        with av.open(str(path)) as f:
            return np.stack([frame.to_ndarray(format="rgb24") for frame in f.decode(video=0)])

    return decode
