"""Clip sampling and ClipDecoder on batches read from a real shard (the numpy dict Ray Data passes)."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from tubelab.data.decode import ClipDecoder, clip_rng, crop_box, sample_indices, video_key
from tubelab.data.decoders import DecodeError, read_frames
from tubelab.data.prepare import shard_index
from tubelab.data.shards import shard_paths
from tubelab.data.synthetic import generate
from tubelab.data.indexers.ucf101 import index_ucf101

FRAMES, H, W = 24, 48, 64
COLUMNS = ["video_id", "label", "num_frames", "width", "height", "video"]  # what data.pipeline reads


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("src"), train_per_class=1, test_per_class=1, num_frames=FRAMES,
                    width=W, height=H, classes=["MoveRight", "Spin"], progress=False)
    url = str(tmp_path_factory.mktemp("shards"))
    card = {"name": "tiny", "shard_max_videos": 8, "encode": {"short_side": H, "fps": 16, "gop": 4, "crf": 23}}
    manifest = shard_index(index_ucf101(root), url, card=card, shard_max_mb=256, max_bad_fraction=0.0)
    table = pq.read_table(shard_paths(manifest, url, "train")[0], columns=COLUMNS)
    out = {name: table[name].to_numpy(zero_copy_only=False) for name in COLUMNS}  # batch_format="numpy"
    assert out["video"].dtype == object and len(out["video"]) == 2
    return out


def full(batch, i):
    return read_frames(batch["video"][i], np.arange(int(batch["num_frames"][i])))


# --- sample_indices ---------------------------------------------------------------------------------------------

def test_sample_indices_centred_without_rng():
    assert sample_indices(24, 4, 2, None).tolist() == [8, 10, 12, 14]  # span 7, room 17, start 8
    assert sample_indices(16, 8, 1, None).tolist() == list(range(4, 12))
    assert sample_indices(7, 4, 2, None).tolist() == [0, 2, 4, 6]  # exact fit


def test_sample_indices_random_start():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(400):
        idx = sample_indices(24, 4, 3, rng)  # span 10: start in 0..14
        assert len(idx) == 4 and np.all(np.diff(idx) == 3)
        assert 0 <= idx[0] and idx[-1] <= 23
        starts.add(int(idx[0]))
    assert starts == set(range(15))  # every start is reachable, no other


def test_sample_indices_short_video_repeats_last_frame():
    assert sample_indices(5, 4, 2, None).tolist() == [0, 2, 4, 4]
    assert sample_indices(3, 6, 1, None).tolist() == [0, 1, 2, 2, 2, 2]
    rng = np.random.default_rng(1)
    assert all(sample_indices(5, 4, 2, rng).tolist() == [0, 2, 4, 4] for _ in range(20))
    assert sample_indices(1, 3, 4, rng).tolist() == [0, 0, 0]


# --- crop_box ---------------------------------------------------------------------------------------------------

def test_crop_box_centre_and_random():
    assert crop_box(48, 64, 32, None) == (8, 16)
    assert crop_box(48, 64, 48, None) == (0, 8)
    rng = np.random.default_rng(0)
    boxes = {crop_box(48, 64, 40, rng) for _ in range(2000)}
    assert {y for y, _ in boxes} == set(range(9)) and {x for _, x in boxes} == set(range(25))
    assert all(isinstance(v, int) for box in boxes for v in box)


def test_crop_larger_than_frame_raises():
    with pytest.raises(ValueError, match=r"crop 56 is larger than the 64x48 shard frames; lower clip.crop or "
                                         r"re-encode with a larger short side"):
        crop_box(48, 64, 56, None)


# --- ClipDecoder ------------------------------------------------------------------------------------------------

def test_output_shapes_labels_and_keys(batch):
    decoder = ClipDecoder(frames=4, strides=[1, 2], crop=32, clips_per_row=2, rows_per_video=3, mode="train")
    out = decoder(batch)
    assert set(out) == {"clip", "label", "video_key"}
    assert out["clip"].shape == (6, 2, 4, 32, 32, 3) and out["clip"].dtype == np.uint8
    assert out["label"].dtype == np.int64 and out["label"].tolist() == np.repeat(batch["label"], 3).tolist()
    keys = [video_key(v) for v in batch["video_id"]]
    assert out["video_key"].dtype == np.int64 and out["video_key"].tolist() == np.repeat(keys, 3).tolist()
    assert out["clip"].std() > 10  # real pixels, not a blank buffer


def test_video_key_stable_and_distinct(batch):
    a = ClipDecoder(frames=2, strides=[1], crop=32, mode="eval")(batch)["video_key"]
    b = ClipDecoder(frames=2, strides=[1], crop=32, mode="train", seed=7)(batch)["video_key"]
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 2
    assert video_key("MoveRight/v_MoveRight_g02_c01.mp4") == video_key("MoveRight/v_MoveRight_g02_c01.mp4")
    assert 0 <= video_key("x") < 2 ** 60 and video_key("x") != video_key("y")


def test_eval_is_the_centred_clip_and_deterministic(batch):
    decoder = ClipDecoder(frames=4, strides=[3, 1], crop=32, flip=True, mode="eval")
    out = decoder(batch)["clip"]
    assert out.shape == (2, 1, 4, 32, 32, 3)
    assert np.array_equal(out, decoder(batch)["clip"])
    assert np.array_equal(out, ClipDecoder(frames=4, strides=[3, 1], crop=32, mode="eval")(batch)["clip"])
    for i in range(2):
        idx = sample_indices(FRAMES, 4, 3, None)  # the first stride, centred: frames 7, 10, 13, 16
        assert idx.tolist() == [7, 10, 13, 16]
        expected = full(batch, i)[idx][:, 8:40, 16:48]  # centre crop, never flipped in eval
        assert np.array_equal(out[i, 0], expected)


def test_eval_clips_are_spread_evenly_over_the_video(batch):
    out = ClipDecoder(frames=4, strides=[3], crop=32, mode="eval", eval_clips=3)(batch)["clip"]
    assert out.shape == (2, 3, 4, 32, 32, 3)
    span = 3 * 3 + 1  # 4 frames at stride 3
    for k, start in enumerate([0, (FRAMES - span) // 2, FRAMES - span]):  # first, middle, last
        expected = full(batch, 0)[start + 3 * np.arange(4)][:, 8:40, 16:48]
        assert np.array_equal(out[0, k], expected)


def test_three_spatial_views_per_eval_clip_along_the_longer_side(batch):
    """SEVERE's Charades test: 10 clips x 3 crops (start, centre, end of the longer side), SlowFast's
    uniform_crop; clip-major order (each clip's three views together)."""
    assert [crop_box(48, 64, 32, None, v, 3) for v in range(3)] == [(8, 0), (8, 16), (8, 32)]
    assert [crop_box(64, 48, 32, None, v, 3) for v in range(3)] == [(0, 8), (16, 8), (32, 8)]  # portrait
    out = ClipDecoder(frames=4, strides=[3], crop=32, mode="eval", eval_clips=2, eval_crops=3)(batch)["clip"]
    assert out.shape == (2, 6, 4, 32, 32, 3)
    span = 3 * 3 + 1
    for k, (start, x) in enumerate([(s, x) for s in (0, FRAMES - span) for x in (0, 16, 32)]):
        assert np.array_equal(out[0, k], full(batch, 0)[start + 3 * np.arange(4)][:, 8:40, x:x + 32])
    with pytest.raises(ValueError, match="clip.eval_crops must be 1"):
        ClipDecoder(frames=4, strides=[3], crop=32, mode="eval", eval_crops=2)


def test_jitter_keeps_frames_in_order_within_the_span():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        idx = sample_indices(64, 8, 4, rng, jitter=True)
        assert (np.diff(idx) >= 0).all() and idx[-1] - idx[0] <= 7 * 4
        seen.add(tuple(np.diff(idx)))
    assert len(seen) > 10  # the spacing really varies
    assert np.array_equal(np.diff(sample_indices(64, 8, 4, rng)), [4] * 7)  # no jitter: exact stride


def test_undecodable_videos_are_skipped_and_reported(batch):
    import ray

    from tubelab.data.failures import FailureLog

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=1, include_dashboard=False)
    log = FailureLog.remote()
    broken = {k: v.copy() for k, v in batch.items()}
    broken["video"][0] = b"\x00" * 100
    out = ClipDecoder(frames=4, strides=[1], crop=32, rows_per_video=2, failures=log)(broken)
    assert out["clip"].shape[0] == 2  # the other video's two rows; nothing substituted for the broken one
    assert (out["video_key"] == video_key(str(batch["video_id"][1]))).all()
    assert list(ray.get(log.get.remote())) == [str(batch["video_id"][0])]
    with pytest.raises(Exception, match="decord"):
        ClipDecoder(frames=4, strides=[1], crop=32)(broken)  # without a log the error propagates
    if started:
        ray.shutdown()


