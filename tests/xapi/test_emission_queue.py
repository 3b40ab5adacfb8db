"""Emitted statements reach the LRS through the real job queues, not only in eager mode:
the in-process worker threads (no Redis) and RQ (Redis).  Nothing is lost: every event
committed becomes exactly one statement; an event whose transaction rolls back becomes
none."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import hooks, jobs
from app.accounts.models import User
from app.catalog.models import Resource
from app.common.events import commit
from app.extensions import db
from app.xapi.models import Statement
from tests.catalog.helpers import make_content
from tests.conftest import make_app

EVENTS = 12


def _stored_ids() -> set[str]:
    with db.engine.connect() as conn:  # what is committed, on a connection of its own
        return set(conn.execute(select(Statement.statement_id)).scalars())


def _emit(application, student_id: int, content_id: str) -> None:
    """EVENTS committed events in separate transactions, and one rolled back."""
    with application.app_context():
        for n in range(EVENTS):
            student = db.session.get(User, student_id)
            resource = db.session.execute(
                select(Resource).filter_by(content_id=content_id)
            ).scalar_one()
            hooks.emit_learning_event(
                student, "progressed", resource=resource, result={"progress": n / EVENTS}
            )
            commit()
        hooks.emit_learning_event(db.session.get(User, student_id), "completed", resource=resource)
        db.session.rollback()


def _progress_statements(before: set[str]) -> list[dict]:
    db.session.expire_all()
    rows = db.session.execute(select(Statement)).scalars().all()
    return [r.full for r in rows if r.statement_id not in before]


@pytest.fixture
def student_and_content(make_user, orgs):
    student = make_user("student")
    content_id = make_content(make_user("teacher"), Resource)
    commit()
    return student.id, content_id


def test_in_process_queue_stores_every_emitted_statement(app, ctx, tmp_path, student_and_content):
    application = make_app(app.config["SQLALCHEMY_DATABASE_URI"], str(tmp_path), JOBS_EAGER=False)
    before = _stored_ids()
    _emit(application, *student_and_content)
    assert jobs.drain(application, timeout=120)
    new = _progress_statements(before)
    verbs = [s["verb"]["id"].rsplit("/", 1)[-1] for s in new]
    assert verbs == ["progressed"] * EVENTS  # the rolled-back "completed" is not there
    assert len({s["id"] for s in new}) == EVENTS
    assert jobs.shutdown(application, timeout=60)
    with application.app_context():
        db.engine.dispose()


def test_rq_worker_stores_every_emitted_statement(redis_app, ctx, student_and_content):
    from rq import Queue, SimpleWorker

    application, probe, name = redis_app
    queue = Queue(name, connection=probe)
    before = _stored_ids()
    _emit(application, *student_and_content)
    stores = [job for job in queue.jobs if job.args[0] == "app.xapi.emit:store_job"]
    assert len(stores) == EVENTS  # one per committed transaction, none stored yet
    assert not (_stored_ids() - before)
    with application.app_context():
        SimpleWorker([queue], connection=probe).work(burst=True)
    assert queue.count == 0 and queue.failed_job_registry.count == 0
    new = _progress_statements(before)
    assert [s["verb"]["id"].rsplit("/", 1)[-1] for s in new] == ["progressed"] * EVENTS


def test_unreachable_redis_stores_the_statements_in_the_request(
    app, ctx, tmp_path, student_and_content
):
    """Redis configured but down: the statements are stored at once rather than lost."""
    from tests.conftest import free_port

    application = make_app(
        app.config["SQLALCHEMY_DATABASE_URI"],
        str(tmp_path),
        JOBS_EAGER=False,
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        JOBS_REDIS_CONNECT_TIMEOUT=1,
    )
    before = _stored_ids()
    _emit(application, *student_and_content)
    new = _progress_statements(before)
    assert [s["verb"]["id"].rsplit("/", 1)[-1] for s in new] == ["progressed"] * EVENTS
    with application.app_context():
        db.engine.dispose()
