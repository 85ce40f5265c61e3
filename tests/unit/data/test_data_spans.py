"""The counting model's rows (SpanDecoder): sub-clips and spans of a real H.264 video whose frames show their index."""

import numpy as np
import pytest

from tubelab.data.cycles import cycle_offsets, draw_subclip
from tubelab.data.decoders import DecodeError
from tubelab.data.spans import SpanDecoder, letterbox
from tubelab.data.synthetic_files import write_video

FRAMES, W, H, FPS, LEVEL = 30, 64, 48, 16, 8
CYCLES = [2 / FPS, 8 / FPS, 15 / FPS, 21 / FPS, 28 / FPS]  # boundaries at frames 2, 8, 15, 21, 28


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Frame i is grey LEVEL * i, with a white bar on its left quarter (to see flips and letterboxing)."""
    frames = np.repeat((np.arange(FRAMES) * LEVEL).astype(np.uint8)[:, None, None, None], 3, axis=3)
    frames = np.broadcast_to(frames, (FRAMES, H, W, 3)).copy()
    frames[:, :, :W // 4] = 255
    path = tmp_path_factory.mktemp("span") / "video.mp4"
    write_video(path, frames, FPS)
    return {"video_id": np.array(["a.mp4", "b.mp4"], object), "video": np.array([path.read_bytes()] * 2, object),
            "cycles": np.array([CYCLES, CYCLES[:3]], object), "fps": np.array([FPS, FPS], np.float32),
            "num_frames": np.array([FRAMES, FRAMES], np.int32)}


def index_of(clip):
    """The frame index each (size, size, 3) frame shows: its grey level right of the bar, / LEVEL."""
    return np.rint(clip[:, clip.shape[1] // 2, -5, 0].astype(float) / LEVEL).astype(int)


def test_letterbox_keeps_the_aspect_between_black_bars():
    frames = np.full((2, H, W, 3), 200, np.uint8)
    out = letterbox(frames, 24)  # 64x48 -> 24x18, 3 black rows above and below
    assert out.shape == (2, 24, 24, 3)
    assert (out[:, :3] == 0).all() and (out[:, 21:] == 0).all() and (out[:, 3:21] == 200).all()
    tall = letterbox(np.full((1, W, H, 3), 200, np.uint8), 24)
    assert (tall[:, :, :3] == 0).all() and (tall[:, :, 3:21] == 200).all() and (tall[:, :, 21:] == 0).all()


def test_eval_rows_are_the_annotated_spans(batch):
    out = SpanDecoder(size=24, max_frames=FRAMES, mode="eval")(batch)
    assert out["clip"].shape == (2, FRAMES, 24, 24, 3) and out["count"].tolist() == [4.0, 2.0]
    assert out["n_frames"].tolist() == [28 - 2 + 1, 15 - 2 + 1]
    for row, last in zip(range(2), (28, 15)):
        n = out["n_frames"][row]
        assert index_of(out["clip"][row, :n]).tolist() == list(range(2, last + 1))
        assert (out["clip"][row, n:] == 0).all() and (out["offset_next"][row, n:] == -1).all()
    nxt, pre = cycle_offsets([2, 8, 15, 21, 28])
    assert out["offset_next"][0, :27].tolist() == nxt.tolist() and out["offset_pre"][0, :27].tolist() == pre.tolist()
    assert (out["clip"][0, :, :3] == 0).all()  # letterbox bars: 64x48 -> 24x18 in 24x24
    assert (out["clip"][0, :27, 3:21, :4] > 240).all()  # the bar on the left: eval never flips


def test_training_subclips_are_the_official_draws_fixed_for_the_run(batch):
    decoder = SpanDecoder(size=24, max_frames=20, mode="train", seed=3, rows_per_video=6, flip=False)
    out = decoder(batch)
    assert out["clip"].shape == (12, 20, 24, 24, 3)
    from tubelab.data.decode import video_key

    rng = np.random.default_rng([3, video_key("a.mp4")])
    expected = [draw_subclip([2, 8, 15, 21, 28], rng, 20) for _ in range(6)]
    nxt, pre = cycle_offsets([2, 8, 15, 21, 28])
    for row, (first, last, count) in enumerate(expected):
        n = last - first + 1
        assert out["n_frames"][row] == n and out["count"][row] == count
        assert index_of(out["clip"][row, :n]).tolist() == list(range(first, last + 1))
        assert out["offset_next"][row, :n].tolist() == nxt[first - 2:last - 1].tolist()
        assert out["offset_pre"][row, :n].tolist() == pre[first - 2:last - 1].tolist()
    decoder.epoch = 5  # another epoch: the same sub-clips
    again = decoder(batch)
    assert np.array_equal(again["clip"], out["clip"]) and np.array_equal(again["n_frames"], out["n_frames"])


def test_training_flips_about_half_anew_each_epoch(batch):
    decoder = SpanDecoder(size=24, max_frames=FRAMES, mode="train", rows_per_video=10, flip=True)
    flips = []
    for epoch in range(4):
        decoder.epoch = epoch
        out = decoder(batch)
        flips.append([bool(out["clip"][r, 0, 12, -2, 0] > 240) for r in range(len(out["clip"]))])
    share = np.mean(flips)
    assert 0.3 < share < 0.7 and len({tuple(f) for f in flips}) == 4


def test_spans_that_do_not_fit_are_errors(batch):
    bad = {**batch, "cycles": np.array([[0.1, 0.5, 9.0], CYCLES], object)}  # past the video's end
    with pytest.raises(DecodeError, match="not increasing frames inside its 30 frames"):
        SpanDecoder(size=24, max_frames=FRAMES, mode="eval")(bad)
    with pytest.raises(DecodeError, match="longer than the 20"):
        SpanDecoder(size=24, max_frames=20, mode="eval")(batch)
    with pytest.raises(ValueError, match="mode"):
        SpanDecoder(size=24, max_frames=20, mode="test")
