"""`tubelab prepare`: dataset tree -> index -> re-encoded Parquet shards + manifest.json."""

from __future__ import annotations

from pathlib import Path

from tubelab.data import shards, storage
from tubelab.data.pipeline import shard_url
from tubelab.data.indexers import INDEXERS


def source_dir(cfg) -> Path:
    """The dataset tree to index; the built-in synthetic set is generated on first use."""
    ds = cfg.dataset
    source = cfg.get("source") or ds.source
    if source:
        return Path(source).expanduser().resolve()
    if "generator" not in ds:
        raise ValueError(f"dataset {ds.name!r} needs `source=DIR` pointing at its official tree")
    from tubelab.data.synthetic import generate

    root = Path(storage.resolve(cfg.home)) / "raw" / ds.name
    return generate(root, **ds.generator)


def prepare(cfg, progress: bool = True) -> tuple[dict, str]:
    """Build (or reuse) the shards of `cfg.dataset`; returns (manifest, shard URL)."""
    ds = cfg.dataset
    out = storage.resolve(cfg.get("out") or shard_url(cfg, ds.name))
    endpoint = cfg.storage.get("endpoint_url")
    encode = dict(ds.encode)
    try:
        existing = shards.read_manifest(out, endpoint)
    except shards.ManifestError:
        existing = None
    if existing is not None:
        wanted = (shards.FORMAT, ds.name, encode)
        found = (existing.get("format"), existing["dataset"], existing["encode"])
        if found == wanted:
            return existing, out
        raise ValueError(
            f"{out} already holds shards (format, dataset, encode) {found}, not {wanted}; "
            f"choose another `out=` or delete that folder to rebuild"
        )
    if ds.format not in INDEXERS:
        raise ValueError(f"dataset.format={ds.format!r} has no indexer; available: {', '.join(INDEXERS)}")
    index = INDEXERS[ds.format](source_dir(cfg), **ds.index)
    for problem in index.problems:
        print(f"prepare {ds.name}: {problem}")
    manifest = shards.write_shards(index, out, dataset=ds.name, encode=encode, shard_max_videos=ds.shard_max_videos,
                                   endpoint_url=endpoint, progress=progress)
    return manifest, out


def ensure_shards(cfg, name: str) -> str:
    """Shard URL of dataset `name` under cfg.storage; the built-in synthetic data is generated when missing.

    Real datasets are never prepared implicitly: their missing shards raise with the command to run.
    """
    from omegaconf import OmegaConf

    from tubelab import config

    url = shard_url(cfg, name)
    endpoint = cfg.storage.get("endpoint_url")
    try:
        shards.read_manifest(url, endpoint)
        return url
    except shards.ManifestError:
        prep = OmegaConf.merge(config.load("prepare", [f"dataset={name}"]), {"storage": cfg.storage, "home": cfg.home})
        if "generator" not in prep.dataset:
            raise
    print(f"preparing the {name} dataset shards at {url} (first use)")
    prepare(prep)
    return url
