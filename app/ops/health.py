"""Readiness: can this process serve requests right now?

``/healthz`` (in :mod:`app.core`) stays cheap for liveness probes.  ``/readyz`` checks every
backing service the process needs and answers 503 naming the one that is down, so a load
balancer takes the instance out of rotation instead of sending users to errors.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)


def _check_database() -> None:
    db.session.execute(text("SELECT 1"))


def _check_redis() -> None:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return
    from redis import Redis

    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def _check_storage() -> None:
    from app.media.storage import get_storage

    # A missing key answers None; an unreachable store or an unreadable folder raises.
    get_storage().stat("readyz/probe")


CHECKS = (("database", _check_database), ("redis", _check_redis), ("storage", _check_storage))


@bp.route("/readyz")
def readyz():
    results: dict[str, dict] = {}
    ready = True
    for name, check in CHECKS:
        started = time.perf_counter()
        try:
            check()
            results[name] = {"status": "ok"}
        except Exception as exc:  # any failure of a backing service means "not ready"
            if name == "database":
                db.session.rollback()
            ready = False
            # The class name only: connection strings and hosts stay in the log.
            results[name] = {"status": "unavailable", "error": type(exc).__name__}
            log.warning("readyz: %s unavailable: %s", name, exc)
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    body = {"status": "ready" if ready else "unavailable", "checks": results}
    return jsonify(body), 200 if ready else 503
