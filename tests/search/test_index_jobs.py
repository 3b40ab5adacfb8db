"""Whoosh indexing runs on the job queue, never inside the publish request (issue 14):
the request only queues; the job waits for the index lock.  On PostgreSQL indexing
stays in the publishing transaction (issue 15)."""

from __future__ import annotations

import threading

import pytest

from app import jobs
from app.catalog.models import Resource
from app.extensions import db
from app.search import receivers, services
from app.search.whoosh_backend import WhooshBackend
from tests.search.helpers import publish


@pytest.fixture
def whoosh_only(ctx):
    if services.get_backend().transactional:
        pytest.skip("the PostgreSQL backend indexes inside the publishing transaction")


@pytest.fixture
def pool_jobs(app, monkeypatch, whoosh_only):
    """Jobs on the in-process thread pool (as without Redis in production), not eager."""
    monkeypatch.setitem(app.config, "JOBS_EAGER", False)
    yield
    assert jobs.drain(app, timeout=120)


def _recording_writers(monkeypatch) -> list[threading.Thread]:
    writers: list[threading.Thread] = []
    original = WhooshBackend._writer

    def recording(self, ix, timeout=None):
        writers.append(threading.current_thread())
        return original(self, ix, timeout)

    monkeypatch.setattr(WhooshBackend, "_writer", recording)
    return writers


def test_publish_queues_indexing_and_the_job_indexes(app, people, monkeypatch, pool_jobs):
    writers = _recording_writers(monkeypatch)
    publish(people.teacher, Resource, title="京剧 排队入库")
    assert threading.current_thread() not in writers  # the request never took the lock
    assert jobs.drain(app, timeout=120)
    db.session.rollback()
    assert writers and threading.current_thread() not in writers
    assert services.search(None, "排队入库").total == 1


def test_publish_while_another_writer_holds_the_lock(app, people, monkeypatch, pool_jobs):
    backend = services.get_backend()
    _, ix = backend._open()
    held = ix.writer()  # another process's writer, as far as the index can tell
    try:
        content_id = publish(people.teacher, Resource, title="京剧 锁住的索引")
        # the publish itself is stored and answered; the index has not caught up yet
        assert services.search(None, "锁住的索引").total == 0
    finally:
        held.cancel()
    assert jobs.drain(app, timeout=120)
    db.session.rollback()
    result = services.search(None, "锁住的索引")
    assert [h.content_id for h in result.items] == [content_id]


def test_unreachable_queue_falls_back_to_indexing_in_the_request(people, monkeypatch, whoosh_only):
    def unavailable(*args, **kwargs):
        raise jobs.JobsUnavailable("Redis is down")

    monkeypatch.setattr(receivers, "enqueue", unavailable)
    writers = _recording_writers(monkeypatch)
    publish(people.teacher, Resource, title="京剧 队列不在")
    assert writers == [threading.current_thread()]
    assert services.search(None, "队列不在").total == 1


def test_postgresql_indexes_in_the_publish_transaction(people, monkeypatch, ctx):
    if not services.get_backend().transactional:
        pytest.skip("Whoosh indexes through the job queue")
    queued = []
    monkeypatch.setattr(receivers, "enqueue", lambda *a, **k: queued.append(a))
    publish(people.teacher, Resource, title="京剧 同一事务")
    assert queued == []
    assert services.search(None, "同一事务").total == 1
