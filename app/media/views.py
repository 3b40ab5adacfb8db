"""Media pages and the local backend's signed upload/download routes."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    redirect,
    render_template,
    request,
    send_file,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _

from app.accounts.auth import actor
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.transaction import read_only
from app.errors import AppError, Forbidden, PayloadTooLarge
from app.media import services
from app.media.storage import (
    LocalStorage,
    StorageError,
    StorageUnavailable,
    get_storage,
)

bp = Blueprint("media", __name__, static_folder="static", static_url_path="/static/media-feature")


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/media/a/<attachment_id>")
@read_only
def open_file(attachment_id: str):
    """Stable address used by players: checks who asks, then redirects to a short-lived URL."""
    delivery = services.delivery_url(
        actor(),
        attachment_id,
        request.args.get("variant") or None,
        inline=not request.args.get("download"),
    )
    return _no_store(redirect(delivery.url, code=302))


def _local() -> LocalStorage:
    storage = get_storage()
    if not isinstance(storage, LocalStorage):
        abort(404)
    return storage


@bp.route("/media/local/get/<token>")
def local_get(token: str):
    """Signed, expiring download from the local folder, with HTTP Range (206) for seeking."""
    payload = services.link_payload(token, "get")
    storage = _local()
    try:
        path = storage.local_path(payload["k"])
    except StorageError:
        abort(404)
    try:
        response = send_file(
            path,
            mimetype=payload.get("t") or "application/octet-stream",
            as_attachment=not payload.get("i", True),
            download_name=payload.get("n") or "file",
            conditional=True,
            etag=True,
            max_age=0,
        )
    except FileNotFoundError:
        abort(404)
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Opened as a page, whatever the file holds runs in an opaque, script-less sandbox.
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@bp.route("/media/local/up/<token>", methods=["PUT"])
def local_put(token: str):
    """Signed, expiring upload of one part (or a whole small file) to the local folder."""
    payload = services.link_payload(token, "put")
    storage = _local()
    limit = int(payload["m"])
    # One byte of slack: with exactly ``limit``, Werkzeug's stream raises 413 on the read
    # that finds the end of a body of exactly ``limit`` bytes under servers that terminate
    # the input themselves (gunicorn); write_part refuses a body over ``limit`` anyway.
    request.max_content_length = limit + 1
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"This part may have at most {limit} bytes.")
    if not services.staging_open(payload["k"]):
        raise Forbidden("This upload is no longer open.", code="upload_closed")
    try:
        written, etag = storage.write_part(payload["k"], request.stream, limit)
    except StorageUnavailable:
        raise  # 503 (app/media/__init__.py)
    except StorageError as exc:
        if str(exc) == "too_large":
            raise PayloadTooLarge(f"This part may have at most {limit} bytes.") from None
        raise Forbidden("This upload is no longer open.", code="upload_closed") from None
    response = Response(status=200)
    response.headers["ETag"] = f'"{etag}"'
    response.headers["Access-Control-Expose-Headers"] = "ETag"
    return response


@bp.route("/media/pkg/<token>/", defaults={"path": ""})
@bp.route("/media/pkg/<token>/<path:path>")
def package_file(token: str, path: str):
    """A file of an unpacked package (or of its player) inside the sandbox; the signed
    launch token in the URL is the credential, never a cookie (see services.delivery)."""
    found = services.package_file(token, path)
    headers = services.package_headers(found.base_url)
    if found.asset_folder is not None:
        response = send_from_directory(
            found.asset_folder, found.asset, mimetype=found.media_type, max_age=300
        )
    else:
        storage = get_storage()
        local = storage.local_path(found.key)
        if local is not None:
            try:
                response = send_file(
                    local, mimetype=found.media_type, conditional=True, max_age=300
                )
            except FileNotFoundError:
                abort(404)
        else:
            if storage.stat(found.key) is None:
                abort(404)
            # Streamed through Flask: the player fetches every file relative to one base URL.
            response = Response(storage.iter_chunks(found.key), mimetype=found.media_type)
    response.headers.update(headers)
    return response


@bp.route("/resources/<content_id>/media", methods=["GET"])
def upload_page(content_id: str):
    """Teachers pick a file; the page uploads it straight to storage with a progress bar."""
    user = actor()
    if user is None:
        return redirect(url_for("accounts.login", next=request.full_path))
    resource = catalog.get_content(user, Resource, content_id, "latest")
    if not catalog.can_edit(user, resource):
        raise Forbidden(
            _("Only the owner or her district admin can upload media for this resource.")
        )
    from app.media.slots import upload_context

    return render_template("media/upload.html", **upload_context(resource))


@bp.route("/resources/<content_id>/media/remove", methods=["POST"])
def remove_file(content_id: str):
    from flask import flash

    try:
        services.remove_attachment(actor(), content_id, request.form.get("role", "primary"))
    except AppError as exc:
        flash(exc.message, "error")
    else:
        flash(_("The file was removed from the draft."), "success")
    return redirect(url_for("media.upload_page", content_id=content_id))


# --- pictures on catalog cards and the cover form of the editor ---------------------------

_MODELS = {"courses": "Course", "resources": "Resource"}


def _model(kind: str):
    from app.catalog.models import Course

    if kind not in _MODELS:
        abort(404)
    return Course if kind == "courses" else Resource


@bp.route("/media/pictures/<kind>/<content_id>")
def picture(kind: str, content_id: str):
    """The card picture of a course or resource (``?v=`` a version; the editor's preview
    asks for ``latest``): checks who asks, then redirects to a short-lived URL."""
    delivery = services.picture_delivery(
        actor(), _model(kind), content_id, request.args.get("v") or None
    )
    response = redirect(delivery.url, code=302)
    # Cards of one page ask again only after a few minutes (the URL is signed for 15).
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.route("/me/<kind>/<content_id>/cover", methods=["POST"])
def cover_form(kind: str, content_id: str):
    """The editor's cover form: a picture file, or ``remove``."""
    from flask import flash

    from app.common.transaction import skip_commit
    from app.i18n import translate_message

    model = _model(kind)
    user = actor()
    if user is None:
        return redirect(url_for("accounts.login", next=request.full_path))
    try:
        if request.form.get("remove"):
            services.remove_cover(user, model, content_id)
            flash(_("The cover picture was removed from the draft."), "success")
        else:
            upload = request.files.get("cover")
            data = upload.read(services.COVER_MAX_BYTES + 1) if upload else b""
            services.upload_cover(user, model, content_id, data)
            flash(_("Cover picture saved to the draft."), "success")
    except AppError as exc:
        if exc.status in (401, 403, 404):
            raise
        skip_commit()
        flash(translate_message(exc.message), "error")
    return redirect(
        url_for("catalog.edit_content", kind=kind, content_id=content_id, _anchor="cover")
    )
