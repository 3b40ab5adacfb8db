"""Issue 16: uploads refused before any byte while a resource waits for review; cover
pictures (Pillow thumbnails) and the pictures and lengths a resource's own file gives
its card; the garbage collector keeping pictures; a learner's own progress."""

from __future__ import annotations

import io
import shutil

import pytest
from sqlalchemy import func, select

from app.catalog import services as catalog
from app.catalog.models import Course, Resource
from app.common.events import commit
from app.extensions import db
from app.media import services
from app.media.models import MediaObject, MediaUpload, ProgressEvent
from tests.catalog.helpers import fresh, make_content
from tests.media.conftest import upload_file, webm_clip


def _png(size=(1200, 900), colour=(200, 30, 30)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def _working(model, content_id):
    db.session.expire_all()
    rows = db.session.execute(
        select(model).filter_by(content_id=content_id).order_by(model.version)
    ).scalars()
    return list(rows)[-1]


def test_an_upload_is_refused_before_any_byte_while_in_review(client, token_for, make_user, orgs):
    teacher = make_user("teacher", school=orgs.review_school)
    content_id = make_content(teacher, Resource, "in_review", kind="video")
    before = db.session.execute(select(func.count(MediaUpload.id))).scalar_one()
    response = client.post(
        "/api/v1/media/uploads",
        headers=token_for(teacher),
        json={"resource_id": content_id, "filename": "京剧.mp4", "size": 10_000_000},
    )
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["error"]["code"] == "resource_in_review"
    assert "url" not in response.get_json() and "part_urls" not in response.get_json()
    assert db.session.execute(select(func.count(MediaUpload.id))).scalar_one() == before
    # Withdrawn from review, the same call starts an upload.
    catalog.withdraw_content(fresh(teacher), Resource, content_id)
    commit()
    again = client.post(
        "/api/v1/media/uploads",
        headers=token_for(teacher),
        json={"resource_id": content_id, "filename": "京剧.mp4", "size": 10_000_000},
    )
    assert again.status_code == 201


def test_the_editor_says_so_in_both_languages(app, make_user, orgs):
    from tests.pages.conftest import PageClient, compile_catalogues

    compile_catalogues()
    teacher = make_user("teacher", school=orgs.review_school)
    content_id = make_content(teacher, Resource, "in_review", kind="video")
    page = PageClient(app, teacher)
    html = page.get(f"/me/resources/{content_id}/edit").get_data(as_text=True)
    assert 'id="media-refused"' in html and "请先撤回审核，再上传文件" in html
    assert 'data-refused="1"' in html
    page.get("/lang/en")
    html = page.get(f"/me/resources/{content_id}/edit").get_data(as_text=True)
    assert "withdraw it from review before uploading a file" in html


@pytest.mark.parametrize("model", [Course, Resource])
def test_cover_pictures_are_cut_and_shrunk_and_shown_to_who_may_see(app, model, make_user, orgs):
    from PIL import Image

    from tests.pages.conftest import PageClient

    teacher = make_user("teacher")
    student_elsewhere = make_user("student", school=orgs.review_school)
    content_id = make_content(teacher, model, "published", visibility="school")
    kind = "courses" if model is Course else "resources"
    page = PageClient(app, teacher)
    editor = f"/me/{kind}/{content_id}/edit"
    token = page.token(editor)
    response = page.client.post(
        f"/me/{kind}/{content_id}/cover",
        data={"csrf_token": token, "cover": (io.BytesIO(_png()), "封面.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    draft = _working(model, content_id)
    assert draft.state == "draft" and draft.cover_source == "upload" and draft.cover_id
    picture = db.session.execute(
        select(MediaObject).filter_by(public_id=draft.cover_id)
    ).scalar_one()
    data = b"".join(services_storage().iter_chunks(picture.key))
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.size == (640, 360)

    # The editor's preview shows it; the published version has none yet.
    assert page.get(f"/media/pictures/{kind}/{content_id}?v=latest").status_code == 302
    assert page.get(f"/media/pictures/{kind}/{content_id}").status_code == 404
    catalog.submit_content(fresh(teacher), model, content_id)
    commit()
    assert app.test_client().get(f"/media/pictures/{kind}/{content_id}").status_code == 404
    other = PageClient(app, student_elsewhere)
    assert other.get(f"/media/pictures/{kind}/{content_id}").status_code == 404
    same_school = PageClient(app, make_user("student"))
    assert same_school.get(f"/media/pictures/{kind}/{content_id}").status_code == 302
    html = same_school.get("/" if model is Course else "/resources").get_data(as_text=True)
    assert f"/media/pictures/{kind}/{content_id}?v=2" in html


def services_storage():
    from app.media.storage import get_storage

    return get_storage()


@pytest.mark.parametrize(
    "payload", [b"", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"\x89PNG\r\n\x1a\nbroken"]
)
def test_bad_cover_files_are_refused_and_nothing_changes(app, payload, make_user):
    from tests.pages.conftest import PageClient

    teacher = make_user("teacher")
    content_id = make_content(teacher, Course, "draft")
    page = PageClient(app, teacher)
    token = page.token(f"/me/courses/{content_id}/edit")
    objects = db.session.execute(select(func.count(MediaObject.id))).scalar_one()
    response = page.client.post(
        f"/me/courses/{content_id}/cover",
        data={"csrf_token": token, "cover": (io.BytesIO(payload), "x.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert _working(Course, content_id).cover_id is None
    assert db.session.execute(select(func.count(MediaObject.id))).scalar_one() == objects
    assert "flash-error" in page.get(f"/me/courses/{content_id}/edit").get_data(as_text=True)


def test_covers_cannot_change_in_review_nor_by_others(app, make_user, orgs):
    from tests.pages.conftest import PageClient

    teacher = make_user("teacher", school=orgs.review_school)
    content_id = make_content(teacher, Course, "in_review")
    with pytest.raises(Exception) as refused:
        services.upload_cover(fresh(teacher), Course, content_id, _png())
    assert getattr(refused.value, "code", "") == "resource_in_review"
    db.session.rollback()
    stranger = make_user("teacher", school=orgs.review_school)
    page = PageClient(app, stranger)
    token = page.token("/login")
    response = page.client.post(
        f"/me/courses/{content_id}/cover",
        data={"csrf_token": token, "cover": (io.BytesIO(_png()), "x.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code in (403, 404)


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed")
def test_a_videos_poster_and_length_go_on_its_card_but_never_over_an_authors_cover(
    client, token_for, make_user, tmp_path
):
    path = webm_clip(tmp_path / "v.webm")
    teacher = make_user("teacher")
    content_id = make_content(teacher, Resource, "draft", kind="video")
    response = upload_file(client, token_for(teacher), content_id, "v.webm", path.read_bytes())
    assert response.status_code == 200, response.get_json()
    row = _working(Resource, content_id)
    assert row.cover_source == "file" and row.cover_id
    assert row.duration_seconds == 3
    poster = db.session.execute(select(MediaObject).filter_by(public_id=row.cover_id)).scalar_one()
    assert poster.media_type == "image/jpeg"

    # An author's own cover wins over the file's poster, also for a file uploaded later.
    services.upload_cover(fresh(teacher), Resource, content_id, _png())
    commit()
    chosen = _working(Resource, content_id).cover_id
    upload_file(client, token_for(teacher), content_id, "v2.webm", path.read_bytes() + b"\0")
    row = _working(Resource, content_id)
    assert row.cover_id == chosen and row.cover_source == "upload"


def test_garbage_collection_keeps_pictures(app, make_user):
    teacher = make_user("teacher")
    content_id = make_content(teacher, Course, "draft")
    services.upload_cover(fresh(teacher), Course, content_id, _png())
    commit()
    picture = _working(Course, content_id).cover_id
    report = services.collect_garbage(apply=True)
    commit()
    assert db.session.execute(select(MediaObject).filter_by(public_id=picture)).scalar_one()
    assert not report.deleted_objects
    services.remove_cover(fresh(teacher), Course, content_id)
    commit()
    report = services.collect_garbage(apply=True)
    commit()
    services.delete_collected_bytes(report)
    assert db.session.execute(select(MediaObject).filter_by(public_id=picture)).first() is None


def _event(user, resource_row, verb, progress=None):
    db.session.add(
        ProgressEvent(
            user_id=user.id,
            resource_id=resource_row.id,
            content_id=resource_row.content_id,
            verb=verb,
            result={"progress": progress} if progress is not None else None,
            context={},
        )
    )


def test_a_learners_own_progress(app, make_user):
    teacher, student, other = make_user("teacher"), make_user("student"), make_user("student")
    ids = [make_content(teacher, Resource, "published", title=f"R{n}") for n in range(3)]
    rows = [_working(Resource, c) for c in ids]
    course = make_content(teacher, Course, "draft")
    catalog.add_section(
        fresh(teacher), course, {"title": "S", "items": [{"resource_id": c} for c in ids]}
    )
    catalog.submit_content(fresh(teacher), Course, course)
    commit()
    _event(student, rows[0], "progressed", 0.25)
    _event(student, rows[0], "progressed", 0.5)
    _event(student, rows[1], "completed")
    _event(other, rows[2], "completed")
    commit()

    found = services.learner_progress(fresh(student), ids)
    assert set(found) == {ids[0], ids[1]}
    assert isinstance(found[ids[0]], services.LearnerProgress)
    assert found[ids[0]].fraction == 0.5 and not found[ids[0]].completed
    assert found[ids[1]].fraction == 1.0 and found[ids[1]].completed
    assert [p.content_id for p in services.recent_resources(fresh(student))] == [ids[0]]
    progress = services.course_progress(fresh(student), [_working(Course, course)])[course]
    assert (progress.done, progress.total) == (1, 3)
    assert services.learner_progress(None, ids) == {}
    assert services.course_progress(fresh(make_user("student")), [_working(Course, course)]) == {}


def test_the_catalog_and_her_courses_show_her_progress(app, make_user):
    from tests.pages.conftest import PageClient, compile_catalogues

    compile_catalogues()
    teacher, student = make_user("teacher"), make_user("student")
    ids = [make_content(teacher, Resource, "published", title=f"资源{n}") for n in range(2)]
    course = make_content(teacher, Course, "draft", title="两节课")
    catalog.add_section(
        fresh(teacher), course, {"title": "S", "items": [{"resource_id": c} for c in ids]}
    )
    catalog.submit_content(fresh(teacher), Course, course)
    commit()
    catalog.enrol(fresh(student), course)
    _event(student, _working(Resource, ids[0]), "progressed", 0.4)
    _event(student, _working(Resource, ids[1]), "completed")
    commit()
    page = PageClient(app, student)
    html = page.get("/resources").get_data(as_text=True)
    assert "继续上次的学习" in html and "已完成 40%" in html
    for path in ("/", "/me/enrolments", f"/courses/{course}"):
        assert "已完成 1 / 2" in page.get(path).get_data(as_text=True), path
    assert PageClient(app, teacher).get("/resources").get_data(as_text=True).count("已完成") == 0
    page.get("/lang/en")
    html = page.get("/resources").get_data(as_text=True)
    assert "Continue where you left off" in html and "40% done" in html


def _queries_for(app, client, path: str) -> int:
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


@pytest.mark.parametrize("path", ["/", "/resources"])
def test_pictures_and_progress_cost_no_query_per_card(app, make_user, path):
    """A page of 24 cards with pictures and her progress needs as many queries as a page
    of 2: pictures come with the rows, progress is loaded once per page."""
    from tests.pages.conftest import PageClient

    teacher, student = make_user("teacher"), make_user("student")

    def add(n: int) -> None:
        for i in range(n):
            resource = make_content(teacher, Resource, "published", title=f"R{i}")
            course = make_content(teacher, Course, "draft", title=f"C{i}")
            catalog.add_section(
                fresh(teacher), course, {"title": "S", "items": [{"resource_id": resource}]}
            )
            catalog.submit_content(fresh(teacher), Course, course)
            services.upload_cover(
                fresh(teacher), Course, course, _png((64, 36), (i * 9 % 255, 0, 0))
            )
            catalog.submit_content(fresh(teacher), Course, course)
            _event(student, _working(Resource, resource), "progressed", 0.5)
        commit()

    page = PageClient(app, student)
    add(2)
    few = _queries_for(app, page.client, path)
    add(22)
    many = _queries_for(app, page.client, path)
    html = page.get(path).get_data(as_text=True)
    assert html.count("card-progress") >= 24 and (
        path == "/resources" or html.count("card-picture") >= 24
    )
    assert few > 3 and many == few, (few, many)
