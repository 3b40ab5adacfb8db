"""Local storage writes are durable before anything is recorded about them: the new file's
data is synced before it is renamed over the key, and the folder after the rename, so a
power cut leaves the old bytes or all of the new ones — never a row naming a short file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.media.storage import local
from app.media.storage.local import LocalStorage


@pytest.fixture
def events(monkeypatch):
    """What reached the disk, in order: ("fsync", path) and ("replace", source, target)."""
    seen: list[tuple] = []
    real_fsync, real_replace, real_open = os.fsync, os.replace, os.open
    names: dict[int, str] = {}

    def tracking_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        names[fd] = str(path)
        return fd

    def tracking_fsync(fd):
        seen.append(("fsync", names.get(fd, fd)))
        real_fsync(fd)

    def tracking_replace(source, target):
        seen.append(("replace", str(source), str(target)))
        real_replace(source, target)

    monkeypatch.setattr(local.os, "open", tracking_open)
    monkeypatch.setattr(local.os, "fsync", tracking_fsync)
    monkeypatch.setattr(local.os, "replace", tracking_replace)
    return seen


def test_a_write_syncs_the_file_then_renames_then_syncs_the_folder(tmp_path, events):
    storage = LocalStorage(str(tmp_path))
    storage.put_bytes("media/a/b.bin", b"x" * 1000, "application/octet-stream")

    target = str(tmp_path / "media" / "a" / "b.bin")
    (fsync_file, replace, fsync_dir) = events
    assert replace[0] == "replace" and replace[2] == target
    assert fsync_file == ("fsync", replace[1])  # the temporary file, before the rename
    assert fsync_dir == ("fsync", str(Path(target).parent))
    assert Path(target).read_bytes() == b"x" * 1000


def test_a_move_is_durable_in_both_folders(tmp_path, events):
    storage = LocalStorage(str(tmp_path))
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "u1").write_bytes(b"payload")
    storage.move("uploads/u1", "objects/o1")

    assert [e[0] for e in events] == ["fsync", "replace", "fsync", "fsync"]
    assert {events[2][1], events[3][1]} == {str(tmp_path / "objects"), str(tmp_path / "uploads")}
    assert (tmp_path / "objects" / "o1").read_bytes() == b"payload"


def test_a_failed_sync_leaves_the_key_untouched(tmp_path, monkeypatch):
    storage = LocalStorage(str(tmp_path))
    storage.put_bytes("k", b"old", "text/plain")

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(local.os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        storage.put_bytes("k", b"new bytes", "text/plain")
    assert (tmp_path / "k").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]  # no temporary file left
