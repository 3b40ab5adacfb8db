"""The cached week structure of "this week" (app/curriculum/services/week_cache.py).

Two apps on one Redis stand for two gunicorn workers (or hosts): ``reader`` caches a
class's week, ``writer`` changes what it is made of, and the reader's next call must
show the change.  The week's aligned resources are cached per visibility key (a school's
non-author students share one entry) and dropped by every committed write of resources,
alignments, nodes or subscriptions, in whichever worker it is made.
"""

from __future__ import annotations

from redis import Redis
from sqlalchemy import update

from app.accounts.models import User
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common import cache as cache_module
from app.curriculum import services
from app.curriculum.models import Node
from app.curriculum.services import week_cache
from app.extensions import db
from tests.catalog.test_queries import count_statements
from tests.conftest import TEST_REDIS_URL, redis_cached_apps

from .test_calendar import MONDAY


def week(application, user_id: int, **kwargs) -> tuple[dict, int]:
    """One call of "this week" in ``application``, as a new request makes it: what it
    shows and how many statements it sent (the login's user load not counted)."""
    with application.app_context():
        user = db.session.get(User, user_id)
        user.roles  # noqa: B018  (loaded by the request's login, not by "this week")
        with count_statements(application) as statements:
            [view] = services.this_week(user, on=MONDAY, **kwargs)
        shown = {
            "calendar": view.calendar.id,
            # A relationship of a cached object still loads: it is in this session.
            "volume": view.calendar.volume.identifier,
            "week": view.week,
            "lessons": [lesson["node"].id for lesson in view.lessons],
            "titles": [lesson["node"].title for lesson in view.lessons],
            "knowledge_points": [
                [kp.id for kp in lesson["knowledge_points"]] for lesson in view.lessons
            ],
            "resources": sorted(
                entry.resource.content_id
                for lesson in view.lessons
                for entry in lesson["resources"]
            ),
            "progress": view.progress.id if view.progress else None,
            "delta": view.progress_delta,
        }
        db.session.rollback()
        db.session.remove()
        return shown, len(statements)


def test_a_cached_week_costs_two_statements_and_shows_the_same(
    database_url, tmp_path, klass, curriculum, publish
):
    """A miss reads the 7 statements; a hit only the reader's classes (the structure and
    the resources she may see come from Redis), and shows exactly what the miss did."""
    week13 = services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    content_id = publish(klass.teacher, "本周微课")
    services.align(klass.teacher, week13[0].id, "resource", content_id, "teaches")
    services.record_progress(klass.teacher, klass.class_id, week13[0].id)
    db.session.commit()
    with redis_cached_apps(database_url, tmp_path) as (reader, other):
        first, missed = week(reader, klass.student.id)
        again, hit = week(reader, klass.student.id)
        elsewhere, hit_elsewhere = week(other, klass.student.id)  # the other worker: a hit too
    assert first["lessons"] == [n.id for n in week13] and first["resources"] == [content_id]
    assert first["progress"] == week13[0].id and first["delta"] is not None
    assert again == elsewhere == first
    # The 7, the progress delta and whether she has authored anything (her visibility
    # key, then cached under the catalog generation).
    assert missed == 9, missed
    assert hit == hit_elsewhere == 1, hit


def test_without_redis_nothing_is_cached(app, klass, curriculum):
    """A per-process cache would keep another worker's old calendar: on SimpleCache
    every call reads the database."""
    assert app.config["CACHE_TYPE"] != "RedisCache"
    _, first = week(app, klass.student.id)
    _, second = week(app, klass.student.id)
    assert first == second == 7


