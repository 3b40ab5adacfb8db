"""Creating content and editing the draft of its next version."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import signals
from app.accounts.models import User
from app.catalog import vocab
from app.catalog.models import (
    Course,
    CourseSection,
    CourseSession,
    Resource,
    ResourceGrade,
    SectionItem,
    State,
    Tag,
    Visibility,
)
from app.catalog.services.permissions import ContentModel, owning_school, require_author
from app.catalog.services.queries import (
    content_rows,
    listed_row_changed,
    load_for_write,
    readable_rows,
    working_row,
)
from app.common.events import send_after_commit
from app.common.models import utcnow
from app.common.sanitize import sanitize_html
from app.common.transaction import savepoint
from app.errors import Conflict, Invalid
from app.extensions import db

MAX_TAGS = 20


def _check_vocab(data: dict, field: str, vocabulary: str, errors: dict) -> None:
    value = data.get(field)
    if value not in (None, "") and value not in vocab.VOCABULARIES[vocabulary]:
        errors[field] = [f"Unknown {vocabulary} '{value}'."]


def _validate_common(data: dict, model: ContentModel) -> None:
    errors: dict = {}
    _check_vocab(data, "language", "language", errors)
    _check_vocab(data, "licence", "licence", errors)
    _check_vocab(data, "subject", "subject", errors)
    _check_vocab(data, "visibility", "visibility", errors)
    if model is Course:
        _check_vocab(data, "kind", "course_kind", errors)
        _check_vocab(data, "category", "category", errors)
        _check_vocab(data, "grade", "grade", errors)
        _check_vocab(data, "edition", "edition", errors)
    else:
        _check_vocab(data, "kind", "resource_kind", errors)
        for grade in data.get("grades") or []:
            if grade not in vocab.GRADES:
                errors["grades"] = [f"Unknown grade '{grade}'."]
    if errors:
        raise Invalid("The submitted data is not valid.", fields=errors)


def _insert_ignoring_duplicates(table, rows: list[dict]):
    """``INSERT ... ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite alike.

    Used instead of a SAVEPOINT: concurrent requests may create the same row, and the
    SQLite driver's savepoints outside a transaction would commit half a request."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(table).values(rows).on_conflict_do_nothing())


def _tags(names: list[str]) -> list[Tag]:
    cleaned = []
    for name in names:
        name = " ".join(name.split()).lower()
        if name and name not in cleaned:
            cleaned.append(name)
    if len(cleaned) > MAX_TAGS:
        raise Invalid("Too many tags.", fields={"tags": [f"At most {MAX_TAGS}."]})
    if not cleaned:
        return []
    existing = {
        t.name: t for t in db.session.execute(select(Tag).where(Tag.name.in_(cleaned))).scalars()
    }
    missing = [name for name in cleaned if name not in existing]
    if missing:
        _insert_ignoring_duplicates(Tag.__table__, [{"name": name} for name in missing])
        existing.update(
            {
                t.name: t
                for t in db.session.execute(select(Tag).where(Tag.name.in_(missing))).scalars()
            }
        )
    return [existing[name] for name in cleaned]


# Fields an edit sets as given: those of all content, then each kind's own.
_COMMON_FIELDS = (
    "title",
    "summary",
    "language",
    "licence",
    "visibility",
    "subject",
    "translations",
)
_SCALAR_FIELDS = {
    Course: (
        *_COMMON_FIELDS,
        "cover_url",
        "category",
        "capacity",
        "enrolment_open",
        "grade",
        "edition",
    ),
    Resource: (*_COMMON_FIELDS, "url", "data"),
}


def _apply(obj, data: dict, user: User) -> None:
    model = type(obj)
    for field in _SCALAR_FIELDS[model]:
        if field in data:
            setattr(obj, field, data[field])
    if "description_html" in data:
        obj.description_html = sanitize_html(data["description_html"])
    if "translations" in data:
        translations = {}
        for lang, fields in (data["translations"] or {}).items():
            fields = dict(fields)
            if "description_html" in fields:
                fields["description_html"] = sanitize_html(fields["description_html"])
            translations[lang] = fields
        obj.translations = translations
    if "tags" in data:
        obj.tags = _tags(data["tags"])
    if model is Resource and "grades" in data:
        obj.grade_rows = [ResourceGrade(grade=g) for g in dict.fromkeys(data["grades"])]
    if model is Course:
        if "sessions" in data:
            obj.sessions = [
                CourseSession(position=i, **session) for i, session in enumerate(data["sessions"])
            ]
        if "sections" in data:
            _replace_sections(obj, data["sections"], user)


def _replace_sections(course: Course, sections: list[dict], user: User) -> None:
    referenced = {
        item["resource_id"]
        for s in sections
        for item in s.get("items", [])
        if item.get("resource_id")
    }
    for content_id in referenced:
        if not readable_rows(user, content_rows(Resource, content_id)):
            raise Invalid(
                "Unknown resource.", fields={"sections": [f"Resource {content_id} not found."]}
            )
    course.sections = [
        CourseSection(
            position=i,
            title=section["title"],
            summary=section.get("summary"),
            items=[
                SectionItem(
                    position=j,
                    title=item.get("title"),
                    resource_content_id=item.get("resource_id"),
                    **({"item_key": item["item_key"]} if item.get("item_key") else {}),
                )
                for j, item in enumerate(section.get("items", []))
            ],
        )
        for i, section in enumerate(sections)
    ]


