"""CommitNote: what a unit of work noted is acted on once, after its outermost commit."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from app.accounts.models import Region
from app.common.transaction import savepoint
from app.common.unit_of_work import CommitNote
from app.extensions import db


@pytest.fixture
def note(ctx):
    acted: list = []
    made = CommitNote("test-note", lambda items: acted.append(set(items)), collects=True)
    made.install()
    yield made, acted
    event.remove(db.session, "after_commit", made._after_commit)
    event.remove(db.session, "after_soft_rollback", made._after_rollback)


def _write(code: str) -> None:
    db.session.add(Region(code=code, name=code, name_en=code))
    db.session.flush()


def test_acted_on_once_after_the_outermost_commit_not_at_a_savepoint_release(note):
    made, acted = note
    _write("uow-a")
    made.mark(items={"a"})
    with savepoint():
        _write("uow-b")
        made.mark(items={"b"})
    # The savepoint's RELEASE sends after_commit; nothing is committed yet.
    assert acted == [] and made.marked()
    db.session.commit()
    assert acted == [{"a", "b"}]
    db.session.commit()
    assert acted == [{"a", "b"}], "a later commit with no new note acts on nothing"


def test_a_rolled_back_savepoint_keeps_the_note_and_an_outer_rollback_forgets_it(note):
    made, acted = note
    _write("uow-c")
    made.mark(items={"c"})
    with pytest.raises(RuntimeError), savepoint():
        _write("uow-d")
        raise RuntimeError("local failure")
    # The unit of work's earlier write may still commit: the note stays.
    assert made.marked()
    db.session.rollback()
    assert not made.marked()
    db.session.commit()
    assert acted == []


def test_a_flag_note_is_acted_on_with_true(ctx):
    acted: list = []
    made = CommitNote("test-flag", acted.append)
    made.install()
    try:
        assert not made.marked()
        made.mark()
        db.session.commit()
        assert acted == [True]
    finally:
        event.remove(db.session, "after_commit", made._after_commit)
        event.remove(db.session, "after_soft_rollback", made._after_rollback)
