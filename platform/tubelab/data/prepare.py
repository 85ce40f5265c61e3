"""`tubelab prepare`: dataset tree -> index -> re-encoded Parquet shards + manifest.json, as Ray tasks.

One Ray task per shard encodes its videos with PyAV and writes the shard straight to storage, so the
work spreads over every CPU of the cluster. A rerun plans the same shards and skips those already
complete and valid (their Parquet metadata carries the plan's key). Every problem (index lines that
point nowhere, unreadable videos) goes to prepare_report.json; past `max_bad_fraction` the prepare
fails and writes no manifest.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import ray
from omegaconf import OmegaConf, open_dict
from tqdm import tqdm

from tubelab import resources
from tubelab.config import ConfigError
from tubelab.data import shards, storage
from tubelab.data.indexers import INDEXERS
from tubelab.data.pipeline import shard_url
from tubelab.data.records import DatasetIndex


class PrepareError(RuntimeError):
    """Too many bad videos: the message lists some and points at the full report."""


def source_dir(cfg) -> Path:
    """The dataset tree to index; the built-in synthetic set is generated on first use."""
    ds = cfg.dataset
    source = cfg.get("source") or ds.source
    if source:
        return Path(source).expanduser().resolve()
    if "generator" not in ds:
        raise ConfigError(f"dataset {ds.name!r} needs `source=DIR` pointing at its official tree, e.g. `tubelab "
                          f"prepare dataset={ds.name} source=/data/{ds.name}` (datasets/README.md lists the layouts)")
    from tubelab.data.synthetic import generate

    root = Path(storage.resolve(cfg.home)) / "raw" / ds.name
    return generate(root, **ds.generator)


def index_source(cfg) -> DatasetIndex:
    """Index the dataset tree. A tree that is missing, or lacks what the card's indexer reads (list files,
    annotation files, the video folder) or holds malformed ones, is the user's input, not a bug: one
    ConfigError naming the dataset, the folder and the indexer's message (which names the fix)."""
    ds = cfg.dataset
    if ds.format not in INDEXERS:
        raise ConfigError(f"dataset.format={ds.format!r} has no indexer; available: {', '.join(INDEXERS)}")
    root = source_dir(cfg)
    if not root.is_dir():
        raise ConfigError(f"dataset {ds.name!r}: source={root} is not a folder; point `source=` at the folder of "
                          f"the official {ds.name} tree (datasets/README.md lists the layouts)")
    try:
        return INDEXERS[ds.format](root, **ds.index)
    except (OSError, ValueError) as e:  # FileNotFoundError, a malformed list or annotation line
        raise ConfigError(f"dataset {ds.name!r} at {root}: {e}") from None


def check_existing(cfg, out: str) -> dict | None:
    """A complete prepare of the same dataset card at `out` (reused), or None; other shards there raise."""
    try:
        existing = shards.read_manifest(out, cfg.storage.get("endpoint_url"), check_format=False)
    except shards.ManifestError:
        return None
    check_same_card(existing, cfg.dataset, out)
    return existing


def check_same_card(manifest: dict, dataset, url: str) -> None:
    """Shards are reused only for the dataset config they were prepared from: a changed generator,
    encode setting or split would otherwise be silently ignored."""
    wanted = {"format": shards.FORMAT, "card": OmegaConf.to_container(dataset, resolve=True)}
    found = {"format": manifest.get("format"), "card": manifest.get("card")}
    if found == wanted:
        return
    diff = [k for k in set(wanted["card"]) | set(found["card"] or {})
            if (found["card"] or {}).get(k) != wanted["card"].get(k)]
    what = "format" if found["format"] != wanted["format"] else f"dataset keys {sorted(diff)}"
    raise ConfigError(f"{url} holds shards prepared with another {what} ({found['format']}, {found['card']}); "
                      f"choose another `out=` / storage.url, or delete that folder to rebuild")


def encode_sequential(plans: list[shards.ShardPlan], encode: dict, out: str, endpoint: str | None,
                      progress: bool = False) -> list[dict]:
    """In this process, one shard after another (tests and tiny datasets)."""
    return [shards.build_shard(p, encode, out, endpoint) for p in tqdm(plans, desc="encode", disable=not progress)]


def encode_on_ray(plans: list[shards.ShardPlan], encode: dict, out: str, endpoint: str | None,
                  progress: bool = True) -> list[dict]:
    """build_shard as Ray tasks across the cluster, with a progress bar over videos.

    On the embedded Ray (more logical than physical CPUs, see resources.py) at most one task per core runs.
    """
    in_flight = max(int(ray.cluster_resources().get("CPU", 1)), 1)
    if len(ray.nodes()) == 1:
        in_flight = min(in_flight, os.cpu_count() or 1)
    task = ray.remote(num_cpus=1, max_retries=2)(shards.build_shard)
    pending, done, queue = [], [], list(plans)
    bar = tqdm(total=sum(len(p.records) for p in plans), desc="encode", unit="video", disable=not progress)
    while queue or pending:
        while queue and len(pending) < in_flight:
            pending.append(task.remote(queue.pop(0), encode, out, endpoint))
        ready, pending = ray.wait(pending, num_returns=1)
        summary = ray.get(ready[0])
        done.append(summary)
        bar.update(len(summary["rows"]) + len(summary["failures"]))
    bar.close()
    return done


