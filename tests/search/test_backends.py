"""The PostgreSQL backend against Whoosh, and indexing inside the publishing transaction.

These run on the PostgreSQL half of the matrix only (the PostgreSQL backend needs it);
the SQLite half runs every other search test on Whoosh.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from app.accounts.models import User
from app.catalog import services as catalog
from app.catalog.models import Course, Resource
from app.common.events import commit
from app.extensions import db
from app.search import services
from app.search.models import SearchDocument, SearchTerm
from app.search.pg_backend import PostgresBackend, field_tokens
from app.search.whoosh_backend import WhooshBackend, make_schema, to_whoosh
from tests.search.helpers import publish


@pytest.fixture
def pg_only(app):
    if not isinstance(services.get_backend(app), PostgresBackend):
        pytest.skip("the PostgreSQL search backend runs on the PostgreSQL half only")


def _more_content(people):
    publish(
        people.teacher,
        Resource,
        title="京剧脸谱 绘画",
        kind="image",
        subject="art",
        grades=["g7"],
        summary="Peking opera masks, painted",
    )
    publish(
        people.teacher,
        Resource,
        title="越剧 唱腔",
        kind="audio",
        subject="music",
        grades=["g8"],
        summary="Yue opera singing 越剧",
        visibility="district",
    )
    publish(
        people.colleague,
        Resource,
        title="剪纸 窗花",
        kind="document",
        subject="art",
        grades=["g9"],
        summary="paper cutting 剪纸 paper",
        visibility="school",
    )
    publish(
        people.teacher,
        Course,
        title="京剧入门 Peking opera",
        category="opera",
        summary="京剧 京剧 京剧 opera lessons for beginners",
    )
    publish(
        people.teacher,
        Resource,
        title="Calligraphy basics 书法",
        kind="video",
        subject="art",
        grades=["g7", "g8"],
        summary="calligraphy brush strokes",
    )


QUERIES = [
    "京剧",
    "jingju",
    "jj",
    "opera",
    "paper cutting",
    "京剧 视频",
    "书法 jingju",
    "caligraphy",
    "京居",
    "越剧 唱腔 京剧",
    "",
]


def _answer(result):
    return {
        "ids": [h.content_id for h in result.items],
        "scores": [h.score for h in result.items],
        "total": result.total,
        "facets": {k: {fv.value: fv.count for fv in v} for k, v in result.facets.items()},
        "did_you_mean": result.did_you_mean,
        "corrected": result.corrected,
        "relaxed": result.relaxed,
        "filters": result.filters,
    }


def test_same_answers_as_whoosh_per_role(
    app,
    ctx,
    pg_only,
    people,
    visibility_catalog,
    tmp_path,
):
    _more_content(people)
    postgres = services.get_backend()
    role_ids = [
        None,
        *(
            u.id
            for u in (
                people.student,
                people.colleague,
                people.outsider,
                people.teacher,
                people.district_admin,
                people.platform_admin,
            )
        ),
    ]
    services.reindex()  # both backends number the documents in the same order
    whoosh = WhooshBackend(tmp_path / "index")
    whoosh.rebuild(services.iter_documents())
    compared = 0
    try:
        for user_id in role_ids:
            user = db.session.get(User, user_id) if user_id is not None else None
            for q in QUERIES:
                for sort in ("relevance", "newest", "popular"):
                    app.extensions["search_backend"] = postgres
                    pg = _answer(services.search(user, q, sort=sort))
                    app.extensions["search_backend"] = whoosh
                    wh = _answer(services.search(user, q, sort=sort))
                    # same BM25F score (None when sorted by date or usage) on both
                    assert [s is None for s in pg["scores"]] == [s is None for s in wh["scores"]], (
                        q,
                        sort,
                    )
                    assert [s or 0.0 for s in pg["scores"]] == pytest.approx(
                        [s or 0.0 for s in wh["scores"]], rel=1e-3
                    ), (q, sort)
                    pg.pop("scores"), wh.pop("scores")
                    assert pg == wh, (getattr(user, "email", None), q, sort)
                    compared += pg["total"]
    finally:
        app.extensions["search_backend"] = postgres
    assert compared > 100  # the comparison saw real results, not empty pages


def test_lexemes_are_exactly_the_analysers_tokens(ctx, pg_only, people):
    content_id = publish(
        people.teacher,
        Resource,
        title="京剧 Peking opera's masks 七年级",
        summary="O'Neil 的 café 脸谱",
        kind="image",
    )
    row = db.session.get(SearchDocument, f"resource:{content_id}")
    doc = services.document_for(
        db.session.execute(select(Resource).filter_by(content_id=content_id)).scalar_one()
    )
    spread, schema = to_whoosh(doc), make_schema()
    for name, tokens in field_tokens(doc).items():
        expected = {t.text for t in schema[name].analyzer(spread[name], mode="index")}
        assert set(tokens) == expected and expected, name
        lexemes = db.session.execute(
            sa.text(f"SELECT tsvector_to_array({name}) FROM search_documents WHERE id = :i"),
            {"i": row.id},
        ).scalar_one()
        assert set(lexemes) == expected, name
    # a quote in a query word is a lexeme, never tsquery syntax
    assert services.search(None, "o'neil | 京剧 & !").total == 1


def test_rolled_back_publish_leaves_no_search_document(app, ctx, pg_only, people):
    author = db.session.get(User, people.teacher.id)
    obj = catalog.create_content(
        author, Resource, {"title": "围棋 定式", "kind": "document", "visibility": "region"}
    )
    content_id = obj.content_id
    catalog.submit_content(author, Resource, content_id)

    def fail_after_indexing(session):
        # runs after the search receivers (registered later): the document is written...
        indexed = session.execute(
            select(func.count())
            .select_from(SearchDocument)
            .where(SearchDocument.id == f"resource:{content_id}")
        ).scalar_one()
        assert indexed == 1
        raise RuntimeError("the publishing transaction fails after indexing")

    sa.event.listen(db.session, "before_commit", fail_after_indexing)
    try:
        with pytest.raises(RuntimeError):
            commit()
    finally:
        sa.event.remove(db.session, "before_commit", fail_after_indexing)
    db.session.rollback()
    # ...and rolled back with the publish: no row, no vocabulary, no hit
    assert db.session.get(SearchDocument, f"resource:{content_id}") is None
    assert (
        db.session.execute(
            select(func.count()).select_from(SearchTerm).where(SearchTerm.term == "围棋")
        ).scalar_one()
        == 0
    )
    assert services.search(None, "围棋").total == 0
    assert services.check_index().ok
    # the same publish committed is found at once, by another connection too
    publish(people.teacher, Resource, title="围棋 定式", kind="document")
    with db.engine.connect() as other:
        assert (
            other.execute(
                sa.text("SELECT count(*) FROM search_documents WHERE title_zh @@ '围棋'::tsquery")
            ).scalar_one()
            == 1
        )
    assert services.search(None, "weiqi").total == 1


def test_vocabulary_counts_follow_updates_and_deletes(ctx, pg_only, people):
    backend = services.get_backend()
    first = publish(people.teacher, Resource, title="天文 星空", kind="document")
    publish(people.teacher, Resource, title="天文 望远镜", kind="document")
    assert backend.doc_frequency("title_zh", "天文") == 2
    teacher = db.session.get(User, people.teacher.id)
    catalog.update_content(teacher, Resource, first, {"title": "围棋 星空"})
    catalog.submit_content(teacher, Resource, first)
    commit()
    assert backend.doc_frequency("title_zh", "天文") == 1
    assert backend.doc_frequency("title_zh", "围棋") == 1
    catalog.delete_content(db.session.get(User, people.teacher.id), Resource, first)
    commit()
    assert backend.doc_frequency("title_zh", "围棋") == 0
    assert backend.doc_frequency("title_zh", "星空") == 0
    # what is left equals a rebuild from scratch
    before = sorted(
        db.session.execute(
            select(SearchTerm.field, SearchTerm.term, SearchTerm.df, SearchTerm.freq)
        ).all()
    )
    services.reindex()
    after = sorted(
        db.session.execute(
            select(SearchTerm.field, SearchTerm.term, SearchTerm.df, SearchTerm.freq)
        ).all()
    )
    assert before == after and backend.count() == 1


def test_one_search_is_few_statements_and_leaves_settings_alone(app, ctx, pg_only, people):
    """PostgreSQL: a search reads its term statistics in one statement and count, facets
    and page in one (plus the setting put back around it), whatever the number of
    words or hits; the planner setting it changes is restored for the rest of the
    transaction."""
    from tests.catalog.test_queries import count_statements

    _more_content(people)
    for n in range(3):
        publish(people.teacher, Resource, title=f"京剧 第{n}课", kind="video", grades=["g7"])
    db.session.commit()
    counts = []
    for q in ("京剧", "京剧 脸谱 绘画", "jingju"):
        with count_statements(app) as statements:
            result = services.search(None, q)
        assert result.total >= 1
        counts.append(len(statements))
        assert db.session.execute(sa.text("SHOW enable_seqscan")).scalar_one() == "on"
        db.session.rollback()
    # term statistics, planner setting off, count + facets + page, setting back, and the
    # district facet's names (app.search.services.facets.district_labels)
    assert counts == [5, 5, 5], counts
