"""Who may see what, reduced to the :class:`~app.search.backend.Scope` every query
carries (visibility is part of the query, never a filter over a page of results)."""

from __future__ import annotations

from app import sharing
from app.search.backend import Scope


def scope_for(user) -> Scope:
    """Mirror of :func:`app.catalog.services.visibility_condition` for the index."""
    if user is not None and user.is_platform_admin:
        return Scope(everything=True)
    if user is None:
        return Scope()
    return Scope(
        school_ids=frozenset(str(i) for i in user.member_school_ids()),
        district_ids=frozenset(str(i) for i in user.member_district_ids()),
        admin_district_ids=frozenset(str(i) for i in user.admin_district_ids()),
        author=user.public_id,
        # Items the user's districts receive by subscription (app/sharing).
        subscribed_content_ids=frozenset(
            sharing.subscribed_content_ids(user.member_district_ids())
        ),
    )
