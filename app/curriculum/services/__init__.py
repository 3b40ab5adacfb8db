"""Curriculum business logic, one module per sub-domain (everything is re-exported here):

- ``permissions`` — who may manage frameworks, classes and calendars;
- ``nodes`` — reading the tree: nodes, children, ancestors, volumes, knowledge points;
- ``frameworks`` — CASE import and export, building a framework node by node;
- ``alignment`` — aligning resources and course items to nodes;
- ``course_builder`` — a curriculum course draft generated from a volume;
- ``classes`` — school classes, members, editions, progress;
- ``calendar_terms`` — term arithmetic (weeks, teaching days, holidays, the default spread);
- ``calendars`` — teaching calendars, their versions, per-class overrides;
- ``this_week`` — what a class learns in a given week;
- ``week_cache`` — each class's week structure in the shared cache (Redis), and the
  listeners that drop it after any commit writing calendars, progress or the framework;
- ``coverage`` — how well a volume is covered by published resources.

Every function takes the acting user explicitly and only flushes; the request (or the
CLI command) commits once.  Other features use only these, with these signatures:

- ``get_or_create_class(school, name, *, grade=None, external_ref=None) -> SchoolClass``
  and ``add_class_member(school_class, user, role) -> ClassMember`` (LTI launches);
- ``list_calendars(user) -> list[TeachingCalendar]``,
  ``lessons_for_week(user, calendar_id, week) -> list[Node]`` and
  ``resources_for_week(user, calendar_id, week) -> list[Resource]`` (LTI deep linking);
- ``this_week(user, class_id=None, on=None, offset=0, subject=None) -> list[WeekView]``
  (portraits' recommendations): each lesson's ``resources`` are ``AlignedResource``s
  whose ``resource`` is a read-only ``ResourceSummary`` row (``content_id``, ``title``,
  ``kind``, ``url``, ``translated(field, locale)``, ...), not a ``Resource`` entity;
  ``weeks_at_offsets(user, offsets, class_id=None, on=None, subject=None) -> {offset:
  list[WeekView]}`` the same for several weeks in one pass (this, last and next week);
  ``followed_calendars(user, day) -> list[FollowedCalendar]`` (class id, subject,
  calendar id, term start: ``effective_calendar`` of each of her classes and subjects,
  as rows in one statement) with ``week_number(calendar, day)``;
- ``alignments_for_resource(content_id) -> list[NodeAlignment]`` (search indexes each
  alignment's ``terms``: node title, English title, unit and volume titles);
- ``app.curriculum.filters.filter_content_ids(user, edition, chapter) -> set[str] | None``
  and ``chapter_options(edition) -> list[tuple[int, str]]`` (search's chapter filter).
"""

from app.curriculum.services.alignment import (
    ALIGNMENT_ORDER,
    AlignedResource,
    NodeAlignment,
    ResourceSummary,
    align,
    aligned_resources,
    alignment_summary,
    alignments_for_item,
    alignments_for_resource,
    alignments_of_node,
    unalign,
)
from app.curriculum.services.calendar_terms import (
    MAX_WEEKS,
    holiday_days,
    holiday_entry,
    monday,
    parse_date,
    spread_lessons,
    term_weeks,
    today,
    validate_term,
    week_number,
)
from app.curriculum.services.calendars import (
    WEEK_KINDS,
    assign_lessons,
    calendar_plan,
    calendar_versions,
    class_calendar,
    classes_to_override,
    create_calendar,
    delete_calendar,
    district_calendars_for,
    get_calendar,
    list_calendars,
    move_lesson,
    override_calendar,
    restore_calendar_version,
    save_calendar,
    shift_calendar,
)
from app.curriculum.services.classes import (
    add_class_member,
    add_member_by_email,
    class_members,
    classes_of,
    create_class,
    district_classes,
    get_class,
    get_or_create_class,
    lessons_by_subject,
    progress_of,
    record_progress,
    remove_class_member,
    set_class_edition,
)
from app.curriculum.services.course_builder import (
    generate_course,
)
from app.curriculum.services.coverage import (
    coverage,
)
from app.curriculum.services.frameworks import (
    add_association,
    add_node,
    create_framework,
    delete_framework,
    export_case,
    get_framework,
    import_case,
    list_frameworks,
)
from app.curriculum.services.nodes import (
    ancestors_of,
    associations_of,
    children_of,
    equivalents,
    framework_tree,
    get_node,
    knowledge_point_pairs,
    knowledge_points_of,
    lessons_of_volume,
    list_volumes,
    node_by_identifier,
    units_of_volume,
    volume_title,
)
from app.curriculum.services.permissions import (
    can_edit_calendar,
    can_manage_class,
    can_manage_framework,
    can_read_calendar,
    is_class_member,
    require_user,
)
from app.curriculum.services.this_week import (
    ClassCalendars,
    FollowedCalendar,
    WeekView,
    district_class_calendars,
    effective_calendar,
    followed_calendars,
    last_ended_calendar,
    lessons_for_week,
    resources_for_week,
    this_week,
    week_plan,
    weeks_at_offsets,
)

__all__ = [
    "ClassCalendars",
    "FollowedCalendar",
    "district_class_calendars",
    "district_classes",
    "ALIGNMENT_ORDER",
    "AlignedResource",
    "MAX_WEEKS",
    "NodeAlignment",
    "ResourceSummary",
    "WeekView",
    "add_association",
    "add_class_member",
    "add_member_by_email",
    "add_node",
    "align",
    "aligned_resources",
    "alignment_summary",
    "alignments_for_item",
    "alignments_for_resource",
    "alignments_of_node",
    "ancestors_of",
    "assign_lessons",
    "associations_of",
    "WEEK_KINDS",
    "calendar_plan",
    "calendar_versions",
    "can_edit_calendar",
    "can_manage_class",
    "can_manage_framework",
    "can_read_calendar",
    "children_of",
    "class_calendar",
    "class_members",
    "classes_of",
    "classes_to_override",
    "coverage",
    "create_calendar",
    "create_class",
    "create_framework",
    "delete_calendar",
    "delete_framework",
    "district_calendars_for",
    "effective_calendar",
    "followed_calendars",
    "last_ended_calendar",
    "equivalents",
    "export_case",
    "framework_tree",
    "generate_course",
    "get_calendar",
    "get_class",
    "get_framework",
    "get_node",
    "get_or_create_class",
    "holiday_days",
    "holiday_entry",
    "import_case",
    "is_class_member",
    "knowledge_point_pairs",
    "knowledge_points_of",
    "lessons_by_subject",
    "lessons_for_week",
    "lessons_of_volume",
    "list_calendars",
    "list_frameworks",
    "list_volumes",
    "monday",
    "move_lesson",
    "node_by_identifier",
    "override_calendar",
    "parse_date",
    "progress_of",
    "record_progress",
    "remove_class_member",
    "require_user",
    "resources_for_week",
    "restore_calendar_version",
    "save_calendar",
    "set_class_edition",
    "shift_calendar",
    "spread_lessons",
    "term_weeks",
    "this_week",
    "today",
    "unalign",
    "units_of_volume",
    "validate_term",
    "volume_title",
    "week_number",
    "week_plan",
    "weeks_at_offsets",
]
