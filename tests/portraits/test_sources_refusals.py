"""The syllabus sources of the portraits: a curriculum refusal (no class, no calendar) means
"nothing from the syllabus" and leaves the request's unit of work alone; a database error is
not swallowed (it reaches the framework, which rolls the request back)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from app import curriculum
from app.errors import Forbidden, NotFound
from app.extensions import db
from app.portraits import sources
from app.portraits.models import Feedback


def _refuse(*args, **kwargs):
    raise NotFound("no calendar for this class")


def _forbid(*args, **kwargs):
    raise Forbidden("not a member of this class")


def _broken(*args, **kwargs):
    raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))


@pytest.mark.parametrize("refusal", [_refuse, _forbid])
def test_a_refusal_is_an_empty_syllabus_and_keeps_the_pending_work(
    ctx, klass, monkeypatch, refusal
):
    student = klass.student
    pending = Feedback(user_id=student.id, resource_content_id="c-refusal", action="clicked")
    db.session.add(pending)
    db.session.flush()
    monkeypatch.setattr(curriculum.services, "this_week", refusal)

    assert sources.weeks_of(student, 0) == []

    # The caller's flushed row is still part of the unit of work and commits.
    assert pending in db.session
    db.session.commit()
    assert db.session.get(Feedback, pending.id) is not None


def test_a_database_error_is_not_taken_for_an_empty_syllabus(ctx, klass, monkeypatch):
    monkeypatch.setattr(curriculum.services, "this_week", _broken)
    with pytest.raises(OperationalError):
        sources.weeks_of(klass.student, 0)


def test_without_a_refusal_the_weeks_come_from_the_curriculum(ctx, klass):
    weeks = sources.weeks_of(klass.student, 0)
    assert weeks and all(view.lessons is not None for view in weeks)
