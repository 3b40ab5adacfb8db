"""The parts of a course — its sessions, sections and the items in them — changed one
at a time (the pages and the API both use these; clients need not send whole arrays).

Every function edits the draft of the course's next version, exactly as
:func:`~app.catalog.services.editing.update_content` does (the first edit after
publishing copies the published version), and returns that draft.  A part is addressed
by its 0-based position in the draft; a position that does not exist is ``NotFound``.
Sessions stay in time order; sections and items stay where they are put.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from app.accounts.models import User
from app.catalog.models import Course, CourseSection, CourseSession, Resource, SectionItem
from app.catalog.services.editing import editing_draft
from app.catalog.services.queries import content_rows, get_working, readable_rows
from app.errors import Invalid, NotFound

SESSION_FIELDS = ("starts_at", "ends_at", "place", "online_url", "note")
MAX_PARTS = 200


_MISSING = {
    "session": "No such session.",
    "section": "No such section.",
    "item": "No such item.",
}
_FULL = {
    "session": "A course has at most 200 sessions.",
    "section": "A course has at most 200 sections.",
    "item": "A section has at most 200 items.",
}


def _at(parts: list, index: int, noun: str):
    if not 0 <= index < len(parts):
        raise NotFound(_MISSING[noun])
    return parts[index]


def _room_for(parts: list, noun: str) -> None:
    if len(parts) >= MAX_PARTS:
        raise Invalid(_FULL[noun], fields={f"{noun}s": [_FULL[noun]]})


def _renumber(course: Course) -> None:
    """Store the parts' list order (sessions by time)."""
    course.sessions.sort(key=lambda s: s.starts_at or datetime.min)
    for position, session in enumerate(course.sessions):
        session.position = position
    for position, section in enumerate(course.sections):
        section.position = position
        for item_position, item in enumerate(section.items):
            item.position = item_position


@contextmanager
def _changing_parts(user: User | None, content_id: str) -> Iterator[Course]:
    """``with _changing_parts(...) as course:`` change the draft's parts; they are then
    renumbered and the draft saved as by :func:`editing_draft`."""
    with editing_draft(user, Course, content_id) as course:
        yield course
        _renumber(course)


def _check_times(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise Invalid(
            "The submitted data is not valid.", fields={"ends_at": ["Must be after starts_at."]}
        )


# --- sessions ---------------------------------------------------------------------------


def add_session(user: User | None, content_id: str, data: dict) -> Course:
    """Add a meeting (``starts_at``, ``ends_at``, ``place``, ``online_url``, ``note``)."""
    with _changing_parts(user, content_id) as course:
        _room_for(course.sessions, "session")
        _check_times(data["starts_at"], data["ends_at"])
        course.sessions.append(CourseSession(**{k: data.get(k) for k in SESSION_FIELDS}))
    return course


def update_session(user: User | None, content_id: str, index: int, data: dict) -> Course:
    """Change some fields of one session."""
    with _changing_parts(user, content_id) as course:
        session = _at(course.sessions, index, "session")
        for name in SESSION_FIELDS:
            if name in data:
                setattr(session, name, data[name])
        _check_times(session.starts_at, session.ends_at)
    return course


def remove_session(user: User | None, content_id: str, index: int) -> Course:
    with _changing_parts(user, content_id) as course:
        course.sessions.remove(_at(course.sessions, index, "session"))
    return course


# --- sections ---------------------------------------------------------------------------


def add_section(user: User | None, content_id: str, data: dict) -> Course:
    """Append a section (``title``, ``summary``), empty or with ``items``."""
    with _changing_parts(user, content_id) as course:
        _room_for(course.sections, "section")
        section = CourseSection(title=data["title"], summary=data.get("summary") or None)
        for item in data.get("items") or []:
            section.items.append(_new_item(user, item))
        course.sections.append(section)
    return course


def update_section(user: User | None, content_id: str, index: int, data: dict) -> Course:
    """Rename a section or change its summary."""
    with _changing_parts(user, content_id) as course:
        section = _at(course.sections, index, "section")
        if "title" in data:
            section.title = data["title"]
        if "summary" in data:
            section.summary = data["summary"] or None
    return course


def move_section(user: User | None, content_id: str, index: int, to: int) -> Course:
    """Move a section to position ``to`` (clamped to the first and last place)."""
    with _changing_parts(user, content_id) as course:
        section = _at(course.sections, index, "section")
        course.sections.remove(section)
        course.sections.insert(max(0, min(to, len(course.sections))), section)
    return course


def remove_section(user: User | None, content_id: str, index: int) -> Course:
    """Remove a section with its items."""
    with _changing_parts(user, content_id) as course:
        course.sections.remove(_at(course.sections, index, "section"))
    return course


# --- items ------------------------------------------------------------------------------


def _new_item(user: User | None, data: dict) -> SectionItem:
    resource_id = data.get("resource_id")
    if not resource_id and not data.get("title"):
        raise Invalid(
            "An item needs a resource or a title.",
            fields={"resource_id": ["Choose a resource or give a title."]},
        )
    if resource_id and not readable_rows(user, content_rows(Resource, resource_id)):
        raise Invalid("Unknown resource.", fields={"resource_id": ["Resource not found."]})
    return SectionItem(title=data.get("title") or None, resource_content_id=resource_id or None)


def add_item(user: User | None, content_id: str, section: int, data: dict) -> Course:
    """Append an item (a resource the author may read, and/or a title) to a section."""
    with _changing_parts(user, content_id) as course:
        target = _at(course.sections, section, "section")
        _room_for(target.items, "item")
        target.items.append(_new_item(user, data))
    return course


def update_item(user: User | None, content_id: str, section: int, index: int, data: dict) -> Course:
    """Change an item's title or resource (its item key, and so its alignments, stay)."""
    with _changing_parts(user, content_id) as course:
        item = _at(_at(course.sections, section, "section").items, index, "item")
        merged = {
            "title": data.get("title", item.title),
            "resource_id": data.get("resource_id", item.resource_content_id),
        }
        replacement = _new_item(user, merged)
        item.title, item.resource_content_id = replacement.title, replacement.resource_content_id
    return course


def move_item(
    user: User | None, content_id: str, section: int, index: int, to_section: int, to: int
) -> Course:
    """Move an item to position ``to`` of section ``to_section`` (it may change section)."""
    with _changing_parts(user, content_id) as course:
        source = _at(course.sections, section, "section")
        target = _at(course.sections, to_section, "section")
        item = _at(source.items, index, "item")
        if target is not source:
            _room_for(target.items, "item")
        source.items.remove(item)
        target.items.insert(max(0, min(to, len(target.items))), item)
    return course


def remove_item(user: User | None, content_id: str, section: int, index: int) -> Course:
    with _changing_parts(user, content_id) as course:
        source = _at(course.sections, section, "section")
        source.items.remove(_at(source.items, index, "item"))
    return course


def section_of(user: User | None, content_id: str, index: int) -> CourseSection:
    """Section ``index`` of the course's working version, to check a form against before
    changing anything (404 when there is no such section)."""
    course = get_working(user, Course, content_id)
    return _at(course.sections, index, "section")