def test_calendar_progress_and_framework_changes_reach_the_other_worker(
    database_url, tmp_path, klass, curriculum
):
    week13 = services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    moved, teacher_id, admin_id = week13[-1].id, klass.teacher.id, klass.admin.id
    with redis_cached_apps(database_url, tmp_path) as (reader, writer):
        before, _ = week(reader, klass.student.id)
        assert moved in before["lessons"] and before["progress"] is None
        assert week(reader, klass.student.id)[1] == 1  # cached

        with writer.app_context():  # the district moves a lesson to next week
            services.move_lesson(db.session.get(User, admin_id), klass.calendar_id, moved, 14)
            db.session.commit()
        after_move, _ = week(reader, klass.student.id)
        assert after_move["lessons"] == [i for i in before["lessons"] if i != moved]

        with writer.app_context():  # the teacher records where the class is
            services.record_progress(db.session.get(User, teacher_id), klass.class_id, moved)
            db.session.commit()
        with_progress, _ = week(reader, klass.student.id)
        assert with_progress["progress"] == moved and with_progress["delta"] is not None

        with writer.app_context():  # the teacher's own copy of the calendar for her class
            own = services.override_calendar(
                db.session.get(User, teacher_id), klass.calendar_id, klass.class_id
            )
            own_id = own.id
            db.session.commit()
        overridden, _ = week(reader, klass.student.id)
        assert overridden["calendar"] == own_id != klass.calendar_id

        lesson = with_progress["lessons"][0]
        with writer.app_context():  # a bulk UPDATE (as a CASE re-import writes nodes)
            db.session.execute(update(Node).where(Node.id == lesson).values(title="新标题"))
            db.session.commit()
        renamed, _ = week(reader, klass.student.id)
        assert renamed["titles"][0] == "新标题"


def test_alignments_and_withdrawals_show_at_once_and_per_reader(
    database_url, tmp_path, klass, curriculum, publish
):
    """Publishing, aligning, a visibility change, unaligning and withdrawing made through
    one worker show at once through the other (the rows' generation, not the
    structure's, is bumped), and the teacher's private resource never reaches the
    student through a shared entry."""
    week13 = services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    lesson, teacher_id = week13[0].id, klass.teacher.id
    with redis_cached_apps(database_url, tmp_path) as (reader, writer):
        assert week(reader, klass.student.id)[0]["resources"] == []
        assert week(reader, klass.student.id)[1] == 1  # rows cached too
        generation = _generation(reader)
        with writer.app_context():
            teacher = db.session.get(User, teacher_id)
            shared = publish(teacher, "共享")
            private = publish(teacher, "仅自己", visibility="private")
            for content_id in (shared, private):
                services.align(teacher, lesson, "resource", content_id, "teaches")
            db.session.commit()
        assert _generation(reader) == generation  # no structure changed
        student_sees, statements = week(reader, klass.student.id)
        teacher_sees, _ = week(reader, klass.teacher.id)
        assert student_sees["resources"] == [shared] and statements == 2  # rows read again
        assert teacher_sees["resources"] == sorted([shared, private])
        assert week(reader, klass.student.id) == (student_sees, 1)
        assert week(reader, klass.teacher.id)[0] == teacher_sees

        with writer.app_context():  # a bulk UPDATE: the shared one becomes private
            db.session.execute(
                update(Resource).where(Resource.content_id == shared).values(visibility="private")
            )
            db.session.commit()
        assert week(reader, klass.student.id)[0]["resources"] == []
        with writer.app_context():
            db.session.execute(
                update(Resource).where(Resource.content_id == shared).values(visibility="district")
            )
            db.session.commit()
        assert week(reader, klass.student.id)[0]["resources"] == [shared]

        with writer.app_context():  # unaligned
            [alignment] = [
                a for a in services.alignments_for_resource(shared) if a.node_id == lesson
            ]
            services.unalign(db.session.get(User, teacher_id), alignment.alignment_id)
            db.session.commit()
        assert week(reader, klass.student.id)[0]["resources"] == []
        with writer.app_context():
            services.align(db.session.get(User, teacher_id), lesson, "resource", shared, "teaches")
            db.session.commit()
        assert week(reader, klass.student.id)[0]["resources"] == [shared]

        with writer.app_context():  # withdrawn
            catalog.archive_content(db.session.get(User, teacher_id), Resource, shared)
            db.session.commit()
        assert week(reader, klass.student.id)[0]["resources"] == []
        assert week(reader, klass.teacher.id)[0]["resources"] == [private]


