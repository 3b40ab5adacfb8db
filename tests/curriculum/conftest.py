"""Fixtures of the curriculum tests: the demo CASE package, published resources, a class."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from app.catalog import services as catalog
from app.catalog.models import Resource
from app.curriculum import case, services
from app.curriculum.models import Level, Node
from app.extensions import db

PACKAGE_PATH = (
    Path(__file__).resolve().parents[2] / "content" / "curriculum" / "math-g7-vol1.case.json"
)
TERM = {
    "term": "2026-2027-1",
    "term_start": "2026-09-01",
    "term_end": "2027-01-22",
    "holidays": [{"name": "国庆节", "start": "2026-10-01", "end": "2026-10-07"}],
}


def demo_package() -> dict:
    return json.loads(PACKAGE_PATH.read_text(encoding="utf-8"))


def lessons_of_unit(unit: Node) -> list[Node]:
    """The lessons of ``unit`` in the order of its volume."""
    volume = services.node_by_identifier(unit.volume_identifier)
    return [n for n in services.lessons_of_volume(volume) if n.unit_identifier == unit.identifier]


class Curriculum:
    def __init__(self, report):
        self.framework_id = report.framework_id

    def lesson(self, edition: str, code: str) -> Node:
        return db.session.execute(
            select(Node).where(
                Node.edition == edition, Node.code == code, Node.level == Level.LESSON
            )
        ).scalar_one()

    def section(self, edition: str, code: str) -> Node:
        """A 节 that holds 小节 (level section)."""
        return db.session.execute(
            select(Node).where(
                Node.edition == edition, Node.code == code, Node.level == Level.SECTION
            )
        ).scalar_one()

    def volume(self, edition: str) -> Node:
        return db.session.execute(
            select(Node).where(Node.edition == edition, Node.level == Level.VOLUME)
        ).scalar_one()


@pytest.fixture
def package():
    return copy.deepcopy(demo_package())


@pytest.fixture
def curriculum(ctx, orgs):
    report = case.import_package(demo_package(), district_id=orgs.district.id)
    db.session.commit()
    return Curriculum(report)


@pytest.fixture
def publish(ctx):
    """``publish(author, title, kind="video", visibility="district") -> content_id``"""

    def make(author, title, kind="video", visibility="district", **extra):
        data = {"kind": kind, "title": title, "subject": "math", "visibility": visibility, **extra}
        if kind == "link":
            data.setdefault("url", "https://example.org/x")
        resource = catalog.create_content(author, Resource, data)
        catalog.submit_content(author, Resource, resource.content_id)
        db.session.commit()
        return resource.content_id

    return make


@pytest.fixture
def klass(ctx, orgs, make_user, curriculum):
    """A class of orgs.school using 人教版 maths, with one teacher and one student, and
    the district calendar for the autumn term."""
    teacher = make_user("teacher")
    student = make_user("student")
    admin = make_user("district_admin")
    school_class = services.get_or_create_class(orgs.school, "七年级（3）班", grade="g7")
    services.add_class_member(school_class, teacher, "teacher")
    services.add_class_member(school_class, student, "student")
    services.set_class_edition(admin, school_class.id, "math", "pep")
    calendar = services.create_calendar(
        admin, {**TERM, "volume_id": curriculum.volume("pep").id, "district_id": orgs.district.id}
    )
    db.session.commit()

    class K:
        """Namespace of the demo objects the curriculum tests use."""

    k = K()
    k.school_class, k.teacher, k.student, k.admin, k.calendar = (
        school_class,
        teacher,
        student,
        admin,
        calendar,
    )
    k.class_id, k.calendar_id = school_class.id, calendar.id
    return k
