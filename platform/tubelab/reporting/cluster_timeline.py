"""A sweep's scaling timeline on an autoscaling cluster: when each worker node came up and went, when the
sweep and its trials started and finished, and the node-hours that cost, from Ray's node table (the State
API keeps dead nodes with their start and end times) and the sweep's MLflow runs.

Logged to the sweep's parent run as timeline.csv, timeline.png and `nodes/<type>_hours` metrics: by the sweep
when it ends (its nodes are still up then: idle nodes go after the cluster's idle timeout), and again by
`tubelab report sweep=NAME resources.address=DASHBOARD_URL` once the cluster has scaled down, which adds
the terminations. The head, up before and after every sweep, is not on it.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path

from tubelab import node_types
from tubelab.tracking import mlflow_runs

LAUNCHED_TAG = "tubelab.launched_at"  # on a sweep's parent run: when this launch of it started (unix s)
NOT_A_MARKER = ("CPU", "GPU", "memory", "object_store_memory", "accelerator_type", "node:")


@dataclass(frozen=True)
class NodeSpan:
    node_id: str
    node_type: str
    start: float            # unix seconds: the node's raylet started
    end: float | None       # unix seconds it went; None while it is up


def node_type(resources_total: dict, types: list[node_types.NodeType]) -> str:
    """The node type a worker node was launched as: the type of the cluster config whose custom resources
    (decode_node, train_node, ...) it carries, else those resources' names, else "worker"."""
    custom = {k for k in resources_total if not k.startswith(NOT_A_MARKER)}
    for t in types:
        if custom and custom == {k for k in t.resources if not k.startswith(NOT_A_MARKER)}:
            return t.name
    return "+".join(sorted(custom)) or "worker"


def cluster_nodes(address: str, cluster_config: str | None = None) -> list[NodeSpan]:
    """The worker nodes the cluster at `address` (dashboard URL or GCS address) has had, alive or gone."""
    from ray.util.state import list_nodes

    types = node_types.read(cluster_config) if cluster_config else []
    spans = []
    for n in list_nodes(address=address, detail=True, limit=10_000, raise_on_missing_output=False):
        if n.is_head_node or not n.start_time_ms:
            continue
        end = n.end_time_ms / 1000 if n.state == "DEAD" and n.end_time_ms else None
        spans.append(NodeSpan(n.node_id, node_type(n.resources_total or {}, types), n.start_time_ms / 1000, end))
    return sorted(spans, key=lambda s: s.start)


def sweep_window(parent) -> tuple[float, float | None]:
    """(start, end) of a sweep's latest launch in unix seconds (end None while it runs). It starts when the
    command did, before its parent run exists: preparing data may already have launched nodes."""
    start = float(parent.data.tags.get(LAUNCHED_TAG, parent.info.start_time / 1000))
    return start, (parent.info.end_time / 1000 if parent.info.end_time else None)


def first_epochs(client, experiment_id: str, trials) -> dict[str, float]:
    """{trial run name: when its pretraining logged its first epoch (unix s)}, for trials that trained."""
    out = {}
    for t in trials:
        stages = client.search_runs([experiment_id], f"tags.`{mlflow_runs.PARENT_TAG}` = '{t.info.run_id}' and "
                                    f"tags.`tubelab.kind` = 'stage' and attributes.run_name = 'pretrain'")
        history = [m.timestamp for s in stages for m in client.get_metric_history(s.info.run_id, "pretrain/loss")]
        if history:
            out[t.info.run_name] = min(history) / 1000
    return out


def sweeps_nodes(nodes: list[NodeSpan], start: float, end: float | None) -> list[NodeSpan]:
    """The nodes up at some point while the sweep ran; those that went before it or came after it served
    other work."""
    return [n for n in nodes if (n.end is None or n.end >= start) and (end is None or n.start <= end)]


