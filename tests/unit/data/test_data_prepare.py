"""`tubelab prepare` end to end on small real data: generate, shard, reuse, refuse other settings, ensure_shards."""

import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tubelab import config
from tubelab.data import shards
from tubelab.data.prepare import ensure_shards, prepare
from tubelab.data.synthetic import CLASSES

SMALL = ["dataset.generator.train_per_class=2", "dataset.generator.test_per_class=1",
         "dataset.generator.num_frames=24", "dataset.generator.width=64", "dataset.generator.height=48",
         "dataset.encode.short_side=48"]
REPO = Path(config.__file__).resolve().parents[2]


def stamps(folder):
    return {p.name: p.stat().st_mtime_ns for p in Path(folder).iterdir()}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("home")
        mp.setenv("TUBELAB_HOME", str(home))  # before config.load: `home: ${oc.env:TUBELAB_HOME,.tubelab}`
        yield home


@pytest.fixture(scope="module")
def prepared(home):
    cfg = config.load("prepare", SMALL)
    assert cfg.home == str(home)
    manifest, url = prepare(cfg, progress=False)
    return cfg, manifest, url


def test_prepare_generates_and_shards_under_home(prepared, home):
    cfg, manifest, url = prepared
    assert url == str(home / "shards" / "synthetic")
    assert (home / "raw" / "synthetic" / "DONE").is_file() and (home / "raw/synthetic/classInd.txt").is_file()
    assert len(list((home / "raw" / "synthetic").rglob("*.mp4"))) == 3 * len(CLASSES)
    assert manifest["dataset"] == "synthetic" and manifest["classes"] == list(CLASSES)
    assert manifest["encode"] == {"short_side": 48, "fps": 16, "gop": 8, "crf": 23}
    assert manifest["splits"]["train"]["videos"] == 2 * len(CLASSES)
    assert manifest["splits"]["test"]["videos"] == len(CLASSES)
    assert manifest["splits"]["train"]["per_class"] == [2] * len(CLASSES)
    assert manifest["splits"]["train"]["min_frames"] == 24
    assert manifest["card"]["generator"]["train_per_class"] == 2  # the dataset config it was prepared from
    report = json.loads((Path(url) / "prepare_report.json").read_text())
    assert report["problems"] == [] and report["videos_written"] == 3 * len(CLASSES)
    assert shards.read_manifest(url) == manifest
    for split in ("train", "test"):
        assert all(Path(p).is_file() for p in shards.shard_paths(manifest, url, split))


def test_prepare_again_reuses(prepared):
    cfg, manifest, url = prepared
    before = stamps(url)
    again, url2 = prepare(config.load("prepare", SMALL), progress=False)
    assert (again, url2) == (manifest, url)
    assert stamps(url) == before  # nothing rewritten


def test_other_encode_settings_in_the_same_folder_raise(prepared):
    cfg, manifest, url = prepared
    before = stamps(url)
    other = config.load("prepare", [*SMALL, "dataset.encode.crf=30", f"out={url}"])
    with pytest.raises(ValueError, match=r"holds shards prepared with another dataset keys \['encode'\]") as e:
        prepare(other, progress=False)
    assert "'crf': 23" in str(e.value)
    assert "choose another `out=` / storage.url, or delete that folder to rebuild" in str(e.value)
    assert stamps(url) == before and shards.read_manifest(url) == manifest


def test_out_elsewhere_gives_the_same_data(prepared, tmp_path):
    cfg, manifest, url = prepared
    out = tmp_path / "elsewhere"
    raw = stamps(Path(cfg.home) / "raw" / "synthetic")
    again, url2 = prepare(config.load("prepare", [*SMALL, f"out={out}"]), progress=False)
    assert url2 == str(out) and (out / "manifest.json").is_file()
    assert again["content_hash"] == manifest["content_hash"] and again["splits"] == manifest["splits"]
    assert stamps(Path(cfg.home) / "raw" / "synthetic") == raw  # the generated tree is reused


def test_ensure_shards_existing(prepared):
    cfg, manifest, url = prepared
    before = stamps(url)
    assert ensure_shards(cfg, "synthetic") == url
    assert stamps(url) == before


