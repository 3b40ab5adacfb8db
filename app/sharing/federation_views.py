"""Endpoints peers call: published keys, signed subscription requests, the signed feed.

Peers authenticate by HTTP Message Signatures only (no cookies, no CSRF); a request
from an origin not on the allow-list, or with a bad signature, is refused with the
reason logged.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from app.common.transaction import keep_on_error
from app.errors import AppError, Forbidden, Invalid
from app.sharing.services import federation, keys, usage
from app.sharing.services.keys import FederationRefused

log = logging.getLogger(__name__)
bp = Blueprint("sharing_federation", __name__)


@bp.get("/.well-known/shuyuan-keys")
def well_known_keys():
    """This instance's public Ed25519 keys (created on first request)."""
    keys.ensure_key()
    return jsonify(keys.published_keys())


def _verified_peer() -> str:
    keys.ensure_key()  # before this unit of work writes (peer keys), see ensure_key
    try:
        return keys.verify_request(request)
    except FederationRefused as exc:
        log.warning("sharing: refused request from %s: %s", request.remote_addr, exc.reason)
        # Keys fetched from an allowed peer may stay; nothing else was written.
        keep_on_error()
        raise Forbidden("The request signature was refused.") from None


@bp.post(federation.SUBSCRIBE_PATH)
def receive_subscription():
    origin = _verified_peer()
    try:
        row = federation.receive_request(origin, request.get_json(silent=True))
    except FederationRefused as exc:
        raise AppError(exc.reason) from None
    return jsonify({"status": str(row.status)}), 202


@bp.get(federation.FEED_PATH.replace("{uid}", "<uid>"))
def feed(uid: str):
    origin = _verified_peer()
    page = federation.feed_page(
        origin, uid, request.args.get("release"), request.args.get("page", "1")
    )
    if request.if_none_match and page.etag.strip('"') in request.if_none_match:
        return Response(status=304, headers={"ETag": page.etag})
    response = Response(page.body, status=200, mimetype="application/json")
    response.headers["ETag"] = page.etag
    keys.sign_response(response, page.body)
    return response


@bp.post(usage.USAGE_PATH.replace("{uid}", "<uid>"))
def receive_usage(uid: str):
    """A federated subscriber's daily usage counts (signed; replaces the days sent)."""
    origin = _verified_peer()
    try:
        stored = usage.receive_report(origin, uid, request.get_json(silent=True))
    except usage.ReportRefused as exc:
        log.warning("sharing: refused usage report from %s: %s", origin, exc.reason)
        refusal = Forbidden if exc.status == 403 else Invalid
        raise refusal(exc.reason, code="usage_refused") from None
    return jsonify({"stored": stored}), 200
