"""Two real instances, the subscriber on ONE single-threaded gunicorn worker:

- the subscription request still reaches the publisher (it is sent by a job after the
  subscriber's own request has answered; sent from inside it, the publisher's read of the
  subscriber's keys would find no free worker and the request would fail);
- usage of federated subscribers: the subscriber reports daily counts upstream, signed;
  the publisher shows them by subscriber district, and re-sending a day replaces it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from app.common.events import commit
from app.common.models import utcnow
from app.extensions import db
from app.sharing.models import SubscribedItem, Subscription, Usage
from app.sharing.services import usage
from tests.conftest import free_port
from tests.sharing.instances import (
    Instance,
    api_call,
    approve_remote_request,
    instance_app,
    release_databases,
    request_subscription,
    sharing_env,
    wait_until,
)
from tests.sharing.test_federation import _seed_publisher, _seed_subscriber


@pytest.fixture
def pair(backend, tmp_path):
    a_port, b_port = free_port(), free_port()
    a_url, b_url = f"http://127.0.0.1:{a_port}", f"http://127.0.0.1:{b_port}"
    a_db, drop_a, app_a = instance_app(backend, tmp_path, "a", a_url, b_url)
    b_db, drop_b, app_b = instance_app(backend, tmp_path, "b", b_url, a_url)
    seeds = {"a": _seed_publisher(app_a), "b": _seed_subscriber(app_b)}
    a = Instance("a", a_db, tmp_path / "a", a_port, sharing_env(a_url, b_url))
    b = Instance("b", b_db, tmp_path / "b", b_port, sharing_env(b_url, a_url), workers=1, threads=1)
    try:
        a.start()
        b.start()
        yield type("Pair", (), {"a": a, "b": b, "app_a": app_a, "app_b": app_b, "seeds": seeds})
    finally:
        a.stop()
        b.stop()
        release_databases((app_a, app_b), (drop_a, drop_b))


def _usage_on_a(p) -> list[dict]:
    response = api_call(
        "GET",
        f"{p.a.url}/api/v1/sharing/catalogs/{p.seeds['a']['catalog_id']}/usage?days=7",
        p.seeds["a"]["token"],
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_single_worker_subscriber_request_sync_and_usage_reports(pair):
    p = pair
    a_token, b_token = p.seeds["a"]["token"], p.seeds["b"]["token"]
    catalog_id = p.seeds["a"]["catalog_id"]
    made = request_subscription(
        p.b, b_token, p.seeds["b"]["district_id"], p.a.url, p.seeds["a"]["uid"]
    )
    assert made.status_code == 201, made.text
    sub_id = made.json()["id"]
    sub_url = f"{p.b.url}/api/v1/sharing/subscriptions/{sub_id}"

    # The job delivered the request: the publisher read B's keys from B's one worker.
    remote_url = f"{p.a.url}/api/v1/sharing/catalogs/{catalog_id}/remote-requests"
    listed = wait_until(
        lambda: api_call("GET", remote_url, a_token).json(), 60, "the request to arrive"
    )
    assert [(r["origin"], r["district_name"]) for r in listed] == [(p.b.url, "江汉区")]
    assert wait_until(
        lambda: api_call("GET", sub_url, b_token).json()["remote_requested_at"], 30, "delivery"
    )
    assert "request not delivered" not in p.b.log()
    assert approve_remote_request(p.a, a_token, listed[0]["id"]).status_code == 200
    synced = api_call("POST", sub_url + "/sync", b_token)
    assert synced.status_code == 200, synced.text
    assert synced.json()["status"] == "synced"
    assert api_call("POST", sub_url + "/accept", b_token, json={"release": 1}).status_code == 200

    # Usage counted on the subscriber (as its learning_event receiver does).
    today = utcnow().date()
    first, second = p.seeds["a"]["ids"][:2]
    with p.app_b.app_context():
        assert db.session.execute(select(func.count()).select_from(SubscribedItem)).scalar() == 3
        for day, content_id, counts in (
            (today, first, {"launches": 3, "completions": 1, "score_sum": 0.8, "score_count": 1}),
            (
                today - timedelta(days=1),
                second,
                {"launches": 2, "completions": 2, "score_sum": 1.5, "score_count": 2},
            ),
        ):
            db.session.add(Usage(subscription_id=sub_id, content_id=content_id, day=day, **counts))
        commit()
        assert usage.report_upstream(7) == {sub_id: "usage report delivered"}
        commit()
        body = usage.report_body(db.session.get(Subscription, sub_id), 7)
    # Counts only: no user, actor or statement in what goes upstream.
    assert set(body) == {"catalog", "request_id", "days"}
    assert all(set(c) == set(usage._COUNTS) for d in body["days"] for c in d["items"].values())

    [row] = _usage_on_a(p)
    host = p.b.url.split("//")[1]
    assert row["district"] == f"江汉区 ({host})"
    assert (row["launches"], row["completions"]) == (5, 3)
    assert row["average_score"] == pytest.approx(2.3 / 3)
    assert row["by_day"][today.isoformat()] == 3

    # The same days again: replaced, never doubled; a changed count replaces the day.
    with p.app_b.app_context():
        assert usage.report_upstream(7)[sub_id].endswith("delivered")
        commit()
    assert _usage_on_a(p)[0]["launches"] == 5
    with p.app_b.app_context():
        row_b = db.session.get(Usage, (sub_id, first, today))
        row_b.launches = 4
        commit()
        usage.report_upstream(7)
        commit()
    assert _usage_on_a(p)[0]["launches"] == 6

    # Unsigned report: 403, nothing changes.
    unsigned = requests.post(
        f"{p.a.url}/sharing/federation/catalogs/{p.seeds['a']['uid']}/usage",
        json=body,
        timeout=30,
    )
    assert unsigned.status_code == 403
    assert _usage_on_a(p)[0]["launches"] == 6
