"""The server-rendered pages, through the Flask test client on both databases."""

from __future__ import annotations

from sqlalchemy import func, select

from app.catalog.models import Course, CourseSession, Enrolment, Resource, State
from app.extensions import db
from tests.pages.conftest import field_errors


def course_form(**overrides) -> dict:
    data = {
        "kind": "extended",
        "title": "京剧入门",
        "summary": "学唱京剧选段",
        "description_html": "<p>京剧是国粹。</p>",
        "language": "zh",
        "licence": "CC-BY-4.0",
        "visibility": "region",
        "category": "opera",
        "capacity": "",
        "enrolment_open": "1",
        "tags": "京剧，戏曲",
        "title_en": "Peking Opera for beginners",
        "summary_en": "",
        "description_html_en": "",
        "subject": "",
        "grade": "",
        "edition": "",
    }
    data.update(overrides)
    return data


def resource_form(**overrides) -> dict:
    data = {
        "kind": "link",
        "title": "京剧脸谱",
        "summary": "脸谱的颜色",
        "description_html": "",
        "url": "https://example.org/lianpu",
        "subject": "art",
        "grades": ["g7", "g8"],
        "tags": "京剧",
        "licence": "CC-BY-SA-4.0",
        "language": "zh",
        "visibility": "region",
    }
    data.update(overrides)
    return data


def create(pc, kind: str, data: dict) -> str:
    response = pc.post(f"/me/{kind}/new", data, page=f"/me/{kind}/new")
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    location = response.headers["Location"]
    assert location.endswith("/edit")
    return location.split("/")[3]


def new_course(pc, **fields) -> str:
    """The content id of a course created through the editor page from
    ``course_form(**fields)``."""
    return create(pc, "courses", course_form(**fields))


def course_row(content_id: str) -> Course:
    return db.session.execute(select(Course).filter_by(content_id=content_id)).scalar_one()


def api_get(app, path: str, headers: dict):
    return app.test_client().get(path, headers=headers)


def result_count(html: str) -> int:
    """The number in the catalog's "N found" line (its wording may come from any catalogue)."""
    import re

    return int(re.search(r'id="result-count">\D*(\d+)', html).group(1))


def count(model) -> int:
    return db.session.execute(select(func.count(model.id))).scalar_one()


def editor(content_id: str, kind: str = "courses") -> str:
    return f"/me/{kind}/{content_id}/edit"


# --- language ---------------------------------------------------------------------------------


def test_default_language_is_chinese_and_switch_to_english(app, page_client):
    pc = page_client()
    html = pc.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert ">课程</a>" in html and ">资源</a>" in html and "登录" in html

    switched = pc.get("/lang/en?next=/resources")
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/resources")
    html = pc.get("/").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert ">Courses</a>" in html and ">Resources</a>" in html and "Log in" in html

    pc.get("/lang/zh_CN")
    assert ">课程</a>" in pc.get("/").get_data(as_text=True)
    assert ">Courses</a>" in pc.get("/?lang=en").get_data(as_text=True)


def test_language_switch_refuses_foreign_redirects(app, page_client):
    response = page_client().get("/lang/en?next=//evil.example/")
    assert response.headers["Location"] == "/"


def test_english_session_translates_flash_and_labels(app, page_client, make_user):
    teacher = make_user("teacher")
    pc = page_client(teacher)
    pc.get("/lang/en")
    html = pc.get("/me/courses/new").get_data(as_text=True)
    assert "New course" in html and "Extended course" in html and "Save draft" in html
    pc.get("/lang/zh_CN")
    html = pc.get("/me/courses/new").get_data(as_text=True)
    assert "新建课程" in html and "拓展课程" in html and "保存草稿" in html


# --- anonymous and foreign access ---------------------------------------------------------------


def test_anonymous_is_sent_to_login(app, page_client):
    pc = page_client()
    for path in (
        "/me/content",
        "/me/courses/new",
        "/me/resources/new",
        "/me/tokens",
        "/reviews",
        "/me/enrolments",
    ):
        response = pc.get(path)
        assert response.status_code == 302, path
        assert "/login?next=" in response.headers["Location"], path


