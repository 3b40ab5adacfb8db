"""The list COUNT of every kind of reader, and the list endpoints' read-only requests.

A signed-in reader's COUNT is computed on PostgreSQL as the region-visible rows plus the
other rows she may read (queries._count_statement, docs/catalog.md): these tests hold it to
the same number as the rows she can open, for every reader kind the rules distinguish,
subscriptions included, on both databases."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import select

from app.catalog import services
from app.catalog.models import Course, Resource, State
from app.common.cache import bump
from app.extensions import db
from app.sharing.models import SubscribedItem, Subscription, SubscriptionStatus
from tests.catalog.helpers import make_content

VISIBILITIES = ("region", "district", "school", "private")
FILTERS = ("&language=zh", "&language=en", "&licence=CC0-1.0")


@pytest.fixture
def catalog(orgs, people, make_user):
    """Published content of every visibility in two districts, one archived row, and a
    district-visible course and resource of Xihu that Shangcheng receives by subscription."""
    authors = [people.owner, people.teacher_other_district]
    for model in (Course, Resource):
        for author in authors:
            for number, visibility in enumerate(VISIBILITIES):
                language = "en" if number % 2 else "zh"
                make_content(author, model, "published", visibility=visibility, language=language)
        make_content(people.owner, model, "archived", visibility="region")
        make_content(people.owner, model, "draft", visibility="region")
    subscribed = [
        make_content(people.teacher_same_school, model, "published", visibility="district")
        for model in (Course, Resource)
    ]
    subscription = Subscription(
        subscriber_district_id=orgs.review_district.id,
        status=SubscriptionStatus.ACTIVE,
        remote_origin="https://publisher.example.test",
        remote_catalog_uid=str(uuid.uuid4()),
    )
    db.session.add(subscription)
    db.session.flush()
    for content_id, kind in zip(subscribed, ("course", "resource"), strict=True):
        db.session.add(
            SubscribedItem(
                subscription_id=subscription.id,
                content_id=content_id,
                item_type=kind,
                version=1,
                digest="0" * 64,
                fields={},
            )
        )
    db.session.commit()
    bump(services.CACHE_SCOPE)  # the subscription was written without its signal
    return subscribed


def _readers(people, orgs, make_user) -> dict:
    readers = {name: getattr(people, name) for name in vars(people)}
    # A member of the subscriber district (her district comes from her account).
    readers["subscriber_member"] = make_user(
        "student", school=orgs.review_school, district=orgs.review_district, password=None
    )
    return readers


def _readable(user, model) -> set[str]:
    rows = db.session.execute(select(model).where(model.state == State.PUBLISHED)).scalars()
    return {row.content_id for row in rows if services.can_view(user, row)}


def test_every_reader_counts_the_rows_she_can_open(api, orgs, people, make_user, catalog, backend):
    readers = _readers(people, orgs, make_user)
    for name, user in readers.items():
        for model, path in ((Course, "courses"), (Resource, "resources")):
            readable = _readable(user, model)
            response = api.get(f"/api/v1/{path}?per_page=100", user)
            assert response.status_code == 200, response.json
            assert {item["id"] for item in response.json["items"]} == readable, name
            assert response.json["total"] == len(readable), (name, path)
            for extra in FILTERS:
                filtered = api.get(f"/api/v1/{path}?per_page=100{extra}", user)
                assert filtered.json["total"] == len(filtered.json["items"]), (name, extra)
    # Xihu's district-visible resource reaches Shangcheng's members by the subscription
    # only (so the subscription clause was counted), and nobody outside those districts.
    assert catalog[1] in _readable(readers["subscriber_member"], Resource)
    assert catalog[1] in _readable(people.teacher_other_district, Resource)
    assert catalog[1] not in _readable(None, Resource)


def test_signed_in_count_is_split_on_postgresql(people, catalog, backend):
    """The statement that makes the number: on PostgreSQL a sum of two counts whose
    second has no region clause (so each clause can use its own index); elsewhere, and
    for anonymous readers, one plain count."""
    for user, split in ((None, False), (people.student_same, backend == "postgresql")):
        statement = services.queries._count_statement(user, Resource, services.CatalogFilters())
        sql = str(statement.compile(db.engine))
        assert (sql.count("count(*)") == 2) is split, sql
    # A district admin reads every row of her district: one plain count (see the function).
    admin = services.queries._count_statement(
        people.dadmin_own, Resource, services.CatalogFilters()
    )
    assert str(admin.compile(db.engine)).count("count(*)") == 1


@contextmanager
def _transaction_states(monkeypatch):
    seen = []
    original = psycopg.Cursor.execute

    def execute(self, query, *args, **kwargs):
        seen.append((str(query)[:80], self.connection.info.transaction_status))
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    try:
        yield seen
    finally:
        monkeypatch.undo()


def test_list_requests_read_outside_a_transaction_on_postgresql(
    api, people, catalog, backend, monkeypatch
):
    """The list API only reads: on PostgreSQL its statements run in autocommit, without
    the BEGIN and COMMIT round trips (app/common/transaction.py)."""
    if backend != "postgresql":
        return  # sqlite3 opens a transaction only before a write anyway
    api.get("/api/v1/me", people.student_same)  # the token's first use is a write
    idle = psycopg.pq.TransactionStatus.IDLE
    for path in ("/api/v1/courses?page=1", "/api/v1/resources?language=zh"):
        with _transaction_states(monkeypatch) as seen:
            assert api.get(path, people.student_same).status_code == 200
        assert seen and all(status == idle for _, status in seen), seen
    # Creating content (POST on the same endpoint) still runs in a transaction.
    with _transaction_states(monkeypatch) as seen:
        response = api.post(
            "/api/v1/courses",
            people.owner,
            json={"title": "事务", "kind": "curriculum", "subject": "math", "grade": "g7"},
        )
    assert response.status_code == 201, response.json
    assert any(status != idle for _, status in seen), seen
