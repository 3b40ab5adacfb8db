"""The demo content in content/ loads on both backends, idempotently, and is what the
issue asks for (extended courses in many categories with English translations, sessions
in the current term, curriculum courses, resources of every kind)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from app.accounts.models import District
from app.catalog import services as catalog
from app.catalog.models import Course, Resource, SectionItem, State
from app.common.events import commit
from app.demo import services as demo
from app.extensions import db

CONTENT = Path(__file__).resolve().parents[2] / "content"
CATALOG_TABLES = [
    "regions", "districts", "schools", "users", "role_assignments", "tags", "resources",
    "resource_grades", "resource_tags", "courses", "course_tags", "course_sessions",
    "course_sections", "section_items", "course_seats",
]  # fmt: skip
OUR_KINDS = {"districts", "schools", "users", "courses", "resources"}


def _snapshot() -> dict:
    tables = db.metadata.tables
    counts = {
        name: db.session.execute(select(func.count()).select_from(tables[name])).scalar_one()
        for name in CATALOG_TABLES
    }
    rows = {
        model.__tablename__: sorted(
            db.session.execute(
                select(model.content_id, model.version, model.state, model.updated_at)
            ).all()
        )
        for model in (Course, Resource)
    }
    return {"counts": counts, "rows": rows}


def _load(folder: Path = CONTENT) -> demo.LoadReport:
    report = demo.load_content(folder)
    commit()
    return report


def test_cli_load_twice_changes_nothing(app, ctx):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["content", "load"])
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    before = _snapshot()
    assert before["counts"]["courses"] >= 14 and before["counts"]["resources"] >= 40

    second = runner.invoke(args=["content", "load"])
    assert second.exit_code == 0, second.output
    created = second.output.split("created ", 1)[1].split(";", 1)[0]
    assert not [kind for kind in OUR_KINDS if f" {kind}" in f" {created}"], second.output
    db.session.expire_all()
    assert _snapshot() == before

    # --if-empty does nothing on a database that has users.
    third = runner.invoke(args=["content", "load", "--if-empty"])
    assert third.exit_code == 0 and "nothing loaded" in third.output
    assert _snapshot() == before


def test_demo_content_meets_the_issue(ctx):
    _load()
    published = select(Course).where(Course.state == State.PUBLISHED)
    extended = db.session.execute(published.where(Course.kind == "extended")).scalars().all()
    fields = ("title", "summary", "description_html")
    translated = [c for c in extended if all(c.translations.get("en", {}).get(f) for f in fields)]
    assert len(translated) >= 12
    assert len({c.category for c in translated}) >= 8
    assert len({c.district_id for c in translated}) == 3
    for course in extended:
        assert course.sessions, course.title
        assert 2 <= len(course.sections) <= 4, course.title
        for session in course.sessions:
            assert datetime(2026, 11, 1) <= session.starts_at < session.ends_at
            assert session.ends_at <= datetime(2027, 1, 31)
            assert session.place or session.online_url
    assert any(c.capacity is not None and c.capacity <= 3 for c in extended)
    assert {c.visibility for c in extended} >= {"region", "district", "school"}

    curriculum = db.session.execute(published.where(Course.kind == "curriculum")).scalars().all()
    assert curriculum and all(c.subject and c.grade and c.edition for c in curriculum)
    assert all(len(c.sections) >= 3 for c in curriculum)

    # The review district: published through approval, one waiting, one draft.
    review = db.session.execute(select(District).filter_by(requires_review=True)).scalar_one()
    rows = db.session.execute(select(Course).filter_by(district_id=review.id)).scalars()
    states = {c.state for c in rows}
    assert {State.PUBLISHED, State.IN_REVIEW, State.DRAFT} <= states
    queue = catalog.list_review_queue(next(a.user for a in demo._district_admins(review.id)))
    assert queue["courses"].total == 1

    resources = (
        db.session.execute(select(Resource).where(Resource.state == State.PUBLISHED))
        .scalars()
        .all()
    )
    assert len(resources) >= 40
    assert {r.kind for r in resources} == {
        "video", "audio", "document", "image", "link", "interactive", "exercise"
    }  # fmt: skip
    assert any(len(r.grades) > 1 for r in resources)
    for resource in resources:
        assert resource.subject is None or resource.grades, resource.title
        if resource.kind in ("link", "interactive") and resource.url:
            assert resource.url.startswith("https://")
        if resource.kind == "exercise" and resource.data.get("questions"):
            assert all("answer" in q and q["prompt"] for q in resource.data["questions"])
    ours = [r for r in resources if r.description_html]
    assert len(ours) >= 40
    assert all(r.translations.get("en", {}).get("title") for r in ours)

    # Every course item points at a resource that exists and is published.
    referenced = set(db.session.execute(select(SectionItem.resource_content_id)).scalars())
    present = {r.content_id for r in resources}
    assert referenced and referenced <= present


def test_content_ids_are_fixed_and_unique():
    seen = set()
    for name in ("resources.yaml", "courses.yaml"):
        for entry in yaml.safe_load((CONTENT / name).read_text(encoding="utf-8")):
            assert len(entry["content_id"]) == 36
            assert entry["content_id"] not in seen
            seen.add(entry["content_id"])
            for section in entry.get("sections", []):
                for item in section["items"]:
                    assert item.get("item_key", "k" * 36) not in seen
                    if "item_key" in item:
                        seen.add(item["item_key"])


def test_load_into_a_database_that_already_has_content(ctx, orgs, make_user):
    teacher = make_user("teacher", school=orgs.school)
    course = catalog.create_content(
        teacher,
        Course,
        {"kind": "extended", "title": "已有的课程", "category": "opera", "tags": ["京剧", "自编"],
         "visibility": "region"},
    )  # fmt: skip
    catalog.submit_content(teacher, Course, course.content_id)
    commit()
    mine_before = (course.id, course.state, course.updated_at, course.version)

    report = _load()
    assert report.created["courses"] >= 14

    db.session.expire_all()
    mine = db.session.get(Course, mine_before[0])
    assert (mine.id, mine.state, mine.updated_at, mine.version) == mine_before
    assert [t.name for t in mine.tags] == ["京剧", "自编"]
    # The demo course shares the existing tag row rather than failing on it.
    jingju = db.session.execute(select(Course).where(Course.title.like("京剧启蒙%"))).scalar_one()
    assert "京剧" in [t.name for t in jingju.tags]
    # The catalog lists both.
    listed = catalog.list_published(None, Course, catalog.CatalogFilters(tag="京剧"))
    assert {c.title for c in listed.items} >= {"已有的课程", jingju.title}


@pytest.fixture
def small_folder(tmp_path):
    for name in ("organisations.yaml", "users.yaml"):
        shutil.copy(CONTENT / name, tmp_path / name)
    return tmp_path


GOOD_RESOURCE = {
    "content_id": "0e3c8a59-6c1d-4d40-9d59-2f8f3f0c1a01",
    "author": "teacher@shuyuan.test",
    "kind": "document",
    "title": "测试文档",
    "visibility": "region",
}

# A course whose item points at a resource that is not there.
BAD_COURSE = {
    "content_id": "0e3c8a59-6c1d-4d40-9d59-2f8f3f0c1a02",
    "author": "teacher@shuyuan.test",
    "kind": "extended",
    "title": "课",
    "category": "tea",
    "sections": [{"title": "一", "items": [{"resource": "0e3c8a59-6c1d-4d40-9d59-2f8f3f0c1aff"}]}],
}


@pytest.mark.parametrize(
    ("resources", "courses", "expected"),
    [
        ([dict(GOOD_RESOURCE, kind="hologram")], [], "kind"),
        ([dict(GOOD_RESOURCE, titel="typo")], [], "titel"),
        ([dict(GOOD_RESOURCE, author="nobody@shuyuan.test")], [], "unknown author"),
        ([dict(GOOD_RESOURCE, content_id="short")], [], "content_id"),
        ([dict(GOOD_RESOURCE, publish="maybe")], [], "publish"),
        (
            [GOOD_RESOURCE],
            [BAD_COURSE],
            "not found",
        ),
    ],
    ids=["unknown-kind", "unknown-field", "unknown-author", "bad-id", "bad-publish", "dangling"],
)
def test_bad_entries_are_reported_and_nothing_is_stored(
    app, ctx, small_folder, resources, courses, expected
):
    (small_folder / "resources.yaml").write_text(yaml.safe_dump(resources, allow_unicode=True))
    (small_folder / "courses.yaml").write_text(yaml.safe_dump(courses, allow_unicode=True))
    result = app.test_cli_runner().invoke(args=["content", "load", "--folder", str(small_folder)])
    assert result.exit_code != 0
    assert "nothing loaded" in result.output and expected in result.output, result.output
    assert "resources.yaml" in result.output or "courses.yaml" in result.output
    db.session.rollback()
    for name in ("users", "districts", "resources", "courses"):
        table = db.metadata.tables[name]
        assert db.session.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_the_load_command_waits_for_its_background_jobs(app, tmp_path, small_folder):
    """Without Redis the search indexing the load queues runs on the process's job
    threads; the command returns only when they are done, so every published item is
    searchable (the exit hook's 20 s cut-off once left a demo resource unindexed)."""
    from app import jobs
    from app.search.services import indexing
    from tests.conftest import queued_jobs_app

    resources = [
        dict(
            GOOD_RESOURCE, content_id=f"0e3c8a59-6c1d-4d40-9d59-2f8f3f0c1a{i:02d}", title=f"文档{i}"
        )
        for i in range(1, 7)
    ]
    (small_folder / "resources.yaml").write_text(yaml.safe_dump(resources, allow_unicode=True))
    queued = queued_jobs_app(app, tmp_path / "queued")
    result = queued.test_cli_runner().invoke(
        args=["content", "load", "--folder", str(small_folder)]
    )
    assert result.exit_code == 0, result.output
    with queued.app_context():
        assert jobs.unfinished() == 0
        report = indexing.check_index()
        assert report.published == 6 and report.ok, report


def always_fail() -> None:
    raise RuntimeError("this job always breaks")


def test_a_failing_job_does_not_hold_the_load_and_is_named(
    app, tmp_path, small_folder, monkeypatch
):
    """A job that keeps failing holds `flask content load` only for
    JOBS_CLI_RETRY_WAIT_SECONDS, not through its back-offs (10 + 60 + 300 s); the
    command then says, in Chinese and English, which jobs are left and what to run."""
    import threading

    from app import jobs
    from tests.conftest import queued_jobs_app

    loader = demo.load_content

    def load_and_queue(folder, tick=None):
        report = loader(folder, tick=tick)
        jobs.enqueue("tests.demo.test_demo_content:always_fail")
        jobs.enqueue("app.search.services.indexing:index_content_job", "resource", "gone")
        return report

    def index_fails(kind, content_id):
        raise RuntimeError("the index is unwritable")

    monkeypatch.setattr(demo, "load_content", load_and_queue)
    monkeypatch.setattr("app.search.services.indexing.index_content_job", index_fails)
    queued = queued_jobs_app(
        app, tmp_path / "queued", JOBS_RETRY_INTERVALS=(3600,), JOBS_CLI_RETRY_WAIT_SECONDS=0
    )
    results = []
    command = threading.Thread(
        target=lambda: results.append(
            queued.test_cli_runner().invoke(args=["content", "load", "--folder", str(small_folder)])
        )
    )
    command.start()
    command.join(timeout=120)  # the old command waited out the hour's back-off here
    try:
        assert not command.is_alive()
        result = results[0]
        assert result.exit_code == 0, result.output
        output = result.output
        assert "Background jobs not finished: 2." in output
        assert "未完成的后台任务：2 个" in output
        indexing = "app.search.services.indexing:index_content_job"
        assert f"{indexing} × 1: flask search check --repair" in output
        failing = "tests.demo.test_demo_content:always_fail"
        assert f"{failing} × 1: no command catches up on it." in output
        assert "没有可以补做它的命令" in output
    finally:
        jobs.shutdown(queued, timeout=60)
        command.join(timeout=60)
        with queued.app_context():
            db.engine.dispose()


def test_every_catch_up_command_exists(app):
    """The commands a job left unfinished points to (app/jobs.py: CATCH_UP, registered
    by each feature's cli.py) exist, with their options."""
    from app.jobs import CATCH_UP

    assert CATCH_UP["app.search.services.indexing:index_content_job"] == (
        "flask search check --repair"
    )
    for command in CATCH_UP.values():
        words = command.split()
        assert words[0] == "flask"
        options = [w for w in words[1:] if w.startswith("--")]
        names = [w for w in words[1:] if not w.startswith("--")]
        result = app.test_cli_runner().invoke(args=[*names, "--help"])
        assert result.exit_code == 0, (command, result.output)
        for option in options:
            assert option in result.output, (command, result.output)
