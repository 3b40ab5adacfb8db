"""Origins of the LMS platforms allowed to frame Shuyuan's LTI pages.

Public, typed and read-only: the security headers (app/core/headers.py) put these in
``frame-ancestors`` of the LTI pages and of :data:`LANDING_ENDPOINTS`.  A platform counts
once it is active and one of its deployments is approved, so a pending dynamic
registration cannot get its pages framed.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import g
from sqlalchemy import event, select

from app.accounts.models import District, School
from app.common import cache
from app.common.unit_of_work import CommitNote
from app.extensions import db
from app.lti import registry_cache
from app.lti.models import LtiDeployment, LtiPlatform

# Where a launch redirects the LMS frame to (app/lti/views.py, end of the launch); with
# paths under /lti/ these are the pages the registered platforms may frame even when the
# browser sends no cookie into the cross-site frame.
LANDING_ENDPOINTS = frozenset({"catalog.resource_detail", "catalog.course_detail"})

# Header values are built from these: anything but a plain host name is dropped, so a
# stored issuer such as "https://x; script-src *" cannot inject a CSP directive.
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


def url_origin(url: str | None) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, or None when it is not one."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not _HOST.match(host):
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


# The origins are cached with the registrations (app/lti/registry_cache.py, scope
# ``lti-registrations``): every response of the site reads them for its CSP header (a
# query per response before, 2 of a login + launch's statements; issue 14), and on Redis
# a login or launch reads them in the round trip that reads its platform.  Bumped after
# any commit that wrote a platform or a deployment.


def registered_platform_origins() -> tuple[str, ...]:
    """Sorted origins (issuer and login URL) of every active platform with an approved
    deployment; cached (invalidated when a registration changes), once per request."""
    cached = g.get("_lti_platform_origins")
    if cached is not None:
        return cached
    origins = tuple(registry_cache.cached_value(registry_cache.ORIGINS, _read_origins))
    g._lti_platform_origins = origins
    return origins


def _read_origins() -> tuple[str, ...]:
    approved = select(LtiDeployment.platform_id).where(LtiDeployment.approved.is_(True))
    rows = db.session.execute(
        select(LtiPlatform.issuer, LtiPlatform.auth_login_url).where(
            LtiPlatform.active.is_(True), LtiPlatform.id.in_(approved)
        )
    ).all()
    return tuple(sorted({o for row in rows for o in map(url_origin, row) if o}))


# Rows whose change makes cached origins and cached registrations
# (app/lti/registry_cache.py: deployments are cached with their school and district) stale.
_REGISTRATION_ROWS = (LtiPlatform, LtiDeployment, School, District)


def _note_registration_writes(session, flush_context, instances) -> None:
    written = (
        *session.new,
        *session.deleted,
        # Column changes only: a school becomes "dirty" when a user is appended to its
        # loaded ``users`` collection, which changes nothing cached.
        *(obj for obj in session.dirty if session.is_modified(obj, include_collections=False)),
    )
    if any(isinstance(obj, _REGISTRATION_ROWS) for obj in written):
        _registrations_written.mark(session)


def _bump(_note) -> None:
    cache.bump(registry_cache.SCOPE)


_registrations_written = CommitNote("lti-registrations", _bump)


def install() -> None:
    """Invalidate the cached origins and registrations whenever a platform, deployment,
    school or district row is written
    (the admin page, the API, the CLI, dynamic registration, tests: all go through the
    ORM session; nothing updates these tables with bulk statements)."""
    if not event.contains(db.session, "before_flush", _note_registration_writes):
        event.listen(db.session, "before_flush", _note_registration_writes)
    _registrations_written.install()
