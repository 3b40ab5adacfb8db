"""Configuration read at start: the per-installation secret key."""

from __future__ import annotations

import multiprocessing
import stat

import pytest

from app.config import _load_or_create_secret_key


def _start_worker(folder, barrier, results):
    barrier.wait(timeout=30)  # all workers reach for the key at the same moment
    results.put(_load_or_create_secret_key(folder))


def test_workers_starting_together_share_one_complete_key(tmp_path):
    """Two (here three) gunicorn workers on a fresh instance folder: each must come up
    with the same non-empty key, or sessions signed by one are refused by the other."""
    context = multiprocessing.get_context("fork")
    for attempt in range(15):
        folder = tmp_path / f"instance-{attempt}"
        barrier, results = context.Barrier(3), context.Queue()
        workers = [
            context.Process(target=_start_worker, args=(folder, barrier, results)) for _ in range(3)
        ]
        for worker in workers:
            worker.start()
        keys = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
            assert worker.exitcode == 0
        assert len(set(keys)) == 1 and len(keys[0]) >= 64, keys
        key_file = folder / "secret_key"
        assert key_file.read_text() == keys[0]
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert [p.name for p in folder.iterdir()] == ["secret_key"]  # no temporary files
        # A restart reads the same key back.
        assert _load_or_create_secret_key(folder) == keys[0]


@pytest.mark.parametrize(
    "url, words",
    [
        ("garbage", "DATABASE_URL is not a database URL"),
        ("mysql://shuyuan@db/shuyuan", "database type 'mysql'"),
    ],
)
def test_a_wrong_database_url_is_one_line_not_a_traceback(tmp_path, url, words):
    """What gunicorn and the flask CLI show when they import wsgi.py (issue 15)."""
    import os
    import subprocess
    import sys

    from app.config import PROJECT_ROOT

    env = {**os.environ, "DATABASE_URL": url, "SHUYUAN_INSTANCE_PATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "Shuyuan cannot start" in line]
    assert len(lines) == 1 and words in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
