"""LTI endpoints (login, launch, JWKS, dynamic registration, deep linking picker) and the
admin pages.  Thin: the work is in :mod:`app.lti.services`."""

from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_user
from pylti1p3.contrib.flask import FlaskCookieService
from pylti1p3.exception import LtiException

from app.accounts.auth import actor
from app.common.events import commit
from app.errors import Forbidden, Unauthorized
from app.extensions import csrf, db
from app.lti import services
from app.lti.tool import (
    N_,
    DatabaseToolConf,
    LaunchRefused,
    ShuyuanMessageLaunch,
    flask_request,
    launch_store,
)

bp = Blueprint("lti", __name__, url_prefix="/lti")


def base_url() -> str:
    configured = current_app.config.get("LTI_BASE_URL")
    return (configured or request.host_url).rstrip("/")


def launch_url() -> str:
    return base_url() + "/lti/launch"


@bp.errorhandler(LaunchRefused)
def refused(exc: LaunchRefused):
    db.session.rollback()
    current_app.logger.info("LTI refused (%s): %s", exc.code, exc.message)
    return render_template(
        "lti/error.html", status=exc.status, code=exc.code, message=_(exc.message)
    ), exc.status


@bp.errorhandler(LtiException)
def lti_error(exc: LtiException):
    db.session.rollback()
    return render_template("lti/error.html", status=400, code="lti_invalid", message=str(exc)), 400


# --- public LTI endpoints -------------------------------------------------------------


@bp.route("/jwks.json")
def jwks():
    keys = services.jwks()
    commit()  # the first call may create the first key
    response = jsonify(keys)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    params = request.values
    new_window = bool(params.get("lti1p3_new_window"))
    start = services.begin_login(params, launch_url())
    commit()
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
        max_age=services.STATE_TTL,
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
        requests_session=services.http_session(),
    )


@bp.route("/launch", methods=["POST"])
def launch():
    message_launch = _message_launch()
    body = services.validate_launch(message_launch)
    if message_launch.cookie_less:
        pending = "pl-" + uuid.uuid4().hex
        launch_store().put(
            pending,
            {
                "state": request.form["state"],
                "nonce": body.get("nonce"),
                "platform_id": message_launch.platform.id,
                "deployment_pk": message_launch.deployment.id,
                "body": body,
            },
            300,
            new=True,
        )
        commit()
        record = message_launch.state_record
        return render_template(
            "lti/storage_launch.html",
            pending=pending,
            state=request.form["state"],
            nonce=body.get("nonce"),
            storage_target=record.get("storage_target"),
            platform_origin=_origin(message_launch.platform.auth_login_url),
        )
    return _finish(message_launch.platform, message_launch.deployment, body)


@bp.route("/launch/continue", methods=["POST"])
def launch_continue():
    """Second step of a cookie-less launch: the page checked the state kept in platform
    storage and posts it back."""
    from app.lti.models import LtiDeployment, LtiPlatform

    pending = request.form.get("pending", "")
    record = launch_store().take(pending) if pending.startswith("pl-") else None
    if record is None:
        raise LaunchRefused(
            N_("This launch expired or was already used: start it again from your course."),
            "lti_bad_state",
        )
    if not request.form.get("state") or request.form.get("state") != record["state"]:
        raise LaunchRefused(
            N_("The launch state kept by your learning platform does not match."),
            "lti_state_mismatch",
        )
    platform = db.session.get(LtiPlatform, record["platform_id"])
    deployment = db.session.get(LtiDeployment, record["deployment_pk"])
    if platform is None or deployment is None or not deployment.approved:
        raise LaunchRefused(
            N_("This deployment is not approved."), "lti_deployment_not_approved", 403
        )
    return _finish(platform, deployment, record["body"])


