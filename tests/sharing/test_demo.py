"""The sharing demo: two more regions, catalogs, and a subscription with a pending
release (what a district admin sees after `make run`); loading twice changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from app.accounts import services as accounts
from app.accounts.models import Role
from app.common.events import commit
from app.config import PROJECT_ROOT
from app.demo.services import LoadReport
from app.extensions import db
from app.sharing import demo
from app.sharing.models import Release, Subscription
from app.sharing.services import subscriptions


def _hangzhou():
    region = accounts.ensure_region("hz", "杭州市", "Hangzhou")
    for code, email in (("hz-xihu", "district@x.test"), ("hz-shangcheng", "reviewer@x.test")):
        district = accounts.ensure_district(region, code, code, code)
        admin = accounts.create_user(email, email, None, district=district)
        accounts.assign_role(admin, Role.DISTRICT_ADMIN, district=district)
    commit()


def test_demo_has_a_pending_release_with_a_diff(ctx):
    _hangzhou()
    demo.load(PROJECT_ROOT / "content", LoadReport(), lambda name: None)
    commit()
    xihu = db.session.execute(
        select(Subscription).where(
            Subscription.accepted_number == 1, Subscription.auto_accept.is_(False)
        )
    ).scalar_one()
    pending = subscriptions._pending(xihu)
    assert pending.number == 2
    assert pending.diff.counts()["added"] == 1 and pending.diff.counts()["changed"] == 1
    # The all-rights-reserved script of Hexi was refused at release.
    titles = {
        e["fields"]["title"]
        for r in db.session.execute(select(Release)).scalars()
        for e in r.manifest.values()
    }
    assert "相声台本（内部）" not in titles and "天津快板入门" in titles
    counts = (
        db.session.execute(select(func.count(Release.id))).scalar_one(),
        db.session.execute(select(func.count(Subscription.id))).scalar_one(),
    )
    demo.load(PROJECT_ROOT / "content", LoadReport(), lambda name: None)
    commit()
    assert counts == (
        db.session.execute(select(func.count(Release.id))).scalar_one(),
        db.session.execute(select(func.count(Subscription.id))).scalar_one(),
    )
