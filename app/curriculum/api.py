"""JSON API of the curriculum: /api/v1/curriculum/..."""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from app.accounts.auth import actor
from app.curriculum import schemas, services
from app.curriculum.models import TargetType
from app.errors import BadRequest
from app.i18n import current_language

# Ids past the database's integer range are simply not found (never a 500).
ID = schemas.PATH_ID

blp = Blueprint(
    "curriculum_api",
    __name__,
    url_prefix="/api/v1/curriculum",
    description="Curriculum frameworks (CASE), alignment, classes, calendars, this week, coverage",
)


def resource_brief(entry) -> dict:
    r = entry.resource
    return {
        "content_id": r.content_id,
        "title": r.translated("title", current_language()),
        "kind": r.kind,
        "url": r.url,
        "alignment_type": entry.alignment_type,
        "via_equivalent": entry.via_equivalent,
    }


def week_view_out(view) -> dict:
    return {
        "class_id": view.school_class.id,
        "class_name": view.school_class.name,
        "subject": view.calendar.subject,
        "edition": view.calendar.edition,
        "calendar_id": view.calendar.id,
        "calendar_title": view.calendar.title,
        "week": view.week,
        "starts_on": view.starts_on,
        "ends_on": view.ends_on,
        "progress": view.progress,
        "progress_delta": view.progress_delta,
        "kind": view.kind,
        "lessons": [
            {
                "node": lesson["node"],
                "knowledge_points": lesson["knowledge_points"],
                "resources": [resource_brief(e) for e in lesson["resources"]],
            }
            for lesson in view.lessons
        ],
    }


def calendar_detail(calendar) -> dict:
    out = {name: getattr(calendar, name) for name in schemas.CalendarSchema().fields}
    out["weeks"] = services.calendar_plan(calendar)
    return out


# --- frameworks and nodes -------------------------------------------------------------


@blp.route("/frameworks")
class Frameworks(MethodView):
    @blp.response(200, schemas.FrameworkSchema(many=True))
    def get(self):
        """Every curriculum framework (curricula are public)."""
        return services.list_frameworks()

    @blp.arguments(schemas.FrameworkCreateSchema)
    @blp.response(201, schemas.FrameworkSchema)
    def post(self, data):
        """Start an empty framework to build node by node (district and platform admins)."""
        framework = services.create_framework(actor(), data)
        return framework


@blp.route("/frameworks/import", methods=["POST"])
@blp.arguments(schemas.ImportQuerySchema, location="query")
@blp.response(200, schemas.ImportReportSchema)
@blp.alt_response(422, description="The package was rejected; `fields` names every problem")
def import_framework(args):
    """Import a CASE 1.0 CFPackage (JSON body), all or nothing.

    A package whose CFDocument identifier is stored updates that framework in place
    (newer lastChangeDateTime only).  Rejected: cycles in isChildOf/precedes, unknown
    association types, dangling references, duplicate identifiers, wrong types.
    """
    package = request.get_json(silent=True)
    if package is None:
        raise BadRequest("Send the CFPackage as a JSON body.")
    report = services.import_case(actor(), package, args.get("district_id"))
    return report.as_dict()


@blp.route(f"/frameworks/<{ID}:framework_id>")
class FrameworkItem(MethodView):
    @blp.arguments(schemas.FrameworkQuerySchema, location="query")
    @blp.response(200, schemas.TreeNodeSchema(many=True))
    def get(self, args, framework_id):
        """The framework's tree (isChildOf), optionally only to ``max_depth``."""
        return services.framework_tree(services.get_framework(framework_id), args.get("max_depth"))

    @blp.response(204)
    def delete(self, framework_id):
        """Delete a framework with its nodes, associations and alignments."""
        services.delete_framework(actor(), framework_id)


@blp.route(f"/frameworks/<{ID}:framework_id>/case")
@blp.response(200)
def export_framework(framework_id):
    """The framework as a CASE 1.0 CFPackage (identifiers kept; re-importable)."""
    return services.export_case(framework_id)


@blp.route(f"/frameworks/<{ID}:framework_id>/nodes", methods=["POST"])
@blp.arguments(schemas.NodeCreateSchema)
@blp.response(201, schemas.NodeSchema)
def add_node(data, framework_id):
    """Add a node (subject, stage, grade, edition, volume, unit, lesson, knowledge point)."""
    node = services.add_node(actor(), framework_id, data)
    return node


@blp.route("/associations", methods=["POST"])
@blp.arguments(schemas.AssociationCreateSchema)
@blp.response(201)
def add_association(data):
    """Link two nodes with a CASE association type (cycles of isChildOf/precedes refused)."""
    row = services.add_association(actor(), data["origin_id"], data["destination_id"], data["type"])
    return {"identifier": row.identifier, "type": row.association_type}


@blp.route("/volumes")
@blp.arguments(schemas.VolumeQuerySchema, location="query")
@blp.response(200, schemas.NodeSchema(many=True))
def volumes(args):
    """Textbook volumes, filtered by subject, edition and grade."""
    return services.list_volumes(**args)


