"""Media over federation (publisher side): the signed media index of a catalog and one
object by its SHA-256, with HTTP Range.  Peers authenticate with HTTP Message
Signatures; the bytes are not signed (large), the subscriber checks them against the
hash of the signed index instead."""

from __future__ import annotations

from flask import Blueprint, Response, request, send_file

from app.media.storage import get_storage
from app.sharing.federation_views import _verified_peer
from app.sharing.services import keys, media_serve

bp = Blueprint("sharing_media", __name__)
CHUNK = 256 * 1024


@bp.get(media_serve.MEDIA_INDEX_PATH.replace("{uid}", "<uid>"))
def media_index(uid: str):
    origin = _verified_peer()
    body = media_serve.media_index(origin, uid)
    response = Response(body, status=200, mimetype="application/json")
    keys.sign_response(response, body)
    return response


@bp.get(media_serve.MEDIA_OBJECT_PATH.replace("{sha256}", "<sha256>"))
def media_object(sha256: str):
    origin = _verified_peer()
    obj = media_serve.media_object(origin, sha256)
    storage = get_storage()
    path = storage.local_path(obj.key)
    if path is not None:
        # send_file answers Range requests (206, Content-Range) and If-Range by ETag.
        response = send_file(
            path, mimetype="application/octet-stream", conditional=True, etag=obj.checksum
        )
    else:
        response = _ranged_from_storage(storage, obj)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _ranged_from_storage(storage, obj) -> Response:
    """Range support for object stores without a local path (read in chunks)."""
    size = obj.size
    start, end, status = 0, size, 200
    ranges = request.range
    if ranges is not None and ranges.units == "bytes" and len(ranges.ranges) == 1:
        bounds = ranges.range_for_length(size)
        if bounds is None:
            return Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        (start, end), status = bounds, 206

    def body():
        position = start
        while position < end:
            length = min(CHUNK, end - position)
            yield storage.read_range(obj.key, position, length)
            position += length

    response = Response(body(), status=status, mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(end - start)
    response.headers["Accept-Ranges"] = "bytes"
    if status == 206:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return response
