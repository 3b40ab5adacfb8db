"""Enrolment in extended courses: seats, waiting list, leaving."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app import signals
from app.accounts.models import User
from app.catalog.models import (
    Course,
    CourseSeats,
    Enrolment,
    EnrolmentStatus,
    State,
)
from app.catalog.services.permissions import can_edit, require_user
from app.catalog.services.queries import CONTENT_ID, content_rows, get_content, readable_rows
from app.common.events import send_after_commit
from app.common.models import utcnow
from app.common.transaction import savepoint
from app.errors import Conflict, Forbidden, NotFound
from app.extensions import db


def sync_seats(course: Course) -> None:
    """Publishing a course version sets its capacity; a larger one moves waitlisted
    students up at once."""
    seats = db.session.get(CourseSeats, course.content_id)
    if seats is None:
        try:
            with savepoint():
                db.session.add(
                    CourseSeats(
                        course_content_id=course.content_id, capacity=course.capacity, taken=0
                    )
                )
                db.session.flush()
        except IntegrityError:
            raise Conflict("This course is being published by someone else; try again.") from None
        return
    seats = _lock_seats(course.content_id)
    seats.capacity = course.capacity
    db.session.flush()
    _promote_waitlisted(course.content_id)


def _lock_seats(content_id: str) -> CourseSeats | None:
    """Lock the course's seat counter for the rest of the transaction (None if the
    course never took enrolments).

    A no-op UPDATE takes the row lock (PostgreSQL) or the database write lock (SQLite),
    so every enrolment change of one course runs one after another, whatever the worker,
    and what is read after it is the committed state.
    """
    result = db.session.execute(
        update(CourseSeats)
        .where(CourseSeats.course_content_id == content_id)
        .values(taken=CourseSeats.taken)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return db.session.get(CourseSeats, content_id, populate_existing=True)


def _promote_waitlisted(content_id: str) -> Enrolment | None:
    """Fill free seats from the waiting list, first come first served.  The caller
    holds the seat lock."""
    seats = db.session.get(CourseSeats, content_id, populate_existing=True)
    promoted = None
    while seats.capacity is None or seats.taken < seats.capacity:
        first = db.session.execute(
            select(Enrolment)
            .where(
                Enrolment.course_content_id == content_id,
                Enrolment.status == EnrolmentStatus.WAITLISTED,
            )
            .order_by(Enrolment.queued_at, Enrolment.id)
            .limit(1)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if first is None:
            break
        first.status = EnrolmentStatus.ENROLLED
        seats.taken += 1
        promoted = promoted or first
        db.session.flush()
    return promoted


def _enrollable_course(user: User, content_id: str) -> Course:
    course = get_content(user, Course, content_id)
    if course.state != State.PUBLISHED:
        raise NotFound("Course not found.")
    if course.kind != "extended":
        raise Conflict("Only extended courses take enrolments.")
    return course


def _fresh_enrolment(content_id: str, user: User) -> Enrolment | None:
    """The student's row of the course, read again from the database (the caller holds
    the seat lock, so what another transaction committed meanwhile counts)."""
    return db.session.execute(
        select(Enrolment)
        .filter_by(course_content_id=content_id, student_id=user.id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def enrol(user: User | None, content_id: str) -> Enrolment:
    """Enrol ``user`` in a published extended course she may read; when it is full she
    joins the waiting list.

    401 anonymous, 403 not a student, 404 course not readable, 409 curriculum course,
    enrolment closed or already enrolled/waitlisted.  Concurrent enrolments for the last
    seat are serialised by the seat lock: exactly one gets it, the others wait in line.
    """
    user = require_user(user)
    if not user.is_student:
        raise Forbidden("Only students can enrol.")
    course = _enrollable_course(user, content_id)
    if not course.enrolment_open:
        raise Conflict("Enrolment for this course is closed.")
    seats = _lock_seats(content_id)
    if seats is None:
        raise Conflict("This course does not take enrolments.")
    enrolment = _fresh_enrolment(content_id, user)
    if enrolment is not None and enrolment.status != EnrolmentStatus.LEFT:
        raise Conflict(
            f"You are already {enrolment.status.value} in this course.", code="already_enrolled"
        )
    has_seat = seats.capacity is None or seats.taken < seats.capacity
    status = EnrolmentStatus.ENROLLED if has_seat else EnrolmentStatus.WAITLISTED
    try:
        # The seat lock serialises enrolments of one course, so this only trips when the
        # same student enrols twice at once; the savepoint undoes just that attempt.
        with savepoint():
            if enrolment is None:
                enrolment = Enrolment(
                    course_content_id=content_id, student_id=user.id, status=status
                )
                db.session.add(enrolment)
            else:
                enrolment.status = status
                enrolment.queued_at = utcnow()
            if has_seat:
                seats.taken += 1
            db.session.flush()
    except IntegrityError:
        raise Conflict(
            "You are already enrolled in this course.", code="already_enrolled"
        ) from None
    send_after_commit(signals.student_enrolled, enrolment=enrolment, user=user)
    return enrolment


def leave(user: User | None, content_id: str) -> Enrolment:
    """Leave a course or its waiting list; the first waitlisted student moves up.
    404 when ``user`` is neither enrolled nor waitlisted."""
    user = require_user(user)
    seats = _lock_seats(content_id) if CONTENT_ID.match(content_id or "") else None
    if seats is None:
        raise NotFound("You are not enrolled in this course.")
    enrolment = _fresh_enrolment(content_id, user)
    if enrolment is None or enrolment.status == EnrolmentStatus.LEFT:
        raise NotFound("You are not enrolled in this course.")
    held_seat = enrolment.status == EnrolmentStatus.ENROLLED
    enrolment.status = EnrolmentStatus.LEFT
    promoted = None
    if held_seat:
        seats.taken -= 1
        db.session.flush()
        promoted = _promote_waitlisted(content_id)
    db.session.flush()
    send_after_commit(signals.student_unenrolled, enrolment=enrolment, user=user, promoted=promoted)
    return enrolment


def enrolment_of(user: User | None, content_id: str) -> Enrolment | None:
    if user is None or not CONTENT_ID.match(content_id or ""):
        return None
    return db.session.execute(
        select(Enrolment).filter_by(course_content_id=content_id, student_id=user.id)
    ).scalar_one_or_none()


def waitlist_position(enrolment: Enrolment) -> int | None:
    if enrolment.status != EnrolmentStatus.WAITLISTED:
        return None
    ahead = db.session.execute(
        select(func.count(Enrolment.id)).where(
            Enrolment.course_content_id == enrolment.course_content_id,
            Enrolment.status == EnrolmentStatus.WAITLISTED,
            or_(
                Enrolment.queued_at < enrolment.queued_at,
                and_(Enrolment.queued_at == enrolment.queued_at, Enrolment.id < enrolment.id),
            ),
        )
    ).scalar_one()
    return ahead + 1


def seats_of(content_id: str) -> CourseSeats | None:
    if not CONTENT_ID.match(content_id or ""):
        return None
    return db.session.get(CourseSeats, content_id)


def list_enrolments(user: User | None, content_id: str) -> list[Enrolment]:
    user = require_user(user)
    rows = content_rows(Course, content_id)
    if not readable_rows(user, rows):
        raise NotFound("Course not found.")
    if not can_edit(user, rows[-1]):
        raise Forbidden("Only the course's owner sees its enrolments.")
    return list(
        db.session.execute(
            select(Enrolment)
            .where(
                Enrolment.course_content_id == content_id, Enrolment.status != EnrolmentStatus.LEFT
            )
            .order_by(Enrolment.status, Enrolment.queued_at, Enrolment.id)
        ).scalars()
    )


def my_enrolments(user: User | None) -> list[tuple[Enrolment, Course | None]]:
    user = require_user(user)
    enrolments = list(
        db.session.execute(
            select(Enrolment)
            .where(Enrolment.student_id == user.id, Enrolment.status != EnrolmentStatus.LEFT)
            .order_by(Enrolment.queued_at)
        ).scalars()
    )
    courses = {
        c.content_id: c
        for c in db.session.execute(
            select(Course).where(
                Course.content_id.in_([e.course_content_id for e in enrolments] or [""]),
                Course.state == State.PUBLISHED,
            )
        ).scalars()
    }
    return [(e, courses.get(e.course_content_id)) for e in enrolments]
