"""Reading portraits: one student's (herself or her teacher), a class heat map (its
teachers) and district aggregates (district admins; never a name, no group below the
minimum size).  Authorisation is checked here."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from app.errors import Forbidden, NotFound, Unauthorized
from app.extensions import db
from app.portraits import sources
from app.portraits.models import EngagementDay, Interest, Mastery, ResourceGain, Snapshot
from app.portraits.services import model


def _require(user):
    if user is None:
        raise Unauthorized(_("Log in to see portraits."))
    return user


def can_view_student(viewer, student_id: int) -> bool:
    if viewer is None:
        return False
    if viewer.id == student_id:
        return True
    teaching = sources.classes_of(viewer, "teacher")
    return any(student_id in {s.id for s in sources.class_students(c)} for c in teaching)


def require_student(viewer, student_id: int):
    _require(viewer)
    student = sources.get_user(student_id) if isinstance(student_id, int) else None
    # A student the viewer may not see is reported like a missing one.
    if student is None or not can_view_student(viewer, student.id):
        raise NotFound(_("Portrait not found."))
    return student


def mastery_of(user_id: int, generation=False) -> dict[str, Mastery]:
    """Skill → Mastery row of the served generation (``generation``: the caller's
    ``model.active_generation(create=False)``, to save reading it again)."""
    if generation is False:
        generation = model.active_generation(create=False)
    if generation is None:
        return {}
    return {
        m.skill: m
        for m in db.session.execute(
            select(Mastery).where(
                Mastery.generation_id == generation.id, Mastery.user_id == user_id
            )
        ).scalars()
    }


def level_of(p: float | None) -> str:
    """A named band (shown as text and pattern, not colour alone)."""
    if p is None:
        return "none"
    if p >= model.mastered_threshold():
        return "mastered"
    if p >= 0.5:
        return "developing"
    return "weak"


def _title(node, locale: str | None) -> str:
    if node is None:
        return ""
    if locale and not str(locale).startswith("zh") and node.title_en:
        return node.title_en
    return node.title


@dataclass
class Portrait:
    student: object
    skills: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    trend: list[dict] = field(default_factory=list)
    engagement: dict = field(default_factory=dict)
    interests: list[dict] = field(default_factory=list)


def _volumes_of(student) -> list[str]:
    """Volumes the student's classes follow this term (from their calendars)."""
    seen = []
    for week in sources.weeks_of(student, 0):
        identifier = sources.calendar_volume(week.calendar)
        if identifier and identifier not in seen:
            seen.append(identifier)
    return seen


def portrait(viewer, student_id: int, locale: str | None = None, days: int = 120) -> Portrait:
    student = require_student(viewer, student_id)
    masteries = mastery_of(student.id)
    out = Portrait(student)
    volumes = _volumes_of(student)
    maps = [(v, sources.volume_map(v)) for v in volumes]
    kp_ids = {
        kp.identifier
        for _v, units in maps
        for u in units
        for lesson in u["lessons"]
        for kp in lesson["knowledge_points"]
    }
    canonical = sources.canonical_skills(kp_ids)
    nodes = sources.nodes_by_identifier(set(masteries) | kp_ids)
    for skill, row in sorted(masteries.items(), key=lambda kv: kv[1].p_known):
        out.skills.append(
            {
                "skill": skill,
                "title": _title(nodes.get(skill), locale) or skill,
                "mastery": round(row.p_known, 3),
                "level": level_of(row.p_known),
                "method": row.method,
                "answers": row.answers,
                "correct": row.correct,
            }
        )
    for volume_id, units in maps:
        volume_node = sources.nodes_by_identifier({volume_id}).get(volume_id)
        out.volumes.append(
            {
                "identifier": volume_id,
                "title": _title(volume_node, locale),
                "units": [
                    {
                        "title": _title(u["unit"], locale),
                        "lessons": [
                            {
                                "title": _title(lesson["lesson"], locale),
                                "code": lesson["lesson"].code,
                                "knowledge_points": [
                                    _kp_cell(kp, canonical, masteries, locale)
                                    for kp in lesson["knowledge_points"]
                                ],
                            }
                            for lesson in u["lessons"]
                        ],
                    }
                    for u in units
                ],
            }
        )
    since = sources.today() - timedelta(days=days)
    out.trend = [
        {"day": s.day.isoformat(), "average": s.average, "mastery": s.mastery}
        for s in db.session.execute(
            select(Snapshot)
            .where(Snapshot.user_id == student.id, Snapshot.day >= since)
            .order_by(Snapshot.day)
        ).scalars()
    ]
    out.engagement = engagement_of(student.id, since)
    out.interests = [
        {"category": i.category, "seconds": round(i.seconds), "events": i.events}
        for i in db.session.execute(
            select(Interest)
            .where(Interest.user_id == student.id)
            .order_by(Interest.seconds.desc(), Interest.events.desc())
        ).scalars()
    ]
    return out


def _kp_cell(kp, canonical, masteries, locale) -> dict:
    skill = canonical.get(kp.identifier, kp.identifier)
    row = masteries.get(skill)
    return {
        "identifier": kp.identifier,
        "skill": skill,
        "title": _title(kp, locale),
        "mastery": round(row.p_known, 3) if row else None,
        "level": level_of(row.p_known if row else None),
        "answers": row.answers if row else 0,
    }


def engagement_of(user_id: int, since) -> dict:
    rows = (
        db.session.execute(
            select(EngagementDay)
            .where(EngagementDay.user_id == user_id, EngagementDay.day >= since)
            .order_by(EngagementDay.day)
        )
        .scalars()
        .all()
    )
    return {
        "active_days": len(rows),
        "seconds": round(sum(r.seconds for r in rows)),
        "completions": sum(r.completions for r in rows),
        "answers": sum(r.answers for r in rows),
        "days": [
            {"day": r.day.isoformat(), "seconds": round(r.seconds), "events": r.events}
            for r in rows
        ],
    }