def test_a_corrupted_video_is_caught_by_its_hash_even_when_it_decodes(batch):
    import hashlib

    hashed = {**batch, "sha256": np.array([hashlib.sha256(v).hexdigest() for v in batch["video"]], dtype=object)}
    decoder = ClipDecoder(frames=4, strides=[1], crop=32, mode="eval")
    assert decoder(hashed)["clip"].shape[0] == 2  # intact bytes pass the check
    data = bytearray(batch["video"][0])
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the frame data
    corrupted = {**hashed, "video": hashed["video"].copy()}
    corrupted["video"][0] = bytes(data)
    decoder(dict(corrupted, sha256=np.array([hashlib.sha256(v).hexdigest() for v in corrupted["video"]],
                                            dtype=object)))  # without the hash check it decodes: wrong pixels
    with pytest.raises(DecodeError, match=r"do not match the sha256 prepare recorded \(a corrupted shard\); run `tubelab prepare`"):
        decoder(corrupted)


def replay(batch, seed, epoch, frames, strides, crop, flip):
    """What ClipDecoder should produce for one clip of every video, drawing from each video's clip_rng."""
    clips, flipped = [], []
    for i in range(len(batch["video"])):
        video = full(batch, i)
        rng = clip_rng(seed, epoch, video_key(batch["video_id"][i]))
        stride = int(rng.choice(strides))
        idx = sample_indices(int(batch["num_frames"][i]), frames, stride, rng)
        y, x = crop_box(video.shape[1], video.shape[2], crop, rng)
        clip = video[idx][:, y:y + crop, x:x + crop]
        f = flip and rng.random() < 0.5
        clips.append(clip[:, :, ::-1] if f else clip)
        flipped.append(f)
    return clips, flipped


