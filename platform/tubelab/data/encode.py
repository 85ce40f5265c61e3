"""Re-encode a source video to the training format with PyAV: short side S, fixed fps, short GOP.

Short GOPs and small frames are what make random clip access cheap at train time: a clip decode
seeks to the nearest key frame and decodes at most `gop` frames it does not need.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np


@dataclass(frozen=True)
class EncodedVideo:
    data: bytes
    num_frames: int
    fps: float
    width: int
    height: int


def target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Scale so the short side is `short_side`; both sides even (H.264 needs it)."""
    scale = short_side / min(width, height)
    w, h = round(width * scale / 2) * 2, round(height * scale / 2) * 2
    return max(w, 2), max(h, 2)


def reencode(source: str | bytes, *, short_side: int, fps: float, gop: int, crf: int = 23) -> EncodedVideo:
    """Decode `source` (a path or bytes), resample to `fps` by nearest frame time, encode H.264 mp4."""
    src = io.BytesIO(source) if isinstance(source, bytes) else source
    with av.open(src) as container:
        stream = container.streams.video[0]
        times, frames = [], []
        for frame in container.decode(stream):
            times.append(frame.time if frame.time is not None else len(times) / float(stream.average_rate or fps))
            frames.append(frame)
        if not frames:
            raise ValueError("no video frames could be decoded")
        width, height = target_size(frames[0].width, frames[0].height, short_side)
        t0 = times[0]
        times = np.asarray(times) - t0
        src_step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / fps
        duration = times[-1] + src_step
        n_out = max(1, int(round(duration * fps)))
        picks = np.abs(times[None, :] - (np.arange(n_out) / fps)[:, None]).argmin(axis=1)  # nearest source frame
        out = io.BytesIO()
        with av.open(out, mode="w", format="mp4") as dst:
            rate = int(round(fps))
            vs = dst.add_stream("libx264", rate=rate)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            vs.options = {"crf": str(crf), "preset": "veryfast", "g": str(gop), "keyint_min": str(gop),
                          "sc_threshold": "0", "bf": "0", "threads": "1"}
            for j, i in enumerate(picks):
                image = frames[i].reformat(width=width, height=height, format="yuv420p")
                # Explicit timestamps: with pts=None every frame gets pts 0, the mp4 claims a bogus fps
                # and decord returns wrong ("recovered from nearest") frames.
                image.pts, image.time_base = j, Fraction(1, rate)
                image.pict_type = av.video.frame.PictureType.NONE  # key frames every `gop`, not the source's
                for packet in vs.encode(image):
                    dst.mux(packet)
            for packet in vs.encode():
                dst.mux(packet)
    return EncodedVideo(out.getvalue(), n_out, float(fps), width, height)
