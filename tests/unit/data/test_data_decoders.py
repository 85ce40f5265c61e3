"""tubelab.data.decoders on real shards (generator + prepare) and on PyAV-encoded bytes made here.

"The same frames" means exact equality (max abs diff 0), not a tolerance: both backends run H.264
decoding to the same bit-exact YUV (the standard requires it) and convert to RGB with libswscale's
default BT.601 limited-range path at the same size, so no resampling is involved. Measured: 0 on
every frame of the shards and of the long-GOP / B-frame / open-GOP encodes below. A tolerance would
hide a frame-index mismatch between static neighbouring frames, which is the bug this guards against.
"""

import io
import struct
import zlib
from fractions import Fraction

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
import ray

from tubelab import config
from tubelab.data.decode import ClipDecoder
from tubelab.data.decoders import BACKENDS, DecodeError, VideoReader, open_video, read_frames
from tubelab.data.prepare import prepare
from tubelab.data.shards import shard_paths
from tubelab.data.synthetic import render_video

SMALL = ["dataset.generator.train_per_class=1", "dataset.generator.test_per_class=1",
         "dataset.generator.num_frames=24", "dataset.generator.width=64", "dataset.generator.height=48",
         "dataset.encode.short_side=48"]


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Every train and test row of the shards `prepare` writes for a small synthetic set."""
    started = not ray.is_initialized()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUBELAB_HOME", str(tmp_path_factory.mktemp("home")))
        manifest, url = prepare(config.load("prepare", SMALL), progress=False)
    if started and ray.is_initialized():  # prepare starts the embedded Ray; leave none behind
        ray.shutdown()
    out = []
    for split in ("train", "test"):
        for path in shard_paths(manifest, url, split):
            out += pq.read_table(path, columns=["video", "num_frames", "width", "height"]).to_pylist()
    assert len(out) >= 10
    return out


def encode(frames: np.ndarray, options: dict, rate: int = 30) -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt, s.options = frames.shape[2], frames.shape[1], "yuv420p", options
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, rate)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return out.getvalue()


@pytest.fixture(scope="module")
def gop_videos():
    """The same 60 frames with x264's default GOP (one key frame, B-frames), GOP 10 + 2 B-frames, open GOP."""
    frames, _ = render_video("Spin", np.random.default_rng(3), num_frames=60, width=64, height=48)
    return {name: encode(frames, opts) for name, opts in (
        ("default", {}), ("gop10_bf2", {"g": "10", "bf": "2"}), ("open_gop", {"g": "12", "bf": "3", "open_gop": "1"}))}


