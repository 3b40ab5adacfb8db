"""Malformed and hostile requests: always a 4xx with the error envelope, never a 500,
and nothing stored changes."""

from __future__ import annotations

from sqlalchemy import func, select

from app.catalog.models import Course, Resource, Tag
from app.extensions import db
from tests.catalog.helpers import assert_error, content_data, make_content, snapshot

GOOD_COURSE = {"title": "围棋", "kind": "extended", "category": "go"}

BAD_COURSE_BODIES = [
    ({**GOOD_COURSE, "bogus": 1}, "bogus"),
    ({**GOOD_COURSE, "title": 123}, "title"),
    ({**GOOD_COURSE, "title": ["a"]}, "title"),
    ({**GOOD_COURSE, "title": ""}, "title"),
    ({**GOOD_COURSE, "title": "   "}, "title"),
    ({**GOOD_COURSE, "title": "长" * 201}, "title"),
    ({**GOOD_COURSE, "title": "a\x00b"}, "title"),
    ({**GOOD_COURSE, "summary": "x" * 501}, "summary"),
    ({**GOOD_COURSE, "description_html": "x" * 100_001}, "description_html"),
    ({**GOOD_COURSE, "kind": "lecture"}, "kind"),
    ({**GOOD_COURSE, "visibility": "world"}, "visibility"),
    ({**GOOD_COURSE, "licence": "GPL"}, "licence"),
    ({**GOOD_COURSE, "category": "cooking"}, "category"),
    ({**GOOD_COURSE, "grade": "g13"}, "grade"),
    ({**GOOD_COURSE, "language": "fr"}, "language"),
    ({**GOOD_COURSE, "capacity": 0}, "capacity"),
    ({**GOOD_COURSE, "capacity": "many"}, "capacity"),
    ({**GOOD_COURSE, "capacity": 1.5}, "capacity"),
    ({**GOOD_COURSE, "capacity": True}, "capacity"),
    ({**GOOD_COURSE, "capacity": 10**20}, "capacity"),
    ({**GOOD_COURSE, "enrolment_open": "perhaps"}, "enrolment_open"),
    ({**GOOD_COURSE, "cover_url": "javascript:alert(1)"}, "cover_url"),
    ({**GOOD_COURSE, "tags": "tea"}, "tags"),
    ({**GOOD_COURSE, "tags": ["t"] * 21}, "tags"),
    ({**GOOD_COURSE, "tags": ["x" * 51]}, "tags"),
    ({**GOOD_COURSE, "translations": {"fr": {"title": "x"}}}, "translations"),
    ({**GOOD_COURSE, "translations": {"en": {"title": "x", "bogus": 1}}}, "translations"),
    ({**GOOD_COURSE, "sessions": {"starts_at": "2026-01-01T10:00:00"}}, "sessions"),
    ({**GOOD_COURSE, "sessions": [{"starts_at": "2026-01-01T10:00:00"}]}, "sessions"),
    (
        {
            **GOOD_COURSE,
            "sessions": [{"starts_at": "2026-01-01T10:00:00", "ends_at": "2026-01-01T09:00:00"}],
        },
        "sessions",
    ),
    (
        {**GOOD_COURSE, "sessions": [{"starts_at": "yesterday", "ends_at": "2026-01-01T09:00:00"}]},
        "sessions",
    ),
    (
        {
            **GOOD_COURSE,
            "sessions": [
                {"starts_at": "2026-01-01T10:00:00+08:00", "ends_at": "2026-01-01T12:00:00+08:00"}
            ],
        },
        "sessions",
    ),
    ({**GOOD_COURSE, "sections": [{"items": []}]}, "sections"),
    (
        {**GOOD_COURSE, "sections": [{"title": "s", "items": [{"resource_id": "short"}]}]},
        "sections",
    ),
    (
        {**GOOD_COURSE, "sections": [{"title": "s", "items": [{"resource_id": "0" * 36}]}]},
        "sections",
    ),
    ({"kind": "extended"}, "title"),
    ({"title": "x"}, "kind"),
]


def _stored_counts():
    db.session.expire_all()
    return tuple(
        db.session.execute(select(func.count()).select_from(m)).scalar_one()
        for m in (Course, Resource, Tag)
    )


def test_bad_course_bodies_are_refused_and_store_nothing(api, people):
    before = _stored_counts()
    for body, field in BAD_COURSE_BODIES:
        error = assert_error(
            api.post("/api/v1/courses", people.owner, json=body), 422, "validation_error"
        )
        assert field in error["fields"], (body, error)
        assert _stored_counts() == before, body


