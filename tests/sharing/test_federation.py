"""Two real instances (gunicorn, own databases and storage) federating over HTTP:
request, approval, signed paged feed, diff, accept, re-release, ETag, withdrawal, and
tampered feeds (body changed, wrong key, replayed old release) refused with the reason
logged and nothing changed locally."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import func, select

from app.accounts import services as accounts
from app.accounts.models import Role
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.events import commit
from app.extensions import db
from app.sharing.models import RemoteRelease, SubscribedItem, Subscription, SyncLog
from app.sharing.services import catalogs
from tests.conftest import free_port
from tests.sharing.instances import (
    Instance,
    TamperProxy,
    api_call,
    approve_remote_request,
    instance_app,
    person,
    publish_art_videos,
    release_databases,
    request_subscription,
    sharing_env,
    wait_until,
)


def _seed_publisher(app):
    with app.app_context():
        db.create_all()
        made = publish_art_videos(
            ("tj", "天津市", "Tianjin"),
            ("hexi", "河西区", "Hexi"),
            ("hx1", "河西一中", "Hexi No.1"),
            teacher=("t@hexi.test", "河西老师"),
            admin=("a@hexi.test", "河西管理员"),
            titles=("京剧入门", "茶艺", "天文观测"),
            catalog_title="河西拓展课",
        )
        commit()
        return made.seed(
            ids=[video.content_id for video in made.videos],
            teacher_id=made.teacher.id,
            admin_id=made.admin.id,
        )


def _seed_subscriber(app):
    with app.app_context():
        db.create_all()
        region = accounts.ensure_region("wh", "武汉市", "Wuhan")
        district = accounts.ensure_district(region, "jianghan", "江汉区", "Jianghan")
        admin = person("a@wh.test", "江汉管理员", Role.DISTRICT_ADMIN, district=district)
        _, token = accounts.issue_token(admin, "test")
        commit()
        return {"district_id": district.id, "token": token}


def _state(app) -> dict:
    """Everything a sync may change on the subscriber."""
    with app.app_context():
        return {
            "releases": sorted(
                (r.number, r.digest) for r in db.session.execute(select(RemoteRelease)).scalars()
            ),
            "items": sorted(
                (i.content_id, i.version, i.digest, i.withdrawn)
                for i in db.session.execute(select(SubscribedItem)).scalars()
            ),
            "subscriptions": sorted(
                (s.id, str(s.status), s.accepted_number, s.remote_etag)
                for s in db.session.execute(select(Subscription)).scalars()
            ),
        }


@pytest.fixture
def federation(backend, tmp_path):
    a_port, proxy_port, b_port = free_port(), free_port(), free_port()
    proxy_url, b_url = f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{b_port}"
    # A is reached through the tampering proxy: that is its origin.
    a_db, drop_a, app_a = instance_app(backend, tmp_path, "a", proxy_url, b_url)
    b_db, drop_b, app_b = instance_app(backend, tmp_path, "b", b_url, proxy_url)
    seeds = {"a": _seed_publisher(app_a), "b": _seed_subscriber(app_b)}
    a = Instance("a", a_db, tmp_path / "a", a_port, sharing_env(proxy_url, b_url))
    b = Instance("b", b_db, tmp_path / "b", b_port, sharing_env(b_url, proxy_url))
    proxy = TamperProxy(a.url, proxy_port)
    try:
        a.start()
        b.start()
        proxy.start()
        yield type(
            "Federation",
            (),
            {"a": a, "b": b, "proxy": proxy, "app_a": app_a, "app_b": app_b, "seeds": seeds},
        )
    finally:
        proxy.stop()
        a.stop()
        b.stop()
        release_databases((app_a, app_b), (drop_a, drop_b))


def test_two_instances_subscribe_sync_diff_accept_withdraw_and_refuse_tampering(federation):
    f = federation
    a_token, b_token = f.seeds["a"]["token"], f.seeds["b"]["token"]
    uid, catalog_id = f.seeds["a"]["uid"], f.seeds["a"]["catalog_id"]

    # An origin outside the allow-list is refused before any request goes out.
    district_id = f.seeds["b"]["district_id"]
    refused = request_subscription(f.b, b_token, district_id, "http://127.0.0.1:9", uid)
    assert refused.status_code == 403, refused.text[:500]

    made = request_subscription(f.b, b_token, district_id, f.proxy.url, uid)
    assert made.status_code == 201, made.text
    sub_id = made.json()["id"]
    sync_url = f"{f.b.url}/api/v1/sharing/subscriptions/{sub_id}/sync"
    # Not approved yet: the feed is closed to B.
    assert api_call("POST", sync_url, b_token).json()["status"] == "pending"

    # The request goes out from a job once B's own request has answered.
    requests_list = wait_until(
        lambda: api_call(
            "GET", f"{f.a.url}/api/v1/sharing/catalogs/{catalog_id}/remote-requests", a_token
        ).json(),
        60,
        "the subscription request to reach A",
    )
    assert [(r["origin"], r["district_name"], r["status"]) for r in requests_list] == [
        (f.b.url, "江汉区", "pending")
    ]
    assert approve_remote_request(f.a, a_token, requests_list[0]["id"]).status_code == 200

    synced = api_call("POST", sync_url, b_token)
    assert synced.status_code == 200, synced.text
    assert synced.json() == {"status": "synced", "release_number": 1, "items": 3}
    pending = api_call(
        "GET", f"{f.b.url}/api/v1/sharing/subscriptions/{sub_id}/pending", b_token
    ).json()
    assert pending["number"] == 1 and pending["notes"] == "第一版"
    assert sorted(c["title"] for c in pending["diff"]["added"]) == sorted(
        ["京剧入门", "茶艺", "天文观测"]
    )
    accepted = api_call(
        "POST",
        f"{f.b.url}/api/v1/sharing/subscriptions/{sub_id}/accept",
        b_token,
        json={"release": 1},
    )
    assert accepted.json()["accepted_number"] == 1

    # Unchanged feed: the ETag answers 304 and nothing is fetched again.
    assert api_call("POST", sync_url, b_token).json()["status"] == "up_to_date"

    # The publisher changes an item and releases again; B sees a field-level diff.
    first_id = f.seeds["a"]["ids"][0]
    with f.app_a.app_context():
        from app.accounts.models import User

        teacher = db.session.get(User, f.seeds["a"]["teacher_id"])
        admin = db.session.get(User, f.seeds["a"]["admin_id"])
        catalog.update_content(teacher, Resource, first_id, {"title": "京剧入门（修订）"})
        catalog.submit_content(teacher, Resource, first_id)
        catalogs.publish_release(admin, catalogs.get_catalog(catalog_id), "修订")
        commit()
    assert api_call("POST", sync_url, b_token).json()["release_number"] == 2
    diff = api_call(
        "GET", f"{f.b.url}/api/v1/sharing/subscriptions/{sub_id}/pending", b_token
    ).json()["diff"]
    assert diff["counts"]["changed"] == 1 and diff["counts"]["added"] == 0
    [change] = diff["changed"]
    assert change["content_id"] == first_id
    assert {x["name"]: (x["old"], x["new"]) for x in change["fields"]}["title"] == (
        "京剧入门",
        "京剧入门（修订）",
    )
    with f.app_b.app_context():
        pinned = db.session.get(SubscribedItem, (sub_id, first_id))
        assert pinned.version == 1 and pinned.fields["title"] == "京剧入门"
    api_call(
        "POST",
        f"{f.b.url}/api/v1/sharing/subscriptions/{sub_id}/accept",
        b_token,
        json={"release": 2},
    )
    with f.app_b.app_context():
        assert db.session.get(SubscribedItem, (sub_id, first_id)).version == 2

    # A third release is out; tampered copies of it must all be refused.
    with f.app_a.app_context():
        admin = db.session.get(User, f.seeds["a"]["admin_id"])
        teacher = db.session.get(User, f.seeds["a"]["teacher_id"])
        obj = catalog.create_content(
            teacher,
            Resource,
            {
                "title": "书法",
                "kind": "video",
                "visibility": "district",
                "subject": "art",
                "url": "https://example.org/v",
            },
        )
        catalog.submit_content(teacher, Resource, obj.content_id)
        catalogs.publish_release(admin, catalogs.get_catalog(catalog_id), "新增书法")
        commit()
    before = _state(f.app_b)
    for mode, reason in (
        ("body", "bad signature"),
        ("wrong_key", "does not publish"),
        ("replay", "replayed old release 1"),
    ):
        f.proxy.mode = mode
        response = api_call("POST", sync_url, b_token)
        assert response.status_code == 409, (mode, response.text)
        assert response.json()["error"]["code"] == "feed_refused"
        assert reason in response.json()["error"]["message"], (mode, response.text)
        assert _state(f.app_b) == before, mode
        assert reason in f.b.log(), mode
    with f.app_b.app_context():
        logged = (
            db.session.execute(
                select(SyncLog.message).where(SyncLog.ok.is_(False)).order_by(SyncLog.id)
            )
            .scalars()
            .all()
        )
    assert len(logged) == 3 and "replayed" in logged[-1]

    # The honest feed still works afterwards.
    f.proxy.mode = "pass"
    assert api_call("POST", sync_url, b_token).json() == {
        "status": "synced",
        "release_number": 3,
        "items": 4,
    }

    # Withdrawal on A reaches B at the next sync, without any acceptance.
    withdrawn = api_call(
        "POST",
        f"{f.a.url}/api/v1/sharing/catalogs/{catalog_id}/withdrawals",
        a_token,
        json={"content_id": first_id, "reason": "版权到期"},
    )
    assert withdrawn.status_code == 201, withdrawn.text
    assert api_call("POST", sync_url, b_token).status_code == 200
    with f.app_b.app_context():
        assert db.session.get(SubscribedItem, (sub_id, first_id)).withdrawn is True
        assert db.session.execute(select(func.count(RemoteRelease.id))).scalar_one() == 3

    # Requests that are not signed by an allowed peer are refused by the publisher.
    feed = requests.get(f"{f.a.url}/sharing/federation/catalogs/{uid}/feed?page=1", timeout=30)
    assert feed.status_code == 403
