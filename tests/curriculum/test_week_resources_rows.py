"""The week's aligned resources as rows (issue 14, docs/curriculum.md "Fourth pass"):
the statement built once with the reader's visibility condition added per call, and
``translations`` read as text, must list exactly what the entity statement lists —
same resources, order, alignment, node and fields — for every kind of reader."""

from __future__ import annotations

from datetime import date

from app.catalog import services as catalog
from app.catalog.models import Resource
from app.catalog.services.permissions import visibility_condition
from app.curriculum import services
from app.curriculum.services.alignment import aligned_resources
from app.extensions import db

MONDAY = date(2026, 11, 23)  # week 13 of the autumn term


def _listing(aligned) -> list[tuple]:
    out = []
    for owner, entries in sorted(aligned.items()):
        for e in entries:
            r = e.resource
            out.append(
                (
                    owner,
                    e.node_id,
                    e.alignment_type,
                    e.via_equivalent,
                    r.id,
                    r.content_id,
                    r.version,
                    r.title,
                    r.summary,
                    r.kind,
                    r.url,
                    r.translations,
                    r.translated("title", "en"),
                )
            )
    return out


def test_week_rows_equal_entities_for_every_reader(app, orgs, make_user, klass, publish):
    week13 = services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    other_teacher = make_user("teacher", school=orgs.other_school)
    other_district_admin = make_user("district_admin", district=orgs.review_district)
    made = []
    for n, visibility in enumerate(["region", "district", "school", "private"] * 2):
        extra = {"translations": {"en": {"title": f"Lesson video {n}"}}} if n % 3 == 0 else {}
        author = klass.teacher if n < 6 else other_teacher
        content_id = publish(author, f"微课 {8 - n}", visibility=visibility, **extra)
        node = week13[n % len(week13)]
        services.align(author, node.id, "resource", content_id, ["teaches", "assesses"][n % 2])
        made.append(content_id)
    # A resource aligned to two lessons, and one archived (never listed).
    services.align(klass.teacher, week13[-1].id, "resource", made[0], "assesses")
    catalog.archive_content(klass.teacher, Resource, made[5])
    db.session.commit()

    readers = {
        "anonymous": None,
        "student": klass.student,
        "teacher (author)": klass.teacher,
        "teacher of the other school": other_teacher,
        "admin of another district": other_district_admin,
    }
    seen = {}
    for name, reader in readers.items():
        rows = _listing(aligned_resources(reader, week13, summaries=True))
        entities = _listing(aligned_resources(reader, week13))
        assert rows == entities, name
        visible = {
            r.content_id
            for r in db.session.query(Resource).filter(
                Resource.content_id.in_(made), Resource.state == "published"
            )
            if catalog.can_view(reader, r)
        }
        assert {row[5] for row in rows} == visible, name
        seen[name] = {row[5] for row in rows}
    # The readers really differ (the test would not notice a condition shared by all).
    assert seen["teacher (author)"] > seen["student"] > seen["anonymous"]
    assert seen["admin of another district"] == seen["anonymous"]
    assert made[5] not in seen["teacher (author)"]
    translated = [r for r in _listing(aligned_resources(None, week13, summaries=True)) if r[11]]
    assert translated and all(r[12].startswith("Lesson video") for r in translated)


def test_visibility_condition_follows_a_change_of_roles(app, orgs, make_user, publish):
    """The built condition is kept per (user, schools, districts, administered
    districts), read afresh from her roles at every call: a role given later counts."""
    from app.accounts import services as accounts
    from app.accounts.models import Role

    author = make_user("teacher", school=orgs.other_school)
    content_id = publish(author, "校内资源", visibility="school")
    reader = make_user("teacher")  # orgs.school: not the resource's school

    def sees() -> bool:
        return (
            db.session.query(Resource)
            .filter(Resource.content_id == content_id, visibility_condition(reader, Resource))
            .count()
            == 1
        )

    assert not sees()
    accounts.assign_role(reader, Role.TEACHER, school=orgs.other_school)
    db.session.commit()
    assert sees()