def _origin(url: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


def _finish(platform, deployment, body: dict):
    outcome = services.complete_launch(platform, deployment, body)
    login_user(outcome.user)
    session["lti"] = {
        "platform": platform.id,
        "context": outcome.context.id if outcome.context else None,
    }
    commit()
    for path, args in outcome.follow_up:
        _run_later(path, *args)
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


def _run_later(path: str, *args) -> None:
    """Off the request path.  In eager mode (tests) the job runs here and now, inside
    this request's session, so it must not tear the session down."""
    if current_app.config.get("JOBS_EAGER"):
        from app.jobs import _resolve

        try:
            _resolve(path)(*args)
            commit()
        except Exception:
            current_app.logger.exception("LTI job %s failed", path)
            db.session.rollback()
        return
    from app.jobs import enqueue

    enqueue(path, *args)


@bp.route("/week/<int:calendar_id>/<int:week>")
def week(calendar_id: int, week: int):
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    data = services.browse_curriculum(user, calendar_id, week)
    if not data["available"]:
        abort(404)
    return render_template("lti/week.html", calendar_id=calendar_id, week=week, data=data)


# --- dynamic registration -------------------------------------------------------------


@bp.route("/register", methods=["GET", "POST"])
def register():
    openid_configuration = request.values.get("openid_configuration")
    if not openid_configuration:
        return render_template("lti/register_help.html", base=base_url()), 400
    deployment = services.register_dynamically(
        openid_configuration,
        request.values.get("registration_token"),
        base_url(),
        current_app.config.get("PLATFORM_NAME", "Shuyuan"),
        request.values.get("school"),
    )
    commit()
    return render_template("lti/registered.html", deployment=deployment)


# --- deep linking ---------------------------------------------------------------------


@bp.route("/deep-link/<launch_id>", methods=["GET"])
def deep_link_picker(launch_id: str):
    data = services.deep_link_session(launch_id)
    user = services.deep_link_user(data)
    q = (request.args.get("q") or "").strip()[:200]
    calendar_id = request.args.get("calendar", type=int)
    week_number = request.args.get("week", type=int)
    results = services.search_content(user, q)
    curriculum = services.browse_curriculum(user, calendar_id, week_number)
    settings = data.get("settings") or {}
    return render_template(
        "lti/picker.html",
        launch_id=launch_id,
        q=q,
        results=results,
        curriculum=curriculum,
        calendar_id=calendar_id,
        week=week_number,
        multiple=settings.get("accept_multiple", True) is not False,
        title=settings.get("title"),
    )


@bp.route("/deep-link/<launch_id>", methods=["POST"])
def deep_link_submit(launch_id: str):
    selection = [item for item in request.form.getlist("items") if item][:200]
    return_url, token = services.deep_link_response(launch_id, selection, launch_url())
    commit()
    return render_template("lti/deep_link_return.html", return_url=return_url, jwt=token)


# --- admin pages ----------------------------------------------------------------------


def _admin():
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    if not (user.is_platform_admin or user.is_district_admin()):
        raise Forbidden("Only administrators manage LTI.")
    return user


@bp.route("/admin")
def admin():
    user = _admin()
    from app.accounts import services as accounts

    return render_template(
        "lti/admin.html",
        platforms=services.list_platforms(user),
        base=base_url(),
        schools=accounts.list_schools(),
        is_platform_admin=user.is_platform_admin,
    )


@bp.route("/admin/platforms", methods=["POST"])
def admin_add_platform():
    csrf.protect()  # /lti/ is exempt by prefix for the LMS's posts; admin forms are not
    user = _admin()
    form = request.form
    data = {
        name: form.get(name)
        for name in (
            "issuer",
            "client_id",
            "deployment_id",
            "auth_login_url",
            "auth_token_url",
            "key_set_url",
            "auth_audience",
            "name",
        )
    }
    data["school_id"] = form.get("school_id", type=int)
    services.add_platform(user, data)
    commit()
    flash(_("Platform registered."), "success")
    return redirect(url_for("lti.admin"))


@bp.route("/admin/deployments/<int:deployment_pk>", methods=["POST"])
def admin_deployment(deployment_pk: int):
    csrf.protect()
    user = _admin()
    approve = request.form.get("action") == "approve"
    services.set_deployment_approval(
        user, deployment_pk, approve, school_id=request.form.get("school_id", type=int)
    )
    commit()
    flash(_("Deployment approved.") if approve else _("Deployment suspended."), "success")
    return redirect(url_for("lti.admin"))


@bp.route("/admin/grades")
def admin_grades():
    user = _admin()
    status = request.args.get("status") or None
    listing = services.grade_log(user, status, request.args.get("page", 1, type=int))
    return render_template("lti/grades.html", listing=listing, status=status)


@bp.route("/admin/grades/<int:outbox_id>/retry", methods=["POST"])
def admin_retry_grade(outbox_id: int):
    csrf.protect()
    user = _admin()
    services.retry_grade(user, outbox_id)
    commit()
    _run_later("app.lti.services:deliver_grade", outbox_id)
    return redirect(url_for("lti.admin_grades"))


@bp.route("/contexts")
def contexts():
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    return render_template("lti/contexts.html", contexts=services.list_contexts(user))


@bp.route("/contexts/<int:context_pk>/sync", methods=["POST"])
def sync_context(context_pk: int):
    csrf.protect()
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    result = services.request_roster_sync(user, context_pk)
    commit()
    flash(_("Roster synchronised: %(n)s members.", n=result["members"]), "success")
    return redirect(url_for("lti.contexts"))
