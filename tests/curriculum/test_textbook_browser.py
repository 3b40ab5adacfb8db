"""The textbook-tree browser and the catalog's edition and chapter filters."""

from __future__ import annotations

from sqlalchemy import select

from app.curriculum import services
from app.curriculum.models import Level, Node
from app.curriculum.services import browse
from app.extensions import db
from tests.curriculum.conftest import lessons_of_unit


def _first_unit(edition="pep") -> Node:
    return (
        db.session.execute(
            select(Node)
            .where(Node.level == Level.UNIT, Node.edition == edition)
            .order_by(Node.position, Node.seq)
        )
        .scalars()
        .first()
    )


def test_selectors_narrow_and_default_to_the_first_choice(curriculum):
    choice = browse.choose_volume()
    assert choice.stage == "junior" and choice.subject == "math"
    assert set(choice.editions) >= {"pep", "bnu"}
    assert choice.volume is not None and choice.volume.edition == choice.edition
    bnu = browse.choose_volume("junior", "math", "bnu")
    assert bnu.volume.edition == "bnu"
    # A volume id decides every selector above it; junk falls back to the first choice.
    assert browse.choose_volume(volume_id=bnu.volume.id).edition == "bnu"
    assert browse.choose_volume("nonsense", "x", "y").volume is not None


def test_contents_count_resources_per_node(curriculum, klass, publish):
    volume = curriculum.volume("pep")
    unit = _first_unit()
    first, second = lessons_of_unit(unit)[:2]
    a = publish(klass.teacher, "正数和负数 微课")
    b = publish(klass.teacher, "数轴 练习", kind="exercise")
    hidden = publish(klass.teacher, "私有", visibility="private")
    services.align(klass.teacher, first.id, "resource", a)
    services.align(klass.teacher, second.id, "resource", a)
    services.align(klass.teacher, second.id, "resource", b)
    services.align(klass.teacher, second.id, "resource", hidden)
    db.session.commit()
    contents = browse.volume_contents(klass.student, volume)
    counts = browse.toc_counts(contents)
    assert counts[unit.id] == 2  # distinct: a counts once for the chapter
    assert counts[first.id] == 1 and counts[second.id] == 2
    entry = browse.find_entry(contents, unit.id)
    assert [leaf.node.id for leaf in entry.lessons][:2] == [first.id, second.id]
    # The author sees her private resource too.
    assert browse.toc_counts(browse.volume_contents(klass.teacher, volume))[second.id] == 3


def test_browse_page_in_both_languages(client, login, curriculum, klass, publish):
    unit = _first_unit()
    lesson = lessons_of_unit(unit)[0]
    content_id = publish(klass.teacher, "正数和负数 微课")
    services.align(klass.teacher, lesson.id, "resource", content_id)
    db.session.commit()
    login(klass.student)
    client.get("/lang/zh_CN")
    page = client.get("/curriculum/browse").get_data(as_text=True)
    for text in ("学段", "初中", "学科", "版本", "人教版", "册次", "目录"):
        assert text in page, text
    assert f'href="/curriculum/nodes/{lesson.id}"' in page  # one click to the lesson
    assert "正数和负数 微课" in page
    page = client.get(f"/curriculum/browse?volume={curriculum.volume('bnu').id}&lang=en")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Table of contents" in text and "Junior secondary" in text
    # Junk in the query string falls back to a page, never an error.
    for junk in ("volume=abc", "node=99999999999", "stage=%00", "volume=-5"):
        assert client.get(f"/curriculum/browse?{junk}").status_code == 200


def test_resource_catalog_filters_by_edition_and_chapter(client, curriculum, klass, publish):
    unit = _first_unit()
    lesson = lessons_of_unit(unit)[0]
    bnu_lesson = db.session.execute(
        select(Node).where(Node.level == Level.LESSON, Node.edition == "bnu").limit(1)
    ).scalar_one()
    pep = publish(klass.teacher, "人教 微课", visibility="region")
    bnu = publish(klass.teacher, "北师 微课", visibility="region")
    loose = publish(klass.teacher, "未对齐", visibility="region")
    services.align(klass.teacher, lesson.id, "resource", pep)
    services.align(klass.teacher, bnu_lesson.id, "resource", bnu)
    db.session.commit()

    def titles(query: str) -> set[str]:
        page = client.get(f"/resources?{query}").get_data(as_text=True)
        return {t for t in ("人教 微课", "北师 微课", "未对齐") if t in page}

    assert titles("") == {"人教 微课", "北师 微课", "未对齐"}
    assert titles(f"chapter={unit.id}") == {"人教 微课"}
    assert titles("edition=pep") >= {"人教 微课"} and "未对齐" not in titles("edition=pep")
    assert titles("edition=bnu") >= {"北师 微课"} and "人教 微课" not in titles("edition=bnu")
    assert titles("chapter=2000000000") == set()
    assert titles("chapter=abc") == {"人教 微课", "北师 微课", "未对齐"}
    page = client.get("/resources?lang=zh_CN").get_data(as_text=True)
    assert 'name="chapter"' in page and 'name="edition"' in page and "章节" in page
    assert loose