def test_anonymous_post_is_refused_without_storing(app, page_client, orgs):
    response = page_client().post("/me/courses/new", course_form(), page="/login")
    assert response.status_code == 401
    assert count(Course) == 0


def test_student_cannot_open_the_authoring_pages(app, page_client, make_user):
    pc = page_client(make_user("student"))
    assert pc.get("/me/courses/new").status_code == 403
    response = pc.post("/me/courses/new", course_form(), page="/")
    assert response.status_code == 403
    assert "403" in response.get_data(as_text=True)
    assert count(Course) == 0


def test_someone_elses_course_edit_is_403_page(app, page_client, make_user, orgs):
    owner = make_user("teacher")
    other = make_user("teacher", school=orgs.school)
    owner_pc = page_client(owner)
    content_id = new_course(owner_pc, visibility="school")
    assert (
        owner_pc.post(f"/me/courses/{content_id}/submit", page=editor(content_id)).status_code
        == 302
    )

    pc = page_client(other)
    response = pc.get(editor(content_id))
    assert response.status_code == 403
    assert "不允许" in response.get_data(as_text=True) or "无权" in response.get_data(as_text=True)
    response = pc.post(editor(content_id), course_form(title="偷改"), page="/")
    assert response.status_code == 403
    for action in ("archive", "submit", "delete"):
        assert pc.post(f"/me/courses/{content_id}/{action}", page="/").status_code == 403
    assert (
        pc.post(f"/me/courses/{content_id}/sections", {"title": "x"}, page="/").status_code == 403
    )
    db.session.expire_all()
    titles = set(db.session.execute(select(Course.title)).scalars())
    assert titles == {"京剧入门"}
    assert db.session.execute(select(Course.state)).scalar_one() == State.PUBLISHED


def test_private_course_of_someone_else_is_404(app, page_client, make_user):
    owner = make_user("teacher")
    content_id = new_course(page_client(owner), visibility="private")
    response = page_client(make_user("teacher")).get(editor(content_id))
    assert response.status_code == 404


def test_missing_csrf_token_is_a_400_page_and_nothing_is_stored(app, pc):
    response = pc.post("/me/courses/new", course_form(), csrf=False)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "CSRF" in html and "<form" in html  # the normal page layout, not a bare error
    response = pc.post("/me/courses/new", {**course_form(), "csrf_token": "forged"}, csrf=False)
    assert response.status_code == 400
    assert count(Course) == 0


# --- forms with bad input -------------------------------------------------------------------------


def test_bad_course_form_is_422_with_field_errors_and_refilled(app, pc):
    bad = course_form(
        kind="spaceship",
        title="",
        capacity="lots",
        visibility="everyone",
        summary="摘" * 600,
        title_en="E" * 300,
        category="nope",
    )
    response = pc.post("/me/courses/new", bad, page="/me/courses/new")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    errors = field_errors(html)
    assert set(errors) >= {
        "kind",
        "title",
        "capacity",
        "visibility",
        "summary",
        "title_en",
        "category",
    }
    assert "请输入整数" in errors["capacity"]
    assert 'value="lots"' in html  # the form is filled in again
    assert "学唱京剧" not in html or "摘摘摘" in html
    assert count(Course) == 0


def test_bad_resource_form_is_422(app, pc):
    response = pc.post(
        "/me/resources/new",
        resource_form(url="javascript:alert(1)", grades=["g99"], licence="MIT"),
        page="/me/resources/new",
    )
    assert response.status_code == 422
    errors = field_errors(response.get_data(as_text=True))
    assert {"url", "grades", "licence"} <= set(errors)
    assert count(Resource) == 0


def test_rich_text_is_sanitised(app, pc):
    content_id = new_course(
        pc,
        description_html='<p onclick="steal()">好课<script>alert(1)</script></p>',
        description_html_en="<img src=x onerror=alert(1)>",
    )
    course = course_row(content_id)
    assert "<script" not in course.description_html and "onclick" not in course.description_html
    assert "好课" in course.description_html
    assert "onerror" not in course.translations["en"]["description_html"]
    assert "<script>alert(1)" not in pc.get(f"/courses/{content_id}").get_data(as_text=True)


