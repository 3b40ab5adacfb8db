"""Cached catalog pages and counts (app/common/cache.py, app/catalog/receivers.py):
never stale after a publish or an archive, never an anonymous page for a logged-in user,
the fast list JSON equal to the schemas' dump, few statements, and no failure when the
cache's Redis is down."""

from __future__ import annotations

import pytest
from flask_babel import force_locale

from app.catalog import schemas, services
from app.catalog.models import Course, Resource
from app.common import cache as cache_module
from app.common.events import commit
from app.extensions import db
from tests.catalog.helpers import fresh, make_content
from tests.catalog.test_queries import count_statements
from tests.conftest import make_app, redis_cached_apps


def titles(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return [item["title"] for item in response.json["items"]]


@pytest.mark.parametrize("path", ["courses", "resources"])
def test_a_publish_or_archive_shows_at_once_in_the_anonymous_list(api, orgs, make_user, path):
    model = Course if path == "courses" else Resource
    teacher = make_user("teacher", school=orgs.school, password=None)
    make_content(teacher, model, "published", title="第一")
    assert titles(api.get(f"/api/v1/{path}")) == ["第一"]
    assert titles(api.get(f"/api/v1/{path}")) == ["第一"]  # now from the cache

    second = make_content(teacher, model, "published", title="第二")
    listed = api.get(f"/api/v1/{path}")
    assert titles(listed) == ["第二", "第一"] and listed.json["total"] == 2

    services.archive_content(fresh(teacher), model, second)
    commit()
    listed = api.get(f"/api/v1/{path}")
    assert titles(listed) == ["第一"] and listed.json["total"] == 1


def test_a_publish_through_the_api_shows_at_once_on_the_browse_page(client, api, orgs, make_user):
    teacher = make_user("teacher", school=orgs.school, password=None)
    make_content(teacher, Course, "published", title="旧课程")
    assert "旧课程" in client.get("/").get_data(as_text=True)
    assert "新课程" not in client.get("/").get_data(as_text=True)

    created = api.post(
        "/api/v1/courses",
        teacher,
        json={
            "title": "新课程",
            "kind": "extended",
            "category": "opera",
            "visibility": "region",
        },
    )
    assert created.status_code == 201
    assert "新课程" not in client.get("/").get_data(as_text=True)  # a draft is not listed
    submitted = api.post(f"/api/v1/courses/{created.json['id']}/submit", teacher)
    assert submitted.status_code == 200 and submitted.json["state"] == "published"
    assert "新课程" in client.get("/").get_data(as_text=True)

    assert api.post(f"/api/v1/courses/{created.json['id']}/archive", teacher).status_code == 200
    page = client.get("/").get_data(as_text=True)
    assert "新课程" not in page and "旧课程" in page


def test_a_logged_in_user_never_gets_the_anonymous_page(app, client, api, login, orgs, make_user):
    teacher = make_user("teacher", school=orgs.school)
    make_content(teacher, Course, "published", title="全区可见")
    make_content(teacher, Course, "published", title="本校可见", visibility="school")
    anonymous = client.get("/").get_data(as_text=True)
    assert "全区可见" in anonymous and "本校可见" not in anonymous
    assert client.get("/").get_data(as_text=True) == anonymous  # cached

    login(teacher)
    page = client.get("/").get_data(as_text=True)
    assert "本校可见" in page and teacher.name in page and 'name="csrf_token"' in page
    # And the API: a member of the school sees her school's course; anonymous does not.
    assert "本校可见" in titles(api.get("/api/v1/courses", teacher))
    assert "本校可见" not in titles(app.test_client().get("/api/v1/courses"))


def test_counts_of_logged_in_readers_follow_publishing(api, orgs, make_user):
    teacher = make_user("teacher", school=orgs.school, password=None)
    student = make_user("student", school=orgs.school, password=None)
    make_content(teacher, Course, "published", title="甲", visibility="school")
    assert api.get("/api/v1/courses", student).json["total"] == 1
    make_content(teacher, Course, "published", title="乙", visibility="school")
    assert api.get("/api/v1/courses", student).json["total"] == 2
    # A student of another school has her own count, not this one.
    other = make_user("student", school=orgs.other_school, password=None)
    assert api.get("/api/v1/courses", other).json["total"] == 0


def test_the_list_json_equals_the_documented_schema(app, api, orgs, make_user):
    teacher = make_user("teacher", school=orgs.school, password=None)
    make_content(
        teacher,
        Course,
        "published",
        title="京剧",
        tags=["戏曲", "入门"],
        translations={"en": {"title": "Peking opera", "summary": "Sing"}},
    )
    make_content(teacher, Resource, "published", title="视频", grades=["g7", "g8"], tags=["t"])
    for model, schema in (
        (Course, schemas.CoursePageSchema()),
        (Resource, schemas.ResourcePageSchema()),
    ):
        for locale in ("zh_CN", "en"):
            with app.test_request_context(), force_locale(locale):
                page = services.list_published(
                    fresh(teacher), model, services.CatalogFilters(), 1, 20
                )
                assert schemas.page_dict(page, locale) == schema.dump(page)
                # The API builds its pages from per-row cached summaries: the same JSON,
                # for the author and for anonymous readers (whose rows were cached first).
                for reader in (None, teacher):
                    path = f"/api/v1/{model.__tablename__}?lang={locale}"
                    for _ in range(2):  # built, then from the cache
                        answer = api.get(path, reader).json
                        assert answer == schema.dump(
                            services.list_published(
                                reader and fresh(teacher), model, services.CatalogFilters()
                            )
                        )
    english = api.get("/api/v1/courses?lang=en").json["items"][0]
    assert english["title"] == "Peking opera" and english["tags"] == ["入门", "戏曲"]


def test_list_statements(app, api, orgs, make_user):
    teacher = make_user("teacher", school=orgs.school, password=None)
    student = make_user("student", school=orgs.school, password=None)
    for i in range(3):
        make_content(teacher, Course, "published", title=f"课程{i}", tags=[f"t{i}"])
    api.get("/api/v1/me", student)  # the token's first use is written: keep it out
    api.get("/api/v1/courses")
    with count_statements(app) as statements:
        assert len(titles(api.get("/api/v1/courses"))) == 3
    assert statements == [], "an anonymous list is answered from the cache"

    def statements_for(path: str) -> list[str]:
        with count_statements(app) as statements:
            assert len(titles(api.get(path, student))) == 3
        return statements

    # Her token is read on every request (its lookup is cached only on Redis,
    # app/accounts/token_cache.py).  Her first list: token + user + roles in one,
    # whether she authored anything, her count, the page's ids; the rows' summaries were
    # cached by the anonymous list.
    first = statements_for("/api/v1/courses?per_page=5")
    assert len(first) == 4, "\n".join(s[:120] for s in first)
    # Another page of hers: the token and the page's ids (count and rows cached).
    other = statements_for("/api/v1/courses?per_page=4")
    assert len(other) == 2, "\n".join(s[:120] for s in other)
    # The same page again: only the token (a revoked token is refused at once).
    again = statements_for("/api/v1/courses?per_page=4")
    assert len(again) == 1, "\n".join(s[:120] for s in again)
    # After a publish no page is cached: token, authored, count, ids, the rows, their
    # authors, schools, districts and tags.
    make_content(teacher, Course, "published", title="课程3", tags=["t3"])
    api.headers(student)  # the test's own reload of her (expired by the commit)
    with count_statements(app) as statements:
        assert len(titles(api.get("/api/v1/courses", student))) == 4
    assert len(statements) == 9, "\n".join(s[:120] for s in statements)


def test_logged_in_lists_are_cached_per_visibility_and_follow_publishing(api, orgs, make_user):
    teacher = make_user("teacher", school=orgs.school, password=None)
    student = make_user("student", school=orgs.school, password=None)
    other = make_user("student", school=orgs.other_school, password=None)
    make_content(teacher, Course, "published", title="全区", visibility="region")
    make_content(teacher, Course, "published", title="本校", visibility="school")
    assert titles(api.get("/api/v1/courses", student)) == ["本校", "全区"]
    assert titles(api.get("/api/v1/courses", student)) == ["本校", "全区"]  # cached
    # Another school's student has her own entry: never the first one's page.
    assert titles(api.get("/api/v1/courses", other)) == ["全区"]
    assert titles(api.get("/api/v1/courses", student)) == ["本校", "全区"]

    second = make_content(teacher, Course, "published", title="新课", visibility="school")
    assert titles(api.get("/api/v1/courses", student)) == ["新课", "本校", "全区"]
    assert titles(api.get("/api/v1/courses", other)) == ["全区"]
    services.archive_content(fresh(teacher), Course, second)
    commit()
    listed = api.get("/api/v1/courses", student)
    assert titles(listed) == ["本校", "全区"] and listed.json["total"] == 2


def test_readers_who_authored_nothing_share_a_school_s_cached_page(app, api, orgs, make_user):
    teacher = make_user("teacher", school=orgs.school, password=None)
    first, second = (make_user("student", school=orgs.school, password=None) for _ in range(2))
    make_content(teacher, Course, "published", title="本校", visibility="school")
    make_content(teacher, Course, "published", title="私有", visibility="private")
    for user in (first, second):
        api.get("/api/v1/me", user)  # the token's first use is written: keep it out
    assert titles(api.get("/api/v1/courses", first)) == ["本校"]
    with count_statements(app) as statements:
        assert titles(api.get("/api/v1/courses", second)) == ["本校"]
    # Her token, and whether she authored anything; the page is the first student's.
    assert len(statements) == 2, "\n".join(s[:120] for s in statements)
    # The author has a key of her own: her private course is in her list only.
    assert titles(api.get("/api/v1/courses", teacher)) == ["私有", "本校"]
    assert titles(api.get("/api/v1/courses", second)) == ["本校"]


def test_a_revoked_token_is_refused_even_when_its_page_is_cached(api, orgs, make_user):
    from app.accounts import services as accounts
    from app.accounts.models import ApiToken

    teacher = make_user("teacher", school=orgs.school, password=None)
    student = make_user("student", school=orgs.school, password=None)
    make_content(teacher, Course, "published", title="本校", visibility="school")
    assert titles(api.get("/api/v1/courses", student)) == ["本校"]
    for token in db.session.query(ApiToken).filter_by(user_id=student.id):
        accounts.revoke_token(fresh(student), token.id)
    commit()
    refused = api.get("/api/v1/courses", student)
    assert refused.status_code == 401 and "items" not in (refused.json or {})


def test_a_cache_on_an_unreachable_redis_serves_from_the_database(
    database_url, tmp_path, caplog, monkeypatch
):
    monkeypatch.setattr(cache_module, "_last_warning", 0.0)  # its warning is once a minute
    broken = make_app(
        database_url,
        str(tmp_path),
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL="redis://127.0.0.1:1/3",
    )
    with broken.app_context():
        db.create_all()
    client = broken.test_client()
    first = client.get("/api/v1/courses")
    assert first.status_code == 200 and "total" in first.json
    assert client.get("/").status_code == 200
    assert "cache unavailable" in caplog.text


def test_facet_counts_follow_publishing(app, orgs, make_user):
    teacher = make_user("teacher", school=orgs.school, password=None)
    make_content(teacher, Course, "published", title="京剧", category="opera")

    def facets():
        with app.test_request_context():
            return services.facet_counts(None, Course, services.CatalogFilters(), "category")

    assert facets() == {"opera": 1}
    assert facets() == {"opera": 1}  # cached
    second = make_content(teacher, Course, "published", title="茶艺", category="opera")
    assert facets() == {"opera": 2}
    services.archive_content(fresh(teacher), Course, second)
    commit()
    assert facets() == {"opera": 1}


def test_remember_many_makes_only_what_is_missing_and_never_stores_none(app):
    made = []

    def produce(positions):
        made.append(positions)
        return [None if position == 2 else f"v{position}" for position in positions]

    parts = [("unit", n) for n in range(3)]
    with app.app_context():
        assert cache_module.remember_many("unit-test", parts, produce) == ["v0", "v1", None]
        assert cache_module.remember_many("unit-test", parts, produce) == ["v0", "v1", None]
        cache_module.bump("unit-test")
        cache_module.remember_many("unit-test", parts[:1], produce)
    assert made == [[0, 1, 2], [2], [0]]


def test_on_redis_a_publish_through_one_worker_shows_at_once_in_the_other(
    database_url, tmp_path, orgs, make_user
):
    """Two apps on one Redis stand for two workers: the generation a publish bumps is
    Redis's own counter (INCR), so the other worker's cached page is never read again.
    (Before this test, the bump on Redis raised AttributeError: Flask-Caching's ``Cache``
    has no ``inc``, only its backend does.)"""
    with redis_cached_apps(database_url, tmp_path) as (reader, writer):
        teacher = make_user("teacher", school=orgs.school, password=None)
        with writer.app_context():
            make_content(teacher, Course, "published", title="第一")
        client = reader.test_client()
        assert titles(client.get("/api/v1/courses")) == ["第一"]
        assert titles(client.get("/api/v1/courses")) == ["第一"]  # from Redis
        with writer.app_context():
            before = cache_module.generation("catalog")
            make_content(teacher, Course, "published", title="第二")
            assert cache_module.generation("catalog") > before
        assert titles(client.get("/api/v1/courses")) == ["第二", "第一"]


def test_on_redis_a_cached_read_is_one_round_trip_and_an_older_generation_a_miss(
    database_url, tmp_path
):
    """The scope's number and the entry come back in one MGET (they were two GETs, on every
    cached page, token-free API list and LTI registration read, and the framing origins of
    every response); an entry made before a bump, or stored late by a reader that read
    the old number, is never served."""
    with redis_cached_apps(database_url, tmp_path) as (first, second):
        made = []

        def produce(value):
            def make():
                made.append(value)
                return value

            return make

        with first.app_context():
            assert type(cache_module.cache.cache).__name__ == "RedisCache"
            commands = []
            client = cache_module.cache.cache._read_client
            original = client.execute_command

            def counting(*args, **kwargs):
                commands.append(args[0])
                return original(*args, **kwargs)

            client.execute_command = counting
            try:
                assert cache_module.remember("unit-scope", ("a",), produce("v1")) == "v1"
                commands.clear()
                assert cache_module.remember("unit-scope", ("a",), produce("nope")) == "v1"
                assert commands == ["MGET"]
            finally:
                client.execute_command = original
            number, _ = cache_module.scoped_read("unit-scope", [])
        with second.app_context():  # another worker: same entry, then a bump
            assert cache_module.remember("unit-scope", ("a",), produce("nope")) == "v1"
            cache_module.bump("unit-scope")
            assert cache_module.remember("unit-scope", ("a",), produce("v2")) == "v2"
        with first.app_context():
            # A reader that read the old number before the bump stores its value late.
            name = cache_module._entry_name("unit-scope", ("a",))
            cache_module.scoped_write(number, {name: "old"})
            assert cache_module.remember("unit-scope", ("a",), produce("v3")) == "v3"
            assert cache_module.remember("unit-scope", ("a",), produce("nope")) == "v3"
        assert made == ["v1", "v2", "v3"]


def test_a_picture_set_on_a_published_resource_shows_at_once(api, client, orgs, make_user):
    """The media feature's job sets a published resource's poster frame and length in
    place (no new version): cached lists and browse pages must show them at once."""
    teacher = make_user("teacher", school=orgs.school, password=None)
    content_id = make_content(teacher, Resource, "published", title="有封面")
    item = api.get("/api/v1/resources").json["items"][0]
    assert item["has_picture"] is False and item.get("duration_seconds") is None
    assert "card-duration" not in client.get("/resources").get_data(as_text=True)
    api.get("/api/v1/resources")  # cached

    row = services.content_rows(Resource, content_id)[-1]
    services.set_file_picture(row, "poster-id", 125)
    commit()
    item = api.get("/api/v1/resources").json["items"][0]
    assert item["has_picture"] is True and item["duration_seconds"] == 125
    assert "2:05" in client.get("/resources").get_data(as_text=True)
