"""shuffled_batches: every row exactly once, batches mix blocks, the stream's order is broken up."""

import numpy as np
import pytest
import torch

from tubelab.data.batches import shuffled_batches


def blocks(sizes, width=3):
    """Blocks as a decode actor emits them: consecutive rows, one video's clips together."""
    start = 0
    for n in sizes:
        ids = np.arange(start, start + n)
        yield {"clip": np.repeat(ids[:, None], width, axis=1).astype(np.uint8), "video_key": ids}
        start += n


def test_every_row_once_in_full_batches_and_the_short_rest_dropped():
    sizes = [7, 3, 10, 1, 9, 6]  # 36 rows
    out = list(shuffled_batches(blocks(sizes), batch_size=8, buffer_size=16, rng=np.random.default_rng(0)))
    assert [len(b["video_key"]) for b in out] == [8] * 4  # 32 rows; the last 4 dropped
    seen = torch.cat([b["video_key"] for b in out]).tolist()
    assert len(set(seen)) == 32 and set(seen) <= set(range(36))
    for b in out:  # the columns stay aligned row by row
        assert isinstance(b["clip"], torch.Tensor) and b["clip"].dtype == torch.uint8
        assert torch.equal(b["clip"][:, 0].long(), b["video_key"])


def test_without_drop_last_the_rest_comes_as_a_short_batch():
    out = list(shuffled_batches(blocks([5, 5, 3]), 4, 4, np.random.default_rng(1), drop_last=False))
    assert [len(b["video_key"]) for b in out] == [4, 4, 4, 1]
    assert sorted(torch.cat([b["video_key"] for b in out]).tolist()) == list(range(13))


def test_batches_mix_blocks_and_differ_by_seed():
    def first_batches(seed):
        return [b["video_key"].tolist() for b in shuffled_batches(blocks([10] * 20), 8, 32,
                                                                    np.random.default_rng(seed))][:5]

    a = first_batches(0)
    assert all(len({k // 10 for k in batch}) > 1 for batch in a)  # never one block's rows alone
    assert sum(batch != sorted(batch) for batch in a) >= 4  # not in stream order
    assert a == first_batches(0) and a != first_batches(1)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        next(shuffled_batches(blocks([4]), 0, 4, np.random.default_rng(0)))
