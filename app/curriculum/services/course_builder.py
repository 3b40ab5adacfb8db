"""A curriculum course draft generated from a textbook volume."""

from __future__ import annotations

from collections import defaultdict

from app.accounts.models import User
from app.catalog import services as catalog
from app.catalog import vocab
from app.catalog.models import Course
from app.curriculum.models import (
    Alignment,
    AlignmentType,
    Level,
    TargetType,
)
from app.curriculum.services.nodes import get_node, lessons_of_volume, units_of_volume, volume_title
from app.errors import Invalid
from app.extensions import db


def generate_course(user: User | None, volume_id: int, data: dict | None = None) -> Course:
    """A curriculum course draft: one section per unit, one placeholder item per lesson,
    each item aligned ("teaches") to its lesson.  Teachers fill the items."""
    data = data or {}
    volume = get_node(volume_id)
    if volume.level != Level.VOLUME:
        raise Invalid(
            "Courses are generated from a volume.", fields={"volume_id": ["Not a volume."]}
        )
    units = units_of_volume(volume)
    lessons = lessons_of_volume(volume)
    by_unit = defaultdict(list)
    for lesson in lessons:
        by_unit[lesson.unit_identifier].append(lesson)
    sections, section_lessons = [], []
    groups = [(u.title, by_unit.get(u.identifier, [])) for u in units]
    if by_unit.get(None):
        groups.append((volume.title, by_unit[None]))
    for title, unit_lessons in groups:
        if not unit_lessons:
            continue
        sections.append(
            {
                "title": title[:200],
                "items": [{"title": lesson.title[:200]} for lesson in unit_lessons],
            }
        )
        section_lessons.append(unit_lessons)
    if not sections:
        raise Invalid("This volume has no lessons.", fields={"volume_id": ["No lessons."]})
    payload = {
        "kind": "curriculum",
        "title": data.get("title") or volume_title(volume),
        "subject": volume.subject if volume.subject in vocab.SUBJECTS else None,
        "grade": volume.grade if volume.grade in vocab.GRADES else None,
        "edition": volume.edition if volume.edition in vocab.EDITIONS else None,
        "sections": sections,
    }
    if data.get("visibility"):
        payload["visibility"] = data["visibility"]
    course = catalog.create_content(user, Course, payload)
    for section, unit_lessons in zip(course.sections, section_lessons, strict=True):
        for item, lesson in zip(section.items, unit_lessons, strict=True):
            db.session.add(
                Alignment(
                    node_id=lesson.id,
                    target_type=TargetType.ITEM,
                    target_key=item.item_key,
                    alignment_type=AlignmentType.TEACHES,
                    created_by_id=user.id,
                )
            )
    db.session.flush()
    return course
