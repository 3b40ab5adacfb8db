"""The presigned-URL route's thin path (issue 14): its caller is a light principal read
with one Core statement (app/accounts/principal.py), its file one Core row
(app/media/services/permissions.visible_file).  Same decisions as the ORM user and
resource, no ORM user loaded; the token and the file are read in one statement (also
with Redis), and the principal cache of other principal routes keeps the tombstones of
token lookups, so a revocation or a role change on one worker (or host) is refused by
the other at once."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import event, select

from app.accounts import services as accounts
from app.accounts.models import ApiToken, Role, RoleAssignment, User
from app.catalog import services as catalog
from app.catalog.models import Resource, State, Visibility
from app.common import cache
from app.common.events import commit
from app.common.models import utcnow
from app.extensions import db
from app.media.models import MediaAttachment, MediaDerivative, MediaObject
from app.media.storage import get_storage
from tests.conftest import redis_cached_apps


def _attach(resource_id: int, key: str = "ab", media_type: str = "video/mp4") -> MediaAttachment:
    obj = MediaObject(
        backend=get_storage().name,
        key=f"sha256/{key}/" + key * 32,
        size=1000,
        checksum=key * 32,
        media_type=media_type,
    )
    db.session.add(obj)
    db.session.flush()
    attachment = MediaAttachment(
        resource_id=resource_id, object_id=obj.id, filename="第一课.mp4", role="primary"
    )
    db.session.add(attachment)
    commit()
    return attachment


def _bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


def _user_loads(application):
    """A list that grows by one for every ORM ``User`` loaded by ``application``."""
    loads: list[int] = []

    def loaded(target, context):
        loads.append(target.id)

    event.listen(User, "load", loaded)
    return loads, lambda: event.remove(User, "load", loaded)


@pytest.fixture
def matrix(make_user, make_resource, orgs, token_for):
    """A teacher's resource with a file, and every kind of viewer with a token."""
    author = make_user("teacher")
    content_id = make_resource(author)
    resource = catalog.get_content(author, Resource, content_id, "latest")
    attachment = _attach(resource.id)
    viewers = {
        "author": make_user("teacher"),
        "same school": make_user("student"),
        "same district": make_user("student", school=orgs.other_school),
        "other district": make_user("student", school=orgs.review_school),
        "district admin": make_user("district_admin"),
        "other district admin": make_user("district_admin", district=orgs.review_district),
        "platform admin": make_user("platform_admin"),
    }
    viewers["author"] = author
    headers = {name: token_for(user) for name, user in viewers.items()}
    headers["anonymous"] = {}
    return resource.id, attachment.public_id, viewers, headers


def test_the_route_decides_as_can_view_on_the_orm_rows(client, matrix):
    """Every state × visibility × viewer: 200 exactly when the catalog's ``can_view``
    on the ORM user and resource says yes (404 otherwise, as before)."""
    resource_id, attachment_id, viewers, headers = matrix
    url = f"/api/v1/media/{attachment_id}/url"
    for state, visibility in itertools.product(
        (State.DRAFT, State.PUBLISHED, State.ARCHIVED), list(Visibility)
    ):
        db.session.execute(
            Resource.__table__.update()
            .where(Resource.id == resource_id)
            .values(state=state.value, visibility=visibility.value)
        )
        commit()
        db.session.expire_all()
        resource = db.session.get(Resource, resource_id)
        for name, sent in headers.items():
            user = db.session.get(User, viewers[name].id) if name in viewers else None
            expected = 200 if catalog.can_view(user, resource) else 404
            answer = client.get(url, headers=sent)
            assert answer.status_code == expected, (state, visibility, name, answer.get_json())


def test_a_bearer_request_loads_no_orm_user_and_reads_in_one_statement(app, client, matrix):
    _, attachment_id, _, headers = matrix
    url = f"/api/v1/media/{attachment_id}/url"
    # The first use writes last_used_at (at most once a minute); measured after it.
    assert client.get(url, headers=headers["author"]).status_code == 200
    loads, stop = _user_loads(app)
    seen: list[str] = []

    def record(conn, cursor, statement, *rest):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        answer = client.get(url, headers=headers["author"])
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
        stop()
    assert answer.status_code == 200
    assert loads == []
    # The token, its user and roles, and the file with its resource: one round trip.
    assert len(seen) == 1, seen
    assert "role_assignments" in seen[0] and "media_attachments" in seen[0], seen


