"""The epoch a run's train workers are in, for the decode actors' random draws (one Ray actor per run).

A decode actor cannot know the epoch: Ray Data hands it blocks from whichever epoch's execution it
serves. The train workers say which epoch they start; the clock answers the lowest one, because a
worker that started epoch e+1 may still share the executor with one finishing epoch e, and Ray Data
starts epoch e+1's execution only once every worker has asked for it (streaming_split's barrier).
"""

from __future__ import annotations

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


@ray.remote(num_cpus=0)
class EpochClock:
    def __init__(self, workers: int):
        self.epochs = [0] * workers

    def start(self, rank: int, epoch: int) -> None:
        self.epochs[rank] = epoch

    def now(self) -> int:
        return min(self.epochs)


def new_epoch_clock(workers: int):
    """An EpochClock on this process's node (like new_failure_log: not on a train node that may be lost)."""
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return EpochClock.options(scheduling_strategy=here).remote(workers)
