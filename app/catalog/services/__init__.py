"""Catalog business logic, one module per sub-domain (everything is re-exported here):

- ``permissions`` — who may read, edit and create (:func:`can_view`, :func:`can_edit`,
  :func:`visibility_condition`);
- ``queries`` — loading content and its versions, catalog lists, filters, facets;
- ``editing`` — creating content, editing the draft of its next version;
- ``structure`` — a course's sessions, sections and items, one at a time;
- ``workflow`` — submit, review, withdraw, archive, restore, delete;
- ``enrolment`` — seats, waiting list, enrolling and leaving.

from __future__ import annotations
"""

from app.catalog.services.editing import (
    MAX_TAGS,
    create_content,
    editable_draft,
    editing_draft,
    update_content,
)
from app.catalog.services.enrolment import (
    enrol,
    enrolment_of,
    leave,
    list_enrolments,
    my_enrolments,
    seats_of,
    sync_seats,
    waitlist_position,
)
from app.catalog.services.permissions import (
    ContentModel,
    can_edit,
    can_view,
    owning_school,
    require_author,
    require_user,
    visibility_condition,
    visible_to_organisation,
)
from app.catalog.services.queries import (
    CONTENT_ID,
    CatalogFilters,
    check_filters,
    content_rows,
    count_published,
    facet_counts,
    get_content,
    get_working,
    list_editable,
    list_published,
    list_review_queue,
    list_versions,
    load_for_write,
    published_row,
    readable_rows,
    resolve_resources,
    working_row,
)
from app.catalog.services.structure import (
    MAX_PARTS,
    SESSION_FIELDS,
    add_item,
    add_section,
    add_session,
    move_item,
    move_section,
    remove_item,
    remove_section,
    remove_session,
    section_of,
    update_item,
    update_section,
    update_session,
)
from app.catalog.services.workflow import (
    MAX_NOTE,
    approve_content,
    archive_content,
    delete_content,
    discard_draft,
    reject_content,
    restore_content,
    submit_content,
    withdraw_content,
)

__all__ = [
    "visible_to_organisation",
    "CONTENT_ID",
    "CatalogFilters",
    "ContentModel",
    "MAX_NOTE",
    "MAX_PARTS",
    "MAX_TAGS",
    "SESSION_FIELDS",
    "add_item",
    "add_section",
    "add_session",
    "approve_content",
    "archive_content",
    "can_edit",
    "can_view",
    "check_filters",
    "content_rows",
    "count_published",
    "create_content",
    "delete_content",
    "discard_draft",
    "editable_draft",
    "editing_draft",
    "enrol",
    "enrolment_of",
    "facet_counts",
    "get_content",
    "get_working",
    "leave",
    "list_editable",
    "list_enrolments",
    "list_published",
    "list_review_queue",
    "list_versions",
    "load_for_write",
    "move_item",
    "move_section",
    "my_enrolments",
    "owning_school",
    "published_row",
    "readable_rows",
    "reject_content",
    "remove_item",
    "remove_section",
    "remove_session",
    "require_author",
    "require_user",
    "resolve_resources",
    "restore_content",
    "seats_of",
    "section_of",
    "submit_content",
    "sync_seats",
    "update_content",
    "update_item",
    "update_section",
    "update_session",
    "visibility_condition",
    "waitlist_position",
    "withdraw_content",
    "working_row",
]

# --- compatibility: app.media.services still calls the old private name.
_editable_draft = editable_draft
