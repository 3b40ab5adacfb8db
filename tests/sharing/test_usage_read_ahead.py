"""The usage counter takes the subscriptions a launch read with its user (issue 14, fifth
pass: the LTI launch statement reads them) only when they answer its own question: the
same transaction, user and item, and districts the read covered."""

from __future__ import annotations

import json

from sqlalchemy import select

from app.accounts import services as accounts
from app.accounts.models import Role
from app.common.events import commit
from app.extensions import db
from app.sharing.models import SubscribedItem, Subscription, SubscriptionStatus, Usage
from app.sharing.services import usage

ITEM = {"item_type": "resource", "version": 1, "digest": "0" * 64, "fields": {}}


def _subscribed(district_id: int, content_id: str) -> int:
    sub = Subscription(subscriber_district_id=district_id, status=SubscriptionStatus.ACTIVE)
    db.session.add(sub)
    db.session.flush()
    db.session.add(SubscribedItem(subscription_id=sub.id, content_id=content_id, **ITEM))
    return sub.id


def _counts() -> dict[int, int]:
    db.session.expire_all()
    return {u.subscription_id: u.launches for u in db.session.execute(select(Usage)).scalars()}


def test_the_read_ahead_is_used_only_for_what_it_covered(orgs, make_user):
    student = make_user("student")
    here = _subscribed(orgs.district.id, "c-1")
    there = _subscribed(orgs.review_district.id, "c-1")
    commit()
    covered = frozenset({orgs.district.id})

    # What the read found is what is counted (here: a read that found nothing).
    usage.read_ahead(student, covered, "c-1", None)
    assert usage.record(student, "launched", ["c-1"], None) == 0
    # Another item, or another transaction: the counter reads for itself.
    usage.read_ahead(student, covered, "c-1", None)
    assert usage.record(student, "launched", ["c-2"], None) == 0
    commit()
    assert usage.record(student, "launched", ["c-1"], None) == 1
    commit()
    assert _counts() == {here: 1}

    # A district the read did not cover (a role given after it): the counter reads.
    usage.read_ahead(student, covered, "c-1", json.dumps([[here, orgs.district.id]]))
    accounts.assign_role(student, Role.TEACHER, school=orgs.review_school)
    db.session.flush()
    assert usage.record(student, "launched", ["c-1"], None) == 2
    commit()
    assert _counts() == {here: 2, there: 1}

    # Rows of a district she no longer belongs to are not counted.
    both = frozenset({orgs.district.id, orgs.review_district.id})
    found = json.dumps([[here, orgs.district.id], [there, orgs.review_district.id]])
    other = make_user("student")
    usage.read_ahead(other, both, "c-1", found)
    assert usage.record(other, "launched", ["c-1"], None) == 1
    commit()
    assert _counts() == {here: 3, there: 1}
