"""Catalogs, releases with the licence check, local subscriptions, diffs, acceptance,
pinning and withdrawal — through the JSON API and pages, on both databases."""

from __future__ import annotations

from sqlalchemy import select

from app.catalog.models import Course, Resource
from app.extensions import db
from app.sharing.models import Release, SubscribedItem
from tests.catalog.helpers import assert_error


def _catalog(api, people, orgs, **extra):
    body = {"district_id": orgs.district.id, "title": "西湖区七年级数学"} | extra
    response = api.post("/api/v1/sharing/catalogs", people.pub_admin, json=body)
    assert response.status_code == 201, response.json
    return response.json


def _release(api, people, catalog_id, notes="", allow_refusals=False):
    return api.post(
        f"/api/v1/sharing/catalogs/{catalog_id}/releases",
        people.pub_admin,
        json={"notes": notes, "allow_refusals": allow_refusals},
    )


def _subscribe(api, people, orgs, catalog_id, **extra):
    response = api.post(
        "/api/v1/sharing/subscriptions",
        people.sub_admin,
        json={"district_id": orgs.review_district.id, "catalog_id": catalog_id} | extra,
    )
    assert response.status_code == 201, response.json
    sub = response.json
    assert sub["status"] == "pending"
    decided = api.post(
        f"/api/v1/sharing/subscriptions/{sub['id']}/decision",
        people.pub_admin,
        json={"approve": True},
    )
    assert decided.status_code == 200 and decided.json["status"] == "active"
    return sub["id"]


def _visible_ids(api, user, kind="resources") -> set[str]:
    response = api.get(f"/api/v1/{kind}?per_page=100", user)
    assert response.status_code == 200, response.json
    return {item["id"] for item in response.json["items"]}


def _searched_ids(api, user, q) -> set[str]:
    response = api.get(f"/api/v1/search?q={q}", user)
    assert response.status_code == 200, response.json
    return {hit["content_id"] for hit in response.json["items"]}


def test_release_by_rule_and_hand_with_licence_check(api, people, orgs, publish):
    maths = publish(title="方程", subject="math", grades=["g7"])
    publish(title="古诗", subject="chinese")
    reserved = publish(title="教辅（版权所有）", subject="math", licence="ARR")
    private = publish(title="私人笔记", subject="math", visibility="private")
    catalog = _catalog(api, people, orgs, rules={"subject": ["math"]})

    refused = _release(api, people, catalog["id"], notes="第一版")
    error = assert_error(refused, 409, "licence_refused")
    assert set(error["fields"]) == {f"resource:{reserved}", f"resource:{private}"}
    assert "all rights" in error["fields"][f"resource:{reserved}"][0]
    assert db.session.execute(select(Release)).first() is None

    made = _release(api, people, catalog["id"], notes="第一版", allow_refusals=True)
    assert made.status_code == 201, made.json
    assert made.json["release"]["number"] == 1
    assert made.json["release"]["item_count"] == 1
    assert {r["reason"] for r in made.json["refused"]} == {"all_rights_reserved", "private"}
    release = db.session.execute(select(Release)).scalar_one()
    assert set(release.manifest) == {maths}
    entry = release.manifest[maths]
    assert entry["version"] == 1 and entry["fields"]["title"] == "方程"
    assert len(entry["digest"]) == 64

    # A second release gets the next number; the first is untouched.
    again = _release(api, people, catalog["id"], allow_refusals=True)
    assert again.json["release"]["number"] == 2
    db.session.expire_all()
    assert db.session.get(Release, release.id).manifest == release.manifest


def test_only_the_districts_admin_manages_its_catalog(api, people, orgs):
    response = api.post(
        "/api/v1/sharing/catalogs",
        people.sub_admin,
        json={"district_id": orgs.district.id, "title": "x"},
    )
    assert_error(response, 403)
    catalog = _catalog(api, people, orgs)
    assert_error(_release(api, people, catalog["id"]), 409)  # empty catalog
    response = api.post(
        f"/api/v1/sharing/catalogs/{catalog['id']}/releases", people.author, json={}
    )
    assert_error(response, 403)
    assert_error(api.post("/api/v1/sharing/catalogs", people.pub_admin, json=[1, 2]), 422)
    assert_error(
        api.put(
            f"/api/v1/sharing/catalogs/{catalog['id']}/items",
            people.pub_admin,
            json={"items": [{"type": "resource", "content_id": "../../etc"}]},
        ),
        422,
    )