def png_bytes(h: int = 8, w: int = 8) -> bytes:
    """A valid RGB PNG, written by hand (no imaging dependency)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(range(3 * w)) for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# --- the interface ----------------------------------------------------------------------------------------------

def test_unknown_backend_lists_the_backends(rows):
    assert BACKENDS == ("decord", "pyav")
    with pytest.raises(ValueError, match=r"unknown video decoding backend 'torchcodec'; available: decord, pyav"):
        open_video(rows[0]["video"], "torchcodec")


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_counts_and_shapes(rows, backend):
    for row in rows:
        with open_video(row["video"], backend) as reader:
            assert isinstance(reader, VideoReader)
            assert reader.num_frames == row["num_frames"] == 24
            frames = reader.frames(np.arange(reader.num_frames))
        assert frames.shape == (24, row["height"], row["width"], 3) == (24, 48, 64, 3)
        assert frames.dtype == np.uint8 and frames.flags.c_contiguous


def test_backends_return_identical_frames_on_shards(rows):
    for row in rows:
        n = row["num_frames"]
        a, b = read_frames(row["video"], np.arange(n), "decord"), read_frames(row["video"], np.arange(n), "pyav")
        assert np.array_equal(a, b), f"max abs diff {np.abs(a.astype(int) - b).max()}"
        assert len({f.tobytes() for f in a}) > n // 2  # the frames differ: a shifted index would be caught


def test_backends_identical_on_long_gop_b_frame_and_open_gop_videos(gop_videos):
    rng = np.random.default_rng(0)
    for name, data in gop_videos.items():
        a, b = open_video(data, "decord"), open_video(data, "pyav")
        assert a.num_frames == b.num_frames == 60, name
        full = a.frames(np.arange(60))
        assert np.array_equal(full, b.frames(np.arange(60))), name
        for _ in range(15):
            idx = rng.integers(0, 60, size=int(rng.integers(1, 17)))
            assert np.array_equal(b.frames(idx), full[idx]), (name, idx)


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_repeated_and_unordered_indices(rows, backend):
    rng = np.random.default_rng(1)
    for row in rows[:4]:
        full = read_frames(row["video"], np.arange(24), backend)
        with open_video(row["video"], backend) as reader:  # one reader, many calls (as a reused reader would be)
            for idx in ([5, 5, 5], [23, 0, 12, 0], [7], list(range(23, -1, -2))):
                assert np.array_equal(reader.frames(np.array(idx)), full[idx]), idx
            for _ in range(20):
                idx = rng.integers(0, 24, size=int(rng.integers(1, 20)))
                assert np.array_equal(reader.frames(idx), full[idx]), idx


@pytest.mark.parametrize("backend", BACKENDS)
def test_indices_outside_the_video_raise(rows, backend):
    with open_video(rows[0]["video"], backend) as reader:
        with pytest.raises(IndexError, match=rf"{backend}: frame index 24 is outside the video's 24 frames"):
            reader.frames(np.array([3, 24]))
        with pytest.raises(IndexError, match=r"frame index -1"):
            reader.frames(np.array([-1]))
        with pytest.raises(ValueError, match=r"non-empty"):
            reader.frames(np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match=r"closed"):
        reader.frames(np.array([0]))


def test_pyav_decodes_only_from_the_key_frame_before_the_first_index(rows):
    """Shards have a key frame every 8 frames (encode.gop): frames 17 and 19 need packets 16..19 only."""
    reader = open_video(rows[0]["video"], "pyav")

    class Counting:
        def __init__(self, codec):
            self.codec, self.fed = codec, []

        def decode(self, packet):
            self.fed.append(None if packet is None else packet.pts)
            return self.codec.decode(packet)

        def flush_buffers(self):
            self.codec.flush_buffers()

    reader._codec = counting = Counting(reader._codec)
    ref = read_frames(rows[0]["video"], np.arange(24), "decord")
    assert np.array_equal(reader.frames(np.array([19, 17])), ref[[19, 17]])
    assert counting.fed == [int(reader._pts[i]) for i in (16, 17, 18, 19)], counting.fed
    counting.fed.clear()  # far apart: jump to the second index's own key frame instead of decoding through
    assert np.array_equal(reader.frames(np.array([1, 22])), ref[[1, 22]])
    assert counting.fed == [int(reader._pts[i]) for i in (0, 1, 16, 17, 18, 19, 20, 21, 22)], counting.fed


def test_train_clip_shape(rows):
    batch = {"video_id": np.array(["v"], dtype=object), "video": np.array([rows[0]["video"]], dtype=object),
             "num_frames": np.array([24]), "label": np.array([0])}
    for backend in BACKENDS:
        clip = ClipDecoder(frames=8, strides=[2], crop=40, mode="train", backend=backend)(batch)["clip"][0, 0]
        assert clip.shape == (8, 40, 40, 3) and clip.dtype == np.uint8


# --- undecodable input ------------------------------------------------------------------------------------------

BAD = {
    "zero bytes": lambda mp4: b"",
    "truncated mp4 (first half)": lambda mp4: mp4[: len(mp4) // 2],
    "random bytes": lambda mp4: np.random.default_rng(0).bytes(len(mp4)),
    "png image": lambda mp4: png_bytes(),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_decode_error(rows, backend, case):
    data = BAD[case](rows[0]["video"])
    with pytest.raises(DecodeError, match=rf"^{backend}\b") as info:
        reader = open_video(data, backend)
        reader.frames(np.arange(reader.num_frames))
    assert f"{len(data)} bytes" in str(info.value)
    assert isinstance(info.value, RuntimeError)


def test_truncated_mp4_with_index_first_raises_decode_error(tmp_path):
    """An mp4 with its moov first (faststart) cut in half still opens in FFmpeg: both backends refuse it."""
    frames, _ = render_video("MoveLeft", np.random.default_rng(0), num_frames=48, width=64, height=48)
    path = tmp_path / "fast.mp4"
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=16)
        s.width, s.height, s.pix_fmt, s.options = 64, 48, "yuv420p", {"g": "8", "bf": "0"}
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 16)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = path.read_bytes()
    assert b"moov" in data[:64]  # the index is at the front, so the first half opens
    for backend in BACKENDS:
        with pytest.raises(DecodeError, match=rf"^{backend}"):
            reader = open_video(data[: len(data) // 2], backend)
            reader.frames(np.arange(reader.num_frames))


def test_non_bytes_input_is_a_type_error():
    with pytest.raises(TypeError, match=r"needs the video's bytes, got str"):
        open_video("video.mp4")
