"""MLflow: where runs go, how they are named, and what every run records.

One process logs per run (the sweep driver for the parent, the trial for its child, train rank 0 for
per-epoch metrics): sqlite locks under concurrent writers, and the run id travels in the config.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform as _platform
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from tubelab.config import ConfigError, flatten
from tubelab.data import storage
from tubelab.tracking import moved_home

PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_LENGTH = 6000


def tracking_uri(cfg) -> str:
    if cfg.tracking.uri:
        return str(cfg.tracking.uri)
    home = Path(storage.resolve(cfg.home))
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}"


def artifact_root(cfg) -> str | None:
    """Local store: artifacts beside the sqlite file (MLflow's default would be ./mlruns in the cwd)."""
    if cfg.tracking.uri:
        return None
    return (Path(storage.resolve(cfg.home)) / moved_home.ARTIFACTS).as_uri()


def redact(uri: str) -> str:
    """A URI without its user:password part, for messages."""
    return re.sub(r"//[^/@]*@", "//***@", uri)


def check_reachable(cfg, timeout: float = 5.0) -> None:
    """Fail in seconds, before any cluster work, when the tracking server does not answer (MLflow's own
    client retries for minutes)."""
    uri = tracking_uri(cfg)
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # it answered (e.g. 401 behind auth): reachable
    except (OSError, ValueError) as e:
        raise ConfigError(f"the MLflow tracking server at {redact(uri)} is not reachable ({getattr(e, 'reason', e)}); "
                          f"start it, point MLFLOW_TRACKING_URI / tracking.uri at a running one, or use "
                          f"tracking=local") from None


_checked_homes: set[str] = set()


def client(cfg) -> MlflowClient:
    """The MLflow client; the first one in a process for a local store first points a moved or copied
    home's store at where it is now (moved_home)."""
    uri = tracking_uri(cfg)
    if not cfg.tracking.uri and uri not in _checked_homes:
        home = storage.resolve(cfg.home)
        moved_home.relocate(Path(home) / "mlflow.db", home)
        _checked_homes.add(uri)
    return MlflowClient(tracking_uri=uri)


def experiment_id(cfg) -> str:
    c = client(cfg)
    exp = c.get_experiment_by_name(cfg.tracking.experiment)
    if exp is not None:
        return exp.experiment_id
    try:
        tags = None if cfg.tracking.uri else {moved_home.HOME_TAG: storage.resolve(cfg.home)}
        return c.create_experiment(cfg.tracking.experiment, artifact_location=artifact_root(cfg), tags=tags)
    except mlflow.exceptions.MlflowException:  # created concurrently by another process
        return c.get_experiment_by_name(cfg.tracking.experiment).experiment_id


def git_state() -> dict[str, str]:
    """Commit and dirty flag of the source tree; `ray job submit` uploads no .git, so a submitter can
    pass them as TUBELAB_GIT_COMMIT / TUBELAB_GIT_DIRTY (runtime_env env_vars, see README)."""
    if os.environ.get("TUBELAB_GIT_COMMIT"):
        return {"git_commit": os.environ["TUBELAB_GIT_COMMIT"], "git_dirty": os.environ.get("TUBELAB_GIT_DIRTY", "unknown")}
    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit or "unknown", "git_dirty": str(bool(dirty)).lower()}


def base_tags() -> dict[str, str]:
    import ray
    import torch

    return {**git_state(), "python": _platform.python_version(), "ray_version": ray.__version__,
            "torch_version": torch.__version__, "mlflow_version": mlflow.__version__,
            "decord_version": _version("decord"), "av_version": _version("av"), "host": _platform.node()}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


NAME_TAG = "tubelab.name"


def find_run(cfg, name: str, kind: str, parent_run_id: str | None = None):
    """The newest run tubelab started under this name and kind (and parent, if given), or None."""
    query = f"tags.`{NAME_TAG}` = '{name}' and tags.`tubelab.kind` = '{kind}'"
    if parent_run_id:
        query += f" and tags.`{PARENT_TAG}` = '{parent_run_id}'"
    runs = client(cfg).search_runs([experiment_id(cfg)], query, order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def start_run(cfg, name: str, *, kind: str, parent_run_id: str | None = None, tags: dict | None = None,
              resume: bool = False, run_name: str | None = None) -> str:
    """Create a run; with `resume`, reuse the run of the same name and kind (a rerun continues it).
    `name` identifies the run (tag); `run_name`, if given, is what the UI shows instead."""
    if resume:
        existing = find_run(cfg, name, kind, parent_run_id)
        if existing is not None:
            client(cfg).update_run(existing.info.run_id, status="RUNNING")
            return existing.info.run_id
    all_tags = {**base_tags(), **(tags or {}), NAME_TAG: name, "tubelab.kind": kind}
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    run = client(cfg).create_run(experiment_id(cfg), run_name=run_name or name, tags=all_tags)
    return run.info.run_id


def last_step(cfg, run_id: str, metric: str) -> int:
    """The highest step logged for `metric` (-1 if none): a restored run must not log an epoch twice."""
    history = client(cfg).get_metric_history(run_id, metric)
    return max((m.step for m in history), default=-1)


def log_params(cfg, run_id: str, params: dict) -> None:
    """Log the flattened params. MLflow params are immutable: on a resumed run, params that changed
    (e.g. stop_epoch) are recorded as `changed_on_resume.<key>` tags ("old -> new") instead."""
    c = client(cfg)
    logged = c.get_run(run_id).data.params
    flat = _param_values(params)
    items = [Param(k, v) for k, v in sorted(flat.items()) if k not in logged]
    changed = [RunTag(f"changed_on_resume.{k}", f"{logged[k]} -> {v}") for k, v in flat.items()
               if k in logged and logged[k] != v]
    for i in range(0, len(items), 100):
        c.log_batch(run_id, params=items[i:i + 100])
    if changed:
        c.log_batch(run_id, tags=changed)


def _param_values(params: dict) -> dict[str, str]:
    return {k: str(v)[:MAX_PARAM_LENGTH] for k, v in flatten(params).items()}


def changed_params(run, params: dict) -> dict[str, tuple[str, str]]:
    """{key: (value the run last ran with, value now)} for the keys of `params` that differ from what the
    run `run` (an mlflow Run) recorded: its params, as updated by its `changed_on_resume.<key>` tags
    ("old -> new", see log_params). Keys the run never recorded are not compared."""
    recorded = dict(run.data.params)
    for key, old in run.data.params.items():
        tag = run.data.tags.get(f"changed_on_resume.{key}")
        if tag is not None and tag.startswith(f"{old} -> "):
            recorded[key] = tag[len(old) + 4:]
    return {k: (recorded[k], v) for k, v in sorted(_param_values(params).items()) if k in recorded and recorded[k] != v}


def log_metrics(cfg, run_id: str, metrics: dict[str, float], step: int, timestamp: int | None = None) -> None:
    at = timestamp if timestamp is not None else int(time.time() * 1000)
    client(cfg).log_batch(run_id, metrics=[Metric(k, float(v), at, step) for k, v in metrics.items()])


def set_tags(cfg, run_id: str, tags: dict[str, str]) -> None:
    client(cfg).log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_text(cfg, run_id: str, text: str, artifact_file: str) -> None:
    client(cfg).log_text(run_id, text, artifact_file)


def log_artifact(cfg, run_id: str, path: str | os.PathLike, artifact_path: str | None = None) -> None:
    client(cfg).log_artifact(run_id, str(path), artifact_path)


def end_run(cfg, run_id: str, status: str = "FINISHED") -> None:
    client(cfg).set_terminated(run_id, status)
