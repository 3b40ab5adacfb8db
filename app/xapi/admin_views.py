"""Administration pages of the LRS: credentials (create, scope, revoke; the secret is
shown once) and the district's forwarding target.  Under ``/admin/lrs`` rather than
``/xapi/``: that prefix is the LRS itself (Basic auth, JSON errors, no form CSRF).

Thin: the form is read here, authorisation and checks are in :mod:`app.xapi.services`;
the framework commits.  A refused form comes back filled in, each problem beside its
field, with status 422 (nothing stored)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from app.accounts import services as accounts
from app.accounts.auth import actor
from app.errors import Forbidden, Invalid, NotFound, Unauthorized
from app.i18n import N_
from app.plugins import link_card
from app.xapi import services

bp = Blueprint("xapi_admin", __name__, url_prefix="/admin/lrs")


# What the services say about a field, listed for the catalogue.
FIELD_MESSAGES = (
    N_("required"),
    N_("Required."),
    N_("not in district"),
    N_("An http(s) URL."),
    N_("Must be one of: 1.0.3, 2.0.0."),
    N_("Longer than maximum length 200."),
    N_("Longer than maximum length 500."),
    N_("Choose at least one scope."),
    N_("No such school."),
    N_("No such district."),
    N_("Not a valid integer."),
)

SCOPE_HELP = {
    "all": N_("everything"),
    "all/read": N_("read statements, documents and activities"),
    "statements/write": N_("write statements"),
    "statements/read": N_("read statements"),
    "statements/read/mine": N_("read only the statements it stored"),
    "state": N_("State documents"),
    "define": N_("define activities"),
    "profile": N_("Activity and Agent Profile documents"),
}


def _admin():
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    if not (user.is_platform_admin or user.is_district_admin()):
        raise Forbidden("Only district administrators manage LRS clients.")
    return user


def _districts(user):
    return [
        d
        for d in accounts.list_districts()
        if user.is_platform_admin or user.is_district_admin(d.id)
    ]


def _translated(fields: dict) -> dict[str, list[str]]:
    return {
        name: [_(str(m)) for m in (messages if isinstance(messages, list) else [messages])]
        for name, messages in fields.items()
    }


def _page(
    user,
    *,
    created=None,
    secret=None,
    client_form=None,
    client_errors=None,
    target_form=None,
    target_errors=None,
    status=200,
):
    districts = _districts(user)
    district_ids = {d.id for d in districts}
    targets = services.list_forward_targets(user)
    return render_template(
        "xapi/admin.html",
        clients=services.list_clients(user),
        created=created,
        secret=secret,
        districts=districts,
        schools=[s for s in accounts.list_schools() if s.district_id in district_ids],
        scopes=[(s, _(SCOPE_HELP.get(s, s))) for s in services.SCOPES],
        targets=targets,
        pending=services.pending_by_target(targets),
        versions=services.FORWARD_VERSIONS,
        client_form=client_form or {},
        client_errors=_translated(client_errors or {}),
        target_form=target_form or {},
        target_errors=_translated(target_errors or {}),
        lrs_url=url_for("xapi.lrs", resource="", _external=True).rstrip("/") + "/",
    ), status


def _int_field(form, name: str, errors: dict, required: bool = True) -> int | None:
    value = (form.get(name) or "").strip()
    if not value:
        if required:
            errors[name] = ["Required."]
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 0 < number <= 2147483647:
        errors[name] = ["Not a valid integer."]
        return None
    return number


@bp.route("/")
def index():
    return _page(_admin())


@bp.route("/clients", methods=["POST"])
def create_client():
    user = _admin()
    form = request.form
    errors: dict = {}
    name = (form.get("name") or "").strip()[:200]
    if not name:
        errors["name"] = ["required"]
    district_id = _int_field(form, "district_id", errors)
    school_id = _int_field(form, "school_id", errors, required=False)
    scopes = [s for s in form.getlist("scopes") if s in services.SCOPES]
    if not scopes:
        errors["scopes"] = ["Choose at least one scope."]
    if errors:
        return _page(user, client_form=form, client_errors=errors, status=422)
    try:
        client, secret = services.create_client_as(user, district_id, name, scopes, school_id)
    except NotFound as exc:
        field = "school_id" if "School" in exc.message else "district_id"
        return _page(
            user,
            client_form=form,
            client_errors={
                field: ["No such school." if field == "school_id" else "No such district."]
            },
            status=422,
        )
    except Invalid as exc:
        fields = {("school_id" if k == "school" else k): v for k, v in exc.fields.items()}
        return _page(user, client_form=form, client_errors=fields, status=422)
    # The secret is in this answer only (never in a redirect, a flash or the database).
    return _page(user, created=client, secret=secret)


@bp.route("/clients/<int:client_id>/revoke", methods=["POST"])
def revoke_client(client_id: int):
    services.revoke_client_as(_admin(), client_id)
    flash(_("The credentials were revoked."), "success")
    return redirect(url_for("xapi_admin.index"))


@bp.route("/forwarding", methods=["POST"])
def set_forwarding():
    user = _admin()
    form = request.form
    errors: dict = {}
    district_id = _int_field(form, "district_id", errors)
    if errors:
        return _page(user, target_form=form, target_errors=errors, status=422)
    try:
        services.set_forward_target_as(
            user,
            district_id,
            form.get("endpoint", ""),
            username=(form.get("username") or "").strip(),
            password=form.get("password") or None,
            version=form.get("version", "1.0.3"),
            active=form.get("active") == "on",
        )
    except NotFound:
        return _page(
            user,
            target_form=form,
            target_errors={"district_id": ["No such district."]},
            status=422,
        )
    except Invalid as exc:
        return _page(user, target_form=form, target_errors=exc.fields, status=422)
    flash(_("Forwarding saved."), "success")
    return redirect(url_for("xapi_admin.index"))


def admin_card(user=None, **_context) -> Markup:
    """The LRS card of the administration page (``admin_links`` slot)."""
    return link_card(
        "admin-lrs",
        url_for("xapi_admin.index"),
        _("Learning record store (xAPI)"),
        _(
            "Create and revoke credentials for xAPI tools, choose what each may do, "
            "and forward the district's statements to its own LRS."
        ),
    )
