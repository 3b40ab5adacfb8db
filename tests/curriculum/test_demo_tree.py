"""The demo textbook tree is the 2024 人教版 七年级上册 table of contents
(content/curriculum/README.md): chapter → 节 → 小节, end-of-chapter items, knowledge
points under their 小节, 北师大版 equivalences where they really match."""

from __future__ import annotations

from pathlib import Path

import yaml
from flask import g
from sqlalchemy import select

from app.curriculum import services
from app.curriculum.models import Level, Node
from app.extensions import db

CONTENT = Path(__file__).resolve().parents[2] / "content" / "curriculum"


def _by_code(code: str) -> Node | None:
    return db.session.execute(
        select(Node).where(
            Node.edition == "pep", Node.code == code, Node.level != Level.KNOWLEDGE_POINT
        )
    ).scalar_one_or_none()


def test_chapters_hold_sections_that_hold_subsections(curriculum):
    sections = {
        "1.2": ["1.2.1", "1.2.2", "1.2.3", "1.2.4", "1.2.5"],
        "2.1": ["2.1.1", "2.1.2"],
        "2.2": ["2.2.1", "2.2.2"],
        "2.3": ["2.3.1", "2.3.2", "2.3.3"],
        "5.1": ["5.1.1", "5.1.2"],
        "6.1": ["6.1.1", "6.1.2"],
        "6.2": ["6.2.1", "6.2.2"],
        "6.3": ["6.3.1", "6.3.2", "6.3.3"],
    }
    for code, subsections in sections.items():
        section = curriculum.section("pep", code)
        unit = db.session.execute(
            select(Node).where(Node.identifier == section.parent_identifier)
        ).scalar_one()
        assert unit.level == Level.UNIT and unit.code == code.split(".")[0]
        lessons = [n.code for n in services.children_of(section) if n.level == Level.LESSON]
        assert lessons == subsections
    # 节 taught whole: lessons straight under their chapter.
    for code in ("1.1", "3.1", "3.2", "4.1", "4.2", "5.2", "5.3"):
        lesson = curriculum.lesson("pep", code)
        assert services.children_of(lesson)[0].level == Level.KNOWLEDGE_POINT
    # The 2012 edition's numbering is gone.
    for code in ("4.2.1", "4.2.2", "4.2.3", "5.2.1", "5.2.2", "6.4"):
        assert _by_code(code) is None


def test_every_chapter_ends_with_activity_summary_and_review(curriculum):
    units = services.units_of_volume(curriculum.volume("pep"))
    assert [u.code for u in units] == ["1", "2", "3", "4", "5", "6"]
    for number, unit in enumerate(units, start=1):
        titles = [n.title for n in services.children_of(unit) if n.level == Level.OTHER]
        assert titles[:3] == ["数学活动", "小结", f"复习题{number}"]
    lessons = services.lessons_of_volume(curriculum.volume("pep"))
    assert [n.code for n in lessons][:7] == [
        "1.1",
        "1.2.1",
        "1.2.2",
        "1.2.3",
        "1.2.4",
        "1.2.5",
        "2.1.1",
    ]
    assert all(n.level == Level.LESSON for n in lessons)


def test_a_bnu_properties_of_equality_resource_shows_under_5_1_2_only(
    curriculum, make_user, publish
):
    teacher = make_user("teacher")
    content_id = publish(teacher, "等式的性质 动画演示")
    bnu_kp = db.session.execute(
        select(Node).where(Node.edition == "bnu", Node.title == "等式的基本性质")
    ).scalar_one()
    services.align(teacher, bnu_kp.id, "resource", content_id)
    db.session.commit()
    g.pop("_login_user", None)
    first, second = curriculum.lesson("pep", "5.1.1"), curriculum.lesson("pep", "5.1.2")
    aligned = services.aligned_resources(teacher, [first, second])
    assert aligned[first.id] == []
    assert [(a.resource.content_id, a.via_equivalent) for a in aligned[second.id]] == [
        (content_id, True)
    ]


def test_the_pages_name_sections_and_subsections(client, curriculum):
    unit = _by_code("1")
    page = client.get(f"/curriculum/nodes/{unit.id}?lang=zh_CN").get_data(as_text=True)
    assert '<span class="level">节</span>' in page and ">复习题</span>" in page
    assert '<span class="level">课时</span>' not in page
    section = curriculum.section("pep", "1.2")
    page = client.get(f"/curriculum/nodes/{section.id}?lang=zh_CN").get_data(as_text=True)
    assert '<span class="badge">节</span>' in page and '<span class="level">小节</span>' in page
    english = client.get(f"/curriculum/nodes/{section.id}?lang=en").get_data(as_text=True)
    assert '<span class="level">Subsection</span>' in english


def test_demo_calendars_have_review_and_exam_weeks():
    spec = yaml.safe_load((CONTENT / "demo.yaml").read_text(encoding="utf-8"))
    for calendar in spec["calendars"]:
        kinds = set(calendar["week_kinds"].values())
        assert kinds == {"review", "exam"}
        weeks = sorted(int(w) for w in calendar["week_kinds"])
        assert weeks[-1] >= 20  # the final review and exam close the term


def test_the_source_of_the_table_of_contents_is_named():
    readme = (CONTENT / "README.md").read_text(encoding="utf-8")
    assert "2024" in readme and "目录" in readme and "人民教育出版社" in readme
