"""Bare baseline of ``GET /api/v1/media/<id>/url`` for ``bench/media.py --presign-http``.

A plain Flask app under the same gunicorn configuration as Shuyuan, doing the minimum the
real route must do: compare the bearer token with a fixed one, read the attachment, its
object and its resource in one SELECT (psycopg, one connection per thread), decide
visibility from the resource row, presign a GET with the same ``minio`` client and answer
JSON.  No session, no ORM, no hooks, no schema.  ``/empty`` answers ``{}`` (the floor of
gunicorn + Flask).

Configured by the environment: ``BENCH_DATABASE_URL`` (``postgresql://…``),
``BENCH_TOKEN``, ``BENCH_STORAGE_URL`` (``s3://KEY:SECRET@host:port/bucket?secure=false``).
"""

from __future__ import annotations

import hmac
import os
import threading
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import psycopg
from flask import Flask, abort, jsonify, request
from minio import Minio

app = Flask(__name__)
_TOKEN = os.environ.get("BENCH_TOKEN", "")
_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "").replace("postgresql+psycopg", "postgresql")
_storage = urlsplit(os.environ.get("BENCH_STORAGE_URL", "s3://k:s@127.0.0.1:9/bucket"))
_query = {k: v[-1] for k, v in parse_qs(_storage.query).items()}
_BUCKET = _storage.path.strip("/")
_client = Minio(
    f"{_storage.hostname}:{_storage.port}",
    access_key=_storage.username,
    secret_key=_storage.password,
    secure=_query.get("secure", "true") not in ("false", "0"),
    region=_query.get("region", "us-east-1"),
)
_local = threading.local()
_SQL = (
    "SELECT o.key, o.media_type, o.size, a.filename, r.state, r.visibility "
    "FROM media_attachments a JOIN media_objects o ON o.id = a.object_id "
    "JOIN resources r ON r.id = a.resource_id WHERE a.public_id = %s"
)


def _connection():
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = psycopg.connect(_DATABASE_URL, autocommit=True)
    return connection


@app.get("/api/v1/media/<attachment_id>/url")
def media_url(attachment_id):
    header = request.headers.get("Authorization", "")
    if not hmac.compare_digest(header.encode(), f"Bearer {_TOKEN}".encode()):
        abort(401)
    row = _connection().execute(_SQL, (attachment_id,)).fetchone()
    if row is None or row[4] not in ("draft", "published", "superseded"):
        abort(404)
    key, media_type, size, filename, _state, _visibility = row
    url = _client.presigned_get_object(
        _BUCKET,
        key,
        timedelta(seconds=900),
        response_headers={
            "response-content-type": media_type,
            "response-content-disposition": f"inline; filename*=UTF-8''{quote(filename)}",
        },
    )
    return jsonify(url=url, expires_in=900, media_type=media_type, filename=filename, size=size)


@app.get("/empty")
def empty():
    return jsonify()