def test_an_author_with_a_stale_visibility_key_stores_nothing_shared(
    database_url, tmp_path, klass, curriculum, publish, monkeypatch
):
    """The visibility key leaves out the user's id when she has authored nothing, an
    answer cached under the catalog's generation.  If it is stale (she has just
    published; the catalog's own bump after that commit ends it), her call shows her
    private row but must not store it under the key her schoolmates share."""
    week13 = services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    private = publish(klass.teacher, "仅自己", visibility="private")
    services.align(klass.teacher, week13[0].id, "resource", private, "teaches")
    db.session.commit()
    real = catalog.visibility_key

    def stale(user):
        key = real(user)
        return (*key[:1], None, *key[2:]) if key[0] == "user" else key

    monkeypatch.setattr(catalog, "visibility_key", stale)
    with redis_cached_apps(database_url, tmp_path) as (reader, _other):
        assert week(reader, klass.teacher.id)[0]["resources"] == [private]  # not stored
        assert week(reader, klass.student.id)[0]["resources"] == []


def test_an_uncommitted_change_is_neither_cached_nor_read_from_the_cache(
    database_url, tmp_path, klass, curriculum
):
    """The unit of work that changed a calendar sees its change (it does not read the
    entry cached before it), and stores nothing the others could read before it commits
    or after it rolls back."""
    week13 = services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    moved, admin_id = week13[-1].id, klass.admin.id
    with redis_cached_apps(database_url, tmp_path) as (reader, writer):
        before, _ = week(reader, klass.student.id)
        with writer.app_context():
            services.move_lesson(db.session.get(User, admin_id), klass.calendar_id, moved, 14)
            assert week_cache._changes.marked()
            student = db.session.get(User, klass.student.id)
            [view] = services.this_week(student, on=MONDAY)
            assert moved not in [lesson["node"].id for lesson in view.lessons]
            assert week(reader, klass.student.id)[0] == before  # not committed yet
            db.session.rollback()
            assert not week_cache._changes.marked()
        assert week(reader, klass.student.id) == (before, 1)


def _generation(application) -> int:
    with application.app_context():
        return cache_module.generation(week_cache.SCOPE)


def test_a_framework_reimport_reaches_the_other_worker(
    database_url, tmp_path, klass, curriculum, package, orgs
):
    """A knowledge point added to a week's lesson by re-importing the CASE package: the
    new rows go in by COPY on PostgreSQL (past SQLAlchemy and its listeners, so the
    import marks the change itself) and by INSERTs on SQLite."""
    import copy
    import uuid

    from app.curriculum import case

    lesson = services.lessons_for_week(klass.admin, klass.calendar_id, 13)[0]
    [lesson_item] = [i for i in package["CFItems"] if i["identifier"] == lesson.identifier]
    model_kp = next(i for i in package["CFItems"] if i["CFItemType"] == "Knowledge Point")
    [model_link] = [
        a
        for a in package["CFAssociations"]
        if a["originNodeURI"]["identifier"] == model_kp["identifier"]
        and a["associationType"] == "isChildOf"
    ]
    new_id, link_id = str(uuid.uuid4()), str(uuid.uuid4())
    new_kp = {
        **copy.deepcopy(model_kp),
        "identifier": new_id,
        "uri": f"urn:uuid:{new_id}",
        "fullStatement": "新知识点",
    }
    new_kp.pop("alternativeLabel", None)
    new_link = {
        **copy.deepcopy(model_link),
        "identifier": link_id,
        "uri": f"urn:uuid:{link_id}",
        "originNodeURI": {"title": "新知识点", "identifier": new_id, "uri": new_kp["uri"]},
        "destinationNodeURI": {
            "title": lesson_item.get("fullStatement", ""),
            "identifier": lesson.identifier,
            "uri": lesson_item["uri"],
        },
        "sequenceNumber": 99,
    }
    package["CFItems"].append(new_kp)
    package["CFAssociations"].append(new_link)
    with redis_cached_apps(database_url, tmp_path) as (reader, writer):
        before, _ = week(reader, klass.student.id)
        with writer.app_context():
            case.import_package(package, district_id=orgs.district.id)
            db.session.commit()
            added = services.node_by_identifier(new_id).id
        after, _ = week(reader, klass.student.id)
    assert added not in before["knowledge_points"][0]
    assert after["knowledge_points"][0] == [*before["knowledge_points"][0], added]


