"""LTI endpoints (login, launch, JWKS, dynamic registration, deep linking picker) and the
admin pages.  Thin: the work is in :mod:`app.lti.services`; the framework commits."""

from __future__ import annotations

from contextlib import nullcontext
from urllib.parse import urlparse

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_user
from markupsafe import Markup
from pylti1p3.contrib.flask import FlaskCookieService
from pylti1p3.exception import LtiException

from app.accounts import services as accounts
from app.accounts.auth import actor
from app.common.transaction import keep_on_error, savepoint, skip_commit
from app.curriculum import services as curriculum
from app.errors import Forbidden, Invalid, NotFound, Unauthorized
from app.extensions import csrf
from app.i18n import N_
from app.lti.errors import LaunchRefused
from app.lti.jobs import enqueue_after_commit
from app.lti.services import (
    ags,
    deeplinking,
    dynamic,
    keys,
    launch,
    nrps,
    permissions,
    registrations,
)
from app.lti.services import (
    login as login_service,
)
from app.lti.services.http import http_session
from app.lti.store import launch_store
from app.lti.tool import DatabaseToolConf, ShuyuanMessageLaunch, flask_request
from app.plugins import link_card

bp = Blueprint("lti", __name__, url_prefix="/lti")


def base_url() -> str:
    configured = current_app.config.get("LTI_BASE_URL")
    return (configured or request.host_url).rstrip("/")


def launch_url() -> str:
    return base_url() + "/lti/launch"


