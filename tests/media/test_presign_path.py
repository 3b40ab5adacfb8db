"""The presigned-URL request path (issue 14): statements pinned, no transaction round trips
on PostgreSQL for the read, and the token's ``last_used_at`` still written atomically."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from app.accounts import services as accounts
from app.accounts.models import ApiToken
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.events import commit
from app.common.models import utcnow
from app.extensions import db
from app.media.models import MediaAttachment, MediaObject
from app.media.storage import get_storage


@pytest.fixture
def presign_case(client, make_user, make_resource, orgs):
    """A published resource with a file, a student of its school with a token, and an
    outsider with a token; returns (attachment id, student headers, token id, outsider
    headers)."""
    teacher = make_user("teacher")
    content_id = make_resource(teacher)
    resource = catalog.get_content(teacher, Resource, content_id, "latest")
    obj = MediaObject(
        backend=get_storage().name,
        key="sha256/ab/" + "ab" * 32,
        size=1000,
        checksum="ab" * 32,
        media_type="video/mp4",
    )
    db.session.add(obj)
    db.session.flush()
    attachment = MediaAttachment(
        resource_id=resource.id, object_id=obj.id, filename="第一课.mp4", role="primary"
    )
    db.session.add(attachment)
    commit()
    catalog.submit_content(db.session.merge(teacher), Resource, content_id)
    commit()
    student = make_user("student")
    outsider = make_user("student", school=orgs.review_school)
    token, raw = accounts.issue_token(student, "t")
    _, outsider_raw = accounts.issue_token(outsider, "t")
    token.last_used_at = utcnow()
    commit()
    return (
        attachment.public_id,
        {"Authorization": f"Bearer {raw}"},
        token.id,
        {"Authorization": f"Bearer {outsider_raw}"},
    )


def _recorder():
    """(statement, whether the driver had a transaction open) for each statement."""
    seen: list[tuple[str, bool]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        driver = conn.connection.driver_connection
        if conn.dialect.name == "postgresql":
            in_transaction = driver.info.transaction_status != 0
        else:
            in_transaction = driver.in_transaction
        seen.append((statement, in_transaction))

    event.listen(db.engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(db.engine, "before_cursor_execute", record)


def _last_used(token_id):
    db.session.rollback()
    return db.session.execute(
        select(ApiToken.last_used_at).where(ApiToken.id == token_id)
    ).scalar_one()


def test_presigned_url_reads_in_one_statement_outside_a_transaction(client, presign_case, backend):
    attachment_id, headers, _, outsider_headers = presign_case
    seen, stop = _recorder()
    try:
        for path, count in (
            (f"/api/v1/media/{attachment_id}/url", 1),
            (f"/media/a/{attachment_id}", 2),
        ):
            seen.clear()
            answer = client.get(path, headers=headers)
            assert answer.status_code in (200, 302)
            # The token (with its user and roles) and the attachment with its resource:
            # one statement on the API route (principal_route(reads=...)), two on the
            # redirect (an ORM user, then the file).
            assert len(seen) == count, seen
            assert "api_tokens" in seen[0][0] and "media_attachments" in seen[-1][0]
            if backend == "postgresql":
                # No BEGIN/COMMIT round trips for a read (app/common/transaction.py).
                assert not any(in_transaction for _, in_transaction in seen), seen
        # Visibility and authentication are unchanged.
        url = f"/api/v1/media/{attachment_id}/url"
        assert client.get(url, headers=outsider_headers).status_code == 404
        assert client.get(url).status_code == 404
        assert client.get(url, headers={"Authorization": "Bearer sy_wrong"}).status_code == 401
    finally:
        stop()
    answer = client.get(f"/api/v1/media/{attachment_id}/url", headers=headers)
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in answer.headers


def test_last_used_at_is_written_in_a_transaction_and_rolled_back_with_an_error(
    client, presign_case, backend
):
    attachment_id, headers, token_id, _ = presign_case
    old = utcnow() - timedelta(hours=1)
    db.session.execute(
        ApiToken.__table__.update().where(ApiToken.id == token_id).values(last_used_at=old)
    )
    commit()
    # A refused request (an attachment that does not exist) stores nothing.
    assert client.get("/api/v1/media/nope/url", headers=headers).status_code == 404
    assert _last_used(token_id) == old
    seen, stop = _recorder()
    try:
        answer = client.get(f"/api/v1/media/{attachment_id}/url", headers=headers)
    finally:
        stop()
    assert answer.status_code == 200
    assert [s for s, _ in seen if s.startswith("UPDATE")], seen
    assert _last_used(token_id) > old
