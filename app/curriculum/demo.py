"""Demo loader of the curriculum feature (``content/curriculum/demo.yaml``).

Imports the CASE packages through the importer, then creates the demo class, the
district's term calendars and the alignments of demo resources.  Idempotent: keyed by
framework identifier, class name, calendar (district, term, subject, edition) and
alignment (node, resource, type).
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

from sqlalchemy import select

from app.accounts.models import District, School
from app.accounts.services import get_user_by_email
from app.curriculum import case, services
from app.curriculum.models import (
    Alignment,
    ClassEdition,
    Framework,
    Level,
    Node,
    SchoolClass,
    TargetType,
    TeachingCalendar,
)
from app.extensions import db


def _lesson(edition: str, code: str) -> Node:
    node = db.session.execute(
        select(Node).where(Node.edition == edition, Node.code == code, Node.level == Level.LESSON)
    ).scalar_one_or_none()
    if node is None:
        raise LookupError(f"demo.yaml: no {edition} lesson {code}")
    return node


def _knowledge_point(lesson: Node, title: str) -> Node:
    node = db.session.execute(
        select(Node).where(
            Node.parent_identifier == lesson.identifier,
            Node.level == Level.KNOWLEDGE_POINT,
            Node.title == title,
        )
    ).scalar_one_or_none()
    if node is None:
        raise LookupError(f"demo.yaml: no knowledge point {title} under {lesson.code}")
    return node


def school_years_to_today(term_start: date, today: date) -> int:
    """Whole school years (each starts on 1 August) from the one of ``term_start`` to the
    one of ``today``: how far a demo calendar written for one school year moves so that it
    is this school year's (never backwards)."""

    def school_year(day: date) -> int:
        return day.year if day.month >= 8 else day.year - 1

    return max(0, school_year(today) - school_year(term_start))


def _years_later(day, years: int) -> date:
    day = services.parse_date(day, "date")
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def _renumber_years(text: str | None, years: int) -> str | None:
    """ "2026-2027-1" / "2026学年第一学期" moved on by ``years``."""
    if not text or not years:
        return text
    return re.sub(r"(?<!\d)20\d\d(?!\d)", lambda m: str(int(m.group()) + years), text)


def _following_school_year(entry: dict) -> dict:
    """A calendar of demo.yaml marked ``follow_school_year``, moved by whole years into the
    current school year, so that a demo loaded in any later year has a term (dates,
    holidays, its term code and title) rather than one long past."""
    if not entry.get("follow_school_year"):
        return entry
    years = school_years_to_today(
        services.parse_date(entry["term_start"], "term_start"), services.today()
    )
    return {
        **entry,
        "term": _renumber_years(str(entry["term"]), years),
        "title": _renumber_years(entry.get("title"), years),
        "term_start": _years_later(entry["term_start"], years),
        "term_end": _years_later(entry["term_end"], years),
        "holidays": [
            {**h, "start": _years_later(h["start"], years), "end": _years_later(h["end"], years)}
            for h in entry.get("holidays", [])
        ],
    }


def _volume(spec: dict) -> Node:
    return db.session.execute(
        select(Node).where(
            Node.level == Level.VOLUME,
            Node.subject == spec["subject"],
            Node.grade == spec["grade"],
            Node.edition == spec["edition"],
        )
    ).scalar_one()


def load(folder: Path, report, tick) -> None:
    from app.demo.services import read_yaml

    spec_path = folder / "curriculum" / "demo.yaml"
    if not spec_path.exists():
        return
    spec = read_yaml(spec_path) or {}
    for entry in spec.get("frameworks", []):
        package = json.loads((folder / "curriculum" / entry["file"]).read_text(encoding="utf-8"))
        district = db.session.execute(
            select(District).filter_by(code=entry["district"])
        ).scalar_one()
        existed = db.session.execute(
            select(Framework.id).filter_by(identifier=package["CFDocument"]["identifier"].lower())
        ).first()
        case.import_package(package, district_id=district.id)
        report.add("curriculum frameworks", existed is None)
        tick("curriculum")
    for entry in spec.get("classes", []):
        school = db.session.execute(select(School).filter_by(code=entry["school"])).scalar_one()
        existed = db.session.execute(
            select(SchoolClass.id).filter_by(school_id=school.id, name=entry["name"])
        ).first()
        school_class = services.get_or_create_class(school, entry["name"], grade=entry.get("grade"))
        for subject, edition in (entry.get("editions") or {}).items():
            if db.session.get(ClassEdition, (school_class.id, subject)) is None:
                db.session.add(
                    ClassEdition(class_id=school_class.id, subject=subject, edition=edition)
                )
        for role in ("teacher", "student"):
            for email in entry.get(role + "s", []):
                services.add_class_member(school_class, get_user_by_email(email), role)
        db.session.flush()
        report.add("school classes", existed is None)
    for entry in spec.get("calendars", []):
        entry = _following_school_year(entry)
        district = db.session.execute(
            select(District).filter_by(code=entry["district"])
        ).scalar_one()
        volume = _volume(entry["volume"])
        exists = db.session.execute(
            select(TeachingCalendar.id).filter_by(
                district_id=district.id,
                school_id=None,
                class_id=None,
                term=entry["term"],
                subject=volume.subject,
                edition=volume.edition,
            )
        ).first()
        report.add("teaching calendars", exists is None)
        if exists is None:
            calendar = services.create_calendar(
                get_user_by_email(entry["by"]),
                {
                    "district_id": district.id,
                    "term": entry["term"],
                    "title": entry.get("title"),
                    "volume_id": volume.id,
                    "term_start": str(entry["term_start"]),
                    "term_end": str(entry["term_end"]),
                    "lessons_per_week": entry.get("lessons_per_week", 5),
                    "holidays": [
                        {**h, "start": str(h["start"]), "end": str(h["end"])}
                        for h in entry.get("holidays", [])
                    ],
                },
            )
            if entry.get("week_kinds"):
                # Review and exam weeks (week number → kind), then the lessons spread
                # again around them.  Data only: the calendar service decides what a
                # week kind means.
                services.save_calendar(
                    get_user_by_email(entry["by"]),
                    calendar.id,
                    {
                        "kinds": {int(k): str(v) for k, v in entry["week_kinds"].items()},
                        "regenerate": True,
                        "note": "演示：期中、期末的复习周和考试周",
                    },
                )
    for entry in spec.get("alignments", []):
        node = _lesson(entry["edition"], str(entry["lesson"]))
        if entry.get("knowledge_point"):
            node = _knowledge_point(node, entry["knowledge_point"])
        exists = db.session.execute(
            select(Alignment.id).filter_by(
                node_id=node.id,
                target_type=TargetType.RESOURCE,
                target_key=entry["resource"],
                alignment_type=entry.get("type", "teaches"),
            )
        ).first()
        report.add("curriculum alignments", exists is None)
        if exists is None:
            from app.catalog.models import Resource

            author_id = db.session.execute(
                select(Resource.author_id).filter_by(content_id=entry["resource"]).limit(1)
            ).scalar()
            if author_id is None:
                continue  # the resource file is not loaded (custom content folder)
            from app.accounts.models import User

            services.align(
                db.session.get(User, author_id),
                node.id,
                "resource",
                entry["resource"],
                entry.get("type", "teaches"),
            )
    db.session.flush()


def register() -> None:
    from app.demo.services import register_loader

    register_loader("curriculum", load)