def test_subscribe_diff_accept_some_pin_and_withdraw(api, people, orgs, publish, revise, client):
    eq = publish(title="方程", subject="math")
    ineq = publish(title="不等式", subject="math")
    poem = publish(title="古诗", subject="chinese")
    course = publish(
        "course",
        title="七年级数学",
        sections=[
            {"title": "第一单元", "items": [{"resource_id": eq}, {"resource_id": ineq}]},
            {"title": "第二单元", "items": []},
        ],
    )
    catalog = _catalog(api, people, orgs)
    api.put(
        f"/api/v1/sharing/catalogs/{catalog['id']}/items",
        people.pub_admin,
        json={
            "items": [{"type": "resource", "content_id": cid} for cid in (eq, ineq, poem)]
            + [{"type": "course", "content_id": course}]
        },
    )
    assert _release(api, people, catalog["id"], notes="v1").status_code == 201

    # Before subscribing, the other district's teacher sees none of it.
    assert not _visible_ids(api, people.sub_teacher) & {eq, ineq, poem}
    assert _searched_ids(api, people.sub_teacher, "方程") == set()
    sub_id = _subscribe(api, people, orgs, catalog["id"], filters={"subject": ["math"]})

    pending = api.get(f"/api/v1/sharing/subscriptions/{sub_id}/pending", people.sub_admin).json
    assert pending["number"] == 1
    assert {c["content_id"] for c in pending["diff"]["added"]} == {eq, ineq, course}
    # Still nothing visible until accepted.
    assert not _visible_ids(api, people.sub_teacher) & {eq, ineq}
    accepted = api.post(
        f"/api/v1/sharing/subscriptions/{sub_id}/accept", people.sub_admin, json={"release": 1}
    )
    assert accepted.status_code == 200 and accepted.json["accepted_number"] == 1
    assert _visible_ids(api, people.sub_teacher) & {eq, ineq, poem} == {eq, ineq}
    assert _searched_ids(api, people.sub_teacher, "方程") == {eq}
    assert course in _visible_ids(api, people.sub_teacher, "courses")
    assert api.get(f"/api/v1/resources/{eq}", people.sub_teacher).status_code == 200
    assert api.get(f"/api/v1/resources/{poem}", people.sub_teacher).status_code == 404

    # Release 2: one re-titled, one re-licensed and moved to another unit, one new.
    revise(eq, title="一元一次方程")
    revise(ineq, licence="CC-BY-NC-4.0")
    revise(
        course,
        model=Course,
        sections=[
            {"title": "第一单元", "items": [{"resource_id": eq}]},
            {"title": "第二单元", "items": [{"resource_id": ineq}]},
        ],
    )
    fresh = publish(title="函数初步", subject="math")
    api.put(
        f"/api/v1/sharing/catalogs/{catalog['id']}/items",
        people.pub_admin,
        json={
            "items": [{"type": "resource", "content_id": cid} for cid in (eq, ineq, poem, fresh)]
            + [{"type": "course", "content_id": course}]
        },
    )
    assert _release(api, people, catalog["id"], notes="更正标题").status_code == 201
    diff = api.get(f"/api/v1/sharing/subscriptions/{sub_id}/pending", people.sub_admin).json
    assert diff["number"] == 2 and diff["notes"] == "更正标题"
    counts = diff["diff"]["counts"]
    assert counts["added"] == 1 and counts["relicensed"] == 1 and counts["moved"] == 1
    changed = {c["content_id"]: c for c in diff["diff"]["changed"]}
    title_change = {f["name"]: f for f in changed[eq]["fields"]}["title"]
    assert (title_change["old"], title_change["new"]) == ("方程", "一元一次方程")
    assert changed[eq]["old_version"] == 1 and changed[eq]["new_version"] == 2
    assert changed[ineq]["relicensed"] and changed[ineq]["moved"]
    assert {f["name"] for f in changed[ineq]["fields"]} >= {"licence", "unit"}

    # A stale release number is refused: nobody accepts a diff she was not shown.
    stale = api.post(
        f"/api/v1/sharing/subscriptions/{sub_id}/accept", people.sub_admin, json={"release": 1}
    )
    assert_error(stale, 409)
    # Accept only the re-titled item: the others stay pinned to what was accepted.
    some = api.post(
        f"/api/v1/sharing/subscriptions/{sub_id}/accept",
        people.sub_admin,
        json={"release": 2, "items": [eq]},
    )
    assert some.json["accepted"] == [eq] and some.json["accepted_number"] == 1
    db.session.expire_all()
    pinned = db.session.get(SubscribedItem, (sub_id, ineq))
    assert pinned.version == 1 and pinned.fields["licence"] == "CC-BY-4.0"
    assert db.session.get(SubscribedItem, (sub_id, eq)).version == 2
    assert db.session.get(SubscribedItem, (sub_id, fresh)) is None
    left = api.get(f"/api/v1/sharing/subscriptions/{sub_id}/pending", people.sub_admin).json
    assert {c["content_id"] for c in left["diff"]["added"] + left["diff"]["changed"]} == {
        ineq,
        fresh,
        course,
    }
    rest = api.post(
        f"/api/v1/sharing/subscriptions/{sub_id}/accept", people.sub_admin, json={"release": 2}
    )
    assert rest.json["accepted_number"] == 2
    assert fresh in _visible_ids(api, people.sub_teacher)
    none_left = api.get(f"/api/v1/sharing/subscriptions/{sub_id}/pending", people.sub_admin)
    assert none_left.json["diff"] is None

    # Withdrawal is immediate, and links land on a clear page, not a 404/500.
    withdrawn = api.post(
        f"/api/v1/sharing/catalogs/{catalog['id']}/withdrawals",
        people.pub_admin,
        json={"content_id": ineq, "reason": "版权问题"},
    )
    assert withdrawn.status_code == 201, withdrawn.json
    assert ineq not in _visible_ids(api, people.sub_teacher)
    assert _searched_ids(api, people.sub_teacher, "不等式") == set()
    assert api.get(f"/api/v1/resources/{ineq}", people.sub_teacher).status_code == 404
    page = client.get(f"/sharing/withdrawn/{ineq}")
    assert page.status_code == 410
    text = page.get_data(as_text=True)
    assert "不等式" in text and "版权问题" in text
    # The next release leaves it out, and the diff does not offer it back.
    assert _release(api, people, catalog["id"]).status_code == 201
    later = api.get(f"/api/v1/sharing/subscriptions/{sub_id}/pending", people.sub_admin).json
    assert later["diff"] is None or ineq not in {c["content_id"] for c in later["diff"]["added"]}
    assert_error(
        api.post(
            f"/api/v1/sharing/catalogs/{catalog['id']}/withdrawals",
            people.pub_admin,
            json={"content_id": ineq},
        ),
        409,
    )


