"""Video decoding behind one small interface: mp4 bytes -> uint8 RGB frames at given indices.

    reader = open_video(data)                 # backend "decord" (default) or "pyav"
    frames = reader.frames(np.array([0, 2, 4]))   # (3, H, W, 3) uint8
    reader.close()                            # or: with open_video(data) as reader: ...

Frame `i` is the i-th frame in presentation order (both backends sort the stream's packet
timestamps, as decord does), so both return the same frames for the same indices. Indices may repeat
and come in any order; the result follows their order. An index outside [0, num_frames) raises
IndexError; input that cannot be decoded (empty, truncated, not a video) raises DecodeError, whose
message names the backend and the reason.

- decord (default): `decord.VideoReader(io.BytesIO(data), num_threads=1)` and `get_batch`. decord is
  unmaintained since 2022 and its readers grow in memory when reused: after every `frames` call the
  reader seeks back to 0, and `close()` drops it. Create one reader per video (never before a fork).
- pyav: PyAV (bundled FFmpeg), decoding only what is needed. It reads the packet index once (no
  decoding), then for the requested frames in presentation order feeds the decoder from the key
  frame at or before the first one and decodes forward to the last one, jumping to a later key frame
  (and flushing the decoder) when the next requested frame lies beyond the next key frame. One
  decoding thread, like decord here.

See tests/unit/data/test_data_decoders.py for what "the same frames" means (exact equality on the
shards tubelab writes) and jobs/memory_decode.py for the memory check of a long-lived decode process.
"""

from __future__ import annotations

import io
import re
import threading
from typing import Protocol, runtime_checkable

import numpy as np

BACKENDS = ("decord", "pyav")

# Demuxers that FFmpeg uses for still images: a PNG or JPEG "opens" as a one-frame video in PyAV,
# but it is not a video, and decord rejects it; so does tubelab.
_IMAGE_DEMUXERS = ("image2", "image2pipe")


class DecodeError(RuntimeError):
    """The input cannot be decoded as a video (empty, truncated, not a video, corrupt frames)."""


@runtime_checkable
class VideoReader(Protocol):
    num_frames: int

    def frames(self, indices: np.ndarray) -> np.ndarray:
        """uint8 RGB frames (len(indices), H, W, 3) at `indices` (presentation order, repeats allowed)."""
        ...

    def close(self) -> None:
        ...