def test_the_token_read_with_the_file_gives_the_same_principal(app, make_user, orgs, matrix):
    """principal_for_token_with (token and file in one statement) answers exactly as
    principal_for_token, for a user with several roles, and hands out the file's row only
    with a valid token; a file that does not exist is None, the principal still found."""
    from app.media.services import file_read

    _, attachment_id, _, _ = matrix
    _, raw = _teacher_with_two_more_roles(make_user, orgs)
    with app.test_request_context():
        alone = accounts.principal_for_token(raw)
        found, row = accounts.principal_for_token_with(raw, *file_read(attachment_id))
        assert found == alone and len(found.roles) == 3
        assert row.filename == "第一课.mp4" and row.media_type == "video/mp4"
        assert isinstance(row.state, State) and isinstance(row.visibility, Visibility)
        found, row = accounts.principal_for_token_with(raw, *file_read("nope"))
        assert found == alone and row is None
        assert accounts.principal_for_token_with("sy_wrong", *file_read(attachment_id)) == (
            None,
            None,
        )
        db.session.rollback()


def _teacher_with_two_more_roles(make_user, orgs):
    """A teacher who is also a district admin elsewhere and a student at another school,
    and a bearer token of hers (committed)."""
    user = make_user("teacher")
    accounts.assign_role(user, Role.DISTRICT_ADMIN, district=orgs.review_district)
    accounts.assign_role(user, Role.STUDENT, school=orgs.other_school)
    _, raw = accounts.issue_token(user)
    commit()
    return user, raw


def test_a_principal_answers_every_role_check_as_its_user(app, make_user, orgs):
    user, raw = _teacher_with_two_more_roles(make_user, orgs)
    with app.test_request_context():
        found = accounts.principal_for_token(raw)
        user = db.session.get(User, user.id)
        assert (found.id, found.public_id) == (user.id, user.public_id)
        for check in ("member_school_ids", "member_district_ids", "admin_district_ids"):
            assert getattr(found, check)() == getattr(user, check)(), check
        for flag in ("is_platform_admin", "is_teacher", "is_student"):
            assert getattr(found, flag) == getattr(user, flag), flag
        assert found.role_names() == user.role_names()
        assert found.is_district_admin(orgs.review_district.id)
        assert not found.is_district_admin(orgs.district.id)


def test_revoked_expired_and_disabled_tokens_get_401(client, matrix):
    _, attachment_id, viewers, headers = matrix
    url = f"/api/v1/media/{attachment_id}/url"
    admin = headers["platform admin"]
    assert client.get(url, headers=admin).status_code == 200
    token = db.session.execute(
        select(ApiToken).filter_by(user_id=viewers["platform admin"].id)
    ).scalar_one()
    token.expires_at = utcnow().replace(year=2000)
    commit()
    assert client.get(url, headers=admin).status_code == 401
    token.expires_at = None
    token.revoked_at = utcnow()
    commit()
    assert client.get(url, headers=admin).status_code == 401
    author = headers["author"]
    assert client.get(url, headers=author).status_code == 200
    db.session.get(User, viewers["author"].id).is_active_account = False
    commit()
    assert client.get(url, headers=author).status_code == 401


def test_variants_downloads_and_bad_arguments(client, matrix):
    resource_id, attachment_id, _, headers = matrix
    source = db.session.execute(
        select(MediaAttachment).filter_by(public_id=attachment_id)
    ).scalar_one()
    poster = MediaObject(
        backend=get_storage().name,
        key="sha256/cd/" + "cd" * 32,
        size=10,
        checksum="cd" * 32,
        media_type="image/jpeg",
    )
    db.session.add(poster)
    db.session.flush()
    db.session.add(MediaDerivative(source_id=source.object_id, kind="poster", object_id=poster.id))
    commit()
    url = f"/api/v1/media/{attachment_id}/url"
    author = headers["author"]
    got = client.get(url + "?variant=poster", headers=author)
    assert got.status_code == 200
    assert got.get_json()["filename"] == "第一课-poster.jpg"
    assert (got.get_json()["media_type"], got.get_json()["size"]) == ("image/jpeg", 10)
    assert client.get(url + "?variant=thumbnail", headers=author).status_code == 404
    assert client.get(url + "?download=1", headers=author).status_code == 200
    # The schema's validation, as with the decorator: 422 and the same envelope.
    for bad in ("?variant=original", "?download=maybe"):
        refused = client.get(url + bad, headers=author)
        assert refused.status_code == 422, bad
    # Someone who may not see the resource learns nothing about its variants.
    assert client.get(url + "?variant=poster", headers=headers["other district"]).status_code == 404
    body = client.get(url, headers=author).get_json()
    assert set(body) == {"url", "expires_in", "media_type", "filename", "size"}


def test_a_logged_in_browser_without_a_token_gets_the_url(client, matrix, login):
    _, attachment_id, viewers, _ = matrix
    url = f"/api/v1/media/{attachment_id}/url"
    assert client.get(url).status_code == 404  # anonymous: a school-visible draft
    login(viewers["author"])
    assert client.get(url).status_code == 200


# --- two workers on one Redis -------------------------------------------------------------