def events(nodes: list[NodeSpan], trials, start: float, end: float | None,
           first_epoch: dict[str, float] | None = None) -> list[dict]:
    """One row per event, in time order; `t` is seconds since the sweep started."""
    rows = [("sweep launched", "", start)] + ([("sweep finished", "", end)] if end else [])
    rows += [("first epoch logged", name, at) for name, at in (first_epoch or {}).items()]
    for n in nodes:
        rows.append(("node up", f"{n.node_type} {n.node_id[-6:]}", n.start))
        if n.end is not None:
            rows.append(("node down", f"{n.node_type} {n.node_id[-6:]}", n.end))
    for t in trials:
        rows.append(("trial started", t.info.run_name, t.info.start_time / 1000))
        if t.info.end_time:
            rows.append(("trial finished", t.info.run_name, t.info.end_time / 1000))
    return [{"t": round(at - start, 1), "event": event, "what": what,
             "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))}
            for event, what, at in sorted(rows, key=lambda r: r[2])]


def node_hours(nodes: list[NodeSpan], start: float, now: float) -> dict[str, float]:
    """Hours each node type was up for the sweep: each of its nodes from its launch (or the sweep's start) to
    its termination, the idle time before the autoscaler removed it included (it is paid for); a node still up
    counts until `now`."""
    hours: dict[str, float] = {}
    for n in nodes:
        up = max(0.0, (n.end if n.end is not None else now) - max(n.start, start))
        hours[n.node_type] = hours.get(n.node_type, 0.0) + up / 3600
    return hours


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["t", "event", "what", "time"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def plot(nodes: list[NodeSpan], trials, start: float, now: float, path: Path) -> None:
    """Gantt chart: one bar per node (coloured by type) and per trial, seconds since the sweep started."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [(f"{n.node_type} {n.node_id[-6:]}", n.start, n.end or now, n.node_type) for n in nodes]
    bars += [(t.info.run_name, t.info.start_time / 1000, (t.info.end_time or now * 1000) / 1000, "trial")
             for t in trials]
    kinds = sorted({b[3] for b in bars})
    colours = {k: plt.get_cmap("tab10")(i) for i, k in enumerate(kinds)}
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(bars) + 1.5))
    for y, (label, a, b, kind) in enumerate(bars):
        ax.barh(y, b - a, left=a - start, color=colours[kind], label=kind)
    ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the sweep started")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="lower right", fontsize=8)
    ax.set_title("worker nodes and trials")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def log_timeline(cfg, parent_run_id: str, address: str) -> str:
    """Build the sweep's timeline from the cluster at `address` and its MLflow runs, log it to the parent
    run (replacing an earlier one) and return a short summary for the terminal."""
    import tempfile

    client = mlflow_runs.client(cfg)
    parent = client.get_run(parent_run_id)
    trials = client.search_runs([parent.info.experiment_id], f"tags.`{mlflow_runs.PARENT_TAG}` = '{parent_run_id}' "
                                f"and tags.`tubelab.kind` = 'trial'", order_by=["attributes.start_time ASC"])
    start, end = sweep_window(parent)
    nodes = sweeps_nodes(cluster_nodes(address, cfg.resources.get("cluster_config")), start, end)
    now = time.time()
    rows = events(nodes, trials, start, end, first_epochs(client, parent.info.experiment_id, trials))
    hours = node_hours(nodes, start, now)
    mlflow_runs.log_text(cfg, parent_run_id, to_csv(rows), "timeline.csv")
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "timeline.png"
        plot(nodes, trials, start, now, png)
        mlflow_runs.log_artifact(cfg, parent_run_id, png)
    mlflow_runs.log_metrics(cfg, parent_run_id, {f"nodes/{k}_hours": v for k, v in hours.items()}, step=0)
    up = sum(1 for n in nodes if n.end is None)
    spent = ", ".join(f"{k} {v:.3f}" for k, v in sorted(hours.items())) or "none"
    return (f"timeline: {sum(1 for r in rows if r['event'] == 'node up')} worker node(s) launched, {up} still up; "
            f"node-hours {spent} (timeline.csv, timeline.png on the sweep's run)")