def test_bad_session_and_section_input_is_422_and_changes_nothing(app, pc):
    content_id = new_course(pc)
    page = editor(content_id)
    response = pc.post(
        f"/me/courses/{content_id}/sessions",
        {"date": "2026-13-45", "start": "25:00", "end": "", "place": "", "online_url": ""},
        page=page,
    )
    assert response.status_code == 422
    errors = field_errors(response.get_data(as_text=True))
    assert {"session-date", "session-start", "session-end", "session-place"} <= set(errors)

    response = pc.post(
        f"/me/courses/{content_id}/sessions",
        {"date": "2026-09-01", "start": "16:00", "end": "15:00", "place": "教室"},
        page=page,
    )
    assert response.status_code == 422
    assert "session-end" in field_errors(response.get_data(as_text=True))

    response = pc.post(
        f"/me/courses/{content_id}/sessions",
        {"date": "2026-09-01", "start": "15:00", "end": "16:00", "online_url": "ftp://x"},
        page=page,
    )
    assert response.status_code == 422
    assert "session-online_url" in field_errors(response.get_data(as_text=True))
    assert count(CourseSession) == 0

    response = pc.post(f"/me/courses/{content_id}/sections", {"title": "  "}, page=page)
    assert response.status_code == 422
    assert "new-section-title" in field_errors(response.get_data(as_text=True))
    response = pc.post(f"/me/courses/{content_id}/sections", {"title": "x" * 201}, page=page)
    assert response.status_code == 422

    assert (
        pc.post(
            f"/me/courses/{content_id}/sections/0/rename", {"title": "x"}, page=page
        ).status_code
        == 404
    )
    assert pc.post(f"/me/courses/{content_id}/sessions/3/delete", page=page).status_code == 404
    assert pc.post(f"/me/courses/{content_id}/fly", page=page).status_code == 404
    assert pc.get(f"/me/spaceships/{content_id}/edit").status_code == 404
    course = course_row(content_id)
    assert course.sections == [] and course.sessions == []


def test_item_must_be_a_visible_resource(app, page_client, make_user):
    owner = make_user("teacher")
    stranger = make_user("teacher")
    sc = page_client(stranger)
    secret = create(sc, "resources", resource_form(visibility="private"))
    shared = create(sc, "resources", resource_form(title="天文望远镜"))
    sc.post(f"/me/resources/{shared}/submit", page=editor(shared, "resources"))
    pc = page_client(owner)
    content_id = new_course(pc)
    pc.post(f"/me/courses/{content_id}/sections", {"title": "第一讲"}, page=editor(content_id))
    html = pc.get(editor(content_id)).get_data(as_text=True)
    assert "天文望远镜" in html and secret not in html  # the picker offers what she may see
    assert "天文望远镜" in pc.get(editor(content_id) + "?resource_q=望远镜").get_data(as_text=True)
    assert "天文望远镜" not in pc.get(editor(content_id) + "?resource_q=京剧").get_data(
        as_text=True
    )
    for resource_id in ("", "not-a-uuid", secret):
        response = pc.post(
            f"/me/courses/{content_id}/sections/0/items",
            {"resource_id": resource_id},
            page=editor(content_id),
        )
        assert response.status_code == 422, resource_id
        assert "item-0-resource_id" in field_errors(response.get_data(as_text=True))
    course = course_row(content_id)
    assert course.sections[0].items == []


# --- the teacher's whole flow ---------------------------------------------------------------------


