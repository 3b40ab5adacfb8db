"""Search behaviour: analysis, highlights, visibility per role, index upkeep, bad input."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from markupsafe import Markup

from app.catalog import services as catalog
from app.catalog.models import Course, Resource
from app.common.events import commit
from app.extensions import db
from app.search import services
from app.search.highlight import MatchTerms, highlight
from app.search.whoosh_backend import WhooshBackend, fingerprint
from tests.search.helpers import publish

# --- analysis and highlighting (no database) -----------------------------------------


def test_highlight_marks_longest_word_at_true_offsets():
    assert highlight("人教版七年级数学", MatchTerms(zh={"七年级", "年级"})) == Markup(
        "人教版<mark>七年级</mark>数学"
    )
    # a repeated word is marked where each occurrence is, not where the first one is
    assert highlight("京剧与京剧", MatchTerms(zh={"京剧"})) == Markup(
        "<mark>京剧</mark>与<mark>京剧</mark>"
    )
    # pinyin and initials mark the Chinese word they were made from
    assert highlight("走进京剧", MatchTerms(py={"jingju"})) == Markup("走进<mark>京剧</mark>")
    assert highlight("走进京剧", MatchTerms(pyi={"jj"})) == Markup("走进<mark>京剧</mark>")
    # English is stemmed; the original word form is marked
    assert highlight("Adding fractions", MatchTerms(en={"fraction"})) == Markup(
        "Adding <mark>fractions</mark>"
    )


def test_highlight_escapes_everything_but_marks():
    out = highlight('<script>alert("京剧")</script>', MatchTerms(zh={"京剧"}))
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<mark>京剧</mark>" in out


def test_query_parsing_turns_facet_words_into_filters():
    parsed = services.parse_query("七年级 数学 视频 分数")
    assert parsed.filters == {"grade": ["g7"], "subject": ["math"], "kind": ["video"]}
    assert parsed.words == ["分数"]
    parsed = services.parse_query("grade 7 math videos fractions")
    assert parsed.filters == {"grade": ["g7"], "subject": ["math"], "kind": ["video"]}
    assert parsed.words == ["fractions"]


@pytest.mark.parametrize(
    "raw",
    [
        "title:京剧 AND (",
        '"unbalanced',
        "*",
        "京*",
        "a?c",
        "((((",
        "NOT OR AND",
        "\x00\x01",
        "~~~^2",
        "[a TO z]",
    ],
)
def test_query_syntax_is_never_interpreted(raw):
    parsed = services.parse_query(raw)
    for word in parsed.words:
        assert not set(word) & set('*?()[]"~^:\x00')


# --- with the index ------------------------------------------------------------------


def _counts(result, facet):
    return {fv.value: fv.count for fv in result.facets[facet]}


ROLES = [
    (None, {"region"}),
    ("student", {"region", "district", "school"}),
    ("colleague", {"region", "district"}),
    ("outsider", {"region"}),
    ("teacher", {"region", "district", "school", "private"}),
    ("district_admin", {"region", "district", "school", "private"}),
    ("platform_admin", {"region", "district", "school", "private"}),
]


def test_visibility_and_facet_counts_per_role(ctx, people, visibility_catalog):
    for who, visible in ROLES:
        _check_role(people, visibility_catalog, who, visible)


def _check_role(people, visibility_catalog, who, visible):
    user = getattr(people, who) if who else None
    result = services.search(user, "京剧")
    assert result.total == len(visible)
    assert {h.content_id for h in result.items} == {visibility_catalog[v] for v in visible}
    grades = {"region": ["g7"], "district": ["g7", "g8"], "school": ["g8"], "private": ["g9"]}
    expected: dict[str, int] = {}
    for v in visible:
        for g in grades[v]:
            expected[g] = expected.get(g, 0) + 1
    assert _counts(result, "grade") == expected  # multi-valued: one resource counts in two grades
    assert _counts(result, "kind") == {"video": len(visible)}
    # browsing (empty query) obeys the same rules
    assert services.search(user, "").total == len(visible)
    # a filter narrows inside the visible set
    narrowed = services.search(user, "京剧", filters={"grade": "g8"})
    assert narrowed.total == expected.get("g8", 0)


def test_api_counts_per_role(client, people, visibility_catalog, search_api):
    body = search_api(None, q="jingju").json
    assert body["total"] == 1 and body["facets"]["grade"] == [
        {"value": "g7", "label": "七年级", "count": 1, "selected": False}
    ]
    body = search_api(people.student, q="jingju").json
    assert body["total"] == 3
    assert {f["value"]: f["count"] for f in body["facets"]["grade"]} == {"g7": 2, "g8": 2}
    assert "<mark>京剧</mark>" in body["items"][0]["title_html"]


def test_index_follows_publish_archive_delete(ctx, make_user):
    people = SimpleNamespace(teacher=make_user("teacher"))
    content_id = publish(people.teacher, Resource, title="茶艺基础", kind="document")
    assert services.search(None, "茶艺").total == 1
    catalog.archive_content(
        db.session.get(type(people.teacher), people.teacher.id), Resource, content_id
    )
    commit()
    assert services.search(None, "茶艺").total == 0
    catalog.restore_content(
        db.session.get(type(people.teacher), people.teacher.id), Resource, content_id
    )
    commit()
    assert services.search(None, "chayi").total == 1
    # a new version replaces the old text
    teacher = db.session.get(type(people.teacher), people.teacher.id)
    catalog.update_content(teacher, Resource, content_id, {"title": "围棋入门"})
    commit()
    assert services.search(None, "茶艺").total == 1  # the draft is not published yet
    catalog.submit_content(teacher, Resource, content_id)
    commit()
    assert services.search(None, "茶艺").total == 0 and services.search(None, "围棋").total == 1
    catalog.delete_content(teacher, Resource, content_id)
    commit()
    assert services.search(None, "围棋").total == 0


def test_check_and_reindex_repair_drift(ctx, make_user):
    people = SimpleNamespace(teacher=make_user("teacher"))
    keep = publish(people.teacher, Resource, title="天文观测 星空", kind="document")
    course = publish(people.teacher, Course, title="书法入门", category="calligraphy")
    backend = services.get_backend()
    # simulate a crash between commit and indexing, and a stale and an extra document
    backend.delete([f"course:{course}"])
    stale = services.document_for(
        db.session.execute(db.select(Resource).filter_by(content_id=keep)).scalar_one()
    )
    stale["title"] = "过时的标题"
    stale["fingerprint"] = fingerprint(stale)
    backend.upsert([stale])
    extra = dict(stale, id="resource:gone", content_id="gone")
    backend.upsert([extra])
    report = services.check_index()
    assert report.missing == [f"course:{course}"]
    assert report.stale == [f"resource:{keep}"]
    assert report.extra == ["resource:gone"]
    assert services.check_index(repair=True).repaired
    assert services.check_index().ok
    assert services.search(None, "书法").total == 1 and services.search(None, "过时").total == 0
    # a full rebuild (Whoosh: into a new folder) gives the same answers
    before = backend._current_name() if isinstance(backend, WhooshBackend) else None
    assert services.reindex() == 2
    if isinstance(backend, WhooshBackend):
        assert backend._current_name() != before
    assert backend.count() == 2
    assert services.search(None, "天文").total == 1


def test_cli_reindex_and_check(app, make_user):
    people = SimpleNamespace(teacher=make_user("teacher"))
    publish(people.teacher, Resource, title="剪纸艺术", kind="image")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert "Indexed 1 documents" in result.output
    result = runner.invoke(args=["search", "check"])
    assert result.exit_code == 0 and "matches the database" in result.output
    services.get_backend().delete([services.search(None, "剪纸").items[0].type + ":x"])
    services.get_backend().clear()
    result = runner.invoke(args=["search", "check"])
    assert result.exit_code == 1 and "missing: 1" in result.output
    result = runner.invoke(args=["search", "check", "--repair"])
    assert result.exit_code == 0 and "Repaired" in result.output
    assert services.search(None, "剪纸").total == 1


def test_sorting_and_paging(ctx, make_user):
    people = SimpleNamespace(teacher=make_user("teacher"))
    ids = []
    for i, usage in enumerate((5, 50, 0)):
        ids.append(publish(people.teacher, Resource, title=f"围棋 第{i + 1}课", kind="document"))
        row = db.session.execute(db.select(Resource).filter_by(content_id=ids[-1])).scalar_one()
        row.usage_count = usage
        db.session.commit()
        services.index_content("resource", ids[-1])
    newest = services.search(None, "围棋", sort="newest")
    assert [h.content_id for h in newest.items] == ids[::-1]
    popular = services.search(None, "围棋", sort="popular")
    assert [h.content_id for h in popular.items] == [ids[1], ids[0], ids[2]]
    page2 = services.search(None, "围棋", sort="newest", page=2, per_page=2)
    assert [h.content_id for h in page2.items] == [ids[0]] and page2.total == 3
    far = services.search(None, "围棋", page=services.MAX_PAGE)
    assert far.items == [] and far.total == 3


def test_did_you_mean_and_correction(ctx, make_user):
    people = SimpleNamespace(teacher=make_user("teacher"))
    publish(
        people.teacher,
        Resource,
        title="Adding fractions",
        summary="Fractions with unlike denominators",
        language="en",
    )
    publish(people.teacher, Course, title="京剧脸谱", category="opera")
    english = services.search(None, "fractoins")
    assert english.did_you_mean == "fractions" and english.corrected and english.total == 1
    chinese = services.search(None, "京居")
    assert chinese.did_you_mean == "京剧" and chinese.corrected and chinese.total == 1
    assert services.search(None, "京剧").did_you_mean is None


BAD_QUERIES = [
    "x" * 10_000,
    "京剧" * 5_000,
    "title:(京剧 OR",
    '"unbalanced quote',
    "*",
    "**??",
    "a*",
    "NOT",
    "\x00",
    "🙂🙂🙂",
    "-",
]


def test_bad_queries_never_fail(client, make_user, search_api):
    publish(make_user("teacher"), Resource, title="京剧 a", kind="video")
    for q in BAD_QUERIES:
        _check_bad_query(client, search_api, q)


def _check_bad_query(client, search_api, q):
    response = search_api(None, q=q)
    if len(q) > services.MAX_QUERY_CHARS * 5:
        assert response.status_code == 422 and response.json["error"]["code"] == "validation_error"
    else:
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        assert response.json["total"] <= 1
    # the page truncates instead of refusing
    page = client.get("/search", query_string={"q": q})
    assert page.status_code == 200


@pytest.mark.parametrize(
    "params, field",
    [
        ({"colour": "red"}, "colour"),
        ({"grade": "g99"}, "grade"),
        ({"sort": "random"}, "sort"),
        ({"page": 10_000}, "page"),
        ({"page": 0}, "page"),
        ({"per_page": 1000}, "per_page"),
        ({"facets": "nonsense"}, "facets"),
        ({"district": "abc"}, "district"),
    ],
)
def test_bad_parameters_are_422(app, client, search_api, params, field):
    response = search_api(None, q="京剧", **params)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert field in str(error["fields"])


def test_service_rejects_unknown_facets(ctx):
    from app.errors import Invalid

    with pytest.raises(Invalid) as info:
        services.search(None, "x", filters={"colour": "red"})
    assert "colour" in info.value.fields


def test_results_page(client, make_user):
    people = SimpleNamespace(teacher=make_user("teacher"))
    publish(
        people.teacher,
        Resource,
        title="京剧<b>脸谱</b>",
        summary="看看",
        kind="video",
        grades=["g7"],
        subject="music",
    )
    page = client.get("/search", query_string={"q": "jingju"}).get_data(as_text=True)
    assert "<mark>京剧</mark>&lt;b&gt;脸谱&lt;/b&gt;" in page
    assert "七年级" in page and "(1)" in page  # a grade facet with its count
    assert "grade=g7" in page  # link narrowing to it
    empty = client.get("/search")
    assert empty.status_code == 200
    assert client.get("/search", query_string={"page": "x"}).status_code == 422
    assert client.get("/search", query_string={"q": "京剧", "page": 10_000}).status_code == 422


def test_openapi_documents_search(client):
    spec = client.get("/api/v1/openapi.json").json
    operation = spec["paths"]["/api/v1/search"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"q", "sort", "page", "per_page", "grade", "subject", "kind"} <= names


def test_curriculum_words_follow_alignments(ctx, orgs, make_user):
    """A resource is found by the lesson it is aligned to (and the unit around it), and
    no longer once the alignment is removed: both arrive through ``alignment_changed``."""
    from sqlalchemy import select

    from app.curriculum import case
    from app.curriculum import services as curriculum
    from app.curriculum.models import Level, Node
    from tests.curriculum.conftest import demo_package

    case.import_package(demo_package(), district_id=orgs.district.id)
    commit()
    lesson = db.session.execute(
        select(Node).where(Node.code == "1.2.2", Node.level == Level.LESSON)
    ).scalar_one()
    teacher = make_user("teacher")
    content_id = publish(teacher, title="课堂练习卡片", summary="每节课五道题")
    assert services.search(None, "数轴").total == 0

    alignment = curriculum.align(teacher, lesson.id, "resource", content_id)
    commit()
    terms = services.alignment_terms(content_id)
    assert lesson.title in terms and "第一章 有理数" in terms
    found = services.search(None, "数轴")
    assert [hit.content_id for hit in found.items] == [content_id]
    assert services.search(None, "有理数").total == 1  # the unit's title

    curriculum.unalign(teacher, alignment.id)
    commit()
    assert services.search(None, "数轴").total == 0


def test_blockwise_segmentation_equals_jieba():
    """Segmenting jieba block by block (memoised) gives jieba's own tokens and offsets,
    and highlighting only the blocks containing a term marks the same spans."""
    from app.search import analysis

    texts = [
        "人教版 七年级 数学 分数的加法教案，京剧脸谱与马克思主义。Adding fractions 2.5% c++",
        "㐀㐁 京剧！！京剧 \r\n 一元一次方程（二）_test-word #tag 古筝",
        "",
    ]
    for text in texts:
        for mode in ("search", "default"):
            expected = tuple(analysis.segmenter().tokenize(text, mode=mode))
            assert analysis.segments(text, mode) == expected
    terms = MatchTerms(zh={"京剧", "七年级", "方程", "c++"})
    for text in texts:
        old = sorted(
            (t.startchar, t.endchar)
            for t in analysis.ChineseTokenizer(search_mode=True)(text, chars=True)
            if t.text in terms.zh
        )
        new = sorted(
            (start, end)
            for word, start, end in analysis.segments_containing(text, terms.zh)
            if word.strip()
            and analysis.keep_word(word.strip())
            and word.strip().lower() in terms.zh
        )
        assert new == old