def shard_index(index: DatasetIndex, out: str, *, card: dict, shard_max_mb: float, max_bad_fraction: float,
                endpoint: str | None = None, encoder=encode_sequential, progress: bool = False) -> dict:
    """Plan, encode (with `encoder`), report, check the bad fraction, then write the manifest; returns it."""
    started = time.monotonic()
    name, encode = card["name"], dict(card["encode"])
    plans = shards.plan_shards(index, name, card["shard_max_videos"], shard_max_mb)
    summaries = encoder(plans, encode, out, endpoint, progress=progress)
    problems = index.problems + [f for s in summaries for f in s["failures"]]
    total = len(index.records) + len(index.problems)
    written = sum(len(s["rows"]) for s in summaries)
    bad_fraction = len(problems) / max(total, 1)
    report = {"dataset": name, "videos_indexed": len(index.records), "videos_written": written,
              "problems": problems, "bad_fraction": bad_fraction, "max_bad_fraction": max_bad_fraction,
              "shards_reused": sum(s["reused"] for s in summaries),
              "shards_written": sum(not s["reused"] for s in summaries),
              "encode": encode, "seconds": round(time.monotonic() - started, 1)}
    shards.write_json(out, shards.REPORT, report, endpoint)
    report_url = storage.join(out, shards.REPORT)
    print(f"prepare {name}: {written} videos in {len(plans)} shards ({report['shards_reused']} reused), "
          f"{len(problems)} problem(s) ({100 * bad_fraction:.2f}% bad); report: {report_url}")
    if written == 0:
        raise PrepareError(f"dataset {name!r} has no readable videos; problems: {problems[:5]}; see {report_url}")
    if bad_fraction > max_bad_fraction:
        shown = "\n  ".join(problems[:10])
        raise PrepareError(f"{len(problems)} of {total} videos are bad ({100 * bad_fraction:.2f}% > max_bad_fraction "
                           f"{100 * max_bad_fraction:.2f}%), e.g.:\n  {shown}\nfix the dataset or raise "
                           f"max_bad_fraction; the full list is in {report_url}")
    manifest = shards.make_manifest(name, index, encode, summaries, card=card)
    shards.write_json(out, shards.MANIFEST, manifest, endpoint)
    return manifest


def prepare(cfg, progress: bool = True) -> tuple[dict, str]:
    """Build (or reuse) the shards of `cfg.dataset` with Ray tasks; returns (manifest, shard URL)."""
    ds = cfg.dataset
    out = storage.resolve(cfg.get("out") or shard_url(cfg, ds.name))
    existing = check_existing(cfg, out)
    if existing is not None:
        return existing, out
    index = index_source(cfg)
    resources.init_ray(cfg.resources)
    manifest = shard_index(index, out, card=OmegaConf.to_container(ds, resolve=True), shard_max_mb=cfg.shard_max_mb,
                           max_bad_fraction=cfg.max_bad_fraction, endpoint=cfg.storage.get("endpoint_url"),
                           encoder=encode_on_ray, progress=progress)
    return manifest, out


def _format_of(url: str, endpoint: str | None) -> str | None:
    try:
        return shards.read_manifest(url, endpoint, check_format=False).get("format")
    except shards.ManifestError:
        return None


def ensure_shards(cfg, name: str, card_overrides: list[str] = ()) -> str:
    """Shard URL of dataset `name` under cfg.storage; the built-in synthetic data is generated when missing.

    Real datasets are never prepared implicitly: their missing shards raise with the command to run.
    `card_overrides` ("dataset.KEY=V") change the card, as `card.NAME.KEY=V` on the command line.
    """
    from tubelab import config

    url = shard_url(cfg, name)
    prep = config.load("prepare", [f"dataset={name}", *card_overrides])
    with open_dict(prep):  # the caller's storage, state dir and resources, whatever their group options
        prep.storage, prep.home, prep.resources = cfg.storage, cfg.home, cfg.resources
        if "dataset" in cfg and cfg.dataset.name == name:
            prep.dataset = cfg.dataset  # with the caller's overrides (e.g. a smaller generator)
    endpoint = cfg.storage.get("endpoint_url")
    try:
        check_same_card(shards.read_manifest(url, endpoint), prep.dataset, url)
        return url
    except shards.ManifestError:
        if "generator" not in prep.dataset:
            raise
    old = _format_of(url, endpoint)
    if old not in (None, shards.FORMAT):
        # generated data rebuilds identically from its generator: without the manifest the folder is an
        # incomplete prepare, and every shard (its key names the format) is encoded again
        print(f"rebuilding the {name} dataset shards at {url}: they are in format {old!r}, this tubelab reads "
              f"{shards.FORMAT!r} (generated data: the same videos again)")
        fs, root = storage.filesystem(url, endpoint)
        fs.rm(f"{root}/{shards.MANIFEST}")
    else:
        print(f"preparing the {name} dataset shards at {url} (first use)")
    prepare(prep)
    return url