def create_content(user: User | None, model: ContentModel, data: dict):
    """Create version 1 of a course or resource as a draft owned by ``user``'s school."""
    user = require_author(user)
    _validate_common(data, model)
    if not data.get("kind"):
        raise Invalid("Kind is required.", fields={"kind": ["Missing data for required field."]})
    school_id, district_id = owning_school(user)
    obj = model(
        kind=data["kind"],
        author_id=user.id,
        school_id=school_id,
        district_id=district_id,
        state=State.DRAFT,
        version=1,
    )
    if school_id is None and data.get("visibility", "school") == Visibility.SCHOOL:
        obj.visibility = Visibility.DISTRICT
    _apply(obj, data, user)
    db.session.add(obj)
    db.session.flush()
    return obj


def _copy_row(row):
    """A new draft row carrying everything of ``row`` (the next version)."""
    model = type(row)
    skip = {"id", "state", "version", "created_at", "updated_at", "published_at", "review_note"}
    values = {
        c.key: getattr(row, c.key) for c in model.__mapper__.column_attrs if c.key not in skip
    }
    copy = model(**values, state=State.DRAFT, version=row.version + 1)
    copy.tags = list(row.tags)
    if model is Resource:
        copy.grade_rows = [ResourceGrade(grade=g.grade) for g in row.grade_rows]
    else:
        copy.sessions = [
            CourseSession(
                position=s.position,
                starts_at=s.starts_at,
                ends_at=s.ends_at,
                place=s.place,
                online_url=s.online_url,
                note=s.note,
            )
            for s in row.sessions
        ]
        copy.sections = [
            CourseSection(
                position=s.position,
                title=s.title,
                summary=s.summary,
                items=[
                    SectionItem(
                        position=i.position,
                        title=i.title,
                        resource_content_id=i.resource_content_id,
                        item_key=i.item_key,
                    )
                    for i in s.items
                ],
            )
            for s in row.sections
        ]
    db.session.add(copy)
    if model is Resource:  # media copies the files of the previous version (app.signals)
        signals.resource_version_created.send(
            current_app._get_current_object(), resource=copy, previous=row
        )
    return copy


def editable_draft(user: User | None, model: ContentModel, content_id: str):
    """The draft ``user`` edits: the open draft, or a new one copied from the published
    (or archived) version.  404/403 as in the package docstring; 409 while a version
    waits for review."""
    user, rows = load_for_write(user, model, content_id, "edit")
    working = working_row(rows)
    if working.state == State.IN_REVIEW:
        raise Conflict("This version is waiting for review; withdraw it or wait for the decision.")
    if working.state == State.DRAFT:
        return working
    # Published, archived: never changed in place; edits go to a copy, the next version.
    return _copy_row(working)


@contextlib.contextmanager
def editing_draft(user: User | None, model: ContentModel, content_id: str) -> Iterator:
    """``with editing_draft(...) as draft:`` change the draft, which is then stamped and
    flushed.  It all runs in a savepoint: when another editor opened the same next
    version first, only this edit is undone and the caller gets a 409."""
    try:
        with savepoint():
            draft = editable_draft(user, model, content_id)
            yield draft
            draft.updated_at = utcnow()
            db.session.flush()
    except IntegrityError:
        raise Conflict("Someone else is editing this content; try again.") from None


def update_content(user: User | None, model: ContentModel, content_id: str, data: dict):
    """Edit the draft of the next version; readers keep seeing the published one.

    A published (or archived, superseded) row is never changed: the first edit after
    publishing copies it into a draft numbered one higher.  401/404/403 as in the
    module docstring; 409 while a version waits for review; 422 for bad data or an
    empty change."""
    if not data:
        raise Invalid("Nothing to change.", fields={"_schema": ["Send at least one field."]})
    _validate_common(data, model)
    with editing_draft(user, model, content_id) as draft:
        if "kind" in data and data["kind"] != draft.kind:
            raise Invalid("Kind cannot change.", fields={"kind": ["Create new content instead."]})
        _apply(draft, data, user)
    return draft


# --- pictures (set by the media feature, which stores the images) ----------------------


def set_cover(user: User | None, model: ContentModel, content_id: str, picture_id: str | None):
    """Put the author's chosen picture (``picture_id``: a stored image's public id) on
    the draft of the next version, or take it away with None; returns the draft.  A
    picture taken away lets the resource's own file (its poster frame) show again."""
    with editing_draft(user, model, content_id) as draft:
        draft.cover_id = picture_id
        draft.cover_source = "upload" if picture_id else None
    return draft


def set_file_picture(
    resource: Resource, picture_id: str | None, duration_seconds: int | None = None
) -> None:
    """What the resource's file shows on cards: its poster frame or first page, and its
    length.  Never replaces a picture the author chose.  For the media feature's jobs
    (no user: the file was already accepted for this row)."""
    before = (resource.cover_id, resource.cover_source, resource.duration_seconds)
    if resource.cover_source != "upload" and picture_id:
        resource.cover_id = picture_id
        resource.cover_source = "file"
    if duration_seconds is not None and duration_seconds >= 0:
        resource.duration_seconds = int(duration_seconds)
    db.session.flush()
    changed = before != (resource.cover_id, resource.cover_source, resource.duration_seconds)
    if changed and resource.state in (State.PUBLISHED, State.ARCHIVED, State.SUPERSEDED):
        # Lists show the picture and the length: their cached pages must go (on Redis
        # they would otherwise live CACHE_SECONDS).
        send_after_commit(listed_row_changed, content_id=resource.content_id)


def can_take_changes(row) -> bool:
    """Whether the author may change this content now (False while a version waits
    for review); pages ask before offering an upload."""
    return row.state != State.IN_REVIEW


def sent_back(row) -> bool:
    """A draft the district's reviewer returned with a note (until it is submitted again)."""
    return row.state == State.DRAFT and bool(row.review_note)