def test_teacher_builds_and_publishes_a_course_through_the_pages(app, page_client, make_user):
    teacher = make_user("teacher")
    pc = page_client(teacher)
    resource_id = create(pc, "resources", resource_form())
    assert (
        pc.post(
            f"/me/resources/{resource_id}/submit", page=editor(resource_id, "resources")
        ).status_code
        == 302
    )

    content_id = new_course(pc, capacity="20")
    page = editor(content_id)
    html = pc.get(page).get_data(as_text=True)
    assert "京剧入门" in html and "添加章节" in html

    for day in ("2026-09-08", "2026-09-01"):
        response = pc.post(
            f"/me/courses/{content_id}/sessions",
            {"date": day, "start": "15:30", "end": "16:30", "place": "音乐教室"},
            page=page,
        )
        assert response.status_code == 302
    pc.post(f"/me/courses/{content_id}/sessions/1/delete", page=page)
    for title in ("唱腔", "身段"):
        assert (
            pc.post(f"/me/courses/{content_id}/sections", {"title": title}, page=page).status_code
            == 302
        )
    assert (
        pc.post(
            f"/me/courses/{content_id}/sections/1/move", {"direction": "up"}, page=page
        ).status_code
        == 302
    )
    assert (
        pc.post(
            f"/me/courses/{content_id}/sections/0/rename", {"title": "身段基础"}, page=page
        ).status_code
        == 302
    )
    assert "京剧脸谱" in pc.get(page).get_data(as_text=True)  # offered in the item picker
    response = pc.post(
        f"/me/courses/{content_id}/sections/0/items",
        {"resource_id": resource_id, "title": ""},
        page=page,
    )
    assert response.status_code == 302
    pc.post(f"/me/courses/{content_id}/sections/1/delete", page=page)

    response = pc.post(f"/me/courses/{content_id}/submit", page=page)
    assert response.status_code == 302
    assert "已发布为第 1 版" in pc.get(response.headers["Location"]).get_data(as_text=True)

    course = course_row(content_id)
    assert course.state == State.PUBLISHED
    assert [s.starts_at.day for s in course.sessions] == [1]
    assert [s.title for s in course.sections] == ["身段基础"]
    assert [i.resource_content_id for i in course.sections[0].items] == [resource_id]
    assert {t.name for t in course.tags} == {"京剧", "戏曲"}
    assert course.translations == {"en": {"title": "Peking Opera for beginners"}}

    catalog = page_client().get("/?category=opera").get_data(as_text=True)
    assert "京剧入门" in catalog and result_count(catalog) == 1
    detail = page_client().get(f"/courses/{content_id}").get_data(as_text=True)
    assert "京剧脸谱" in detail and "音乐教室" in detail and "第 1 版" in detail
    english = page_client().get(f"/courses/{content_id}?lang=en").get_data(as_text=True)
    assert "Peking Opera for beginners" in english and "Version 1" in english


def test_editing_a_published_course_makes_a_draft_of_the_next_version(app, page_client, pc):
    content_id = new_course(pc)
    pc.post(f"/me/courses/{content_id}/submit", page=editor(content_id))
    response = pc.post(
        editor(content_id), course_form(title="京剧入门（第二版）"), page=editor(content_id)
    )
    assert response.status_code == 302
    html = pc.get(editor(content_id)).get_data(as_text=True)
    assert "第 2 版的草稿" in html and "放弃草稿" in html and "版本历史" in html
    assert "京剧入门" in page_client().get("/").get_data(as_text=True)
    reader = page_client().get(f"/courses/{content_id}").get_data(as_text=True)
    assert "京剧入门（第二版）" not in reader and "第 1 版" in reader

    pc.post(f"/me/courses/{content_id}/discard", page=editor(content_id))
    assert [
        r.state
        for r in db.session.execute(select(Course).filter_by(content_id=content_id)).scalars()
    ] == [State.PUBLISHED]
    pc.post(editor(content_id), course_form(title="京剧入门（第二版）"), page=editor(content_id))
    pc.post(f"/me/courses/{content_id}/submit", page=editor(content_id))
    assert "京剧入门（第二版）" in page_client().get(f"/courses/{content_id}").get_data(
        as_text=True
    )

    pc.post(f"/me/courses/{content_id}/archive", page=editor(content_id))
    assert "京剧入门" not in page_client().get("/").get_data(as_text=True)
    pc.post(f"/me/courses/{content_id}/restore", page=editor(content_id))
    assert "京剧入门（第二版）" in page_client().get("/").get_data(as_text=True)

    response = pc.post(f"/me/courses/{content_id}/withdraw", page=editor(content_id))
    assert response.status_code == 302  # a conflict is a flash, not an error page
    assert "没有待审核的内容" in pc.get(response.headers["Location"]).get_data(as_text=True)

    pc.post(f"/me/courses/{content_id}/delete", page=editor(content_id))
    assert count(Course) == 0


