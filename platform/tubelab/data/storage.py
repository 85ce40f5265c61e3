"""fsspec storage: one place that turns a URL (local path, file://, s3://) into a filesystem.

S3 endpoint and credentials come from the config (`storage.endpoint_url`) or the environment
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...). They are passed to s3fs and never logged or stored.
"""

from __future__ import annotations

import os
from pathlib import Path

import fsspec

from tubelab.config import CHECKPOINT_FILE, RANDOM_INIT, ConfigError


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def resolve(url: str) -> str:
    """Absolute form of a URL: relative local paths are made absolute (Ray workers have another cwd)."""
    if url.startswith("file://"):
        url = url[len("file://"):]
    if "://" not in url:
        return str(Path(url).expanduser().resolve())
    return url.rstrip("/")


def filesystem(url: str, endpoint_url: str | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path inside it) for a URL."""
    url = resolve(url)
    if is_local(url):
        return fsspec.filesystem("file"), url
    protocol, path = url.split("://", 1)
    if protocol in ("s3", "s3a"):
        endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        kwargs = {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
        return fsspec.filesystem("s3", **kwargs), path
    return fsspec.filesystem(protocol), path


def check_local_store(cfg) -> None:
    """The local folders a run writes to (`home`: MLflow's sqlite store, checkpoints, Tune state; a
    local `storage.url`: shards) take a write, checked before any data or Ray work so that a full disk
    or a missing permission is one clear error naming the folder, not a traceback from a Ray task."""
    places = {"home (TUBELAB_HOME)": cfg.home}
    if "storage" in cfg and is_local(cfg.storage.url):
        places["storage.url"] = cfg.storage.url
    for what, url in places.items():
        folder = Path(resolve(url))
        probe = folder / f".tubelab-write-check-{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                with open(probe, "wb") as f:
                    f.write(b"\0" * 4096)
                    f.flush()
                    os.fsync(f.fileno())
            finally:
                probe.unlink(missing_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot write to {folder} ({e.strerror}), the folder of {what}; free space there, "
                              f"fix its permissions, or point {what} at another folder") from None


def join(url: str, *parts: str) -> str:
    return "/".join([url.rstrip("/"), *[p.strip("/") for p in parts]])


def write_bytes_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write then rename on local disks, so a crash never leaves a partial file under the final name.

    Object stores publish an object only when its upload completes, so a plain write is atomic there.
    """
    if isinstance(fs, fsspec.implementations.local.LocalFileSystem):
        fs.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with fs.open(tmp, "wb") as f:
            f.write(data)
        fs.mv(tmp, path)
    else:
        with fs.open(path, "wb") as f:
            f.write(data)


def has_checkpoint(uri: str, endpoint_url: str | None = None) -> bool:
    """True if the checkpoint directory `uri` holds checkpoint.pt."""
    fs, path = filesystem(join(str(uri), CHECKPOINT_FILE), endpoint_url)
    return fs.exists(path)


def check_checkpoint(cfg) -> None:
    """A given `cfg.checkpoint` must hold checkpoint.pt, checked before Ray starts: a wrong path is a user
    error (one line), not a fault for Ray Train to retry in its workers."""
    uri = cfg.get("checkpoint")
    if not uri or uri == RANDOM_INIT:
        return
    if has_checkpoint(uri, cfg.storage.get("endpoint_url")):
        return
    problem = f"has no {CHECKPOINT_FILE}"
    if is_local(str(uri)) and not Path(resolve(str(uri))).exists():
        problem = "does not exist"
    raise ConfigError(f"checkpoint={uri} {problem}; pass the directory a pretraining run reported (the `checkpoint:` "
                      f"line of `tubelab pretrain`, or its MLflow `checkpoint_uri` tag)")