@blp.route(f"/volumes/<{ID}:volume_id>/lessons")
@blp.response(200, schemas.NodeSchema(many=True))
def volume_lessons(volume_id):
    """The lessons of a volume in teaching order."""
    return services.lessons_of_volume(services.get_node(volume_id))


@blp.route(f"/volumes/<{ID}:volume_id>/course", methods=["POST"])
@blp.arguments(schemas.GenerateCourseSchema)
@blp.response(201, schemas.CourseRefSchema)
def generate_course(data, volume_id):
    """Generate a curriculum course draft from a volume (sections = units, items = lessons)."""
    course = services.generate_course(actor(), volume_id, data)
    return course


@blp.route(f"/volumes/<{ID}:volume_id>/coverage")
@blp.response(200, schemas.CoverageSchema)
def coverage(volume_id):
    """Per lesson and knowledge point: published resources by kind (coverage map data)."""
    return services.coverage(actor(), volume_id)


@blp.route(f"/nodes/<{ID}:node_id>")
@blp.response(200, schemas.NodeDetailSchema)
def node_detail(node_id):
    """A node with its path, children, knowledge points, associations and aligned resources."""
    user = actor()
    node = services.get_node(node_id)
    kps = services.knowledge_points_of([node]).get(node.identifier, [])
    aligned = services.aligned_resources(user, [node]).get(node.id, [])
    return {
        "node": node,
        "ancestors": services.ancestors_of(node),
        "children": services.children_of(node),
        "knowledge_points": kps,
        "associations": services.associations_of(node, current_language()),
        "resources": [resource_brief(e) for e in aligned],
    }


# --- alignment ------------------------------------------------------------------------


@blp.route("/alignments")
class Alignments(MethodView):
    @blp.arguments(schemas.AlignmentQuerySchema, location="query")
    @blp.response(200, schemas.AlignmentOutSchema(many=True))
    def get(self, args):
        """Alignments of a resource (``resource_id``) or a course item (``item_key``)."""
        if args.get("resource_id"):
            return services.alignments_for_resource(args["resource_id"])
        if args.get("item_key"):
            return services.alignments_for_item(args["item_key"])
        raise BadRequest("Give resource_id or item_key.")

    @blp.arguments(schemas.AlignmentCreateSchema)
    @blp.response(201, schemas.AlignmentOutSchema)
    def post(self, data):
        """Align a resource or course item to a lesson, unit or knowledge point."""
        target_type = TargetType.RESOURCE if data.get("resource_id") else TargetType.ITEM
        key = data.get("resource_id") or data.get("item_key")
        alignment = services.align(
            actor(), data["node_id"], target_type, key, data["alignment_type"]
        )
        return services.alignment_summary(alignment)


@blp.route(f"/alignments/<{ID}:alignment_id>", methods=["DELETE"])
@blp.response(204)
def delete_alignment(alignment_id):
    """Remove an alignment (the resource's or course's editors)."""
    services.unalign(actor(), alignment_id)


# --- classes --------------------------------------------------------------------------


def class_detail(school_class) -> dict:
    members = services.class_members(school_class)
    out = schemas.ClassSchema().dump(school_class)
    out.update(
        teachers=members["teacher"],
        students=members["student"],
        progress={s: p.node for s, p in services.progress_of(school_class).items()},
    )
    return out


@blp.route("/classes")
class Classes(MethodView):
    @blp.response(200, schemas.ClassSchema(many=True))
    def get(self):
        """My classes."""
        return services.classes_of(actor())

    @blp.arguments(schemas.ClassCreateSchema)
    @blp.response(201, schemas.ClassDetailSchema)
    def post(self, data):
        """Create a class of a school (its teachers, district admins)."""
        school_class = services.create_class(actor(), data)
        return class_detail(school_class)


@blp.route(f"/classes/<{ID}:class_id>")
@blp.response(200, schemas.ClassDetailSchema)
def get_class(class_id):
    """A class with its teachers, students, editions and progress."""
    return class_detail(services.get_class(actor(), class_id))


@blp.route(f"/classes/<{ID}:class_id>/members", methods=["POST"])
@blp.arguments(schemas.MemberInSchema)
@blp.response(201, schemas.ClassDetailSchema)
def add_member(data, class_id):
    """Add a student or teacher of the school by email."""
    services.add_member_by_email(actor(), class_id, data["email"], data["role"])
    return class_detail(services.get_class(actor(), class_id))


@blp.route(f"/classes/<{ID}:class_id>/editions", methods=["PUT"])
@blp.arguments(schemas.EditionInSchema)
@blp.response(200, schemas.ClassDetailSchema)
def set_edition(data, class_id):
    """Set the textbook edition the class uses for a subject."""
    services.set_class_edition(actor(), class_id, data["subject"], data["edition"])
    return class_detail(services.get_class(actor(), class_id))


@blp.route(f"/classes/<{ID}:class_id>/progress", methods=["PUT"])
@blp.arguments(schemas.ProgressInSchema)
@blp.response(200, schemas.ClassDetailSchema)
def set_progress(data, class_id):
    """Record where the class actually is ("we are at lesson X")."""
    services.record_progress(actor(), class_id, data["node_id"])
    return class_detail(services.get_class(actor(), class_id))


