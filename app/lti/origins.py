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
from sqlalchemy import select

from app.extensions import db
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


def registered_platform_origins() -> tuple[str, ...]:
    """Sorted origins (issuer and login URL) of every active platform with an approved
    deployment; computed once per request."""
    cached = g.get("_lti_platform_origins")
    if cached is not None:
        return cached
    approved = select(LtiDeployment.platform_id).where(LtiDeployment.approved.is_(True))
    rows = db.session.execute(
        select(LtiPlatform.issuer, LtiPlatform.auth_login_url).where(
            LtiPlatform.active.is_(True), LtiPlatform.id.in_(approved)
        )
    ).all()
    origins = tuple(sorted({o for row in rows for o in map(url_origin, row) if o}))
    g._lti_platform_origins = origins
    return origins