@pytest.fixture
def project(tmp_path, monkeypatch, home):
    """A project root with two extra dataset cards: a tiny generated one and a real one without a generator."""
    root = tmp_path / "project"
    (root / "ablations").mkdir(parents=True)
    (root / "datasets").mkdir()
    shutil.copy(REPO / "datasets" / "synthetic.yaml", root / "datasets")
    tiny = OmegaConf.load(REPO / "datasets" / "synthetic.yaml")
    tiny.name = "tinysynth"
    tiny.generator.update(train_per_class=1, test_per_class=1, num_frames=16, width=64, height=48,
                          classes=["MoveLeft", "Spin"])
    tiny.encode.short_side = 48
    OmegaConf.save(tiny, root / "datasets" / "tinysynth.yaml")
    (root / "datasets" / "realset.yaml").write_text(
        "name: realset\nformat: ucf101\nsource: null\nindex:\n  split: 1\n"
        "encode:\n  short_side: 48\n  fps: 16\n  gop: 8\n  crf: 23\nshard_max_videos: 64\n")
    monkeypatch.setenv("TUBELAB_PROJECT_ROOT", str(root))
    monkeypatch.setenv("TUBELAB_HOME", str(tmp_path / "home"))
    return root


def test_ensure_shards_generates_only_datasets_with_a_generator(project, tmp_path):
    cfg = config.load("prepare", ["dataset=tinysynth"])
    home = Path(cfg.home)
    assert home == tmp_path / "home"

    with pytest.raises(shards.ManifestError, match="tubelab prepare"):  # never prepared implicitly
        ensure_shards(cfg, "realset")
    assert not (home / "raw" / "realset").exists() and not (home / "shards" / "realset" / "manifest.json").exists()

    url = ensure_shards(cfg, "tinysynth")
    assert url == str(home / "shards" / "tinysynth")
    manifest = shards.read_manifest(url)
    assert manifest["dataset"] == "tinysynth" and manifest["classes"] == ["MoveLeft", "Spin"]
    assert manifest["splits"]["train"]["videos"] == 2 and manifest["splits"]["test"]["videos"] == 2
    assert (home / "raw" / "tinysynth" / "DONE").is_file()
    before = stamps(url)
    assert ensure_shards(cfg, "tinysynth") == url and stamps(url) == before  # second call: reused

    # a dataset without a generator is prepared from `source=`, and only from there
    real = config.load("prepare", ["dataset=realset"])
    with pytest.raises(ValueError, match=r"dataset 'realset' needs `source=DIR`"):
        prepare(real, progress=False)
    manifest, url = prepare(config.load("prepare", ["dataset=realset", f"source={home / 'raw' / 'tinysynth'}"]),
                            progress=False)
    assert url == str(home / "shards" / "realset") and manifest["dataset"] == "realset"
    assert manifest["classes"] == ["MoveLeft", "Spin"] and manifest["splits"]["train"]["videos"] == 2
    assert ensure_shards(cfg, "realset") == url  # now that the shards exist


def test_generated_shards_in_an_older_format_are_rebuilt_and_real_ones_refused(project, tmp_path, capsys):
    """A shard format bump (e.g. 4 -> 5, Charades' intervals) must not stop `make demo` in an existing home: the
    built-in data comes from its generator and is rebuilt; prepared real data still says how to rebuild it."""
    cfg = config.load("prepare", ["dataset=tinysynth"])
    url = ensure_shards(cfg, "tinysynth")
    manifest_path = Path(url) / "manifest.json"
    old = {**json.loads(manifest_path.read_text()), "format": "tubelab-shards/4"}
    manifest_path.write_text(json.dumps(old))
    assert ensure_shards(cfg, "tinysynth") == url
    assert "rebuilding the tinysynth dataset shards" in capsys.readouterr().out
    manifest = shards.read_manifest(url)
    assert manifest["format"] == shards.FORMAT and manifest["splits"] == old["splits"]  # the same videos
    # (real older shards are encoded again: each shard's key names the format; these are current, so reused)

    real_url = prepare(config.load("prepare", ["dataset=realset", f"source={Path(cfg.home) / 'raw' / 'tinysynth'}"]),
                       progress=False)[1]
    real_manifest = Path(real_url) / "manifest.json"
    real_manifest.write_text(json.dumps({**json.loads(real_manifest.read_text()), "format": "tubelab-shards/4"}))
    with pytest.raises(shards.ManifestError, match="delete that folder and run `tubelab prepare` again"):
        ensure_shards(cfg, "realset")
