"""The run-wide record of videos that failed to decode, one Ray actor per run (decode actors report to it)."""

from __future__ import annotations

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


@ray.remote(num_cpus=0)
class FailureLog:
    """Collects the videos that failed to decode during a run (from every decode actor)."""

    def __init__(self):
        self.failed: dict[str, str] = {}

    def add(self, video_id: str, error: str) -> None:
        self.failed.setdefault(video_id, error)

    def get(self) -> dict[str, str]:
        return dict(self.failed)


def new_failure_log():
    """A FailureLog on this process's node. A 0-CPU actor may otherwise land on any node, e.g. a spot
    train node whose loss would fail a run that Ray Train had restored."""
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return FailureLog.options(scheduling_strategy=here).remote()
