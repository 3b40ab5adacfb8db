"""Log lines an operator can search: JSON on request, always with the request id.

The request id comes from nginx (``X-Request-ID``, see ``deploy/nginx/shuyuan.conf``) or is
made here, is echoed in the response, and is handed to jobs enqueued during the request
(:mod:`app.common.request_id`), so one id follows a request into its background work.
"""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, g, request

from app.common import request_id

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.current() or "-"
        return True


def _handler(fmt: str) -> logging.Handler:
    handler = logging.StreamHandler()
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"levelname": "level", "asctime": "time"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    handler.addFilter(RequestIdFilter())
    handler._shuyuan = True  # so a second app in one process does not add another
    return handler


def init_app(app: Flask) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_shuyuan", False) for h in root.handlers):
        # Replace basicConfig's plain handler: one line per event, in one format.
        for existing in list(root.handlers):
            if type(existing) is logging.StreamHandler:
                root.removeHandler(existing)
        root.addHandler(_handler(app.config.get("LOG_FORMAT", "text")))

    @app.before_request
    def _assign_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        request_id.set_current(g.request_id)

    @app.after_request
    def _echo_request_id(response):
        if getattr(g, "request_id", None):
            response.headers["X-Request-ID"] = g.request_id
        return response

    @app.teardown_request
    def _forget_request_id(exc):
        request_id.set_current(None)