def test_curriculum_course_and_resource_edit(app, pc):
    content_id = new_course(
        pc,
        kind="curriculum",
        title="七年级数学",
        category="opera",
        capacity="5",
        subject="math",
        grade="g7",
        edition="pep",
    )
    course = course_row(content_id)
    assert (course.subject, course.grade, course.edition, course.category, course.capacity) == (
        "math",
        "g7",
        "pep",
        None,
        None,
    )
    html = pc.get(editor(content_id)).get_data(as_text=True)
    assert "教材版本" in html and 'name="capacity"' not in html

    resource_id = create(pc, "resources", resource_form(kind="document", url=""))
    response = pc.post(
        editor(resource_id, "resources"),
        resource_form(kind="document", url="", grades=["g9"], title="新标题"),
        page=editor(resource_id, "resources"),
    )
    assert response.status_code == 302
    resource = db.session.execute(select(Resource).filter_by(content_id=resource_id)).scalar_one()
    assert resource.grades == ["g9"] and resource.title == "新标题"


# --- district review ------------------------------------------------------------------------------


def test_review_flow_in_a_review_district(app, page_client, make_user, orgs):
    teacher = make_user("teacher", school=orgs.review_school)
    admin = make_user("district_admin", district=orgs.review_district)
    other_admin = make_user("district_admin", district=orgs.district)
    pc = page_client(teacher)
    content_id = new_course(pc)
    assert "提交审核" in pc.get(editor(content_id)).get_data(as_text=True)
    response = pc.post(f"/me/courses/{content_id}/submit", page=editor(content_id))
    assert "已提交区里审核" in pc.get(response.headers["Location"]).get_data(as_text=True)
    assert "京剧入门" not in page_client().get("/").get_data(as_text=True)

    assert "京剧入门" not in page_client(other_admin).get("/reviews").get_data(as_text=True)
    # Content in review is invisible outside its district, so it looks missing there.
    response = page_client(other_admin).post(f"/reviews/courses/{content_id}/approve", page="/")
    assert response.status_code == 404

    ap = page_client(admin)
    queue = ap.get("/reviews").get_data(as_text=True)
    assert "京剧入门" in queue and "附意见退回" in queue
    response = ap.post(f"/reviews/courses/{content_id}/reject", {"note": "  "}, page="/reviews")
    assert "请写下意见" in ap.get(response.headers["Location"]).get_data(as_text=True)
    assert db.session.execute(select(Course.state)).scalar_one() == State.IN_REVIEW

    ap.post(f"/reviews/courses/{content_id}/reject", {"note": "请补充课次安排"}, page="/reviews")
    db.session.expire_all()
    assert db.session.execute(select(Course.state)).scalar_one() == State.DRAFT
    assert "请补充课次安排" in pc.get(editor(content_id)).get_data(as_text=True)

    pc.post(f"/me/courses/{content_id}/submit", page=editor(content_id))
    response = ap.post(f"/reviews/courses/{content_id}/approve", page="/reviews")
    assert "已发布" in ap.get(response.headers["Location"]).get_data(as_text=True)
    assert "京剧入门" in page_client().get("/").get_data(as_text=True)
    response = ap.post(f"/reviews/courses/{content_id}/approve", page="/reviews")
    assert response.status_code == 302  # nothing left to approve: a message, not an error


def test_district_admin_toggles_review_requirement(app, page_client, make_user, orgs):
    admin = make_user("district_admin", district=orgs.district)
    ap = page_client(admin)
    html = ap.get("/reviews").get_data(as_text=True)
    assert "审核设置" in html and "西湖区" in html and "上城区" not in html
    ap.post(f"/reviews/districts/{orgs.district.id}", {"requires_review": "1"}, page="/reviews")
    db.session.expire_all()
    assert orgs.district.requires_review is True
    ap.post(f"/reviews/districts/{orgs.district.id}", {"requires_review": "0"}, page="/reviews")
    db.session.expire_all()
    assert orgs.district.requires_review is False
    response = ap.post(
        f"/reviews/districts/{orgs.review_district.id}", {"requires_review": "0"}, page="/reviews"
    )
    assert response.status_code == 403
    teacher = page_client(make_user("teacher"))
    assert (
        teacher.post(f"/reviews/districts/{orgs.district.id}", {"requires_review": "1"}).status_code
        == 403
    )
    db.session.expire_all()
    assert orgs.review_district.requires_review is True and orgs.district.requires_review is False


# --- enrolment ---------------------------------------------------------------------------------