@blp.route(f"/classes/<{ID}:class_id>/this-week")
@blp.arguments(schemas.WeekQuerySchema, location="query")
@blp.response(200, schemas.WeekViewSchema(many=True))
def class_week(args, class_id):
    """What the class learns this week (``offset`` -1/1 for last/next week)."""
    views = services.this_week(
        actor(), class_id, args.get("date"), args["offset"], args.get("subject")
    )
    return [week_view_out(v) for v in views]


@blp.route("/me/this-week")
@blp.arguments(schemas.WeekQuerySchema, location="query")
@blp.response(200, schemas.WeekViewSchema(many=True))
def my_week(args):
    """This week's lessons and resources for each of my classes (in its edition)."""
    views = services.this_week(
        actor(), args.get("class_id"), args.get("date"), args["offset"], args.get("subject")
    )
    return [week_view_out(v) for v in views]


# --- calendars ------------------------------------------------------------------------


@blp.route("/calendars")
class Calendars(MethodView):
    @blp.response(200, schemas.CalendarSchema(many=True))
    def get(self):
        """Calendars I may see."""
        return services.list_calendars(actor())

    @blp.arguments(schemas.CalendarCreateSchema)
    @blp.response(201, schemas.CalendarDetailSchema)
    @blp.alt_response(422, description="Dates outside the term, holidays outside the term...")
    def post(self, data):
        """Create a calendar with the default plan (lessons spread over teaching weeks)."""
        calendar = services.create_calendar(actor(), data)
        return calendar_detail(calendar)


@blp.route(f"/calendars/<{ID}:calendar_id>")
class CalendarItem(MethodView):
    @blp.response(200, schemas.CalendarDetailSchema)
    def get(self, calendar_id):
        """A calendar with its weeks and their lessons."""
        return calendar_detail(services.get_calendar(actor(), calendar_id))

    @blp.arguments(schemas.CalendarUpdateSchema)
    @blp.response(200, schemas.CalendarDetailSchema)
    @blp.alt_response(
        422, description="Overlapping weeks, a lesson scheduled twice, dates outside the term"
    )
    def put(self, data, calendar_id):
        """Save a new version (term, holidays, weeks → lessons, or ``regenerate``)."""
        calendar = services.save_calendar(actor(), calendar_id, data)
        return calendar_detail(calendar)

    @blp.response(204)
    def delete(self, calendar_id):
        """Delete a calendar."""
        services.delete_calendar(actor(), calendar_id)


@blp.route(f"/calendars/<{ID}:calendar_id>/shift", methods=["POST"])
@blp.arguments(schemas.ShiftSchema)
@blp.response(200, schemas.CalendarDetailSchema)
def shift(data, calendar_id):
    """Move lessons from ``from_week`` on by ``by`` weeks (a new version)."""
    calendar = services.shift_calendar(actor(), calendar_id, data["by"], data["from_week"])
    return calendar_detail(calendar)


@blp.route(f"/calendars/<{ID}:calendar_id>/move", methods=["POST"])
@blp.arguments(schemas.MoveLessonSchema)
@blp.response(200, schemas.CalendarDetailSchema)
def move(data, calendar_id):
    """Move one lesson to another week (a new version)."""
    calendar = services.move_lesson(actor(), calendar_id, data["node_id"], data["week"])
    return calendar_detail(calendar)


@blp.route(f"/calendars/<{ID}:calendar_id>/override", methods=["POST"])
@blp.arguments(schemas.OverrideSchema)
@blp.response(201, schemas.CalendarDetailSchema)
def override(data, calendar_id):
    """A teacher's copy of this calendar for her class (which then follows the copy)."""
    calendar = services.override_calendar(actor(), calendar_id, data["class_id"])
    return calendar_detail(calendar)


@blp.route(f"/calendars/<{ID}:calendar_id>/versions")
@blp.response(200, schemas.CalendarVersionSchema(many=True))
def versions(calendar_id):
    """Every saved version, newest first."""
    return services.calendar_versions(actor(), calendar_id)


@blp.route(f"/calendars/<{ID}:calendar_id>/restore", methods=["POST"])
@blp.arguments(schemas.RestoreSchema)
@blp.response(200, schemas.CalendarDetailSchema)
def restore(data, calendar_id):
    """Make an old version current again (saved as a new version)."""
    calendar = services.restore_calendar_version(actor(), calendar_id, data["version"])
    return calendar_detail(calendar)


@blp.route(f"/calendars/<{ID}:calendar_id>/weeks/<{ID}:week>")
@blp.response(200, schemas.WeekLessonSchema(many=True))
def calendar_week(calendar_id, week):
    """One week of a calendar: lessons and the resources aligned to them."""
    return [
        {**lesson, "resources": [resource_brief(e) for e in lesson["resources"]]}
        for lesson in services.week_plan(actor(), calendar_id, week)
    ]