def test_train_without_flip_never_flips(batch):
    for seed in range(8):
        out = ClipDecoder(frames=4, strides=[1, 2], crop=32, flip=False, mode="train", seed=seed)(batch)["clip"][:, 0]
        expected, _ = replay(batch, seed, 0, 4, [1, 2], 32, flip=False)
        for got, want in zip(out, expected):
            assert np.array_equal(got, want)
            assert not np.array_equal(got, want[:, :, ::-1])  # the content is not mirror-symmetric


def test_train_with_flip_flips_about_half(batch):
    decoder = ClipDecoder(frames=4, strides=[1, 2], crop=32, flip=True, mode="train", seed=3)
    flips = []
    for epoch in range(10):
        decoder.epoch = epoch
        out = decoder(batch)["clip"][:, 0]
        expected, flipped = replay(batch, 3, epoch, 4, [1, 2], 32, flip=True)
        assert all(np.array_equal(got, want) for got, want in zip(out, expected))
        flips += flipped
    assert 0 < sum(flips) < len(flips)


def test_train_draws_differ_between_clips_and_epochs_and_nothing_else(batch):
    def decoder(seed=0):
        return ClipDecoder(frames=4, strides=[1, 2], crop=24, clips_per_row=2, rows_per_video=4, mode="train", seed=seed)

    first = decoder()
    clips = first(batch)["clip"]
    rows = clips[:4].reshape(8, -1)  # the 4 rows x 2 clips of the first video
    assert len({r.tobytes() for r in rows}) > 1
    assert np.array_equal(clips, first(batch)["clip"])  # same epoch, same clips: nothing depends on call history
    assert np.array_equal(clips, decoder()(batch)["clip"])  # ... or on which decoder (actor) decodes the video
    one = {k: v[1:] for k, v in batch.items()}
    assert np.array_equal(clips[4:], decoder()(one)["clip"])  # ... or on the other videos of the block
    first.epoch = 1
    assert not np.array_equal(clips, first(batch)["clip"])  # a new epoch draws new clips
    assert not np.array_equal(clips, decoder(seed=1)(batch)["clip"])  # and so does another seed