BAD_RESOURCE_BODIES = [
    ({"kind": "podcast"}, "kind"),
    ({"grades": ["g1", "g99"]}, "grades"),
    ({"url": "ftp://example.org/x"}, "url"),
    ({"url": "https://" + "a" * 2000 + ".org"}, "url"),
    ({"data": [1, 2]}, "data"),
    ({"data": {"questions": float("nan")}}, "data"),
    ({"data": {"q": "a\x00"}}, "data"),
    ({"data": {"big": "x" * 200_001}}, "data"),
]


def test_bad_resource_bodies(api, people):
    import json

    before = _stored_counts()
    for body, field in BAD_RESOURCE_BODIES:
        payload = {**content_data(Resource), **body}
        # NaN is not JSON: send it the way a careless client would.
        raw = json.dumps(payload, allow_nan=True)
        response = api.post(
            "/api/v1/resources", people.owner, data=raw, content_type="application/json"
        )
        error = assert_error(response, 422)
        assert field in error["fields"], (body, error)
        assert _stored_counts() == before


def test_rejected_patches_leave_the_published_version_alone(api, people):
    cid = make_content(people.owner, Course, "published", tags=["围棋"])
    before = snapshot(Course, cid)
    base = f"/api/v1/courses/{cid}"
    for body, _field in BAD_COURSE_BODIES[:-2]:
        assert_error(api.patch(base, people.owner, json=body), 422)
    assert_error(api.patch(base, people.owner, json={}), 422)
    assert_error(api.patch(base, people.owner, json={"kind": "curriculum"}), 422)  # kind is fixed
    assert_error(
        api.patch(base, people.owner, data="{not json", content_type="application/json"), 400
    )
    assert_error(
        api.patch(
            base, people.owner, data="title=x", content_type="application/x-www-form-urlencoded"
        ),
        415,
    )
    assert_error(
        api.patch(base, people.owner, data='{"title": "x"}', content_type="text/plain"), 415
    )
    assert_error(api.patch(base, people.owner, json=["title"]), 422)
    assert_error(api.patch(base, people.owner, json="title"), 422)
    assert snapshot(Course, cid) == before


def test_bad_json_and_content_types_on_create(api, people):
    before = _stored_counts()
    url = "/api/v1/courses"
    assert_error(api.post(url, people.owner, data="{", content_type="application/json"), 400)
    assert_error(
        api.post(url, people.owner, data=b"\xff\xfe", content_type="application/json"), 400
    )
    assert_error(api.post(url, people.owner, data="title=x&kind=extended"), 415)
    assert_error(api.post(url, people.owner, data="<course/>", content_type="application/xml"), 415)
    assert_error(api.post(url, people.owner), 422)  # no body at all: fields are missing
    assert_error(api.post(url, people.owner, json=None), 422)
    assert _stored_counts() == before


def test_rich_text_is_sanitised(api, people):
    hostile = (
        '<p onclick="steal()">好<script>alert(1)</script></p>'
        '<img src="x.png" onerror="alert(2)"><a href="javascript:alert(3)">link</a>'
        '<iframe src="https://evil.example"></iframe><style>body{}</style>'
    )
    created = api.post(
        "/api/v1/courses",
        people.owner,
        json={
            **GOOD_COURSE,
            "description_html": hostile,
            "translations": {"en": {"description_html": hostile}},
        },
    )
    assert created.status_code == 201, created.json
    stored = db.session.get(Course, created.json["row_id"])
    for html in (stored.description_html, stored.translations["en"]["description_html"]):
        lowered = html.lower()
        for bad in (
            "<script",
            "onclick",
            "onerror",
            "javascript:",
            "<iframe",
            "<style",
            "alert(1)",
        ):
            assert bad not in lowered, html
        assert "<p>好</p>" in html and 'src="x.png"' in html


BAD_QUERIES = [
    "page=0",
    "page=10001",
    "page=-1",
    "page=abc",
    "per_page=0",
    "per_page=1000",
    "sort=random",
    "sort=title;drop",
    "kind=lecture",
    "subject=alchemy",
    "grade=g13",
    "licence=GPL",
    "language=fr",
    "category=cooking",
    "edition=none",
    "district=abc",
    "district=0",
    "district=99999999999999999999",
    "school=-5",
    "q=%00",
    "q=" + "x" * 201,
    "tag=" + "x" * 51,
    "tag=a%00b",
]


def test_bad_list_queries(api):
    for query in BAD_QUERIES:
        for path in ("courses", "resources"):
            assert_error(api.get(f"/api/v1/{path}?{query}"), 422, "validation_error")


