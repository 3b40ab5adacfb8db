"""Media feature: files of resources in object storage, direct uploads, delivery, players.

Public surface for other features and :mod:`app.hooks`: ``services.media_context``
(what a player needs), ``services.accepted_types``, a learner's own progress
(``services.learner_progress``, ``course_progress``, ``recent_resources``: typed
answers) and the ``resource_version_created`` receiver (a new draft keeps the files of
the version it was copied from).  Inside the catalog's pages it shows card pictures,
progress, the editor's upload and cover forms through page slots (:mod:`app.media.slots`).  Uploaded
packages are played only in the sandbox described in :mod:`app.media.services.delivery`.
"""

from urllib.parse import urlsplit

from flask import Flask, abort, request

from app.media.storage import StorageUnavailable


def init_app(app: Flask) -> None:
    """Blueprints, the ``flask media`` CLI and the version-copy receiver."""
    from app import signals
    from app.common.routing import add_csrf_exempt_prefix, add_json_prefix
    from app.extensions import api as rest_api
    from app.media import api, cli, services, views

    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    app.cli.add_command(cli.media_cli)
    # The signed upload URL is the credential; programs PUT there without cookies or CSRF.
    add_csrf_exempt_prefix(app, "/media/local/up/")
    add_json_prefix(app, "/media/local/up/")
    signals.resource_version_created.connect(
        services.on_resource_version_created, sender=app, weak=False
    )
    services.jobs_due.connect(_start_job, sender=app, weak=False)
    app.register_error_handler(StorageUnavailable, _storage_unavailable)
    _check_content_origin(app.config.get("CONTENT_ORIGIN"))
    _separate_content_host(app)
    register_slots(app)


# How long a client should wait before trying again (Retry-After): an outage of the
# store usually passes in seconds; a full disk needs an administrator.
RETRY_AFTER = {"unreachable": 30, "disk_full": 300}


def _storage_unavailable(exc):
    """503 with a clear message in the reader's language; the request's rows are rolled
    back (error_response) and the storage layer removed what it was writing."""
    import logging

    from flask_babel import gettext as _

    from app.errors import error_response

    logging.getLogger(__name__).error(
        "media storage unavailable on %s %s: %s", request.method, request.path, exc
    )
    if exc.reason == "disk_full":
        message = _(
            "The media storage is full. Nothing was saved; try again later or tell the "
            "administrator."
        )
    else:
        message = _(
            "The media storage cannot be reached. Nothing was saved; try again in a moment."
        )
    return error_response(
        503,
        "storage_unavailable",
        message,
        headers={"Retry-After": str(RETRY_AFTER.get(exc.reason, 60))},
    )


def _start_job(app, path: str, args: tuple, **kwargs) -> None:
    from app.jobs import enqueue

    enqueue(path, *args)


def _check_content_origin(origin: str | None) -> None:
    if not origin:
        return
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(
            f"SHUYUAN_CONTENT_ORIGIN must be an origin like https://usercontent.example.org, "
            f"not {origin!r}"
        )


def _separate_content_host(app: Flask) -> None:
    """Package files live only on the content host, and nothing else does; their
    responses never carry a cookie, whichever host answers them."""
    from app.media import services

    @app.before_request
    def _route_by_host():
        if not app.config.get("CONTENT_ORIGIN"):
            return
        on_content_host = services.is_content_host()
        if on_content_host != (request.endpoint == "media.package_file"):
            abort(404)

    @app.after_request
    def _no_cookies_for_packages(response):
        if request.endpoint == "media.package_file" or services.is_content_host():
            response.headers.remove("Set-Cookie")
        return response


def _editor_link(resource=None, **kwargs):
    """Editors get a link to the upload page on the resource page (``resource_page_player``)."""
    from flask import url_for
    from flask_babel import gettext as _
    from markupsafe import Markup, escape

    from app.accounts.auth import actor
    from app.catalog.services import can_edit
    from app.media import services

    if (
        resource is None
        or not services.accepted_types(resource.kind)
        or not can_edit(actor(), resource)
    ):
        return ""
    # The editor holds the upload (drop zone, progress, resume) next to the other fields.
    href = url_for(
        "catalog.edit_content", kind="resources", content_id=resource.content_id, _anchor="files"
    )
    label = _("Upload or replace the file")
    return Markup(  # noqa: S704  (escaped)
        f'<p><a class="button media-upload-link" href="{escape(href)}">{escape(label)}</a></p>'
    )


def register_slots(app: Flask) -> None:
    from app.media import slots
    from app.plugins import PluginContext

    context = PluginContext(app, "media")
    context.add_to_slot("resource_page_player", _editor_link)
    context.add_to_slot("card_picture", slots.card_picture)
    context.add_to_slot("card_progress", slots.card_progress)
    context.add_to_slot("catalog_list_top", slots.continue_learning)
    context.add_to_slot("editor_cover", slots.editor_cover)
    context.add_to_slot("resource_editor_files", slots.editor_files)
