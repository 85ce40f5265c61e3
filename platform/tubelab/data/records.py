"""What an indexer returns: one record per video, plus every problem it found (never silently dropped)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VideoRecord:
    video_id: str                   # stable id inside the dataset, e.g. "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"
    path: str                       # absolute path of the source file
    split: str                      # "train" | "test" | "val" ...
    label: int = -1                 # single-label class index, 0-based; -1 when the task has none
    labels: tuple[int, ...] = ()    # multi-label class indices (Charades); () for single-label data
    segments: tuple[tuple[int, float, float], ...] = ()  # multi-label: (class, start s, end s) of each action
    count: float | None = None      # repetition count (UCFRep-style counting)
    cycles: tuple[float, ...] = ()  # counting: the repetitions' boundaries, seconds from the video's start
    start: float | None = None      # seconds: the segment to keep (None = from the start)
    end: float | None = None        # seconds (None = to the end)


@dataclass
class DatasetIndex:
    classes: list[str]
    records: list[VideoRecord]
    problems: list[str] = field(default_factory=list)  # "file:line: what is wrong", for the prepare report

    def count(self, split: str) -> int:
        return sum(r.split == split for r in self.records)
