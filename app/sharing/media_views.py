"""Media over federation (publisher side): the signed media index of a catalog, one
object by its SHA-256 with HTTP Range, and several whole objects back to back in one
response.  Peers authenticate with HTTP Message Signatures; the bytes are not signed
(large), the subscriber checks them against the hashes of the signed index instead."""

from __future__ import annotations

from flask import Blueprint, Response, request, send_file

from app.media.storage import get_storage
from app.sharing.federation_views import _verified_peer
from app.sharing.services import keys, media_serve

bp = Blueprint("sharing_media", __name__)
CHUNK = 256 * 1024
# Read size of a batch response (served from Python, not sendfile: one response, many
# files); 1 MiB as the subscriber reads.
BATCH_CHUNK = 1024 * 1024


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


@bp.get(media_serve.MEDIA_BATCH_PATH)
def media_batch():
    """``?objects=<sha256>,...``: the objects, whole, one after the other (the peer knows
    each size from the signed index); 404 unless every one is shared with the peer.
    One request, one signature check and one access check for up to
    ``MEDIA_BATCH_MAX`` objects (docs/sharing.md, "Mirror throughput")."""
    origin = _verified_peer()
    rows = media_serve.media_objects(origin, media_serve.batch_hashes(request.args.get("objects")))
    storage = get_storage()

    def body():
        for row in rows:
            path = storage.local_path(row.key)
            if path is None:
                for position in range(0, row.size, BATCH_CHUNK):
                    yield storage.read_range(
                        row.key, position, min(BATCH_CHUNK, row.size - position)
                    )
                continue
            with open(path, "rb") as handle:
                left = row.size
                while left > 0:
                    chunk = handle.read(min(BATCH_CHUNK, left))
                    if not chunk:  # shorter than its row says: the peer's hash check refuses
                        return
                    left -= len(chunk)
                    yield chunk

    response = Response(body(), status=200, mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(sum(row.size for row in rows))
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
