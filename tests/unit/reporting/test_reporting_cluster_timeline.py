"""The scaling timeline's arithmetic: node types from their markers, which nodes served a sweep, the events in
time order, node-hours, the CSV and the plot. (The e2e test reads it from a real autoscaling cluster.)"""

import csv
import io
from pathlib import Path
from types import SimpleNamespace

import pytest

from tubelab import node_types
from tubelab.reporting.cluster_timeline import (NodeSpan, events, node_hours, node_type, plot, sweeps_nodes,
                                                to_csv)

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_800_000_000.0  # the sweep's start (unix s)


def trial(name, start, end):
    return SimpleNamespace(info=SimpleNamespace(run_name=name, start_time=int((T0 + start) * 1000),
                                                end_time=int((T0 + end) * 1000) if end is not None else None))


def test_a_node_is_named_by_the_node_type_whose_markers_it_carries():
    types = node_types.read(ROOT / "infra" / "aws" / "cluster.yaml")
    assert node_type({"CPU": 16.0, "decode_node": 1.0, "memory": 1e9, "node:10.0.0.5": 1.0}, types) == "decode"
    assert node_type({"CPU": 8.0, "GPU": 1.0, "train_node": 1.0, "accelerator_type:A10G": 1.0}, types) == "train"
    # without the cluster config (or a marker no type has): the markers themselves, else "worker"
    assert node_type({"CPU": 2.0, "train_node": 1.0}, []) == "train_node"
    assert node_type({"CPU": 2.0, "spare": 1.0}, types) == "spare"
    assert node_type({"CPU": 2.0, "memory": 1e9}, types) == "worker"


NODES = [NodeSpan("a" * 8, "decode", T0 - 100, T0 - 50),   # another sweep's: gone before this one
         NodeSpan("b" * 8, "decode", T0 + 5, T0 + 65),
         NodeSpan("c" * 8, "train", T0 + 20, T0 + 95),
         NodeSpan("d" * 8, "train", T0 + 200, None)]        # launched after the sweep ended, still up


def test_only_the_nodes_up_during_the_sweep_are_its():
    assert [n.node_id[0] for n in sweeps_nodes(NODES, T0, T0 + 80)] == ["b", "c"]
    assert [n.node_id[0] for n in sweeps_nodes(NODES, T0, None)] == ["b", "c", "d"]  # still running: all since


def test_events_are_in_time_order_relative_to_the_sweeps_start():
    nodes = sweeps_nodes(NODES, T0, T0 + 80)
    rows = events(nodes, [trial("t1", 1, 60), trial("t2", 2, 75)], T0, T0 + 80, {"t1": T0 + 30})
    assert [(r["t"], r["event"], r["what"]) for r in rows] == [
        (0.0, "sweep launched", ""), (1.0, "trial started", "t1"), (2.0, "trial started", "t2"),
        (5.0, "node up", "decode bbbbbb"), (20.0, "node up", "train cccccc"), (30.0, "first epoch logged", "t1"),
        (60.0, "trial finished", "t1"), (65.0, "node down", "decode bbbbbb"), (75.0, "trial finished", "t2"),
        (80.0, "sweep finished", ""), (95.0, "node down", "train cccccc")]
    assert rows[0]["time"] == "2027-01-15T08:00:00Z"
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [r["event"] for r in parsed] == [r["event"] for r in rows] and parsed[3]["t"] == "5.0"


def test_node_hours_count_each_node_from_launch_to_termination_idle_tail_included():
    nodes = sweeps_nodes(NODES, T0, T0 + 80)
    assert node_hours(nodes, T0, now=T0 + 1000) == pytest.approx({"decode": 60 / 3600, "train": 75 / 3600})
    # a node up before the sweep counts from the sweep's start; one still up counts until now
    early_and_open = [NodeSpan("e", "decode", T0 - 30, None)]
    assert node_hours(early_and_open, T0, now=T0 + 90) == pytest.approx({"decode": 90 / 3600})


def test_the_plot_is_a_png(tmp_path):
    path = tmp_path / "timeline.png"
    plot(sweeps_nodes(NODES, T0, None), [trial("t1", 1, 60), trial("t2", 2, None)], T0, T0 + 300, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
