"""Failed Basic authentication on the LRS, counted per client address.

The limit ``RATELIMIT_XAPI_AUTH_FAILURES`` (see :mod:`app.common.ratelimit`) counts only
the answers 401; while one of its windows is full, every request of that address under
``/xapi/`` gets 429 with ``Retry-After``, before its credentials are even looked at.

It used to be a Flask-Limiter decorator on the LRS's view.  Flask-Limiter's per-request
machinery (resolving the limits of the endpoint twice, once in its ``before_request``
hook and once in the decorator, request-context bookkeeping, the conditional deduction
after the response) was 0.3 ms of a single POST's 2.8 ms of CPU (issue 14, docs/xapi.md).
Here each request costs one ``test`` per window on the limiter's own storage (Redis when
configured, so every worker and host counts together; memory otherwise), with limits
parsed once per application, and a 401 one ``hit`` per window.  When the storage fails
(Redis down), the counts go on in this process's memory for ``RETRY_STORAGE`` seconds,
then the storage is tried again, as Flask-Limiter's in-memory fallback did: a warning is
logged, no request is refused or fails for it, and guessing does not become free.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, current_app, request
from flask_limiter.util import get_remote_address
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from app.common.ratelimit import get_limiter
from app.errors import TooManyRequests

log = logging.getLogger(__name__)
SCOPE = "xapi-auth"
RETRY_STORAGE = 30.0  # seconds on the in-memory fallback before the storage is tried again
_EXTENSION = "shuyuan_xapi_auth_throttle"


class _Counter:
    """The windows of one application, on the limiter's storage or, while it fails, on
    this process's memory."""

    def __init__(self, limiter, limits, prefix: str):
        self.limiter, self.limits, self.prefix = limiter, limits, prefix
        self.fallback = MovingWindowRateLimiter(MemoryStorage())
        self.fallback_until = 0.0

    def run(self, operation):
        """``operation(strategy, key)`` on the storage, or on memory while it is down."""
        key = self.prefix + get_remote_address()
        if time.monotonic() >= self.fallback_until:
            try:
                # The limiter's storage is built at its first use; a strategy is cheap.
                return operation(MovingWindowRateLimiter(self.limiter.storage), key)
            except Exception as exc:  # any storage error: Redis down, refused, timed out
                log.warning(
                    "xAPI authentication failure counter unavailable, counting in memory "
                    "for %.0f s: %s",
                    RETRY_STORAGE,
                    exc,
                )
                self.fallback_until = time.monotonic() + RETRY_STORAGE
        return operation(self.fallback, key)


def init_app(app: Flask) -> None:
    limiter = get_limiter(app)
    if limiter is None:  # rate limiting switched off
        return
    # Flask-Limiter's hooks have nothing to do for the LRS any more.  A request filter
    # skips them outright; exempting the blueprint would still resolve the endpoint's
    # limits on every request.
    limiter.request_filter(_is_lrs_request)
    app.extensions[_EXTENSION] = _Counter(
        limiter,
        parse_many(app.config["RATELIMIT_XAPI_AUTH_FAILURES"]),
        app.config.get("RATELIMIT_KEY_PREFIX") or "",
    )


def _is_lrs_request() -> bool:
    return request.blueprint == "xapi"


def check() -> None:
    """Raise :class:`TooManyRequests` while this address has used up its failures."""
    counter = current_app.extensions.get(_EXTENSION)
    if counter is None:
        return

    def wait_seconds(strategy, key) -> float:
        wait = 0.0
        for item in counter.limits:
            if not strategy.test(item, SCOPE, key):
                reset_at = strategy.get_window_stats(item, SCOPE, key).reset_time
                wait = max(wait, reset_at - time.time())
        return wait

    wait = counter.run(wait_seconds)
    if wait > 0:
        # The class's message, in the catalogues: "Too many requests. Try again later."
        raise TooManyRequests(retry_after=max(1, math.ceil(wait)))


def record_failure() -> None:
    """Count a 401 in every window."""
    counter = current_app.extensions.get(_EXTENSION)
    if counter is None:
        return

    def hit(strategy, key) -> None:
        for item in counter.limits:
            strategy.hit(item, SCOPE, key)

    counter.run(hit)
