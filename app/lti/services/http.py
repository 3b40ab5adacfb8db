"""Outbound HTTP: to registered platforms (JWKS, tokens, scores, rosters) and, guarded,
to the addresses a dynamic registration names.

A registration request names URLs chosen by whoever holds the registration link, so
those fetches go through ``requests-hardened``: the host is resolved once, refused when
private, loopback, link-local (cloud metadata) or otherwise non-public, and the
connection is made to that very address (no DNS rebinding); redirects are never
followed, timeouts are short and answers are read up to a size cap.  Hosts named in
``LTI_REGISTRATION_ALLOW_HOSTS`` (an on-premises LMS, 127.0.0.1 in tests) or every host
when ``LTI_REGISTRATION_ALLOW_PRIVATE`` is set skip only the address check.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlparse

import requests
from flask import current_app
from pylti1p3.exception import LtiServiceException
from requests_hardened import Config, HTTPSession

from app.errors import Invalid

log = logging.getLogger(__name__)

USER_AGENT = "Shuyuan-LTI/1.0"
MAX_ANSWER_BYTES = 256 * 1024


class TimeoutSession(requests.Session):
    """requests session whose calls to the LMS never hang a worker."""

    def __init__(self, timeout: float = 10.0):
        super().__init__()
        self._timeout = timeout
        self.headers["User-Agent"] = USER_AGENT

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


def http_session() -> TimeoutSession:
    return TimeoutSession(current_app.config.get("LTI_HTTP_TIMEOUT", 10.0))


def describe_error(exc: Exception) -> str:
    """A line for the admin's log (grades, rosters), never shown to a stranger."""
    response = (
        exc.response if isinstance(exc, requests.RequestException | LtiServiceException) else None
    )
    if isinstance(response, requests.Response):
        return f"HTTP {response.status_code} from the LMS: {(response.text or '')[:300]}"
    return f"{type(exc).__name__}: {exc}"


# --- guarded fetches for dynamic registration -------------------------------------------


def _host_allowed_anywhere(url: str) -> bool:
    config = current_app.config
    if config.get("LTI_REGISTRATION_ALLOW_PRIVATE"):
        return True
    host = (urlparse(url).hostname or "").lower()
    return host in {h.strip().lower() for h in config.get("LTI_REGISTRATION_ALLOW_HOSTS") or []}


def _guarded_session(url: str) -> requests.Session:
    timeout = float(current_app.config.get("LTI_REGISTRATION_TIMEOUT", 5))
    session = HTTPSession(
        Config(
            ip_filter_enable=not _host_allowed_anywhere(url),
            ip_filter_allow_loopback_ips=False,
            never_redirect=True,
            default_timeout=(min(timeout, 3.0), timeout),
            user_agent_override=USER_AGENT,
        )
    )
    session.trust_env = False  # no proxy from the environment may carry the request elsewhere
    return session


def guarded_json(
    method: str, url: str, failure: str, field: str, **kwargs
) -> tuple[int, dict | None]:
    """``(status, JSON object or None)`` of one request to a registration-supplied URL.

    Any failure (refused address, redirect, timeout, oversized or non-JSON answer) is an
    :class:`Invalid` with the message ``failure`` on ``field``: the reason (an open
    internal port, a resolver error) goes to the log, never to the caller.
    """
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise Invalid(failure, fields={field: ["An http(s) URL."]})
    try:
        with _guarded_session(url) as session:
            response = session.request(method, url, stream=True, **kwargs)
            with response:
                if 300 <= response.status_code < 400:
                    raise ValueError(f"redirect to {response.headers.get('Location')!r}")
                raw = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
    except (requests.RequestException, ValueError, OSError) as exc:
        log.warning("LTI registration: %s %s refused or failed: %r", method, url, exc)
        raise Invalid(failure, fields={field: ["Unreachable or refused."]}) from None
    if len(raw) > MAX_ANSWER_BYTES:
        log.warning("LTI registration: %s %s answered more than %s bytes", method, url, len(raw))
        raise Invalid(failure, fields={field: ["Answer too large."]})
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    return response.status_code, data if isinstance(data, dict) else None
