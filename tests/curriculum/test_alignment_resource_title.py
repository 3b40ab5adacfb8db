"""``curriculum_alignments.resource_title`` (issue 14, the recommender's title-ordered
walk) is the title of the aligned resource's published version on every write path:
aligning, publishing, a new version, archive and restore, a bulk insert of either table,
a direct write of the column — on both backends, with the schema from the models and
from the migrations (curr0003 also fills it for the alignments already there)."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from flask_migrate import upgrade
from sqlalchemy import insert, select, text, update

from app.catalog import services as catalog
from app.catalog.models import Resource
from app.config import PROJECT_ROOT
from app.curriculum import services
from app.curriculum.models import Alignment, Level, Node
from app.extensions import db
from tests.conftest import create_postgres_database, make_app

MIGRATIONS = str(PROJECT_ROOT / "migrations")


def _titles(content_id: str) -> list:
    return sorted(
        db.session.execute(
            select(Alignment.resource_title).where(Alignment.target_key == content_id)
        ).scalars(),
        key=str,
    )


def _nodes(count: int) -> list[int]:
    """Knowledge points: what a resource may be aligned to."""
    return list(
        db.session.execute(
            select(Node.id)
            .where(Node.level == Level.KNOWLEDGE_POINT)
            .order_by(Node.id)
            .limit(count)
        ).scalars()
    )


def test_every_write_path_keeps_the_published_title(ctx, klass, publish):
    teacher = klass.teacher
    first, second, third = _nodes(3)
    content_id = publish(teacher, "第一版")
    services.align(teacher, first, "resource", content_id, "teaches")
    services.align(teacher, second, "resource", content_id, "assesses")
    db.session.commit()
    assert _titles(content_id) == ["第一版", "第一版"]

    # A draft of the next version changes nothing readers see; publishing it does.
    catalog.update_content(teacher, Resource, content_id, {"title": "第二版"})
    db.session.commit()
    assert _titles(content_id) == ["第一版", "第一版"]
    catalog.submit_content(teacher, Resource, content_id)
    db.session.commit()
    assert _titles(content_id) == ["第二版", "第二版"]

    # Archived and restored: the published title again.
    catalog.archive_content(teacher, Resource, content_id)
    db.session.commit()
    catalog.restore_content(teacher, Resource, content_id)
    db.session.commit()
    assert _titles(content_id) == ["第二版", "第二版"]

    # Aligned before it is ever published: no title, then the published one.
    draft = catalog.create_content(
        teacher, Resource, {"kind": "video", "title": "草稿", "subject": "math"}
    )
    db.session.commit()
    services.align(teacher, third, "resource", draft.content_id, "teaches")
    db.session.commit()
    assert _titles(draft.content_id) == [None]
    catalog.submit_content(teacher, Resource, draft.content_id)
    db.session.commit()
    assert _titles(draft.content_id) == ["草稿"]

    # Removing one alignment leaves the other right; a course item has no title.
    services.unalign(
        teacher,
        db.session.execute(
            select(Alignment.id).where(
                Alignment.target_key == content_id, Alignment.node_id == second
            )
        ).scalar_one(),
    )
    db.session.commit()
    assert _titles(content_id) == ["第二版"]
    db.session.execute(
        insert(Alignment),
        [{"node_id": first, "target_type": "item", "target_key": content_id}],
    )
    assert None in _titles(content_id)


def test_bulk_inserts_and_direct_writes_cannot_leave_it_wrong(ctx, klass):
    teacher, school = klass.teacher, klass.teacher.school_id
    node = _nodes(1)[0]
    ids = [str(uuid.uuid4()) for _ in range(3)]
    # Alignments first, then the resources (as a bulk import may do), in one go each.
    db.session.execute(
        insert(Alignment),
        [{"node_id": node, "target_type": "resource", "target_key": i} for i in ids],
    )
    row = {
        "version": 1,
        "kind": "video",
        "author_id": teacher.id,
        "school_id": school,
        "district_id": teacher.district_id or klass.teacher.school.district_id,
        "summary": "",
        "description_html": "",
        "language": "zh",
        "licence": "CC-BY-4.0",
        "visibility": "district",
        "translations": {},
        "data": {},
        "usage_count": 0,
        "created_at": datetime(2026, 11, 1),
        "updated_at": datetime(2026, 11, 1),
    }
    db.session.execute(
        insert(Resource),
        [
            {**row, "content_id": ids[0], "state": "published", "title": "甲"},
            {**row, "content_id": ids[1], "state": "draft", "title": "乙"},
            {**row, "content_id": ids[2], "state": "published", "title": "丙"},
        ],
    )
    assert [_titles(i) for i in ids] == [["甲"], [None], ["丙"]]
    # A Core update of the published title, and a write of the column itself.
    db.session.execute(update(Resource).where(Resource.content_id == ids[2]).values(title="丁"))
    db.session.execute(
        update(Alignment).where(Alignment.target_key == ids[0]).values(resource_title="错")
    )
    assert [_titles(i) for i in ids] == [["甲"], [None], ["丁"]]
    db.session.rollback()


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_the_migration_fills_it_and_installs_the_triggers(backend_name, tmp_path):
    if backend_name == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'migrated.db'}", (lambda: None)
    else:
        url, drop = create_postgres_database()
    application = make_app(url, str(tmp_path))
    now = datetime(2026, 11, 1)
    try:
        with application.app_context():
            upgrade(directory=MIGRATIONS, revision="search0003")
            statements = [
                "INSERT INTO regions (id, code, name, created_at, updated_at) "
                "VALUES (1, 'r', '市', :now, :now)",
                "INSERT INTO districts (id, region_id, code, name, created_at, updated_at, "
                "requires_review) VALUES (1, 1, 'd', '区', :now, :now, false)",
                "INSERT INTO users (id, public_id, name, is_active_account, created_at, "
                "updated_at) VALUES (1, 'u', '老师', true, :now, :now)",
                "INSERT INTO curriculum_frameworks (id, identifier, title, creator, raw, extras, "
                "created_at, updated_at) VALUES (1, 'f', '数学', '', '{}', '{}', :now, :now)",
                "INSERT INTO curriculum_nodes (id, framework_id, identifier, seq, level, title, "
                "position, depth, raw) VALUES (1, 1, 'n', 0, 'lesson', '课', 0, 0, '{}')",
            ]
            resource = (
                "INSERT INTO resources (kind, author_id, district_id, content_id, version, "
                "state, title, summary, description_html, language, licence, visibility, "
                "translations, data, usage_count, created_at, updated_at) VALUES ('video', "
                "1, 1, :content_id, :version, :state, :title, '', '', 'zh', 'CC', 'region', "
                "'{}', '{}', 0, :now, :now)"
            )
            alignment = (
                "INSERT INTO curriculum_alignments (node_id, target_type, target_key, "
                "alignment_type, created_at) VALUES (1, 'resource', :content_id, 'teaches', :now)"
            )
            for statement in statements:
                db.session.execute(text(statement), {"now": now})
            for content_id, version, state, title in [
                ("a", 1, "superseded", "旧"),
                ("a", 2, "published", "新"),
                ("b", 1, "draft", "稿"),
            ]:
                db.session.execute(
                    text(resource),
                    {
                        "content_id": content_id,
                        "version": version,
                        "state": state,
                        "title": title,
                        "now": now,
                    },
                )
            for content_id in ("a", "b"):
                db.session.execute(text(alignment), {"content_id": content_id, "now": now})
            db.session.commit()

            upgrade(directory=MIGRATIONS)
            assert (_titles("a"), _titles("b")) == (["新"], [None])
            db.session.execute(
                update(Resource)
                .where(Resource.content_id == "b")
                .values(state="published", title="发布")
            )
            db.session.execute(
                text(alignment.replace("'teaches'", "'assesses'")), {"content_id": "a", "now": now}
            )
            assert (_titles("a"), _titles("b")) == (["新", "新"], ["发布"])
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()
