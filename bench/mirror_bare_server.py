"""The baseline of the mirror benchmark (bench/sharing.py): a bare WSGI app serving
files of one folder by name — no application, no signature, no database — run under
gunicorn like Shuyuan.  ``BARE_MEDIA_DIR`` names the folder.
Run: ``gunicorn -w 2 bench.mirror_bare_server:app``."""

from __future__ import annotations

import os
import re

_ROOT = os.environ.get("BARE_MEDIA_DIR", ".")
_NAME = re.compile(r"^/([0-9a-f]{64})$")


def app(environ, start_response):
    match = _NAME.match(environ.get("PATH_INFO", ""))
    path = os.path.join(_ROOT, match.group(1)) if match else None
    if path is None or not os.path.isfile(path):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    size = os.path.getsize(path)
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
    )
    handle = open(path, "rb")  # noqa: SIM115  (closed by the file wrapper)
    wrapper = environ.get("wsgi.file_wrapper")
    return wrapper(handle, 256 * 1024) if wrapper else iter(lambda: handle.read(256 * 1024), b"")