@pytest.fixture
def workers(database_url, tmp_path, ctx):
    with redis_cached_apps(database_url, tmp_path) as apps:
        yield apps


@pytest.fixture
def shared_file(make_user, make_resource):
    """A school-visible published resource with a file, and a student of the school
    with a token; returns (url, raw token, student id, token id)."""
    teacher = make_user("teacher")
    content_id = make_resource(teacher, publish=True)
    resource = catalog.get_content(teacher, Resource, content_id, "published")
    attachment = _attach(resource.id)
    student = make_user("student")
    token, raw = accounts.issue_token(student)
    commit()
    return f"/api/v1/media/{attachment.public_id}/url", raw, student.id, token.id


def _token_statements(application) -> list[str]:
    seen: list[str] = []
    with application.app_context():
        engine = db.engine

    def record(conn, cursor, statement, *rest):
        if "api_tokens" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return seen


def _principal_in(application, raw):
    with application.test_request_context():
        found = accounts.principal_for_token(raw)
        db.session.commit()  # last_used_at, as the request would
        return found


def test_the_route_reads_its_token_in_the_database_also_with_redis(workers, shared_file):
    """With Redis the route does not read the principal cache: its token is checked in
    the statement that reads the file anyway, so a revocation on another worker is
    refused at the next request without any tombstone."""
    url, raw, _, token_id = shared_file
    first, second = (application.test_client() for application in workers)
    assert first.get(url, headers=_bearer(raw)).status_code == 200
    statements = _token_statements(workers[0])
    assert first.get(url, headers=_bearer(raw)).status_code == 200
    assert len(statements) == 1 and "media_attachments" in statements[0], statements
    revoked = second.delete(f"/api/v1/auth/tokens/{token_id}", headers=_bearer(raw))
    assert revoked.status_code in (200, 204)
    assert first.get(url, headers=_bearer(raw)).status_code == 401
    assert second.get(url, headers=_bearer(raw)).status_code == 401


def test_the_principal_is_cached_and_a_revocation_elsewhere_is_refused_at_once(
    workers, shared_file
):
    """principal_for_token (a principal route without ``reads``) uses the shared cache
    under the tombstone rules of app/accounts/token_cache.py."""
    url, raw, _, token_id = shared_file
    assert _principal_in(workers[0], raw) is not None
    token_hash = accounts._hash_token(raw)
    with workers[0].app_context():
        assert isinstance(cache.get(f"principal:{token_hash}"), tuple)
    statements = _token_statements(workers[0])
    assert _principal_in(workers[0], raw) is not None
    assert statements == []  # a cache hit
    second = workers[1].test_client()
    revoked = second.delete(f"/api/v1/auth/tokens/{token_id}", headers=_bearer(raw))
    assert revoked.status_code in (200, 204)
    assert _principal_in(workers[0], raw) is None
    assert second.get(url, headers=_bearer(raw)).status_code == 401


def test_a_role_change_elsewhere_reaches_the_route_at_once(workers, shared_file, orgs):
    url, raw, student_id, _ = shared_file
    first = workers[0].test_client()
    assert first.get(url, headers=_bearer(raw)).status_code == 200
    assert _principal_in(workers[0], raw) is not None  # and cached
    with workers[1].app_context():
        # She changes school: the role of the old school and her school column go.
        for assignment in db.session.execute(
            select(RoleAssignment).filter_by(user_id=student_id)
        ).scalars():
            assignment.school_id = orgs.review_school.id
            assignment.district_id = None
        user = db.session.get(User, student_id)
        user.school_id = orgs.review_school.id
        db.session.commit()
    assert first.get(url, headers=_bearer(raw)).status_code == 404
    assert _principal_in(workers[0], raw).school_id == orgs.review_school.id
    with workers[1].app_context():
        db.session.get(User, student_id).is_active_account = False
        db.session.commit()
    assert first.get(url, headers=_bearer(raw)).status_code == 401
    assert _principal_in(workers[0], raw) is None


def test_a_token_that_expires_while_its_principal_is_cached_is_refused(workers, shared_file):
    url, raw, _, token_id = shared_file
    first = workers[0].test_client()
    assert _principal_in(workers[0], raw) is not None
    past = utcnow().replace(year=2000)
    with workers[0].app_context():
        # Behind the ORM's back (no tombstone): only the expiry check of a hit refuses it.
        db.session.execute(
            ApiToken.__table__.update().where(ApiToken.id == token_id).values(expires_at=past)
        )
        db.session.commit()
        name = f"principal:{accounts._hash_token(raw)}"
        _, found = cache.get(name)
        cache.set(name, (past, found), 60)
    assert _principal_in(workers[0], raw) is None
    assert first.get(url, headers=_bearer(raw)).status_code == 401
