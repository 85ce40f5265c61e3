"""Shuffled training batches from a stream of decoded blocks, at the cost of one copy per clip.

A decode call emits every clip of two videos together (SEVERE: 10 per video), so a training batch must
draw from a buffer of rows across many blocks. Ray Data's local shuffle buffer
(`iter_torch_batches(local_shuffle_buffer_size=...)`) does that by concatenating and `take`-ing Arrow
tensor columns, which copies every clip (hundreds of KB each) more than once in the consumer. Here the
buffer holds (block, row) references to the blocks' numpy columns, and a batch is one `np.stack` of
rows drawn at random from it: one copy per clip, about what iterating the blocks unshuffled costs
(figures: docs/benchmarks.md "Data pipeline", consumer CPU; jobs/benchmark_data.py consumer_cost).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch


def shuffled_batches(blocks: Iterable[dict[str, np.ndarray]], batch_size: int, buffer_size: int,
                     rng: np.random.Generator, drop_last: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Batches of `batch_size` rows drawn at random from a buffer of at least `buffer_size` rows.

    `blocks`: numpy column dicts, e.g. `dataset.iter_batches(batch_size=None, batch_format="numpy")`.
    At the end of the stream the buffer is drained in random order; a last short batch is dropped when
    `drop_last` (as training does), else yielded.
    """
    if batch_size < 1 or buffer_size < 0:
        raise ValueError(f"batch_size must be >= 1 and buffer_size >= 0, got {batch_size} and {buffer_size}")
    rows: list[tuple[dict[str, np.ndarray], int]] = []
    for block in blocks:
        n = len(next(iter(block.values()), ()))
        rows += [(block, i) for i in range(n)]
        while len(rows) >= buffer_size + batch_size:
            yield _take(rows, rng.choice(len(rows), size=batch_size, replace=False))
    rng.shuffle(rows)
    while len(rows) >= batch_size or (rows and not drop_last):
        yield _take(rows, np.arange(min(batch_size, len(rows))))


def _take(rows: list, positions: np.ndarray) -> dict[str, torch.Tensor]:
    chosen = [rows[p] for p in positions]
    for p in sorted(positions.tolist(), reverse=True):  # swap-remove: O(1) per row, order is random anyway
        rows[p] = rows[-1]
        rows.pop()
    return {key: torch.from_numpy(np.stack([block[key][i] for block, i in chosen])) for key in chosen[0][0]}
