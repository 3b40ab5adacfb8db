"""JSON API of media: direct uploads, delivery URLs and player progress (/api/v1/...)."""

from __future__ import annotations

from flask import current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint

from app.accounts.auth import actor, principal, principal_route
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.transaction import keep_on_error, read_only
from app.errors import Invalid
from app.extensions import db
from app.media import schemas, services
from app.media.models import MediaAttachment, MediaUpload

blp = Blueprint(
    "media_api",
    __name__,
    url_prefix="/api/v1",
    description="Media: direct uploads to storage, delivery URLs, player progress",
)

FIRST_URLS = 64  # part URLs handed out with the upload; ask /parts for more


def _out(upload: MediaUpload, urls: dict | None = None, done: list | None = None) -> dict:
    body = {
        "public_id": upload.public_id,
        "resource_content_id": upload.resource_content_id,
        "filename": upload.filename,
        "size": upload.size,
        "checksum": upload.checksum,
        "state": upload.state,
        "error": upload.error,
        "mode": upload.mode,
        "part_size": upload.part_size,
        "part_count": upload.part_count,
    }
    body.update(urls or {})
    body["done_parts"] = done
    body["expires_in"] = current_app.config["MEDIA_UPLOAD_TTL"] if urls else None
    if upload.attachment_id:
        attachment = db.session.get(MediaAttachment, upload.attachment_id)
        body["attachment_id"] = attachment.public_id if attachment else None
    return body


@blp.route("/media/uploads")
class Uploads(MethodView):
    @blp.arguments(schemas.UploadCreateSchema)
    @blp.response(201, schemas.UploadOutSchema)
    def post(self, data):
        """Start an upload for a resource's draft (owner or her district admin).

        Answers a presigned PUT ``url`` (small files) or ``part_urls`` for a multipart
        upload (PUT each part, keep the ETag header, then call ``complete``).  Checks the
        name, the size limit and the district's quota first.
        """
        upload = services.start_upload(
            actor(), data["resource_id"], data["filename"], data["size"], data.get("checksum")
        )
        numbers = list(range(1, min(upload.part_count, FIRST_URLS) + 1))
        urls = services.upload_urls(upload, numbers)
        return _out(upload, urls)


@blp.route("/media/uploads/<upload_id>")
class UploadItem(MethodView):
    @blp.response(200, schemas.UploadOutSchema)
    def get(self, upload_id):
        """State of an upload and the parts already stored (to resume after a lost connection)."""
        upload, done = services.upload_status(actor(), upload_id)
        return _out(upload, None, done)

    @blp.response(204)
    def delete(self, upload_id):
        """Abort an upload and throw away what was sent."""
        services.abort_upload(actor(), upload_id)


@blp.route("/media/uploads/<upload_id>/parts", methods=["POST"])
@blp.arguments(schemas.PartNumbersSchema)
@blp.response(200, schemas.UploadOutSchema)
def upload_parts(data, upload_id):
    """Fresh PUT URLs for the given part numbers (all parts when none are given)."""
    urls = services.part_urls(actor(), upload_id, data.get("part_numbers"))
    upload, done = services.upload_status(actor(), upload_id)
    return _out(upload, urls, done)


@blp.route("/media/uploads/<upload_id>/complete", methods=["POST"])
@blp.arguments(schemas.CompleteSchema)
@blp.response(200, schemas.UploadOutSchema)
@blp.alt_response(
    202, schema=schemas.UploadOutSchema, description="Accepted; being verified in the background"
)
def upload_complete(data, upload_id):
    """Finish an upload: parts checked and assembled, then size, type and SHA-256 verified.

    With background jobs the answer is 202 (state ``verifying``): poll the upload.  A file
    that fails verification answers 422 with the reason and is not kept.
    """
    upload = services.complete_upload(actor(), upload_id, data.get("parts"))
    services.request_verification(upload_id)
    if upload.state == "failed":
        # The refusal is the outcome: the failed state and reason must be stored.
        keep_on_error()
        raise Invalid(upload.error or "The file was refused.", code="upload_rejected")
    if upload.state == "verifying":
        return _out(upload), 202
    return _out(upload)


@blp.route("/resources/<content_id>/media")
@blp.arguments(schemas.VersionQuerySchema, location="query")
@blp.response(200, schemas.AttachmentSchema(many=True))
def resource_media(args, content_id):
    """Files of a resource version the caller may see."""
    resource = catalog.get_content(actor(), Resource, content_id, args.get("version"))
    return list(services.attachments_of(resource).values())


def _documented_as(*decorators):
    """Give a view the OpenAPI entry these flask-smorest decorators would give it, without
    their wrappers: argument parsing and response dumping cost more than the rest of a
    presigned-URL request (docs/media.md "Presigned URLs over HTTP")."""

    def apply(view):
        documented = view
        for decorator in reversed(decorators):
            documented = decorator(documented)
        view._apidoc = documented._apidoc
        return view

    return apply


@blp.route("/media/<attachment_id>/url")
@read_only
# A bearer request reads its token and the file in one statement (docs/media.md).
@principal_route(reads=lambda view_args: services.file_read(view_args["attachment_id"]))
@_documented_as(
    blp.arguments(schemas.DeliveryQuerySchema, location="query"),
    blp.response(200, schemas.DeliverySchema),
)
def media_url(attachment_id):
    """A short-lived download URL (presigned on S3, signed by Shuyuan on the local backend)."""
    if request.args:
        # The same parser and schema as the decorator would use: same 422 on bad input.
        args = blp.ARGUMENTS_PARSER.parse(schemas.DeliveryQuerySchema(), location="query")
    else:
        args = {"variant": None, "download": False}  # the schema's defaults
    delivery = services.delivery_url(
        principal(), attachment_id, args.get("variant"), inline=not args["download"]
    )
    # The fields of DeliverySchema, all plain strings and integers: dumping is the identity.
    return jsonify(delivery.__dict__)


@blp.route("/progress")
class Progress(MethodView):
    @blp.arguments(schemas.PlayerProgressInSchema)
    @blp.response(201, schemas.PlayerProgressOutSchema)
    def post(self, data):
        """Record a player event (played, paused, seeked, completed, progressed, xapi...).

        ``data`` (from ``Shuyuan.report``) may carry ``result`` and ``context``; an H5P
        xAPI event is sent as ``{"verb": "xapi", "statement": {...}}``.
        """
        extra = data.get("data") or {}
        result = data.get("result") or extra.get("result")
        context = data.get("context") or extra.get("context")
        statement = data.get("statement") or extra.get("statement")
        return services.record_progress(
            actor(), data["resource_id"], data["verb"], result, context, statement
        )

    @blp.arguments(schemas.PlayerProgressQuerySchema, location="query")
    @blp.response(200, schemas.PlayerProgressOutSchema(many=True))
    def get(self, args):
        """The caller's own progress events for one resource, newest first."""
        return services.progress_of(actor(), args["resource_id"])