def test_auto_accept_and_other_districts_cannot_peek(api, people, orgs, publish, make_user):
    eq = publish(title="方程")
    catalog = _catalog(api, people, orgs, rules={"subject": ["math"]})
    _release(api, people, catalog["id"])
    sub_id = _subscribe(api, people, orgs, catalog["id"], auto_accept=True)
    assert eq in _visible_ids(api, people.sub_teacher)
    fresh = publish(title="函数")
    _release(api, people, catalog["id"])
    assert fresh in _visible_ids(api, people.sub_teacher)
    # The publisher's admin is not the subscriber's: the subscription is not hers.
    assert_error(api.get(f"/api/v1/sharing/subscriptions/{sub_id}/pending", people.pub_admin), 404)
    assert_error(
        api.post(
            f"/api/v1/sharing/subscriptions/{sub_id}/accept",
            people.sub_teacher,
            json={"release": 2},
        ),
        404,
    )
    assert_error(
        api.post(f"/api/v1/sharing/subscriptions/{sub_id}/accept", people.sub_admin, json=[]),
        422,
    )


def test_diff_page_for_the_subscriber(api, people, orgs, publish, revise, login):
    eq = publish(title="方程")
    catalog = _catalog(api, people, orgs, rules={"subject": ["math"]})
    _release(api, people, catalog["id"])
    sub_id = _subscribe(api, people, orgs, catalog["id"])
    api.post(
        f"/api/v1/sharing/subscriptions/{sub_id}/accept", people.sub_admin, json={"release": 1}
    )
    revise(eq, title="一元一次方程")
    _release(api, people, catalog["id"], notes="标题更正")
    browser = login(people.sub_admin)
    home = browser.get("/sharing/").get_data(as_text=True)
    assert "pending-release" in home
    page = browser.get(f"/sharing/subscriptions/{sub_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "标题更正" in text and "<del>方程</del>" in text and "<ins>一元一次方程</ins>" in text
    item = browser.get(f"/sharing/subscriptions/{sub_id}/items/{eq}")
    assert item.status_code == 200 and "方程" in item.get_data(as_text=True)
    assert db.session.execute(select(Resource).filter_by(content_id=eq)).first()


def test_publisher_sees_usage_by_subscriber_district(api, people, orgs, publish):
    from app import signals
    from app.accounts.models import User
    from app.catalog.models import State
    from app.common.events import commit, send_after_commit
    from app.sharing.models import Usage

    eq = publish(title="方程")
    other = publish(title="未订阅的资源", subject="chinese")
    catalog = _catalog(api, people, orgs, rules={"subject": ["math"]})
    _release(api, people, catalog["id"])
    _subscribe(api, people, orgs, catalog["id"], auto_accept=True)
    resource = db.session.execute(
        select(Resource).filter_by(content_id=eq, state=State.PUBLISHED)
    ).scalar_one()
    unshared = db.session.execute(
        select(Resource).filter_by(content_id=other, state=State.PUBLISHED)
    ).scalar_one()
    teacher = db.session.get(User, people.sub_teacher.id)
    for verb, result in (
        ("launched", None),
        ("launched", None),
        ("completed", {"score": {"scaled": 0.8}}),
        ("completed", {"score": {"scaled": 0.6}}),
    ):
        send_after_commit(
            signals.learning_event,
            user=teacher,
            verb=verb,
            resource=resource,
            result=result,
            context={},
        )
        commit()
    # Use of the publisher's own district, or of items not shared, is not counted.
    send_after_commit(
        signals.learning_event,
        user=db.session.get(User, people.author.id),
        verb="launched",
        resource=resource,
        result=None,
        context={},
    )
    send_after_commit(
        signals.learning_event,
        user=teacher,
        verb="launched",
        resource=unshared,
        result=None,
        context={},
    )
    commit()
    [row] = db.session.execute(select(Usage)).scalars().all()
    assert (row.launches, row.completions, row.score_count) == (2, 2, 2)
    page = api.get(f"/sharing/catalogs/{catalog['id']}", people.pub_admin)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<svg" in text and "上城区 (2)" in text and "70%" in text
    assert teacher.name not in text
