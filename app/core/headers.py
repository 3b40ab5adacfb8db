"""Security headers on every response, and the per-request CSP nonce.

Scripts run only from this site's files or from an inline ``<script>`` carrying the
request's nonce (``{{ csp_nonce() }}`` in templates, ``hooks.csp_nonce()`` in plugins),
so HTML that slips past sanitising cannot run script.  Pages may be framed only by the
registered LMS platforms, and only where an LTI launch lands: paths under ``/lti/``, the
pages a launch redirects to (``app.lti.origins.LANDING_ENDPOINTS``: a cookie-less launch
has no session to tell them by) and every page of a browser session that began with a
launch (it lives in the LMS frame).

A response that already carries a ``Content-Security-Policy`` (uploaded package content,
which gets a stricter one from the media feature) keeps it.
"""

from __future__ import annotations

import functools
import logging
import secrets
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request, session
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from app.lti.origins import LANDING_ENDPOINTS, registered_platform_origins, url_origin

log = logging.getLogger(__name__)


def csp_nonce() -> str:
    """The nonce of this request's Content-Security-Policy (one per request)."""
    nonce = g.get("_csp_nonce")
    if nonce is None:
        nonce = g._csp_nonce = secrets.token_urlsafe(18)
    return nonce


def _storage_origin(storage_url: str | None) -> str | None:
    """Browsers talk to S3 storage directly (presigned uploads and downloads)."""
    if not storage_url or not storage_url.startswith("s3://"):
        return None
    parts = urlsplit(storage_url)
    secure = "secure=false" not in parts.query.lower() and "secure=0" not in parts.query
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else ""
    return url_origin(f"{'https' if secure else 'http'}://{netloc}")


def _extra_sources(config) -> list[str]:
    sources = [_storage_origin(config.get("STORAGE_URL")), url_origin(config.get("CONTENT_ORIGIN"))]
    sources += [url_origin(o) for o in config.get("CSP_EXTRA_ORIGINS") or []]
    return [s for s in dict.fromkeys(sources) if s]


def _is_lti_page() -> bool:
    if request.path.startswith("/lti/") or request.endpoint in LANDING_ENDPOINTS:
        return True
    # Only pages (not JSON or files) and only when a session cookie came with the
    # request: reading the session otherwise would add "Vary: Cookie" everywhere.
    if current_app.config["SESSION_COOKIE_NAME"] not in request.cookies:
        return False
    return bool(session.get("lti"))


def _frame_ancestors() -> str:
    if not _is_lti_page():
        return "'none'"
    try:
        origins = registered_platform_origins()
    except SQLAlchemyError:
        # The database is down: framing is refused rather than the response lost.
        origins = ()
    return " ".join(["'self'", *origins])


def content_security_policy(nonce: str) -> str:
    config = current_app.config
    head, tail = _policy_parts(
        config.get("STORAGE_URL"),
        config.get("CONTENT_ORIGIN"),
        tuple(config.get("CSP_EXTRA_ORIGINS") or ()),
    )
    return f"{head}{nonce}{tail}{_frame_ancestors()}"


@functools.lru_cache(maxsize=32)
def _policy_parts(storage_url, content_origin, extra_origins) -> tuple[str, str]:
    """The policy around the request's nonce and ``frame-ancestors`` (the only parts that
    change from one request to the next), built once per configuration."""
    extra = " ".join(
        _extra_sources(
            {
                "STORAGE_URL": storage_url,
                "CONTENT_ORIGIN": content_origin,
                "CSP_EXTRA_ORIGINS": list(extra_origins),
            }
        )
    )
    directives = {
        "default-src": "'self'",
        "script-src": "'self' 'nonce-\0'",
        # Inline style attributes remain in a few templates; styles cannot run script.
        "style-src": "'self' 'unsafe-inline'",
        "img-src": f"'self' data: blob: {extra}",
        "media-src": f"'self' blob: {extra}",
        "connect-src": f"'self' {extra}",
        "frame-src": f"'self' {extra}",
        "font-src": "'self' data:",
        "worker-src": "'self' blob:",
        "object-src": "'none'",
        "base-uri": "'self'",
        "frame-ancestors": "\1",
    }
    policy = "; ".join(f"{name} {value.strip()}" for name, value in directives.items())
    head, _, rest = policy.partition("\0")
    middle, _, _ = rest.partition("\1")
    return head, middle


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", current_app.config["REFERRER_POLICY"])
        if "Content-Security-Policy" not in headers:
            policy = content_security_policy(csp_nonce())
            headers["Content-Security-Policy"] = policy
            if "frame-ancestors 'none'" in policy:
                headers.setdefault("X-Frame-Options", "DENY")  # for browsers without CSP 2
        return response
