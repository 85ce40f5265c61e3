"""What makes two trials the same experiment: resolved config + dataset content + code version.

A trial whose fingerprint matches a finished run in MLflow is not run again (de-duplication across
sweeps, and `--resume` within one). Keys that only say where things go or how many run at once are
left out; everything that can change a score is in.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import lru_cache
from pathlib import Path

# Keys of a trial config that cannot change its scores.
IGNORED_KEYS = ("name", "home", "tracking", "storage", "reuse", "resume", "ablation")  # same trial, any ablation
IGNORED_RESOURCE_KEYS = ("address", "num_cpus", "max_concurrent_trials", "trial_driver_cpus", "read_task_cpus",
                         "decode_actors", "cpus_per_decode_actor", "cluster_config")


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the tubelab package source (Python and YAML): works without git, e.g. under `ray job submit`."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _scrub(cfg: dict) -> dict:
    cfg = copy.deepcopy(cfg)
    for key in IGNORED_KEYS:
        cfg.pop(key, None)
        cfg.get("choices", {}).pop(key, None)  # the group choice too (`choices.ablation: table3_motion`)
    for key in IGNORED_RESOURCE_KEYS:
        cfg.get("resources", {}).pop(key, None)
    return cfg


def trial_fingerprint(cfg: dict, settings: list[dict], content_hashes: dict[str, str], code: str) -> str:
    """sha256 over the scrubbed pretraining config, each downstream setting, the datasets' content hashes
    and the code version."""
    payload = {"cfg": _scrub(cfg), "settings": [_scrub(s) for s in settings],
               "data": dict(sorted(content_hashes.items())), "code": code}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]
