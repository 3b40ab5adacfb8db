"""Failed password logins counted per account, with lockouts that grow.

The per-address limits of :mod:`app.common.ratelimit` stop one machine; this stops many
machines guessing one account's password.  Every failure for an email address (known
or not, so the answer never tells whether an account exists) is counted in the
configured windows (``LOGIN_FAILURE_LIMITS``, by default 5 in 15 minutes, 10 an hour,
20 a day); while any window is full, password logins for that address are refused with
429 and the time until the window frees, before the password is even checked.  Each
fuller window locks longer, so a persistent guesser slows down progressively.  A
successful login clears the count.

The counters share the rate limiter's storage (Redis when configured): a lockout holds
across workers and hosts, and a refused request's rollback cannot undo a count.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from flask import current_app
from limits import parse_many
from limits.strategies import MovingWindowRateLimiter

from app.common.ratelimit import get_limiter
from app.errors import TooManyRequests

log = logging.getLogger(__name__)
_SCOPE = "login-failures"


def _key(email: str) -> str:
    # Hashed: the storage (Redis) never holds the addresses people typed.  Prefixed like
    # the limiter's own keys, so two sites sharing one Redis keep separate counts.
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"{current_app.config.get('RATELIMIT_KEY_PREFIX') or ''}{digest}"


def _strategy() -> tuple[MovingWindowRateLimiter, list] | None:
    limiter = get_limiter()
    if limiter is None:
        return None
    return (
        MovingWindowRateLimiter(limiter.storage),
        parse_many(current_app.config["LOGIN_FAILURE_LIMITS"]),
    )


def check(email: str) -> None:
    """Raise :class:`TooManyRequests` while ``email`` is locked out."""
    try:
        wait = _wait_seconds(email)
    except Exception as exc:  # any storage error: Redis down, refused, timed out
        # The counter store (Redis) is down: logins go on, as with the address limits.
        log.warning("login failure counter unavailable: %s", exc)
        return
    if wait > 0:
        raise TooManyRequests(
            "Too many failed logins for this account. Try again later.",
            retry_after=max(1, math.ceil(wait)),
        )


def _wait_seconds(email: str) -> float:
    found = _strategy()
    if found is None:
        return 0.0
    strategy, limits = found
    wait = 0.0
    for item in limits:
        if not strategy.test(item, _SCOPE, _key(email)):
            reset_at = strategy.get_window_stats(item, _SCOPE, _key(email)).reset_time
            wait = max(wait, reset_at - time.time())
    return wait


def record_failure(email: str) -> None:
    _each_window(email, "hit")


def record_success(email: str) -> None:
    _each_window(email, "clear")


def _each_window(email: str, action: str) -> None:
    found = _strategy()
    if found is None:
        return
    strategy, limits = found
    try:
        for item in limits:
            getattr(strategy, action)(item, _SCOPE, _key(email))
    except Exception as exc:  # any storage error: Redis down, refused, timed out
        log.warning("login failure counter unavailable: %s", exc)