def _origin(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


@bp.errorhandler(LaunchRefused)
def refused(exc: LaunchRefused):
    if g.pop("lti_spent", False) and launch_store().in_database:
        # The nonce (or parked launch) this refusal consumed stays consumed: the same
        # id_token must not be accepted later, when whatever refused it has changed.
        # (On Redis it was consumed there for good; the transaction holds nothing else
        # and is rolled back.)
        keep_on_error()
    current_app.logger.info("LTI refused (%s): %s", exc.code, exc.message)
    return render_template(
        "lti/error.html", status=exc.status, code=exc.code, message=_(exc.message, **exc.params)
    ), exc.status


@bp.errorhandler(LtiException)
def lti_error(exc: LtiException):
    return render_template(
        "lti/error.html",
        status=400,
        code="lti_invalid",
        message=_("The launch is not valid: %(reason)s", reason=str(exc)[:200]),
    ), 400


# --- public LTI endpoints -------------------------------------------------------------


@bp.route("/jwks.json")
def jwks():
    response = jsonify(keys.jwks())  # the first call creates (and commits) the first key
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    params = request.values
    new_window = bool(params.get("lti1p3_new_window"))
    start = login_service.begin_login(params, launch_url())
    secure = request.is_secure
    framed = request.headers.get("Sec-Fetch-Dest") == "iframe"
    if start.storage_target and not new_window:
        response = current_app.make_response(
            render_template("lti/storage_login.html", start=start, auth_origin=start.auth_origin)
        )
    elif framed and not new_window and not secure:
        # Cookies in a cross-site frame need HTTPS; offer the new-window fallback.
        response = current_app.make_response(
            render_template(
                "lti/cookie_check.html",
                auth_url=start.auth_url,
                new_window_url=url_for(
                    "lti.login", **{**params.to_dict(), "lti1p3_new_window": "1"}
                ),
            )
        )
    else:
        response = redirect(start.auth_url, code=302)
    # The state cookie binds the launch to this browser (platform storage does when
    # cookies are blocked; it is set anyway, for platforms whose storage fails).
    response.set_cookie(
        "lti1p3-" + start.state,
        start.state,
        max_age=login_service.STATE_TTL,
        httponly=True,
        secure=secure,
        samesite="None" if secure else None,
        path="/",
    )
    return response


def _message_launch() -> ShuyuanMessageLaunch:
    req = flask_request()
    return ShuyuanMessageLaunch(
        req,
        DatabaseToolConf(),
        cookie_service=FlaskCookieService(req),
        requests_session=http_session(),
    )


@bp.route("/launch", methods=["POST"])
def launch_view():
    message_launch = _message_launch()
    claims = launch.validate_launch(message_launch)
    g.lti_spent = True
    if message_launch.cookie_less:
        state = request.form["state"]
        pending = launch.park_launch(message_launch, state)
        return render_template(
            "lti/storage_launch.html",
            pending=pending,
            state=state,
            storage_target=message_launch.state_record.get("storage_target"),
            platform_origin=_origin(message_launch.platform.auth_login_url),
        )
    return _finish(message_launch.platform, message_launch.deployment, claims)


def _posted_by_our_page() -> bool:
    """The continuation is posted by our own launch page (same origin), never by a form
    on another site: the browser sets these headers, a forging page cannot."""
    if request.headers.get("Sec-Fetch-Site") == "same-origin":
        return True
    origin = request.headers.get("Origin")
    return origin is not None and origin in {_origin(request.host_url), _origin(base_url())}


@bp.route("/launch/continue", methods=["POST"])
def launch_continue():
    """Second step of a cookie-less launch: our launch page read the login's binding from
    platform storage (which only the browser that logged in has) and posts it back."""
    if not _posted_by_our_page():
        raise LaunchRefused(
            N_("This launch must be continued by Shuyuan's own page."), "lti_state_mismatch", 403
        )
    pending = request.form.get("pending", "")[:100]
    g.lti_spent = True
    platform, deployment, claims = launch.resume_launch(
        pending, request.form.get("state", "")[:100], request.form.get("binding", "")[:100]
    )
    return _finish(platform, deployment, claims)


def _finish(platform, deployment, claims):
    # A refused launch leaves no user, context or grade link behind.  With the launch
    # store in the database the request commits anyway (the spent nonce is kept, see
    # ``refused``), so the launch's own writes run in a savepoint; on Redis the nonce is
    # spent there, nothing else was written before this point, and the refused request
    # rolls its whole transaction back: no SAVEPOINT and RELEASE (issue 14).
    with savepoint() if launch_store().in_database else nullcontext():
        outcome = launch.complete_launch(platform, deployment, claims)
    # The session's identity map holds objects weakly: kept here, the deployment (with
    # its school and district) outlives the view, so the statement built at the commit
    # (app/xapi/emit.py) does not read them again.
    g.lti_launch_rows = (platform, deployment, outcome.user, outcome.context)
    login_user(outcome.user)
    session["lti"] = {
        "platform": platform.id,
        "deployment": deployment.id,
        "context": outcome.context.id if outcome.context else None,
    }
    for path, args in outcome.follow_up:
        enqueue_after_commit(path, *args)
    if outcome.kind == "deep_link":
        return redirect(url_for("lti.deep_link_picker", launch_id=outcome.launch_id))
    if outcome.kind == "resource":
        return redirect(url_for("catalog.resource_detail", content_id=outcome.target["content_id"]))
    if outcome.kind == "course":
        return redirect(url_for("catalog.course_detail", content_id=outcome.target["content_id"]))
    if outcome.kind == "week":
        return redirect(
            url_for(
                "lti.week", calendar_id=outcome.target["calendar_id"], week=outcome.target["week"]
            )
        )
    return redirect(url_for("catalog.browse"))


@bp.route("/week/<int:calendar_id>/<int:week>")
def week(calendar_id: int, week: int):
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    if not (1 <= calendar_id <= launch.MAX_ID and 1 <= week <= launch.MAX_WEEK):
        abort(404)
    try:
        lessons = curriculum.lessons_for_week(user, calendar_id, week)
        resources = curriculum.resources_for_week(user, calendar_id, week)
    except (NotFound, Forbidden):
        abort(404)
    return render_template(
        "lti/week.html", calendar_id=calendar_id, week=week, lessons=lessons, resources=resources
    )


# --- dynamic registration -------------------------------------------------------------


@bp.route("/register", methods=["GET", "POST"])
def register_help():
    return render_template("lti/register_help.html"), 400


@bp.route("/register/<token>", methods=["GET", "POST"])
def register(token: str):
    if not request.values.get("openid_configuration"):
        dynamic.open_registration_link(token)  # 404 for a dead link
        return render_template("lti/register_help.html"), 400
    deployment = dynamic.register_dynamically(
        token,
        request.values.get("openid_configuration", ""),
        request.values.get("registration_token"),
        base_url(),
        current_app.config.get("PLATFORM_NAME", "Shuyuan"),
    )
    return render_template("lti/registered.html", deployment=deployment)


# --- deep linking ---------------------------------------------------------------------


@bp.route("/deep-link/<launch_id>", methods=["GET"])
def deep_link_picker(launch_id: str):
    selection = deeplinking.deep_link_session(launch_id)
    q = (request.args.get("q") or "").strip()[:200]
    calendar_id = request.args.get("calendar", type=int)
    week_number = request.args.get("week", type=int)
    settings = selection.settings
    return render_template(
        "lti/picker.html",
        launch_id=launch_id,
        q=q,
        results=deeplinking.search_content(selection, q),
        curriculum=deeplinking.browse_curriculum(selection, calendar_id, week_number),
        calendar_id=calendar_id,
        week=week_number,
        multiple=settings.get("accept_multiple", True) is not False,
        title=settings.get("title"),
    )


@bp.route("/deep-link/<launch_id>", methods=["POST"])
def deep_link_submit(launch_id: str):
    selection = [item[:200] for item in request.form.getlist("items") if item][:200]
    return_url, token = deeplinking.deep_link_response(launch_id, selection, launch_url())
    return render_template("lti/deep_link_return.html", return_url=return_url, jwt=token)


# --- admin pages ----------------------------------------------------------------------


@bp.app_template_global()
def grade_status_label(status) -> str:
    value = getattr(status, "value", status)
    return {"pending": _("queued"), "sent": _("sent"), "failed": _("failed")}.get(value, value)


def admin_card(user=None, **_context) -> Markup:
    """The LMS card of the administration page (``admin_links`` slot)."""
    return link_card(
        "admin-lti",
        url_for("lti.admin"),
        _("LMS connections (LTI 1.3)"),
        _(
            "Add an LMS, make a one-time registration link, approve or suspend "
            "deployments, see recent launches and grade deliveries."
        ),
    )


def _admin():
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    return permissions.require_admin(user)


def _admin_page(
    user,
    new_link: str | None = None,
    *,
    platform_form: dict | None = None,
    platform_errors: dict | None = None,
    link_form: dict | None = None,
    link_errors: dict | None = None,
    status: int = 200,
):
    if user.is_platform_admin:
        schools = accounts.list_schools()
    else:
        admin_districts = set(user.admin_district_ids())
        schools = [s for s in accounts.list_schools() if s.district_id in admin_districts]
    districts = [
        d
        for d in accounts.list_districts()
        if user.is_platform_admin or user.is_district_admin(d.id)
    ]
    return render_template(
        "lti/admin.html",
        platforms=registrations.list_platforms(user),
        links=dynamic.list_registration_links(user),
        launches=registrations.recent_launches(user, limit=10),
        grades=ags.grade_log(user, None, 1).items[:10],
        new_link=new_link,
        base=base_url(),
        schools=schools,
        districts=districts,
        is_platform_admin=user.is_platform_admin,
        platform_form=platform_form or {},
        platform_errors=_translated_fields(platform_errors),
        link_form=link_form or {},
        link_errors=_translated_fields(link_errors),
    ), status


def _translated_fields(fields: dict | None) -> dict[str, list[str]]:
    """A service's field errors in the reader's language (shown beside each field)."""
    return {
        name: [
            _(str(message)) for message in (messages if isinstance(messages, list) else [messages])
        ]
        for name, messages in (fields or {}).items()
    }


# Messages the services raise that these pages show beside a field (the catalogue needs
# them; they are translated where they are shown).
ADMIN_MESSAGES = (
    N_("Required."),
    N_("An http(s) URL."),
    N_("No such school."),
    N_("No such district."),
    N_("Give a school or a district."),
    N_("Required before approval."),
    N_("The registration is not complete."),
    N_("A deployment belongs to a school or a district."),
    N_("A registration link belongs to a district or a school."),
    N_("Unknown school."),
    N_("Unknown district."),
    N_("Invalid lifetime."),
    N_("1 to 720."),
    N_("Not a valid integer."),
)

_PLATFORM_FIELDS = (
    "issuer",
    "client_id",
    "deployment_id",
    "auth_login_url",
    "auth_token_url",
    "key_set_url",
    "auth_audience",
    "name",
)


@bp.route("/admin")
def admin():
    return _admin_page(_admin())


def _form_int(name: str, errors: dict) -> int | None:
    value = (request.form.get(name) or "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        errors[name] = ["Not a valid integer."]
        return None
    if not 0 < number <= 2147483647:
        errors[name] = ["Not a valid integer."]
        return None
    return number


@bp.route("/admin/registration-links", methods=["POST"])
def admin_registration_link():
    csrf.protect()  # /lti/ is exempt by prefix for the LMS's posts; admin forms are not
    user = _admin()
    form = request.form
    errors: dict = {}
    district_id = _form_int("district_id", errors)
    school_id = _form_int("school_id", errors)
    hours = _form_int("hours", errors) or 72
    if errors:
        return _admin_page(user, link_form=form, link_errors=errors, status=422)
    try:
        with savepoint():
            made = dynamic.create_registration_link(
                user,
                district_id=district_id,
                school_id=school_id,
                hours=hours,
                note=form.get("note", "")[:200],
            )
    except Invalid as exc:
        fields = {
            ("district_id" if k == "district" else "school_id" if k == "school" else k): v
            for k, v in exc.fields.items()
        }
        return _admin_page(user, link_form=form, link_errors=fields, status=422)
    # Shown once, on this page: only the link's digest is stored.
    return _admin_page(user, new_link=made.url(base_url()))


@bp.route("/admin/registration-links/<int:link_id>/revoke", methods=["POST"])
def admin_revoke_link(link_id: int):
    csrf.protect()
    dynamic.revoke_registration_link(_admin(), link_id)
    flash(_("Registration link revoked."), "success")
    return redirect(url_for("lti.admin"))


@bp.route("/admin/platforms", methods=["POST"])
def admin_add_platform():
    csrf.protect()
    user = _admin()
    form = request.form
    errors: dict = {}
    data = {name: (form.get(name) or "")[:1000] for name in _PLATFORM_FIELDS}
    data["school_id"] = _form_int("school_id", errors)
    if errors:
        return _admin_page(user, platform_form=form, platform_errors=errors, status=422)
    try:
        with savepoint():  # a refused registration leaves nothing half-written
            registrations.add_platform(user, data)
    except Invalid as exc:
        # The form comes back as typed, each problem beside its field.
        fields = {
            ("school_id" if k in ("school", "district") else k): v for k, v in exc.fields.items()
        }
        return _admin_page(user, platform_form=form, platform_errors=fields, status=422)
    flash(_("Platform registered."), "success")
    return redirect(url_for("lti.admin"))


@bp.route("/admin/deployments/<int:deployment_pk>", methods=["POST"])
def admin_deployment(deployment_pk: int):
    csrf.protect()
    user = _admin()
    approve = request.form.get("action") == "approve"
    errors: dict = {}
    school_id = _form_int("school_id", errors)
    try:
        with savepoint():
            registrations.set_deployment_approval(user, deployment_pk, approve, school_id=school_id)
    except Invalid as exc:
        skip_commit()
        flash(
            " ".join([_(exc.message)] + [_(str(m)) for v in exc.fields.values() for m in v]),
            "error",
        )
        return redirect(url_for("lti.admin"))
    flash(_("Deployment approved.") if approve else _("Deployment suspended."), "success")
    return redirect(url_for("lti.admin"))


@bp.route("/admin/grades")
def admin_grades():
    user = _admin()
    status = request.args.get("status") or None
    listing = ags.grade_log(user, status, request.args.get("page", 1, type=int))
    return render_template("lti/grades.html", listing=listing, status=status)


@bp.route("/admin/grades/<int:outbox_id>/retry", methods=["POST"])
def admin_retry_grade(outbox_id: int):
    csrf.protect()
    ags.retry_grade(_admin(), outbox_id)
    return redirect(url_for("lti.admin_grades"))


@bp.route("/contexts")
def contexts():
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    return render_template("lti/contexts.html", contexts=nrps.list_contexts(user))


@bp.route("/contexts/<int:context_pk>/sync", methods=["POST"])
def sync_context(context_pk: int):
    csrf.protect()
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    result = nrps.request_roster_sync(user, context_pk)
    flash(_("Roster synchronised: %(n)s members.", n=result["members"]), "success")
    return redirect(url_for("lti.contexts"))