def test_enrol_waitlist_and_owner_sees_students(app, page_client, make_user):
    teacher = make_user("teacher")
    pc = page_client(teacher)
    content_id = new_course(pc, capacity="1")
    pc.post(f"/me/courses/{content_id}/submit", page=editor(content_id))
    first, second = make_user("student"), make_user("student")
    s1, s2 = page_client(first), page_client(second)
    page = f"/courses/{content_id}"
    assert "你已报名成功" in s1.get(
        s1.post(f"{page}/enrol", page=page).headers["Location"]
    ).get_data(as_text=True)
    s2.post(f"{page}/enrol", page=page)
    html = s2.get(page).get_data(as_text=True)
    assert "候补名单第 1 位" in html and "退出候补" in html
    assert "第 1 位" in s2.get("/me/enrolments").get_data(as_text=True)
    again = s1.post(f"{page}/enrol", page=page)
    assert "已报名" in s1.get(again.headers["Location"]).get_data(as_text=True)
    assert db.session.execute(select(func.count(Enrolment.id))).scalar_one() == 2

    owner_view = pc.get(page).get_data(as_text=True)
    assert (
        first.name in owner_view
        and second.name in owner_view
        and 'id="enrolled-list"' in owner_view
    )
    assert first.name not in s2.get(page).get_data(as_text=True)

    s1.post(f"{page}/leave", page=page)
    assert "你已报名成功" in s2.get(page).get_data(as_text=True)
    assert page_client(make_user("teacher")).post(f"{page}/enrol", page=page).status_code == 403


# --- API tokens --------------------------------------------------------------------------------


def test_api_tokens_page(app, page_client, make_user):
    user = make_user("teacher")
    other = make_user("teacher")
    pc = page_client(user)
    response = pc.post("/me/tokens", {"name": ""}, page="/me/tokens")
    assert response.status_code == 422 and "name" in field_errors(response.get_data(as_text=True))
    response = pc.post("/me/tokens", {"name": "导出脚本"}, page="/me/tokens")
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    import re

    raw = re.search(r'<code id="new-token">([^<]+)</code>', response.get_data(as_text=True)).group(
        1
    )
    headers = {"Authorization": f"Bearer {raw}"}
    me = api_get(app, "/api/v1/me", headers)
    assert me.status_code == 200 and me.get_json()["id"] == user.public_id
    listing = pc.get("/me/tokens").get_data(as_text=True)
    assert "导出脚本" in listing and raw not in listing

    from app.accounts.models import ApiToken

    token_id = db.session.execute(select(ApiToken.id).filter_by(user_id=user.id)).scalar_one()
    assert (
        page_client(other).post(f"/me/tokens/{token_id}/revoke", page="/me/tokens").status_code
        == 404
    )
    assert api_get(app, "/api/v1/me", headers).status_code == 200
    response = pc.post(f"/me/tokens/{token_id}/revoke", page="/me/tokens")
    assert response.status_code == 302
    assert "已吊销" in pc.get("/me/tokens").get_data(as_text=True)
    assert api_get(app, "/api/v1/me", headers).status_code == 401


def test_catalog_filters_and_counts(app, page_client, pc):
    for title, category in (("茶艺", "tea"), ("天文观测", "astronomy"), ("功夫茶", "tea")):
        content_id = new_course(pc, title=title, category=category)
        pc.post(f"/me/courses/{content_id}/submit", page=editor(content_id))
    reader = page_client()
    assert result_count(reader.get("/").get_data(as_text=True)) == 3
    html = reader.get("/?category=tea&sort=title").get_data(as_text=True)
    assert result_count(html) == 2 and "天文观测" not in html and "清除筛选" in html
    # each choice shows how many it would find, given the other filters
    assert (
        "茶艺 (2)</option>" in html
        and "天文 (1)</option>" in html
        and "拓展课程 (2)</option>" in html
    )
    assert result_count(reader.get("/?q=天文").get_data(as_text=True)) == 1
    assert reader.get("/?district=abc&page=-3&sort=evil&grade=g99").status_code in (200, 422)
    assert "Found" not in reader.get("/?lang=en").get_data(as_text=True)
    assert "3 found" in reader.get("/?lang=en").get_data(as_text=True)
