"""Re-encode a source video to the training format with PyAV: short side S, fixed fps, short GOP.

Short GOPs and small frames are what make random clip access cheap at train time: a clip decode
seeks to the nearest key frame and decodes at most `gop` frames it does not need.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av


# Same source, same bytes: x264's macroblock-tree rate control (its AVX-512 code) gave output that depended on
# the process's allocation history - 3 to 32 of the 680 demo videos came out different when the same files
# were encoded in another order or from bytes instead of a path. Without it (and with one thread) the
# output is a function of the source and the settings (docs/recipes.md "Seeds and determinism").
X264_PARAMS = "mbtree=0"


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


def _frames(source, start: float | None, end: float | None):
    """(frame, time in seconds from the first kept frame) of the segment [start, end), and the source step."""
    src = io.BytesIO(source) if isinstance(source, bytes) else source
    with av.open(src) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate) if stream.average_rate else None
        t0 = None
        for n, frame in enumerate(container.decode(stream)):
            t = frame.time if frame.time is not None else n / (rate or 25.0)
            if start is not None and t < start:
                continue
            if end is not None and t >= end:
                break
            t0 = t if t0 is None else t0
            yield frame, t - t0, (1.0 / rate if rate else None)


def reencode(source: str | bytes, *, short_side: int, fps: float, gop: int, crf: int = 23,
             start: float | None = None, end: float | None = None) -> EncodedVideo:
    """Decode `source` (a path or bytes), keep [start, end) seconds, resample to `fps` by nearest frame
    time, encode H.264 mp4. Streams: at most two decoded frames are held at once, whatever the length."""
    out = io.BytesIO()
    rate = int(round(fps))
    k = 0  # output frames written
    with av.open(out, mode="w", format="mp4") as dst:
        vs = None

        def emit(frame):
            nonlocal k
            image = frame.reformat(width=vs.width, height=vs.height, format="yuv420p")
            # Explicit timestamps: with pts=None every frame gets pts 0, the mp4 claims a bogus fps
            # and decord returns wrong ("recovered from nearest") frames.
            image.pts, image.time_base = k, Fraction(1, rate)
            image.pict_type = av.video.frame.PictureType.NONE  # key frames every `gop`, not the source's
            for packet in vs.encode(image):
                dst.mux(packet)
            k += 1

        prev = prev_t = step = None
        for frame, t, src_step in _frames(source, start, end):
            if vs is None:
                vs = dst.add_stream("libx264", rate=rate)
                vs.width, vs.height = target_size(frame.width, frame.height, short_side)
                vs.pix_fmt = "yuv420p"
                vs.options = {"crf": str(crf), "preset": "veryfast", "g": str(gop), "keyint_min": str(gop),
                              "sc_threshold": "0", "bf": "0", "threads": "1", "x264-params": X264_PARAMS}
            if prev is not None:
                step = src_step or (t - prev_t)
                while k / fps <= (prev_t + t) / 2:  # output times nearer to the previous frame
                    emit(prev)
            prev, prev_t = frame, t
        if prev is None:
            raise ValueError("no video frames could be decoded" + (f" in [{start}, {end}) s" if start or end else ""))
        n_out = max(1, int(round((prev_t + (step or 1.0 / fps)) * fps)))
        while k < n_out:
            emit(prev)
        for packet in vs.encode():
            dst.mux(packet)
        width, height = vs.width, vs.height
    return EncodedVideo(out.getvalue(), k, float(fps), width, height)
