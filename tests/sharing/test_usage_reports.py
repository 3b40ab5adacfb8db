"""The publisher's usage endpoint against a correctly signed but hostile peer: wrong
types, negative counts, unknown items, bad days, unknown subscriptions and bad signatures
are refused with 4xx and nothing is stored; a good report re-sent replaces its days."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms
from sqlalchemy import func, select

from app.common.events import commit
from app.common.models import utcnow
from app.extensions import db
from app.sharing.models import RemoteSubscriber, RemoteUsage
from app.sharing.services import catalogs, usage
from app.sharing.services.manifest import canonical
from tests.sharing.test_hostile_feeds import HostilePeer

OWN = "http://shuyuan.test"
REQUEST_ID = "0f0f0f0f-1111-2222-3333-444444444444"


@pytest.fixture
def setup(app, ctx, people, publish, monkeypatch):
    peer = HostilePeer()
    monkeypatch.setitem(app.config, "SHARING_PEERS", [peer.origin])
    monkeypatch.setitem(app.config, "SHARING_ORIGIN", OWN)
    item = publish(title="方程练习", subject="math")
    catalog = catalogs.create_catalog(
        people.pub_admin, people.pub_admin.admin_district_ids().pop(), {"title": "数学"}
    )
    catalogs.set_entries(people.pub_admin, catalog, [("resource", item)])
    catalogs.publish_release(people.pub_admin, catalog, "一")
    subscriber = RemoteSubscriber(
        catalog_id=catalog.id,
        origin=peer.origin,
        request_id=REQUEST_ID,
        district_name="远方区",
        status="active",
    )
    db.session.add(subscriber)
    commit()
    yield type("Setup", (), {"peer": peer, "uid": catalog.uid, "item": item})
    peer.stop()


def _post(client, setup, body, tamper: bytes | None = None, sign: bool = True):
    raw = body if isinstance(body, bytes) else canonical(body)
    path = usage.USAGE_PATH.format(uid=setup.uid)
    prepared = requests.Request(
        "POST", OWN + path, data=raw, headers={"Content-Type": "application/json"}
    ).prepare()
    prepared.headers["Shuyuan-Origin"] = setup.peer.origin
    if sign:
        key = setup.peer.key

        class Keys(HTTPSignatureKeyResolver):
            def resolve_private_key(self, key_id):
                return key

        HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=Keys()).sign(
            prepared,
            key_id="hostile",
            label="shuyuan",
            tag="shuyuan-request",
            covered_component_ids=("@method", "@target-uri", "content-digest", "shuyuan-origin"),
            body=raw,
        )
    headers = dict(prepared.headers, Accept="application/json")
    return client.post(path, data=tamper or raw, headers=headers)


def _report(setup, counts=None, day=None, **overrides) -> dict:
    day = day or utcnow().date().isoformat()
    counts = counts or {"launches": 3, "completions": 1, "score_sum": 0.5, "score_count": 1}
    body = {
        "catalog": setup.uid,
        "request_id": REQUEST_ID,
        "days": [{"day": day, "items": {setup.item: counts}}],
    }
    body.update(overrides)
    return body


def _stored() -> list[tuple]:
    db.session.expire_all()
    return sorted(
        (str(r.day), r.content_id, r.launches, r.completions, r.score_sum, r.score_count)
        for r in db.session.execute(select(RemoteUsage)).scalars()
    )


def test_good_report_is_stored_and_resending_replaces_the_day(setup, client):
    assert _post(client, setup, _report(setup)).status_code == 200
    first = _stored()
    assert [row[2:] for row in first] == [(3, 1, 0.5, 1)]
    assert _post(client, setup, _report(setup)).status_code == 200
    assert _stored() == first  # same day again: replaced, not doubled
    later = {"launches": 7, "completions": 2, "score_sum": 1.0, "score_count": 2}
    assert _post(client, setup, _report(setup, later)).status_code == 200
    assert [row[2:] for row in _stored()] == [(7, 2, 1.0, 2)]
    # An empty day replaces the stored one with nothing.
    today = utcnow().date().isoformat()
    empty = _report(setup, days=[{"day": today, "items": {}}])
    assert _post(client, setup, empty).status_code == 200
    assert _stored() == []


def _counts(**change):
    counts = {"launches": 1, "completions": 0, "score_sum": 0.0, "score_count": 0}
    counts.update(change)
    return counts


@pytest.mark.parametrize(
    "make",
    [
        lambda s: [1, 2, 3],
        lambda s: dict(_report(s), extra=1),
        lambda s: _report(s, catalog="11111111-2222-3333-4444-555555555555"),
        lambda s: _report(s, request_id=42),
        lambda s: _report(s, days={"2026-01-01": {}}),
        lambda s: _report(s, counts=_counts(launches="3")),
        lambda s: _report(s, counts=_counts(launches=True)),
        lambda s: _report(s, counts=_counts(launches=-1)),
        lambda s: _report(s, counts=_counts(completions=1.5)),
        lambda s: _report(s, counts=_counts(score_sum=2.0, score_count=1)),
        lambda s: _report(s, counts=_counts(score_sum=-0.1, score_count=1)),
        lambda s: _report(s, counts=_counts(score_sum="x")),
        lambda s: _report(s, counts={"launches": 1}),
        lambda s: _report(s, counts=dict(_counts(), actor="mbox:kid@example.org")),
        lambda s: _report(s, day="2026-13-01"),
        lambda s: _report(s, day="30/11/2026"),
        lambda s: _report(s, day=(utcnow().date() + timedelta(days=5)).isoformat()),
        lambda s: _report(s, day=(utcnow().date() - timedelta(days=999)).isoformat()),
        lambda s: _report(
            s,
            days=[{"day": "2026-11-01", "items": {}}, {"day": "2026-11-01", "items": {}}],
        ),
        lambda s: _report(
            s, days=[{"day": utcnow().date().isoformat(), "items": {"unknown-item": _counts()}}]
        ),
        lambda s: _report(
            s, days=[{"day": utcnow().date().isoformat(), "items": {"../etc": _counts()}}]
        ),
    ],
)
def test_hostile_report_is_refused_and_nothing_stored(setup, client, make):
    # A valid day goes first in the same report: all or nothing.
    body = make(setup)
    if isinstance(body, dict) and isinstance(body.get("days"), list):
        yesterday = (utcnow().date() - timedelta(days=1)).isoformat()
        body["days"].insert(0, {"day": yesterday, "items": {setup.item: _counts()}})
    response = _post(client, setup, body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "usage_refused"
    assert _stored() == []


def test_unapproved_unsigned_or_tampered_reports_are_refused(setup, client):
    db.session.execute(RemoteSubscriber.__table__.update().values(status="pending"))
    commit()
    assert _post(client, setup, _report(setup)).status_code == 403
    db.session.execute(RemoteSubscriber.__table__.update().values(status="active"))
    commit()
    assert _post(client, setup, _report(setup), sign=False).status_code == 403
    tampered = canonical(_report(setup, counts=_counts(launches=999)))
    assert _post(client, setup, _report(setup), tamper=tampered).status_code == 403
    assert _post(client, setup, b"not json").status_code in (403, 422)
    assert db.session.execute(select(func.count()).select_from(RemoteUsage)).scalar() == 0
    assert json.loads(canonical(_report(setup)))["request_id"] == REQUEST_ID
