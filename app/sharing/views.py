"""Sharing pages: a district's catalogs and releases, its subscriptions with the diff of
a pending release, pinned items and the "withdrawn by its publisher" page.

Thin: parse the form, call a service, redirect with a flash.  The framework commits.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from app.accounts.auth import actor
from app.catalog import vocab
from app.errors import Invalid, NotFound
from app.extensions import db
from app.sharing import withdrawal_notice
from app.sharing.models import Subscription
from app.sharing.services import catalogs, federation, subscriptions, usage

bp = Blueprint("sharing", __name__, url_prefix="/sharing")


def _user():
    user = actor()
    if user is None:
        from app.errors import Unauthorized

        raise Unauthorized("Log in first.")
    return user


def _district_choice(user) -> int:
    ids = sorted(user.admin_district_ids())
    raw = request.form.get("district_id")
    if raw and raw.isdigit() and (int(raw) in ids or user.is_platform_admin):
        return int(raw)
    if not ids:
        raise Invalid("Only a district admin can do this.")
    return ids[0]


@bp.get("/")
def home():
    user = _user()
    subs = subscriptions.subscriptions_of(user)
    pending = {s.id: subscriptions._pending(s) for s in subs}
    return render_template(
        "sharing/home.html",
        catalogs=catalogs.catalogs_of(user),
        subscriptions=subs,
        pending=pending,
        available=catalogs.subscribable_catalogs(user),
        subscribed={s.catalog_id for s in subs if s.catalog_id},
    )


@bp.post("/catalogs")
def create_catalog():
    user = _user()
    rules = {
        facet: [v for v in request.form.getlist(facet) if v]
        for facet in catalogs.RULE_FACETS
        if any(request.form.getlist(facet))
    }
    title = (request.form.get("title") or "").strip()
    if not title or len(title) > 200:
        raise Invalid("A title is required.", fields={"title": ["1 to 200 characters."]})
    catalog = catalogs.create_catalog(
        user,
        _district_choice(user),
        {"title": title, "rules": rules, "region_public": bool(request.form.get("region_public"))},
    )
    flash(_("Catalog created."), "success")
    return redirect(url_for("sharing.catalog_page", catalog_id=catalog.id))


@bp.get("/catalogs/<int:catalog_id>")
def catalog_page(catalog_id: int):
    user = _user()
    catalog = catalogs.get_catalog(catalog_id)
    preview = catalogs.preview(user, catalog)
    usage_rows = usage.usage_for_catalog(catalog.id)
    return render_template(
        "sharing/catalog.html",
        catalog=catalog,
        preview=preview,
        releases=catalogs.list_releases(catalog),
        requests=subscriptions.requests_for(user, catalog),
        remote_requests=federation.remote_requests(user, catalog),
        withdrawn=catalogs.withdrawn_items(catalog),
        vocab=vocab,
        usage=usage_rows,
        # Built by chart_svg from numbers and escaped district names only.
        chart=Markup(  # noqa: S704
            usage.chart_svg(usage_rows, title=_("Launches per day by subscriber district"))
        ),
    )


@bp.post("/catalogs/<int:catalog_id>/releases")
def release(catalog_id: int):
    user = _user()
    catalog = catalogs.get_catalog(catalog_id)
    made, refused = catalogs.publish_release(
        user,
        catalog,
        request.form.get("notes", "")[:4000],
        allow_refusals=bool(request.form.get("allow_refusals")),
    )
    flash(
        _("Release %(n)s published with %(count)s items.", n=made.number, count=made.item_count),
        "success",
    )
    if refused:
        flash(
            _(
                "%(n)s items were left out: their licence or owner does not allow sharing.",
                n=len(refused),
            ),
            "warning",
        )
    return redirect(url_for("sharing.catalog_page", catalog_id=catalog.id))


@bp.post("/catalogs/<int:catalog_id>/withdraw")
def withdraw(catalog_id: int):
    user = _user()
    catalog = catalogs.get_catalog(catalog_id)
    catalogs.withdraw_item(
        user, catalog, request.form.get("content_id", ""), request.form.get("reason", "")
    )
    flash(_("The item was withdrawn from every subscriber."), "success")
    return redirect(url_for("sharing.catalog_page", catalog_id=catalog.id))


@bp.post("/subscriptions/<int:subscription_id>/decision")
def decide(subscription_id: int):
    user = _user()
    sub = db.session.get(Subscription, subscription_id)
    if sub is None or sub.catalog is None:
        raise NotFound("Subscription not found.")
    subscriptions.decide(user, sub, request.form.get("approve") == "1")
    return redirect(url_for("sharing.catalog_page", catalog_id=sub.catalog_id))


@bp.post("/remote-requests/<int:row_id>/decision")
def decide_remote(row_id: int):
    row = federation.decide_remote(_user(), row_id, request.form.get("approve") == "1")
    return redirect(url_for("sharing.catalog_page", catalog_id=row.catalog_id))


@bp.post("/subscribe")
def subscribe():
    user = _user()
    raw = request.form.get("catalog_id", "")
    catalog = catalogs.get_catalog(int(raw) if raw.isdigit() else -1)
    filters = {
        facet: [v for v in request.form.getlist(facet) if v]
        for facet in ("subject", "grade", "kind")
        if any(request.form.getlist(facet))
    }
    sub = subscriptions.subscribe(
        user,
        _district_choice(user),
        catalog,
        filters or None,
        bool(request.form.get("auto_accept")),
    )
    flash(_("Subscription requested.") if sub.status == "pending" else _("Subscribed."), "success")
    return redirect(url_for("sharing.subscription_page", subscription_id=sub.id))


@bp.get("/subscriptions/<int:subscription_id>")
def subscription_page(subscription_id: int):
    user = _user()
    sub = subscriptions.get_subscription(user, subscription_id)
    items, _withdrawn = subscriptions._held(sub, with_fields=True)
    return render_template(
        "sharing/subscription.html",
        sub=sub,
        pending=subscriptions.pending(user, sub),
        held=sorted(items.items(), key=lambda kv: kv[1]["fields"]["title"]),
        withdrawn=sorted(_withdrawn),
        log=federation.sync_log(sub) if sub.remote_origin else [],
    )


@bp.post("/subscriptions/<int:subscription_id>/accept")
def accept(subscription_id: int):
    user = _user()
    sub = subscriptions.get_subscription(user, subscription_id)
    raw = request.form.get("release", "")
    chosen = None if request.form.get("all") else request.form.getlist("item")
    taken = subscriptions.accept(user, sub, int(raw) if raw.isdigit() else -1, chosen)
    flash(_("%(n)s changes accepted.", n=len(taken)), "success")
    return redirect(url_for("sharing.subscription_page", subscription_id=sub.id))


@bp.post("/subscriptions/<int:subscription_id>/options")
def options(subscription_id: int):
    user = _user()
    sub = subscriptions.get_subscription(user, subscription_id)
    subscriptions.set_options(user, sub, auto_accept=bool(request.form.get("auto_accept")))
    flash(_("Saved."), "success")
    return redirect(url_for("sharing.subscription_page", subscription_id=sub.id))


@bp.post("/subscriptions/<int:subscription_id>/sync")
def sync(subscription_id: int):
    from app.common.transaction import keep_on_error
    from app.sharing.services.keys import FederationRefused

    user = _user()
    sub = subscriptions.get_subscription(user, subscription_id)
    try:
        result = federation.sync(sub)
    except FederationRefused as exc:
        keep_on_error()  # the refusal stays in the sync log (see the API's sync)
        flash(_("The feed was refused: %(reason)s", reason=exc.reason), "error")
        return redirect(url_for("sharing.subscription_page", subscription_id=sub.id))
    flash(_("Sync: %(status)s.", status=_(result.status)), "success")
    return redirect(url_for("sharing.subscription_page", subscription_id=sub.id))


@bp.get("/subscriptions/<int:subscription_id>/items/<content_id>")
def item(subscription_id: int, content_id: str):
    """An item as the subscriber accepted it (its pinned version), or the notice that
    its publisher withdrew it."""
    user = _user()
    found = subscriptions.subscribed_item(user, subscription_id, content_id)
    if found.withdrawn:
        return redirect(url_for("sharing.withdrawn", content_id=content_id))
    return render_template("sharing/item.html", item=found, sub=found.subscription, vocab=vocab)


@bp.get("/withdrawn/<content_id>")
def withdrawn(content_id: str):
    """Shown wherever a withdrawn item is linked from (LMS links, search results).
    Status 410: the link is not broken, the item is gone on purpose."""
    notice = withdrawal_notice(content_id)
    if notice is None:
        raise NotFound("Item not found.")
    return render_template("sharing/withdrawn.html", notice=notice), 410


@bp.get("/cartridge/courses/<content_id>.imscc")
def course_cartridge(content_id: str):
    """Common Cartridge 1.3 (Thin) of a course the reader may see."""
    from flask import Response

    from app.sharing.services import cartridge

    body = cartridge.export_course(actor(), content_id)
    return Response(
        body,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{content_id}.imscc"'},
    )


@bp.get("/cartridge/calendars/<int:calendar_id>/weeks/<int:week>.imscc")
def week_cartridge(calendar_id: int, week: int):
    """Common Cartridge 1.3 (Thin) of one week of a teaching calendar: its lessons and
    the resources aligned to them that the reader may see."""
    from flask import Response

    from app.sharing.services import cartridge

    exported = cartridge.export_week(actor(), calendar_id, week)
    return Response(
        exported.body,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{exported.filename}"'},
    )