# --- class heat map ------------------------------------------------------------------------


def require_class_teacher(viewer, class_id: int):
    _require(viewer)
    school_class = sources.get_class(class_id) if isinstance(class_id, int) else None
    if school_class is None or not sources.teaches_class(viewer, school_class):
        raise NotFound(_("Class not found."))
    return school_class


def class_heatmap(viewer, class_id: int, locale: str | None = None, offset: int = 0) -> dict:
    school_class = require_class_teacher(viewer, class_id)
    weeks = sources.class_weeks(viewer, class_id, offset=offset)
    columns, seen = [], set()
    week_number = None
    for week in weeks:
        week_number = week.week
        for lesson in week.lessons:
            for kp in lesson["knowledge_points"]:
                if kp.identifier not in seen:
                    seen.add(kp.identifier)
                    columns.append((kp, lesson["node"]))
    canonical = sources.canonical_skills({kp.identifier for kp, _l in columns})
    students = sources.class_students(school_class)
    generation = model.active_generation(create=False)
    skills = {canonical.get(kp.identifier, kp.identifier) for kp, _l in columns}
    values: dict[tuple[int, str], Mastery] = {}
    if generation is not None and students and skills:
        for row in db.session.execute(
            select(Mastery).where(
                Mastery.generation_id == generation.id,
                Mastery.user_id.in_([s.id for s in students]),
                Mastery.skill.in_(skills),
            )
        ).scalars():
            values[(row.user_id, row.skill)] = row
    gains = defaultdict(list)
    if generation is not None and skills:
        for gain in db.session.execute(
            select(ResourceGain).where(
                ResourceGain.generation_id == generation.id,
                ResourceGain.skill.in_(skills),
                ResourceGain.users > 0,
            )
        ).scalars():
            gains[gain.skill].append(gain)
    resources = sources.visible_resources(
        viewer, sorted({g.resource_content_id for gs in gains.values() for g in gs})
    )
    return {
        "class": {"id": school_class.id, "name": school_class.name},
        "week": week_number,
        "columns": [
            {
                "identifier": kp.identifier,
                "skill": canonical.get(kp.identifier, kp.identifier),
                "title": _title(kp, locale),
                "lesson": _title(lesson, locale),
                "helpful": [
                    {
                        "content_id": g.resource_content_id,
                        "title": resources[g.resource_content_id].translated("title", locale),
                        "helped": g.helped,
                        "users": g.users,
                    }
                    for g in sorted(
                        gains.get(canonical.get(kp.identifier, kp.identifier), []),
                        key=lambda g: -g.helped / g.users,
                    )
                    if g.resource_content_id in resources
                ][:3],
            }
            for kp, lesson in columns
        ],
        "rows": [
            {
                "student": {"id": s.id, "name": s.name},
                "cells": [
                    _cell(values.get((s.id, canonical.get(kp.identifier, kp.identifier))))
                    for kp, _lesson in columns
                ],
            }
            for s in students
        ],
    }


def _cell(row) -> dict:
    if row is None:
        return {"mastery": None, "level": "none", "answers": 0}
    return {
        "mastery": round(row.p_known, 3),
        "level": level_of(row.p_known),
        "answers": row.answers,
    }


# --- district aggregates ---------------------------------------------------------------------


def min_group_size() -> int:
    return max(1, int(current_app.config.get("PORTRAITS_MIN_GROUP_SIZE", 10)))


def district_aggregates(viewer, district_id: int, locale: str | None = None) -> dict:
    """Mean mastery by school and knowledge point for a district's admin.  Groups with
    fewer than ``PORTRAITS_MIN_GROUP_SIZE`` students are left out (reported as a count
    of hidden groups only); no student is ever named."""
    _require(viewer)
    if not (viewer.is_platform_admin or viewer.is_district_admin(district_id)):
        raise Forbidden(_("Only the district's administrators see its aggregates."))
    students = sources.users_of_district(district_id)
    generation = model.active_generation(create=False)
    groups: dict[tuple[int, str], list[float]] = defaultdict(list)
    if generation is not None and students:
        ids = list(students)
        for start in range(0, len(ids), 900):
            for user_id, skill, p in db.session.execute(
                select(Mastery.user_id, Mastery.skill, Mastery.p_known).where(
                    Mastery.generation_id == generation.id,
                    Mastery.user_id.in_(ids[start : start + 900]),
                )
            ).all():
                groups[(students[user_id], skill)].append(p)
    minimum = min_group_size()
    shown = {k: v for k, v in groups.items() if len(v) >= minimum}
    names = sources.school_names({school for school, _skill in shown})
    nodes = sources.nodes_by_identifier({skill for _school, skill in shown})
    return {
        "min_group_size": minimum,
        "hidden_groups": len(groups) - len(shown),
        "groups": [
            {
                "school": names.get(school, ""),
                "skill": skill,
                "title": _title(nodes.get(skill), locale) or skill,
                "students": len(values),
                "mean_mastery": round(sum(values) / len(values), 3),
                "mastered_share": round(
                    sum(1 for v in values if v >= model.mastered_threshold()) / len(values), 3
                ),
            }
            for (school, skill), values in sorted(
                shown.items(), key=lambda kv: (names.get(kv[0][0], ""), kv[0][1])
            )
        ],
    }


def class_ids_taught(viewer) -> list:
    return sources.classes_of(viewer, "teacher") if viewer is not None else []


def count_observations(user_id: int) -> int:
    from app.portraits.models import Observation

    return db.session.execute(
        select(func.count()).select_from(Observation).where(Observation.user_id == user_id)
    ).scalar_one()