def open_video(data: bytes, backend: str = "decord") -> VideoReader:
    """A reader over the mp4 (or any FFmpeg-readable video) bytes `data`; raises DecodeError if unreadable."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown video decoding backend {backend!r}; available: {', '.join(BACKENDS)}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"open_video needs the video's bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise DecodeError(f"{backend}: cannot decode an empty input (0 bytes)")
    return _DecordReader(data) if backend == "decord" else _PyAVReader(data)


def read_frames(data: bytes, indices: np.ndarray, backend: str = "decord") -> np.ndarray:
    """Open, decode `indices`, release: what a decode actor does once per video."""
    reader = open_video(data, backend)
    try:
        return reader.frames(indices)
    finally:
        reader.close()


def _indices(indices, num_frames: int, backend: str) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.size == 0:
        raise ValueError(f"{backend}: frame indices must be a non-empty 1-D sequence, got shape {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"{backend}: frame indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64)
    bad = idx[(idx < 0) | (idx >= num_frames)]
    if bad.size:
        raise IndexError(f"{backend}: frame index {int(bad[0])} is outside the video's {num_frames} frames "
                         f"[0, {num_frames})")
    return idx


_LOG_PREFIX = re.compile(r"^\[\d\d:\d\d:\d\d\] \S+:\d+: ")  # decord's C++ log prefix "[hh:mm:ss] file.cc:N: "


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {_LOG_PREFIX.sub('', text[0]) if text else ''}"[:300]


class _DecordReader:
    backend = "decord"

    def __init__(self, data: bytes):
        import decord

        try:
            self._vr = decord.VideoReader(io.BytesIO(data), num_threads=1)
            self.num_frames = len(self._vr)
        except Exception as e:  # decord raises RuntimeError or DECORDError with C++ log text
            self._vr = None
            # decord's "Error reading N bytes..." means FFmpeg found no readable container (its reason
            # goes to stderr only): a truncated file, or bytes that are not a video.
            hint = ("; FFmpeg found no readable container: truncated, corrupt or not a video"
                    if str(e).startswith("Error reading") else "")
            raise DecodeError(f"decord cannot open the video ({len(data)} bytes{hint}): {_reason(e)}") from e
        if self.num_frames < 1:
            self.close()
            raise DecodeError(f"decord: the video ({len(data)} bytes) has no frames")
        self._size = len(data)

    def frames(self, indices: np.ndarray) -> np.ndarray:
        if self._vr is None:
            raise ValueError("decord: the reader is closed")
        idx = _indices(indices, self.num_frames, self.backend)
        try:
            out = self._vr.get_batch(idx.tolist()).asnumpy()
        except Exception as e:
            raise DecodeError(f"decord cannot decode frames {_span(idx)} of the video ({self._size} bytes): "
                              f"{_reason(e)}") from e
        finally:
            try:
                self._vr.seek(0)  # decord's reader state grows while it sits at a late frame
            except Exception:
                pass
        if out.shape[0] != len(idx) or out.ndim != 4 or out.shape[-1] != 3:
            raise DecodeError(f"decord returned frames of shape {out.shape} for {len(idx)} indices")
        return out

    def close(self) -> None:
        self._vr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_local = threading.local()


def _reformatter():
    """One libswscale context holder per thread, reused across readers: `frame.to_ndarray` builds a new
    one per reader (with automatic threads), and setting that up cost more than decoding a short clip
    (docs/benchmarks.md "Data pipeline")."""
    r = getattr(_local, "reformatter", None)
    if r is None:
        from av.video.reformatter import VideoReformatter

        r = _local.reformatter = VideoReformatter()
    return r


class _PyAVReader:
    backend = "pyav"

    def __init__(self, data: bytes):
        import av

        self._size = len(data)
        self._container = None
        try:
            self._container = av.open(io.BytesIO(data), mode="r")
            fmt = self._container.format.name
            if fmt in _IMAGE_DEMUXERS or fmt.endswith("_pipe"):
                raise DecodeError(f"pyav: the input ({len(data)} bytes) is a still image ({fmt}), not a video")
            if not self._container.streams.video:
                raise DecodeError(f"pyav: the input ({len(data)} bytes, format {fmt}) has no video stream")
            stream = self._container.streams.video[0]
            stream.codec_context.thread_count = 1
            self._codec = stream.codec_context
            self._packets = [p for p in self._container.demux(stream) if p.size > 0]
            declared = stream.frames  # the container's frame count (0 = not declared)
        except DecodeError:
            self.close()
            raise
        except Exception as e:  # av.FFmpegError subclasses, or anything odd in a corrupt container
            self.close()
            raise DecodeError(f"pyav cannot open the video ({len(data)} bytes): {_reason(e)}") from e
        if not self._packets:
            self.close()
            raise DecodeError(f"pyav: the video ({len(data)} bytes) has no frames")
        if declared and len(self._packets) < declared:  # an mp4 with its index first, cut short
            n = len(self._packets)
            self.close()
            raise DecodeError(f"pyav: the video ({len(data)} bytes) is truncated: its header declares "
                              f"{declared} frames but only {n} are present")
        # Frame i = i-th smallest pts (presentation order), as decord indexes frames.
        pts = np.array([p.pts if p.pts is not None else (p.dts if p.dts is not None else i)
                        for i, p in enumerate(self._packets)], dtype=np.int64)
        self._pts = np.sort(pts)
        self.num_frames = len(self._pts)
        # For each packet (decode order): the decode position of the last key frame at or before it
        # in presentation time, i.e. where decoding must start to produce that frame.
        key_pos = [i for i, p in enumerate(self._packets) if p.is_keyframe]
        if not key_pos:
            self.close()
            raise DecodeError(f"pyav: the video ({len(data)} bytes) has no key frame")
        key_pts = pts[key_pos]
        order = np.argsort(key_pts, kind="stable")
        self._key_pts, self._key_pos = key_pts[order], np.asarray(key_pos)[order]

    def _start(self, frame_pts: int) -> int:
        """Decode position of the key frame at or before presentation time `frame_pts`."""
        k = int(np.searchsorted(self._key_pts, frame_pts, side="right")) - 1
        if k < 0:  # frames shown before the first key frame (an open GOP at the start): decode from it
            k = 0
        return int(self._key_pos[k])

    def frames(self, indices: np.ndarray) -> np.ndarray:
        if self._container is None:
            raise ValueError("pyav: the reader is closed")
        idx = _indices(indices, self.num_frames, self.backend)
        wanted = sorted({int(self._pts[i]) for i in idx})
        got: dict[int, np.ndarray] = {}
        try:
            self._decode(wanted, got)
        except DecodeError:
            raise
        except Exception as e:
            raise DecodeError(f"pyav cannot decode frames {_span(idx)} of the video ({self._size} bytes): "
                              f"{_reason(e)}") from e
        return np.stack([got[int(self._pts[i])] for i in idx])

    def _decode(self, wanted: list[int], got: dict[int, np.ndarray]) -> None:
        want = set(wanted)
        codec, packets = self._codec, self._packets
        pos = None      # next packet to feed; None = the decoder needs a fresh start
        drained = False
        for target in wanted:
            if target in got:
                continue
            start = self._start(target)
            if pos is None or start > pos or drained:
                # The target's key frame lies ahead of where the decoder is: jump there.
                codec.flush_buffers()
                pos, drained = start, False
            while target not in got:
                if pos < len(packets):
                    out = codec.decode(packets[pos])
                    pos += 1
                elif not drained:
                    out = codec.decode(None)  # drain the frames the decoder still holds
                    drained = True
                else:
                    raise DecodeError(f"pyav: frame at pts {target} was not produced by the decoder "
                                      f"(truncated or corrupt stream, {self._size} bytes)")
                for frame in out:
                    if frame.pts in want and frame.pts not in got:
                        got[frame.pts] = _reformatter().reformat(frame, format="rgb24", threads=1).to_ndarray()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._packets, self._codec = None, [], None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _span(idx: np.ndarray) -> str:
    return f"{int(idx.min())}..{int(idx.max())}" if len(idx) > 1 else str(int(idx[0]))