def test_the_api_answers_the_same_from_the_cache_in_either_worker(
    database_url, tmp_path, klass, curriculum, publish, token_for
):
    """The cached nodes and calendar serialise as the database's do (the API's schema
    reads them after they are attached to the request's session)."""
    week13 = services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    content_id = publish(klass.teacher, "本周微课")
    services.align(klass.teacher, week13[0].id, "resource", content_id, "teaches")
    services.record_progress(klass.teacher, klass.class_id, week13[0].id)
    db.session.commit()
    headers = token_for(klass.student)
    url = f"/api/v1/curriculum/me/this-week?date={MONDAY}"
    with redis_cached_apps(database_url, tmp_path) as (reader, other):
        first = reader.test_client().get(url, headers=headers)  # a miss
        hit_here = reader.test_client().get(url, headers=headers)
        hit_there = other.test_client().get(url, headers=headers)
        with reader.app_context():
            assert cache_module.generation(week_cache.SCOPE) == 0  # reading bumped nothing
        probe = Redis.from_url(TEST_REDIS_URL)
        stored = list(probe.scan_iter(f"{reader.config['CACHE_KEY_PREFIX']}{week_cache.SCOPE}:*"))
        probe.close()
        assert len(stored) == 1  # the class's entry, which the two hits read
    assert first.status_code == hit_here.status_code == hit_there.status_code == 200
    body = first.get_json()
    assert body == hit_here.get_json() == hit_there.get_json()
    assert [lesson["node"]["id"] for lesson in body[0]["lessons"]] == [n.id for n in week13]
    assert body[0]["progress"]["id"] == week13[0].id
    assert body[0]["lessons"][0]["resources"][0]["content_id"] == content_id


def test_a_write_behind_the_apps_back_shows_after_cache_clear(
    database_url, tmp_path, klass, curriculum
):
    """Raw SQL from outside the app (psql, a script's COPY) passes no listener, so the
    cached week keeps the old title; `flask curriculum cache clear` (run in any worker,
    or on any host) makes every worker read it again."""
    week13 = services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    lesson = week13[0].id
    db.session.commit()
    with redis_cached_apps(database_url, tmp_path) as (reader, other):
        before, _ = week(reader, klass.student.id)
        assert week(reader, klass.student.id)[1] == 1  # cached
        with other.app_context(), db.engine.begin() as connection:  # behind the app's back
            connection.exec_driver_sql(
                f"UPDATE curriculum_nodes SET title = 'psql 改的标题' WHERE id = {int(lesson)}"
            )
        stale, _ = week(reader, klass.student.id)
        assert stale["titles"] == before["titles"]  # what the operator must know
        rows_generation = _generation_of(reader, week_cache.ROWS_SCOPE)

        with other.app_context():  # the command runs in the app whose context is current
            result = other.test_cli_runner().invoke(args=["curriculum", "cache", "clear"])
        assert result.exit_code == 0, result.output
        assert "cached week structures are cleared" in result.output
        assert "已清除缓存的教学周结构" in result.output
        fresh, _ = week(reader, klass.student.id)
        assert fresh["titles"][0] == "psql 改的标题"
        assert _generation_of(reader, week_cache.ROWS_SCOPE) > rows_generation


def _generation_of(application, scope: str) -> int:
    with application.app_context():
        return cache_module.generation(scope)


def test_cache_clear_without_redis_says_nothing_is_cached(app):
    result = app.test_cli_runner().invoke(args=["curriculum", "cache", "clear"])
    assert result.exit_code == 0, result.output
    assert "nothing to clear" in result.output and "无需清除" in result.output
