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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app

from app.common import cache
from app.extensions import db

SCOPE = "lti-registrations"
SECONDS = 300

Row = TypeVar("Row")


def cached_row(parts: tuple, read: Callable[[], Row | None]) -> Row | None:
    """The row for ``parts`` from the shared cache, or ``read()`` (stored when found)."""
    if current_app.config.get("CACHE_TYPE") != "RedisCache":
        return read()
    name = f"{SCOPE}:{cache.key(*parts)}"
    found = cache.scoped_read(SCOPE, [name])  # the generation and the row: one round trip
    if found is None:  # Redis did not answer: read the database
        return read()
    number, (entry,) = found
    if entry is not None:
        try:
            return db.session.merge(entry, load=False)
        except Exception:  # an entry of older models (after a deployment): read again
            cache.delete(name)
    row = read()
    if row is not None:
        cache.scoped_write(number, {name: row}, SECONDS)
    return row
