"""Media feature: files of resources in object storage, direct uploads, delivery, players."""

from flask import Flask


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
    register_slots(app)


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
    href = url_for("media.upload_page", content_id=resource.content_id)
    label = _("Upload or replace the file")
    return Markup(  # noqa: S704  (escaped)
        f'<p><a class="button media-upload-link" href="{escape(href)}">{escape(label)}</a></p>'
    )


def register_slots(app: Flask) -> None:
    from app.hooks import PluginContext

    PluginContext(app, "media").add_to_slot("resource_page_player", _editor_link)