def test_good_list_queries_filter(api, people):
    make_content(people.owner, Course, "published", title="京剧", tags=["戏曲"], category="opera")
    make_content(people.owner, Course, "published", title="茶艺", category="tea", language="en")
    make_content(people.owner, Resource, "published", title="视频", grades=["g7"], subject="math")

    def titles(path, query):
        response = api.get(f"/api/v1/{path}?{query}")
        assert response.status_code == 200, response.json
        return sorted(item["title"] for item in response.json["items"])

    assert titles("courses", "") == ["京剧", "茶艺"]
    assert titles("courses", "tag=戏曲") == ["京剧"]
    assert titles("courses", "category=tea") == ["茶艺"]
    assert titles("courses", "language=en") == ["茶艺"]
    assert titles("courses", "q=京") == ["京剧"]
    assert titles("courses", "q=%25") == []  # LIKE wildcards are literal
    assert titles("courses", "sort=title&per_page=1&page=2") in (["京剧"], ["茶艺"])
    assert titles("resources", "grade=g7&subject=math") == ["视频"]
    assert titles("resources", "grade=g8") == []
    assert titles("courses", f"district={people.owner.district_id}") == ["京剧", "茶艺"]
    assert titles("courses", "page=10000") == []
    assert titles("courses", "utm_source=x") == ["京剧", "茶艺"]  # unknown query keys are ignored
    page = api.get("/api/v1/courses?per_page=1").json
    assert (page["total"], page["pages"], page["page"], page["per_page"]) == (2, 2, 1, 1)


UNKNOWN = [
    ("GET", "/api/v1/nope"),
    ("GET", "/api/v1/courses/not-a-real-id"),
    ("GET", "/api/v1/courses/" + "a" * 5000),
    ("GET", "/api/v1/courses/a%00b"),
    ("GET", "/api/v1/courses/a%00b/versions"),
    ("GET", "/api/v1/courses/a%00b/seats"),
    ("GET", "/api/v1/resources/%E4%BD%A0%E5%A5%BD"),
    ("POST", "/api/v1/courses/a%00b/submit"),
    ("DELETE", "/api/v1/courses/a%00b"),
    ("DELETE", "/api/v1/auth/tokens/99999999999999999999999"),
    ("PATCH", "/api/v1/districts/99999999999999999999999"),
]


def test_unknown_things_are_404(api, make_user):
    admin = make_user("platform_admin", password=None)
    for method, path in UNKNOWN:
        kwargs = {"json": {"requires_review": True}} if method == "PATCH" else {}
        assert_error(api(method, path, admin, **kwargs), 404, "not_found")


def test_method_not_allowed_uses_the_envelope(api):
    assert_error(api.delete("/api/v1/vocabularies"), 405, "method_not_allowed")
    assert_error(api.patch("/api/v1/courses"), 405, "method_not_allowed")
    assert_error(api.post("/api/v1/me"), 405)


def test_version_argument_is_checked(api, people):
    cid = make_content(people.owner, Course, "published")
    assert_error(api.get(f"/api/v1/courses/{cid}?version=" + "9" * 13), 422)
    assert_error(api.get(f"/api/v1/courses/{cid}?version=one"), 422)
    assert_error(api.get(f"/api/v1/courses/{cid}?version=99"), 404)


def test_openapi_document_and_local_docs(client):
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    paths = spec.json["paths"]
    for path in (
        "/api/v1/courses",
        "/api/v1/courses/{content_id}",
        "/api/v1/courses/{content_id}/submit",
        "/api/v1/courses/{content_id}/versions",
        "/api/v1/courses/{content_id}/enrolment",
        "/api/v1/resources",
        "/api/v1/resources/{content_id}/approve",
        "/api/v1/reviews",
        "/api/v1/auth/tokens",
        "/api/v1/auth/tokens/{token_id}",
        "/api/v1/me",
        "/api/v1/districts",
        "/api/v1/schools",
        "/api/v1/vocabularies",
    ):
        assert path in paths, path
    # PATCH bodies do not demand every field (all top-level fields are optional).
    schemas = spec.json["components"]["schemas"]
    update = next(v for k, v in schemas.items() if k.startswith("CourseUpdate"))
    assert not update.get("required")
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "//cdn" not in html and "unpkg" not in html
    import re

    assets = re.findall(r'(?:src|href)="(/api/docs/assets/[^"]+)"', html)
    assert assets, html
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and len(response.data) > 1000, asset
