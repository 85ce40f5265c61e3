"""The local store is checked before any work: a folder that cannot be written (a file in the way, a
read-only tree, a full disk) is one clear error naming the folder and the fix."""

import subprocess

import pytest
from omegaconf import OmegaConf

from tubelab.config import ConfigError
from tubelab.data.storage import check_local_store


def cfg(home, storage_url=None):
    return OmegaConf.create({"home": str(home), "storage": {"url": str(storage_url or home)}})


def test_a_writable_store_passes_and_keeps_nothing(tmp_path):
    check_local_store(cfg(tmp_path / "home", tmp_path / "shards"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "shards"]
    assert not any((tmp_path / "home").iterdir())  # the probe is gone


def test_a_folder_that_cannot_be_created_is_named(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match=r"cannot write to .*a-file/home \(Not a directory\), the folder of home "
                                          r"\(TUBELAB_HOME\); free space there, fix its permissions"):
        check_local_store(cfg(tmp_path / "a-file" / "home"))
    with pytest.raises(ConfigError, match=r"the folder of storage.url"):
        check_local_store(cfg(tmp_path / "home", tmp_path / "a-file" / "shards"))


def test_s3_storage_is_not_probed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a URL taken for a local path would appear here as the folder "s3:"
    check_local_store(cfg(tmp_path / "home", "s3://bucket/never-touched"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs filled to the last byte (needs the right to mount, which root has here)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN); the other cases here still check the error")
    try:
        (mnt / "home").mkdir()
        try:
            with open(mnt / "filler", "wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
        except OSError as e:
            assert e.errno == 28  # ENOSPC: the disk is full
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_disk_is_named(full_disk):
    with pytest.raises(ConfigError, match=r"cannot write to .*/full/home \(No space left on device\)"):
        check_local_store(cfg(full_disk / "home"))