def test_all_clips_of_a_video_come_from_one_decode_of_their_frames(batch, monkeypatch):
    import tubelab.data.decode as decode

    calls = []

    def counting(data, indices, backend):
        calls.append(np.asarray(indices).tolist())
        return read_frames(data, indices, backend)

    monkeypatch.setattr(decode, "read_frames", counting)
    decoder = ClipDecoder(frames=4, strides=[1, 3], crop=24, clips_per_row=2, rows_per_video=3, flip=True,
                          jitter=True, mode="train", seed=5)
    out = decoder(batch)["clip"]
    assert out.shape == (6, 2, 4, 24, 24, 3)
    assert len(calls) == 2 and all(c == sorted(set(c)) for c in calls)  # one reader per video, each frame once
    for i in range(2):  # the same draws as one reader per clip: stride + indices of every clip, then crop + flip
        video, ref = full(batch, i), clip_rng(5, 0, video_key(batch["video_id"][i]))
        idx = [sample_indices(FRAMES, 4, int(ref.choice([1, 3])), ref, jitter=True) for _ in range(6)]
        assert calls[i] == sorted(set(np.concatenate(idx).tolist()))
        for k, frames in enumerate(idx):
            y, x = crop_box(H, W, 24, ref)
            want = video[frames][:, y:y + 24, x:x + 24]
            want = want[:, :, ::-1] if ref.random() < 0.5 else want
            assert np.array_equal(out[3 * i + k // 2, k % 2], want)


def test_clip_longer_than_video_repeats_last_frame(batch):
    out = ClipDecoder(frames=8, strides=[4], crop=48, mode="eval")(batch)["clip"]  # span 29 > 24 frames
    video = full(batch, 0)
    assert np.array_equal(out[0, 0], video[[0, 4, 8, 12, 16, 20, 23, 23]][:, :, 8:56])


def test_invalid_mode_and_crop(batch):
    with pytest.raises(ValueError, match="mode must be 'train' or 'eval', got 'test'"):
        ClipDecoder(frames=4, strides=[1], crop=32, mode="test")
    with pytest.raises(ValueError, match="lower clip.crop"):
        ClipDecoder(frames=4, strides=[1], crop=64, mode="eval")(batch)  # frames are 64x48


def test_resized_crop_boxes_follow_the_scale_and_come_back_at_crop_size(batch):
    from tubelab.data.decode import resized_crop_box

    rng = np.random.default_rng(0)
    fractions = []
    for _ in range(500):
        y, x, h, w = resized_crop_box(48, 64, (0.08, 1.0), rng)
        assert 0 <= y and y + h <= 48 and 0 <= x and x + w <= 64
        fractions.append(h * w / (48 * 64))
    assert min(fractions) < 0.15 and max(fractions) > 0.7  # the whole range is used
    out = ClipDecoder(frames=4, strides=[1], crop=32, resized_crop=[0.08, 1.0])(batch)["clip"]
    assert out.shape == (2, 1, 4, 32, 32, 3) and out.dtype == np.uint8


def test_scales_resize_to_one_size_per_clip_then_crop(batch):
    """The official pretraining geometry (GroupScale to one of the (w, h) sizes, then a random crop): a ramp of
    slope 1 per pixel in x reads back with slope src_width / w, so each clip's slope names the size drawn."""
    ramp = np.broadcast_to(np.arange(64, dtype=np.uint8)[None, None, :, None] * 3, (6, 48, 64, 3)).copy()
    sizes = [(32, 24), (48, 36), (96, 72)]
    decoder = ClipDecoder(frames=4, strides=[1], crop=20, scales=[list(s) for s in sizes])
    rng = np.random.default_rng(0)
    slopes = set()
    for _ in range(60):
        out = np.empty((4, 20, 20, 3), np.uint8)
        decoder.crop_clip(ramp, np.arange(4), out, rng)
        slope = np.diff(out[0, 10, 2:-2, 0].astype(float)).mean() / 3  # source pixels per output pixel
        slopes.add(min(sizes, key=lambda s: abs(64 / s[0] - slope)))
        assert min(abs(64 / w - slope) for w, _ in sizes) < 0.1
    assert slopes == set(sizes)  # every size is drawn
    with pytest.raises(ValueError, match="set one"):
        ClipDecoder(frames=4, strides=[1], crop=20, scales=[[32, 24]], resized_crop=[0.08, 1.0])
    assert ClipDecoder(frames=4, strides=[1], crop=20, scales=[[32, 24]])(batch)["clip"].shape == (2, 1, 4, 20, 20, 3)


# --- SEVERE's Charades: clip labels from the action intervals, the train scale jitter, the test short side ----

def frame_by_frame(segments, fps, first, last):
    """The SlowFast way, spelled out: a label list per frame, then their union over first..last."""
    per_frame = [{s["label"] for s in segments if s["start"] <= i / fps <= s["end"]} for i in range(first, last + 1)]
    return set().union(*per_frame)


def test_active_classes_are_the_actions_of_the_clips_frames():
    from tubelab.data.decode import active_classes

    segments = [{"label": 1, "start": 0.5, "end": 1.0}, {"label": 2, "start": 1.0625, "end": 2.0},
                {"label": 3, "start": 9.0, "end": 12.0}]
    assert active_classes(segments, 16, 0, 7) == set()       # frame 7 is at 0.4375 s
    assert active_classes(segments, 16, 0, 8) == {1}         # frame 8 at 0.5 s: an interval holds its ends
    assert active_classes(segments, 16, 16, 16) == {1}       # 1.0 s
    assert active_classes(segments, 16, 16, 17) == {1, 2}
    assert active_classes(segments, 16, 33, 150) == {3}     # 2.06 to 9.4 s
    assert active_classes([], 16, 0, 100) == set()
    rng = np.random.default_rng(0)
    for _ in range(300):
        starts = rng.uniform(0, 10, 4).round(2)
        segs = [{"label": int(c), "start": s, "end": s + d} for c, s, d in
                zip(rng.integers(0, 6, 4), starts, rng.uniform(0, 3, 4).round(2))]
        first = int(rng.integers(0, 200))
        last = first + int(rng.integers(0, 100))
        assert active_classes(segs, 24, first, last) == frame_by_frame(segs, 24, first, last)


@pytest.fixture
def multi_batch(batch):
    """The two videos (24 frames at 16 fps) as Charades rows: video 0 has action 0 in its first 6 frames
    and action 1 in its last 6, video 1 action 2 throughout and action 1 after its end."""
    segments = np.empty(2, dtype=object)
    segments[0] = np.array([{"label": 0, "start": 0.0, "end": 5 / 16}, {"label": 1, "start": 18 / 16, "end": 2.0}])
    segments[1] = np.array([{"label": 2, "start": 0.0, "end": 1.5}, {"label": 1, "start": 2.0, "end": 3.0}])
    labels = np.empty(2, dtype=object)
    labels[0], labels[1] = np.array([0, 1]), np.array([1, 2])
    return {**batch, "labels": labels, "segments": segments, "fps": np.array([16.0, 16.0], np.float32)}


def test_training_clips_are_labelled_with_the_actions_of_their_frames(multi_batch):
    decoder = ClipDecoder(frames=4, strides=[1], crop=32, rows_per_video=20, num_classes=3, frame_labels=True, seed=3)
    out = decoder(multi_batch)
    for i in range(2):  # the rows' frames, drawn as the decoder draws them (indices first, row by row)
        rng = clip_rng(3, 0, video_key(multi_batch["video_id"][i]))
        spans = [decoder.indices(FRAMES, rng)[0] for _ in range(20)]
        got = [set(np.flatnonzero(h).tolist()) for h in out["multi_hot"][20 * i:20 * (i + 1)]]
        want = [frame_by_frame(multi_batch["segments"][i], 16, s.min(), s.max()) for s in spans]
        assert got == want
    starts = [set(np.flatnonzero(h).tolist()) for h in out["multi_hot"][:20]]
    assert {0} in starts and {1} in starts and set() in starts  # early, late and middle clips all drawn
    assert all(h.tolist() == [0, 0, 1] for h in out["multi_hot"][20:])  # action 1 starts after the video
    video = ClipDecoder(frames=4, strides=[1], crop=32, rows_per_video=20, num_classes=3, seed=3)(multi_batch)
    assert (video["multi_hot"][:20] == [1, 1, 0]).all() and (video["multi_hot"][20:] == [0, 1, 1]).all()


def test_eval_videos_are_labelled_with_the_actions_of_all_their_frames(multi_batch):
    out = ClipDecoder(frames=4, strides=[1], crop=32, mode="eval", eval_clips=3, num_classes=3,
                      frame_labels=True)(multi_batch)
    assert out["multi_hot"].tolist() == [[1, 1, 0], [0, 0, 1]]  # an action outside the video is no label


def test_short_side_jitter_draws_inverse_uniform_sizes_and_crops_at_that_scale(batch):
    """SlowFast's random_short_side_scale_jitter (inverse_uniform_sampling): 1/size ~ U(1/max, 1/min). On a
    ramp of 3 levels per source pixel, a crop of the frame resized to short side `size` reads back with
    slope 3 * short / size per output pixel."""
    from tubelab.data.decode import scale_jitter_size

    rng = np.random.default_rng(0)
    sizes = np.array([scale_jitter_size((256, 340), rng) for _ in range(20000)])
    assert sizes.min() >= 256 and sizes.max() <= 340 and sizes.min() < 258 and sizes.max() > 338
    inverse = (1 / sizes).mean()  # standard error ~2e-6; uniform in size would give ln(340 / 256) / 84
    assert abs(inverse - (1 / 256 + 1 / 340) / 2) < 1e-5 and abs(inverse - np.log(340 / 256) / 84) > 3e-5
    assert abs(np.median(sizes) - 2 / (1 / 256 + 1 / 340)) < 2

    ramp = np.broadcast_to(np.arange(64, dtype=np.uint8)[None, None, :, None] * 3, (6, 48, 64, 3)).copy()
    decoder = ClipDecoder(frames=4, strides=[1], crop=20, short_side_jitter=[24, 96])
    slopes = []
    for _ in range(200):
        out = np.empty((4, 20, 20, 3), np.uint8)
        decoder.crop_clip(ramp, np.arange(4), out, rng)
        slopes.append(np.diff(out[0, 10, 4:-4, 0].astype(float)).mean() / 3)
    sizes = 48 / np.array(slopes)  # the short side each clip was resized to
    assert sizes.min() > 23 and sizes.max() < 100 and sizes.min() < 30 and sizes.max() > 80
    with pytest.raises(ValueError, match="three ways of scale augmentation"):
        ClipDecoder(frames=4, strides=[1], crop=20, short_side_jitter=[24, 96], resized_crop=[0.08, 1.0])
    with pytest.raises(ValueError, match="clip.crop=20 <= min <= max"):
        ClipDecoder(frames=4, strides=[1], crop=20, short_side_jitter=[16, 96])
    assert ClipDecoder(frames=4, strides=[1], crop=20, short_side_jitter=[24, 96])(batch)["clip"].shape == \
        (2, 1, 4, 20, 20, 3)


def test_eval_views_are_cropped_from_the_frames_at_the_eval_short_side(batch):
    """SEVERE's Charades test resizes the short side to the crop size, then takes the three crops: the same
    pixels as resizing whole frames (48 x 64 -> 32 x 42) and cropping x = 0, 5, 10 of them."""
    from tubelab.data.decode import resize

    out = ClipDecoder(frames=4, strides=[3], crop=32, mode="eval", eval_crops=3, eval_short_side=32)(batch)["clip"]
    frames = full(batch, 0)[sample_indices(FRAMES, 4, 3, None)]
    whole = resize(frames, (32, 42)).astype(float)
    for view, x in enumerate((0, 5, 10)):
        errors = [np.abs(out[0, view] - whole[:, :, at:at + 32]).mean() for at in range(11)]
        assert int(np.argmin(errors)) == x and errors[x] < 4  # interpolation at the box's edges, no more
    with pytest.raises(ValueError, match="eval_short_side=24 is smaller than clip.crop=32"):
        ClipDecoder(frames=4, strides=[3], crop=32, mode="eval", eval_short_side=24)
