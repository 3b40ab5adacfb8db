"""Rate limits on the doors people try passwords and tokens at (Flask-Limiter).

One :class:`flask_limiter.Limiter` per application (kept in ``app.extensions``), not a
module global: its switch and counters would otherwise be shared by every app built in
the process.  The limits are bound to URL rules once every feature and plugin has
registered its routes, so features need no decorator and the table below is the one
place an operator reads them:

========================  =============  ==============================================
path                      methods        counts
========================  =============  ==============================================
``/login``                POST           every attempt, per client address
``/api/v1/auth/tokens``   POST           every attempt, per client address
``/xapi/…``               all            only answers 401 (failed Basic auth), per address
``/lti/register…``        all            every request, per client address
========================  =============  ==============================================

The ``/xapi/`` limit is counted by :mod:`app.xapi.throttle` (same storage, no decorator).
Failed logins are also counted per account, see :mod:`app.accounts.throttle`.  Counters
live in Redis when ``REDIS_URL`` (or ``RATELIMIT_STORAGE_URI``) is set, so every worker
and host shares them; otherwise in this process's memory.  If Redis goes away the limits
fall back to memory and a warning is logged: requests are never refused for it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.wrappers import Response


@dataclass(frozen=True)
class PathLimit:
    name: str  # also the counters' scope: every endpoint of a rule shares one count
    prefix: str
    config_key: str
    methods: tuple[str, ...] | None = None
    failures_only: bool = False


PATH_LIMITS = (
    PathLimit("login", "/login", "RATELIMIT_LOGIN", ("POST",)),
    PathLimit("api-tokens", "/api/v1/auth/tokens", "RATELIMIT_TOKENS", ("POST",)),
    # /xapi (RATELIMIT_XAPI_AUTH_FAILURES, failed Basic auth only): app.xapi.throttle,
    # which does what this decorator did at a tenth of its cost per request (issue 14).
    PathLimit("lti-register", "/lti/register", "RATELIMIT_LTI_REGISTER"),
)


def _failed_auth(response: Response) -> bool:
    return response.status_code == 401


def get_limiter(app: Flask | None = None) -> Limiter | None:
    """This application's limiter, or None when rate limiting is switched off."""
    return (app or current_app).extensions.get("shuyuan_limiter")


def retry_after_seconds() -> int | None:
    """Seconds until the limit this request broke frees up (for ``Retry-After``)."""
    limiter = get_limiter()
    current = limiter.current_limit if limiter is not None else None
    if current is None:
        return None
    return max(1, math.ceil(current.reset_at - time.time()))


def init_app(app: Flask) -> None:
    if not app.config.get("RATELIMIT_ENABLED", True):
        return
    app.config["RATELIMIT_STORAGE_URI"] = (
        app.config.get("RATELIMIT_STORAGE_URI") or app.config.get("REDIS_URL") or "memory://"
    )
    limiter = Limiter(
        key_func=get_remote_address,
        strategy="moving-window",
        headers_enabled=False,  # Retry-After is added to the 429 itself (app/errors.py)
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    limiter.init_app(app)
    app.extensions["shuyuan_limiter"] = limiter


def bind_path_limits(app: Flask) -> None:
    """Attach :data:`PATH_LIMITS` to every matching route; call once all routes exist."""
    limiter = get_limiter(app)
    if limiter is None:
        return
    bound: set[str] = set()
    for rule in app.url_map.iter_rules():
        for path_limit in PATH_LIMITS:
            # An endpoint reached by several rules (``/xapi`` and ``/xapi/<path>``) is
            # limited once, or each request would count twice.
            if not rule.rule.startswith(path_limit.prefix) or rule.endpoint in bound:
                continue
            bound.add(rule.endpoint)
            view = app.view_functions[rule.endpoint]
            decorate = limiter.shared_limit(
                app.config[path_limit.config_key],
                scope=path_limit.name,
                methods=list(path_limit.methods) if path_limit.methods else None,
                deduct_when=_failed_auth if path_limit.failures_only else None,
            )
            app.view_functions[rule.endpoint] = decorate(view)
            break
    if not (app.config.get("RATELIMIT_DEFAULT") or app.config.get("RATELIMIT_APPLICATION")):
        # The table above is every limit there is, so a request to any other endpoint has
        # nothing to count: let the limiter skip it before it resolves and evaluates the
        # (empty) set of limits of that endpoint, work it did on every request of the site.
        limiter.request_filter(lambda: request.endpoint not in bound)
        _skip_hooks_off_limits(app, limiter, frozenset(bound))


def _skip_hooks_off_limits(app: Flask, limiter: Limiter, bound: frozenset[str]) -> None:
    """Run the limiter's three request hooks for the limited endpoints only.

    The request filter above still left, on every other request, the limiter's
    before-request (its exemption scopes and an empty evaluation), its after-request and
    its teardown, each creating and resetting a per-request context: about 0.5 ms of a
    profiled LTI login + launch (issue 14, sixth pass), for endpoints that have no limit
    to count.  A limited endpoint runs all three exactly as before.  Left as they are if
    this Flask-Limiter registers them otherwise (slower, never unlimited)."""
    check = getattr(limiter, "_check_request_limit", None)
    release = getattr(limiter, "_Limiter__release_context", None)  # private: may go
    if check is None or release is None:
        return

    def before() -> None:
        if request.endpoint in bound:
            check()

    def teardown(error: BaseException | None = None) -> None:
        if request.endpoint in bound:
            release(error)

    hooks = (
        (app.before_request_funcs.get(None, []), lambda f: f == check, lambda f: before),
        (
            app.after_request_funcs.get(None, []),
            lambda f: isinstance(f, partial) and f.args == (limiter,),
            lambda f: _after_for(f, bound),
        ),
        (app.teardown_request_funcs.get(None, []), lambda f: f == release, lambda f: teardown),
    )
    found = [next((i for i, f in enumerate(funcs) if mine(f)), None) for funcs, mine, _ in hooks]
    if None in found:  # a Flask-Limiter registering its hooks otherwise: keep them as they are
        return
    for (funcs, _, replace), index in zip(hooks, found, strict=True):
        funcs[index] = replace(funcs[index])


def _after_for(inject, bound: frozenset[str]):
    def after(response: Response) -> Response:
        return inject(response) if request.endpoint in bound else response

    return after
