"""Publishing: submit, review (approve, reject), withdraw, archive, restore, delete."""

from __future__ import annotations

from app import signals
from app.accounts.models import User
from app.catalog.models import (
    REVIEW_NOTE_MAX,
    Course,
    CourseSeats,
    Enrolment,
    Resource,
    State,
)
from app.catalog.services.enrolment import sync_seats
from app.catalog.services.permissions import ContentModel, require_user
from app.catalog.services.queries import (
    content_rows,
    load_for_write,
    published_row,
    readable_rows,
    working_row,
)
from app.common.events import send_after_commit
from app.common.models import utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db

MAX_NOTE = REVIEW_NOTE_MAX

_SIGNALS = {
    Course: {
        "published": signals.course_published,
        "archived": signals.course_archived,
        "deleted": signals.course_deleted,
        "submitted": signals.course_submitted,
        "kwarg": "course",
    },
    Resource: {
        "published": signals.resource_published,
        "archived": signals.resource_archived,
        "deleted": signals.resource_deleted,
        "submitted": signals.resource_submitted,
        "kwarg": "resource",
    },
}


def _check_publishable(obj) -> None:
    errors = {}
    if not obj.title or not obj.title.strip():
        errors["title"] = ["A title is required before publishing."]
    if isinstance(obj, Course) and obj.kind == "extended" and not obj.category:
        errors["category"] = ["An extended course needs a category."]
    if isinstance(obj, Resource) and obj.kind == "link" and not obj.url:
        errors["url"] = ["A web link needs its address."]
    if errors:
        raise Invalid("Not ready to publish.", fields=errors)


def _publish_row(row, user: User) -> None:
    model = type(row)
    for other in content_rows(model, row.content_id):
        if other.id != row.id and other.state in (State.PUBLISHED, State.ARCHIVED):
            other.state = State.SUPERSEDED
    db.session.flush()
    row.state = State.PUBLISHED
    row.published_at = utcnow()
    row.review_note = None
    if model is Course:
        sync_seats(row)
    db.session.flush()
    _announce("published", row, user)


def _announce(event: str, row, user: User) -> None:
    """Queue the content model's ``event`` signal (see ``_SIGNALS``) for after commit."""
    names = _SIGNALS[type(row)]
    send_after_commit(names[event], **{names["kwarg"]: row, "user": user})


# Plain state moves: action (as permissions name it) -> (from, to, refusal when none is).
_MOVES = {
    "withdraw": (State.IN_REVIEW, State.DRAFT, "Nothing is waiting for review."),
    "archive": (State.PUBLISHED, State.ARCHIVED, "Only published content can be archived."),
    "restore": (State.ARCHIVED, State.PUBLISHED, "Nothing archived to restore."),
}


def _move(user: User | None, model: ContentModel, content_id: str, action: str):
    """Move the version in the action's source state to its target (409 if none is)."""
    source, target, refusal = _MOVES[action]
    user, rows = load_for_write(user, model, content_id, action)
    row = next((r for r in rows if r.state == source), None)
    if row is None:
        raise Conflict(refusal)
    row.state = target
    db.session.flush()
    return user, row


def submit_content(user: User | None, model: ContentModel, content_id: str):
    """Publish the working draft, or queue it for review if the district requires it
    (unless the submitter is one of its reviewers).  409 when there is no draft."""
    user, rows = load_for_write(user, model, content_id, "publish")
    row = working_row(rows)
    if row.state != State.DRAFT:
        raise Conflict("There is no draft to publish.")
    _check_publishable(row)
    reviewer = user.is_district_admin(row.district_id) or user.is_platform_admin
    if row.district.requires_review and not reviewer:
        row.state = State.IN_REVIEW
        row.review_note = None
        row.updated_at = utcnow()
        db.session.flush()
        _announce("submitted", row, user)
    else:
        _publish_row(row, user)
    return row


def _review_target(user: User | None, model: ContentModel, content_id: str):
    user = require_user(user)
    rows = content_rows(model, content_id)
    if not readable_rows(user, rows):
        raise NotFound(f"{model.__name__} not found.")
    if not (user.is_district_admin(rows[-1].district_id) or user.is_platform_admin):
        raise Forbidden("Only the district's admins can review.")
    row = next((r for r in rows if r.state == State.IN_REVIEW), None)
    if row is None:
        raise Conflict("Nothing is waiting for review.")
    return user, row


def approve_content(user: User | None, model: ContentModel, content_id: str):
    """Publish the version waiting for review (district admin of the owner, platform admin)."""
    user, row = _review_target(user, model, content_id)
    _publish_row(row, user)
    return row


def reject_content(user: User | None, model: ContentModel, content_id: str, note: str):
    """Send the version waiting for review back to a draft, with the reviewer's note."""
    note = (note or "").strip()
    if not note:
        raise Invalid("A note is required.", fields={"note": ["Tell the author what to change."]})
    if len(note) > MAX_NOTE:
        # Refused, not cut: the page and the API (RejectSchema) say the same.
        raise Invalid("The note is too long.", fields={"note": [f"At most {MAX_NOTE} characters."]})
    user, row = _review_target(user, model, content_id)
    row.state = State.DRAFT
    row.review_note = note
    db.session.flush()
    return row


def withdraw_content(user: User | None, model: ContentModel, content_id: str):
    """The author takes a version back out of the review queue to keep editing."""
    _, row = _move(user, model, content_id, "withdraw")
    return row


def archive_content(user: User | None, model: ContentModel, content_id: str):
    """Take published content out of the catalog (editors still see it; restorable)."""
    user, row = _move(user, model, content_id, "archive")
    _announce("archived", row, user)
    return row


def restore_content(user: User | None, model: ContentModel, content_id: str):
    """Bring archived content back to the catalog."""
    user, row = _move(user, model, content_id, "restore")
    _announce("published", row, user)
    return row


def delete_content(user: User | None, model: ContentModel, content_id: str) -> None:
    """Delete every version.  Enrolments of a deleted course go with it."""
    user, rows = load_for_write(user, model, content_id, "delete")
    for row in rows:
        db.session.delete(row)
    if model is Course:
        db.session.execute(
            Enrolment.__table__.delete().where(Enrolment.course_content_id == content_id)
        )
        db.session.execute(
            CourseSeats.__table__.delete().where(CourseSeats.course_content_id == content_id)
        )
    db.session.flush()
    send_after_commit(_SIGNALS[model]["deleted"], content_id=content_id, user=user)


def discard_draft(user: User | None, model: ContentModel, content_id: str) -> None:
    """Throw away unpublished edits; the published version stays.  409 when there is
    no draft, or when the draft is all there is (delete the content instead)."""
    user, rows = load_for_write(user, model, content_id, "discard the draft of")
    draft = working_row(rows)
    if draft.state != State.DRAFT or published_row(rows) is None:
        raise Conflict("There is no draft of a published version to discard.")
    db.session.delete(draft)
    db.session.flush()
