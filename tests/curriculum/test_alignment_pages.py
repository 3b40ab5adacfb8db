"""Alignment (resources, course items, exactMatchOf), course generation, coverage, pages, demo."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from flask import g

from app import signals
from app.catalog.models import Course
from app.curriculum import services
from app.extensions import db

ROOT = Path(__file__).resolve().parents[2]


def _send(client, method, url, headers, json=None):
    g.pop("_login_user", None)  # the test's app context outlives each request
    return client.open(url, method=method, headers=headers, json=json)


def test_align_resources_and_signal(app, client, curriculum, make_user, publish, token_for):
    teacher = make_user("teacher")
    content_id = publish(teacher, "合并同类项 微课")
    lesson = curriculum.lesson("pep", "4.2")
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs["resource_content_id"])

    signals.alignment_changed.connect(receiver, sender=app)
    try:
        response = _send(
            client,
            "POST",
            "/api/v1/curriculum/alignments",
            token_for(teacher),
            {"node_id": lesson.id, "resource_id": content_id, "alignment_type": "assesses"},
        )
        assert response.status_code == 201, response.get_json()
        assert received == [content_id]
        listed = _send(
            client, "GET", f"/api/v1/curriculum/alignments?resource_id={content_id}", {}
        ).get_json()
        assert listed[0]["alignment_type"] == "assesses" and listed[0]["node_id"] == lesson.id
        removed = _send(
            client,
            "DELETE",
            f"/api/v1/curriculum/alignments/{listed[0]['alignment_id']}",
            token_for(teacher),
        )
        assert removed.status_code == 204
        assert received == [content_id, content_id]
        assert services.alignments_for_resource(content_id) == []
    finally:
        signals.alignment_changed.disconnect(receiver, sender=app)


def test_bad_alignments(client, curriculum, make_user, publish, token_for, orgs):
    owner = make_user("teacher")
    content_id = publish(owner, "某资源")
    other = token_for(make_user("teacher", school=orgs.other_school))
    lesson = curriculum.lesson("pep", "1.1")
    url = "/api/v1/curriculum/alignments"
    cases = [
        (other, {"node_id": lesson.id, "resource_id": content_id}, 403),
        (
            token_for(owner),
            {"node_id": lesson.id, "resource_id": content_id, "alignment_type": "likes"},
            422,
        ),
        (
            token_for(owner),
            {"node_id": curriculum.volume("pep").id, "resource_id": content_id},
            422,
        ),
        (token_for(owner), {"node_id": lesson.id}, 422),
        (token_for(owner), {"node_id": 999999, "resource_id": content_id}, 404),
        (token_for(owner), {"node_id": lesson.id, "resource_id": "0" * 36}, 404),
        ({}, {"node_id": lesson.id, "resource_id": content_id}, 401),
    ]
    for headers, body, status in cases:
        response = _send(client, "POST", url, headers, body)
        assert response.status_code == status, (body, response.get_json())
        assert "error" in response.get_json()
    assert services.alignments_for_resource(content_id) == []


def test_exact_match_shows_resource_for_the_other_edition(client, curriculum, make_user, publish):
    teacher = make_user("teacher")
    content_id = publish(teacher, "认识方程 动画")
    services.align(teacher, curriculum.lesson("bnu", "5.1").id, "resource", content_id)
    db.session.commit()
    # 北师大版 节 5.1 认识方程 is the whole of 人教版 节 5.1 方程 (not of its 小节 5.1.1).
    pep = curriculum.section("pep", "5.1")
    detail = _send(client, "GET", f"/api/v1/curriculum/nodes/{pep.id}", {}).get_json()
    assert detail["resources"] == []  # district visibility: anonymous readers see nothing
    g.pop("_login_user", None)
    aligned = services.aligned_resources(teacher, [pep])[pep.id]
    assert [(a.resource.content_id, a.via_equivalent) for a in aligned] == [(content_id, True)]
    assert any(a["type"] == "exactMatchOf" for a in detail["associations"])


def test_generate_course_from_volume(client, curriculum, make_user, token_for):
    teacher = make_user("teacher")
    volume = curriculum.volume("pep")
    response = _send(
        client, "POST", f"/api/v1/curriculum/volumes/{volume.id}/course", token_for(teacher), {}
    )
    assert response.status_code == 201, response.get_json()
    course = db.session.query(Course).filter_by(content_id=response.get_json()["content_id"]).one()
    assert course.kind == "curriculum" and (course.subject, course.grade, course.edition) == (
        "math",
        "g7",
        "pep",
    )
    assert [s.title for s in course.sections][:2] == ["第一章 有理数", "第二章 有理数的运算"]
    item = course.sections[0].items[0]
    assert item.title == "1.1 正数和负数"
    aligned = _send(
        client, "GET", f"/api/v1/curriculum/alignments?item_key={item.item_key}", {}
    ).get_json()
    assert aligned[0]["node_id"] == curriculum.lesson("pep", "1.1").id
    lesson = curriculum.lesson("pep", "1.1")
    assert (
        _send(
            client, "POST", f"/api/v1/curriculum/volumes/{lesson.id}/course", token_for(teacher), {}
        ).status_code
        == 422
    )
    student = token_for(make_user("student"))
    assert (
        _send(
            client, "POST", f"/api/v1/curriculum/volumes/{volume.id}/course", student, {}
        ).status_code
        == 403
    )


def test_coverage_counts_and_gaps(client, curriculum, make_user, publish, token_for):
    teacher = make_user("teacher")
    video = publish(teacher, "视频")
    exercise = publish(teacher, "练习", kind="exercise")
    services.align(teacher, curriculum.lesson("pep", "1.1").id, "resource", video)
    services.align(teacher, curriculum.lesson("pep", "1.1").id, "resource", exercise, "assesses")
    kp = services.knowledge_points_of([curriculum.lesson("pep", "2.1.1")])[
        curriculum.lesson("pep", "2.1.1").identifier
    ][0]
    services.align(teacher, kp.id, "resource", exercise)
    db.session.commit()
    data = _send(
        client,
        "GET",
        f"/api/v1/curriculum/volumes/{curriculum.volume('pep').id}/coverage",
        token_for(teacher),
    ).get_json()
    rows = {r["node"]["code"]: r for r in data["rows"]}
    assert rows["1.1"]["counts"]["video"] == 1 and rows["1.1"]["counts"]["exercise"] == 1
    assert rows["2.1.1"]["total"] == 1
    assert data["lessons"] == 28 and data["covered"] == 2 and data["gaps"] == 26


def test_pages_in_both_languages(client, klass, curriculum, publish, login):
    content_id = publish(klass.teacher, "本周资源")
    week = services.lessons_for_week(
        klass.admin, klass.calendar_id, services.week_number(klass.calendar, services.today())
    )
    if week:
        services.align(klass.teacher, week[0].id, "resource", content_id)
        db.session.commit()
    login(klass.teacher)
    volume = curriculum.volume("pep")
    pages = [
        "/curriculum/",
        f"/curriculum/frameworks/{curriculum.framework_id}",
        f"/curriculum/nodes/{curriculum.lesson('pep', '1.1').id}",
        f"/curriculum/volumes/{volume.id}/coverage",
        "/curriculum/this-week",
        "/curriculum/this-week?offset=-1",
        f"/curriculum/classes/{klass.class_id}",
        f"/curriculum/calendars/{klass.calendar_id}",
    ]
    for lang in ("zh_CN", "en"):
        client.get(f"/lang/{lang}")
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, url
    client.get("/lang/zh_CN")
    coverage = client.get(f"/curriculum/volumes/{volume.id}/coverage").get_data(as_text=True)
    assert "#fde2e1" in coverage  # gaps are coloured
    week_page = client.get("/curriculum/this-week").get_data(as_text=True)
    if week:
        assert "本周资源" in week_page
    assert client.get("/curriculum/nodes/999999").status_code == 404


def test_teacher_adapts_and_moves_calendar_in_the_editor(client, klass, login):
    login(klass.teacher)
    page = client.get(f"/curriculum/calendars/{klass.calendar_id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        f"/curriculum/calendars/{klass.calendar_id}",
        data={"csrf_token": token, "action": "override", "class_id": klass.class_id},
    )
    assert response.status_code == 302
    copy_url = response.headers["Location"]
    copy_id = int(copy_url.rstrip("/").split("/")[-1])
    before = services.lessons_for_week(klass.teacher, copy_id, 13)
    response = client.post(
        copy_url, data={"csrf_token": token, "action": "shift", "by": "1", "from_week": "1"}
    )
    assert response.status_code == 302
    assert services.lessons_for_week(klass.teacher, copy_id, 14) == before
    # Moving one lesson by its week selector, then a clash: both saved as versions or refused.
    lesson = before[0]
    response = client.post(
        copy_url, data={"csrf_token": token, "action": "save", f"lesson-{lesson.id}": "15"}
    )
    assert response.status_code == 302
    assert lesson in services.lessons_for_week(klass.teacher, copy_id, 15)
    response = client.post(
        copy_url,
        data={"csrf_token": token, "action": "save", f"lesson-{lesson.id}": "99"},
        follow_redirects=True,
    )
    assert "No such week" in response.get_data(as_text=True) or "99" in response.get_data(
        as_text=True
    )
    assert client.post(copy_url, data={"action": "shift"}).status_code == 400  # no CSRF token


def test_demo_content_loads_idempotently(app, ctx, tmp_path):
    from app.common.events import commit
    from app.demo import services as demo

    folder = tmp_path / "content"
    (folder / "curriculum").mkdir(parents=True)
    for name in ("organisations.yaml", "users.yaml", "resources_curriculum.yaml"):
        shutil.copy(ROOT / "content" / name, folder / name)
    for path in (ROOT / "content" / "curriculum").glob("*.*"):
        shutil.copy(path, folder / "curriculum" / path.name)
    first = demo.load_content(folder)
    commit()
    assert first.created["curriculum alignments"] == 9 and first.created["teaching calendars"] == 2
    second = demo.load_content(folder)
    commit()
    assert (
        "curriculum alignments" not in second.created and "teaching calendars" not in second.created
    )
    from datetime import date

    from app.accounts.services import get_user_by_email

    student = get_user_by_email("student@shuyuan.test")
    views = services.this_week(student, on=date(2026, 11, 23))
    assert len(views) == 1 and views[0].calendar.edition == "pep"
    titles = [e.resource.title for lesson in views[0].lessons for e in lesson["resources"]]
    assert "整式的加减 教学设计" in titles
    # The 北师大版 等式的基本性质 resource shows at 5.1.2 等式的性质, in a coming week.
    coming = [services.this_week(student, on=date(2026, 11, 23), offset=n)[0] for n in (1, 2, 3)]
    assert any(
        e.via_equivalent for view in coming for lesson in view.lessons for e in lesson["resources"]
    )
    framework = services.list_frameworks()[0]
    import json

    original = json.loads(
        (folder / "curriculum" / "math-g7-vol1.case.json").read_text(encoding="utf-8")
    )
    assert services.export_case(framework.id) == original


def test_api_is_documented(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = [p for p in spec["paths"] if p.startswith("/api/v1/curriculum/")]
    for expected in (
        "/api/v1/curriculum/frameworks/import",
        "/api/v1/curriculum/me/this-week",
        "/api/v1/curriculum/calendars/{calendar_id}",
        "/api/v1/curriculum/volumes/{volume_id}/coverage",
    ):
        assert expected in paths


def test_knowledge_points_linked_by_is_part_of(curriculum, make_user):
    admin = make_user("district_admin")
    lesson, other = curriculum.lesson("pep", "5.2"), curriculum.lesson("pep", "4.2")
    kp = services.knowledge_points_of([other])[other.identifier][0]
    services.add_association(admin, kp.id, lesson.id, "isPartOf")
    db.session.commit()
    points = services.knowledge_points_of([lesson])[lesson.identifier]
    assert kp in points and len(points) == 3  # its own two and the linked one
