"""Platform and deployment rows read by every LTI login and launch, cached on Redis only.

A returning student's login + launch read the platform twice and the deployment (with its
school and district) once: three statements, and the login's one statement also pays the
connection checkout (issue 14, docs/lti.md).  Here those rows are kept in the shared
cache (app/common/cache.py) under the generation of :data:`SCOPE`, which
app/lti/origins.py bumps after any commit that wrote a platform, a deployment, a school
or a district — so a suspended platform, a withdrawn approval or a moved school is seen
by every process at once.

Only on Redis (``REDIS_URL`` / ``SHUYUAN_CACHE_REDIS_URL``): with a per-process cache,
another gunicorn worker would keep launching a suspended platform for up to
``CACHE_LOCAL_SECONDS`` — the same reason token lookups are not cached there
(app/accounts/token_cache.py).  Unknown platforms and deployments are never cached, so
requests with made-up issuers cannot fill the cache.

Entries are ORM rows as read (the deployment with its school and district loaded),
merged back into the request's session without SQL (``merge(load=False)``).

One round trip per request (issue 14, fourth pass): the first read of a request fetches
the generation, its own entry, the entries the caller names in ``also`` (the launch: the
deployment, keyed by the platform its login state was issued for) and the framing
origins every response's CSP header needs (app/lti/origins.py), in one MGET; the request
then answers from what that read returned (``g``).  A returning login + launch made five
cache round trips for these (platform and origins at the login; platform, deployment and
origins at the launch), now two.  What a request sees is what one read at its start saw,
as before: a suspension committed after that read is refused from the next request on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g, has_request_context

from app.common import cache
from app.extensions import db

SCOPE = "lti-registrations"
SECONDS = 300

Row = TypeVar("Row")


# The entries' bytes decoded once per process (rows are only ever merged, never changed).
_DECODED = cache.DecodedMemo()

ORIGINS = ("origins",)  # the framing origins of every response (app/lti/origins.py)
_SEEN = "_lti_registry_read"  # g: (generation, {entry name: entry}) of this request


def _name(parts: tuple) -> str:
    return f"{SCOPE}:{cache.key(*parts)}"


def _entry(parts: tuple, also: tuple[tuple, ...]) -> tuple[int, object] | None:
    """(generation, entry or None) of ``parts``: from this request's earlier read, else
    one MGET of the generation and the entries of ``parts``, ``also`` and the origins.
    None when Redis does not answer."""
    name = _name(parts)
    # Kept for one request only (a job or command's app context may live on).
    seen = g.get(_SEEN) if has_request_context() else None
    if seen is not None and name in seen[1]:
        return seen[0], seen[1][name]
    names = list(dict.fromkeys([name, *(_name(each) for each in (*also, ORIGINS))]))
    found = cache.scoped_read(SCOPE, names, _DECODED)
    if found is None:
        return None
    number, values = found
    entries = dict(zip(names, values, strict=True))
    if seen is not None and seen[0] == number:
        entries = {**seen[1], **entries}
    if has_request_context():
        g._lti_registry_read = (number, entries)
    return number, entries[name]


def _remember(number: int, parts: tuple, value) -> None:
    name = _name(parts)
    cache.scoped_write(number, {name: value}, SECONDS)
    seen = g.get(_SEEN) if has_request_context() else None
    if seen is not None and seen[0] == number:
        seen[1][name] = value


def cached_row(
    parts: tuple, read: Callable[[], Row | None], also: tuple[tuple, ...] = ()
) -> Row | None:
    """The row for ``parts`` from the shared cache, or ``read()`` (stored when found);
    ``also``: the parts this request will ask for next (read in the same round trip)."""
    if current_app.config.get("CACHE_TYPE") != "RedisCache":
        return read()
    found = _entry(parts, also)
    if found is None:  # Redis did not answer: read the database
        return read()
    number, entry = found
    if entry is not None:
        try:
            return db.session.merge(entry, load=False)
        except Exception:  # an entry of older models (after a deployment): read again
            cache.delete(_name(parts))
    row = read()
    if row is not None:
        _remember(number, parts, row)
    return row


def cached_value(parts: tuple, produce: Callable[[], object]):
    """A value made from registration rows (the framing origins), cached in this scope:
    on Redis through this request's one read; with a per-process cache as any other
    entry (app/common/cache.remember)."""
    if current_app.config.get("CACHE_TYPE") != "RedisCache":
        return cache.remember(SCOPE, parts, produce)
    found = _entry(parts, ())
    if found is None:
        return produce()
    number, value = found
    if value is None:
        value = produce()
        if value is not None:
            _remember(number, parts, value)
    return value
