"""The curriculum's edition and chapter filters in search, on both backends: a resource
aligned to a lesson is found under that lesson's chapter and edition, and nothing else
is; an unknown chapter finds nothing (never an error)."""

from __future__ import annotations

from sqlalchemy import select

from app.catalog.models import Resource
from app.common.events import commit
from app.curriculum import case
from app.curriculum import services as curriculum
from app.curriculum.models import Level, Node
from app.extensions import db
from app.search import services
from tests.curriculum.conftest import demo_package, lessons_of_unit
from tests.search.helpers import publish


def _lesson_in_other_unit(unit: Node) -> Node:
    return db.session.execute(
        select(Node)
        .where(
            Node.level == Level.LESSON,
            Node.edition == "pep",
            Node.unit_identifier != unit.identifier,
        )
        .order_by(Node.order_in_volume)
        .limit(1)
    ).scalar_one()


def test_chapter_and_edition_filters(people, orgs, search_api):
    case.import_package(demo_package(), district_id=orgs.district.id)
    db.session.commit()
    unit = (
        db.session.execute(
            select(Node).where(Node.level == Level.UNIT, Node.edition == "pep").order_by(Node.seq)
        )
        .scalars()
        .first()
    )
    inside = lessons_of_unit(unit)[0]
    outside = _lesson_in_other_unit(unit)
    aligned_in = publish(people.teacher, Resource, title="有理数 微课", kind="video")
    aligned_out = publish(people.teacher, Resource, title="有理数 练习", kind="exercise")
    publish(people.teacher, Resource, title="有理数 讲义", kind="document")
    curriculum.align(people.teacher, inside.id, "resource", aligned_in)
    curriculum.align(people.teacher, outside.id, "resource", aligned_out)
    commit()

    everything = services.search(people.teacher, "有理数")
    assert everything.total == 3
    by_chapter = services.search(people.teacher, "有理数", chapter=unit.id)
    assert [h.content_id for h in by_chapter.items] == [aligned_in]
    assert by_chapter.total == 1
    by_lesson = services.search(people.teacher, "", chapter=outside.id)
    assert [h.content_id for h in by_lesson.items] == [aligned_out]
    # The edition facet now counts aligned resources too.
    by_edition = services.search(people.teacher, "有理数", filters={"edition": ["pep"]})
    assert {h.content_id for h in by_edition.items} == {aligned_in, aligned_out}
    assert services.search(people.teacher, "有理数", filters={"edition": ["bnu"]}).total == 0
    # An unknown chapter finds nothing; a malformed one is a 422, never a 500.
    assert services.search(people.teacher, "有理数", chapter=2_000_000_000).total == 0
    response = search_api(people.teacher, q="有理数", chapter=unit.id)
    assert response.status_code == 200
    assert [i["content_id"] for i in response.get_json()["items"]] == [aligned_in]
    assert search_api(people.teacher, q="x", chapter="abc").status_code == 422
    assert search_api(people.teacher, q="x", chapter=0).status_code == 422


def test_chapter_filter_respects_visibility(people, orgs):
    case.import_package(demo_package(), district_id=orgs.district.id)
    db.session.commit()
    lesson = db.session.execute(
        select(Node).where(Node.level == Level.LESSON, Node.edition == "pep").limit(1)
    ).scalar_one()
    private = publish(people.teacher, Resource, title="私有 微课", visibility="private")
    curriculum.align(people.teacher, lesson.id, "resource", private)
    commit()
    assert services.search(people.teacher, "", chapter=lesson.id).total == 1
    assert services.search(people.outsider, "", chapter=lesson.id).total == 0
