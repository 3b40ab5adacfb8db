"""JSON API of the catalog: /api/v1/courses, /api/v1/resources and friends.

Courses and resources share one workflow, so their endpoints are built by one factory.
Content is addressed by its stable ``content_id``.
"""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from flask_babel import get_locale
from flask_smorest import Blueprint

from app.accounts.auth import actor
from app.catalog import schemas, services, vocab
from app.catalog.models import Course, Resource
from app.common import cache
from app.errors import NotFound, require_json_body

blp = Blueprint(
    "catalog_api",
    __name__,
    url_prefix="/api/v1",
    description="Courses, resources, publishing and enrolment",
)
blp.before_request(require_json_body)


def _filters(args: dict) -> services.CatalogFilters:
    keys = services.CatalogFilters.__dataclass_fields__
    return services.CatalogFilters(**{k: v for k, v in args.items() if k in keys})


def _page(page) -> dict:
    return {
        "items": page.items,
        "page": page.page,
        "per_page": page.per_page,
        "total": page.total,
        "pages": page.pages,
    }


def _list_page(user, model, args: dict, page: int, per_page: int) -> Response:
    """One page of the list as finished JSON, cached until the catalog changes
    (app/catalog/receivers.py bumps the generation on every publish, archive, withdrawal
    or subscription).  The key is the reader's visibility (``services.visibility_key``:
    anonymous, or the user's schools, districts, administered districts and, if she has
    authored content, her id), the same key the cached counts use: two readers with one
    key see exactly the same rows, and nothing else in a summary depends on the reader.
    The bearer token is still checked on every request (app/accounts/auth.py), so a
    revoked token never reads a cached page."""
    locale = str(get_locale() or "")
    parts = (
        "api-list",
        model.__tablename__,
        services.visibility_key(user),
        sorted(args.items()),
        page,
        per_page,
        locale,
    )

    def produce() -> str:
        # The page schemas (@blp.response) document these answers; schemas.page_dict
        # gives the same JSON without marshmallow's per-field cost.
        result = services.list_published_summaries(
            user, model, _filters(args), page, per_page, locale, schemas.summary_dict
        )
        return current_app.json.dumps(_page(result))

    body = cache.remember(services.CACHE_SCOPE, parts, produce)
    return current_app.response_class(body, mimetype="application/json")


def _register(model, path: str, create_schema, update_schema, out_schema, page_schema):
    noun = model.__name__.lower()

    class Collection(MethodView):
        @blp.arguments(schemas.CatalogQuerySchema, location="query")
        @blp.response(200, page_schema)
        def get(self, args):
            page, per_page = args.pop("page"), args.pop("per_page")
            return _list_page(actor(), model, args, page, per_page)

        @blp.arguments(create_schema)
        @blp.response(201, out_schema)
        def post(self, data):
            obj = services.create_content(actor(), model, data)
            return obj

    Collection.get.__doc__ = f"List published {noun}s the caller may see, with filters."
    Collection.post.__doc__ = f"Create a {noun} (version 1, draft). Teachers and admins."

    class Item(MethodView):
        @blp.arguments(schemas.VersionArgsSchema, location="query")
        @blp.response(200, out_schema)
        def get(self, args, content_id):
            return services.get_content(actor(), model, content_id, args.get("version"))

        @blp.arguments(update_schema)
        @blp.response(200, out_schema)
        def patch(self, data, content_id):
            obj = services.update_content(actor(), model, content_id, data)
            return obj

        @blp.response(204)
        def delete(self, content_id):
            services.delete_content(actor(), model, content_id)

    Item.get.__doc__ = f"One {noun}: the published version, or ?version=latest|N."
    Item.patch.__doc__ = (
        f"Edit the draft of the next version of a {noun} (owner or her district admin)."
    )
    Item.delete.__doc__ = f"Delete a {noun} with all its versions."

    blp.route(f"/{path}", endpoint=f"{path}_collection")(Collection)
    blp.route(f"/{path}/<content_id>", endpoint=f"{path}_item")(Item)

    def action(name, service, doc, with_note=False):
        if with_note:

            @blp.arguments(schemas.RejectSchema)
            @blp.response(200, out_schema)
            def view(data, content_id):
                obj = service(actor(), model, content_id, data["note"])
                return obj
        else:

            @blp.response(200, out_schema)
            def view(content_id):
                obj = service(actor(), model, content_id)
                return obj

        view.__doc__ = doc
        view.__name__ = f"{path}_{name}"
        blp.route(f"/{path}/<content_id>/{name}", methods=["POST"], endpoint=f"{path}_{name}")(view)

    action(
        "submit",
        services.submit_content,
        f"Publish the {noun}'s draft, or send it to district review when the district requires it.",
    )
    action(
        "approve",
        services.approve_content,
        f"Approve a {noun} waiting for review (district admins).",
    )
    action(
        "reject",
        services.reject_content,
        f"Send a {noun} back to its author with a note.",
        with_note=True,
    )
    action("withdraw", services.withdraw_content, f"Take a {noun} back out of review.")
    action("archive", services.archive_content, f"Archive a published {noun}.")
    action("restore", services.restore_content, f"Publish an archived {noun} again.")

    @blp.response(
        200,
        out_schema(many=True) if isinstance(out_schema, type) else out_schema.__class__(many=True),
    )
    def versions(content_id):
        return services.list_versions(actor(), model, content_id)

    versions.__doc__ = f"Every version of a {noun} the caller may see."
    versions.__name__ = f"{path}_versions"
    blp.route(f"/{path}/<content_id>/versions", endpoint=f"{path}_versions")(versions)

    @blp.response(204)
    def discard(content_id):
        services.discard_draft(actor(), model, content_id)

    discard.__doc__ = f"Throw away the unpublished draft of a {noun}."
    discard.__name__ = f"{path}_discard"
    blp.route(f"/{path}/<content_id>/draft", methods=["DELETE"], endpoint=f"{path}_discard")(
        discard
    )

    @blp.arguments(schemas.MineQuerySchema, location="query")
    @blp.response(200, page_schema)
    def mine(args):
        return _page(
            services.list_editable(
                actor(), model, args["page"], args["per_page"], args.get("state")
            )
        )

    mine.__doc__ = f"The {noun}s I can edit, newest version of each."
    mine.__name__ = f"{path}_mine"
    blp.route(f"/me/{path}", endpoint=f"{path}_mine")(mine)


_register(
    Course,
    "courses",
    schemas.CourseCreateSchema,
    schemas.CourseUpdateSchema,
    schemas.CourseSchema,
    schemas.CoursePageSchema,
)
_register(
    Resource,
    "resources",
    schemas.ResourceCreateSchema,
    schemas.ResourceUpdateSchema,
    schemas.ResourceSchema,
    schemas.ResourcePageSchema,
)


# GET views that only read (marked in app/catalog/__init__.py once registered).
READ_ONLY_ENDPOINTS = ("courses_collection", "resources_collection")


def _enrolment_out(enrolment, position: int | None | bool = False) -> dict:
    # Raw values: the response decorator serialises them with EnrolmentSchema (dumping
    # here too made the second dump fail on an already formatted date: a 500).
    return {
        "id": enrolment.id,
        "course_content_id": enrolment.course_content_id,
        "student": enrolment.student,
        "status": enrolment.status,
        "queued_at": enrolment.queued_at,
        "waitlist_position": services.waitlist_position(enrolment)
        if position is False
        else position,
    }


@blp.route("/courses/<content_id>/enrolment")
class MyEnrolment(MethodView):
    @blp.response(200, schemas.EnrolmentSchema)
    def get(self, content_id):
        """My enrolment in a course (404 when none)."""
        enrolment = services.enrolment_of(actor(), content_id)
        if enrolment is None or enrolment.status == "left":
            raise NotFound("You are not enrolled in this course.")
        return _enrolment_out(enrolment)

    @blp.response(201, schemas.EnrolmentSchema)
    def post(self, content_id):
        """Enrol in an extended course; when it is full you join the waiting list."""
        enrolment = services.enrol(actor(), content_id)
        return _enrolment_out(enrolment)

    @blp.response(200, schemas.EnrolmentSchema)
    def delete(self, content_id):
        """Leave the course or its waiting list; the first waitlisted student moves up."""
        enrolment = services.leave(actor(), content_id)
        return _enrolment_out(enrolment)


@blp.route("/courses/<content_id>/enrolments")
@blp.response(200, schemas.EnrolmentSchema(many=True))
def course_enrolments(content_id):
    """Enrolled and waitlisted students of a course (its owner and district admins)."""
    rows = services.list_enrolments(actor(), content_id)
    # Waitlisted rows come in queue order: number them here, not with a query per row.
    waiting = [e for e in rows if e.status == "waitlisted"]
    positions = {e.id: i for i, e in enumerate(waiting, start=1)}
    return [_enrolment_out(e, positions.get(e.id)) for e in rows]


@blp.route("/courses/<content_id>/seats")
@blp.response(200, schemas.SeatsSchema)
def course_seats(content_id):
    """Capacity and seats taken."""
    services.get_content(actor(), Course, content_id)
    seats = services.seats_of(content_id)
    return seats or {"capacity": None, "taken": 0}


@blp.route("/reviews")
@blp.arguments(schemas.MineQuerySchema, location="query")
@blp.response(200, schemas.ReviewQueueSchema)
def review_queue(args):
    """Content waiting for my review (district admins)."""
    queue = services.list_review_queue(actor(), args["page"], args["per_page"])
    return {name: _page(page) for name, page in queue.items()}


@blp.route("/vocabularies")
@blp.response(200)
def vocabularies():
    """Every controlled vocabulary with Chinese and English labels."""
    return {
        name: [{"code": code, "zh": zh, "en": en} for code, (zh, en) in entries.items()]
        for name, entries in vocab.VOCABULARIES.items()
    }


@blp.route("/me/resource-choices")
@blp.arguments(schemas.ChoicesQuerySchema, location="query")
@blp.response(200, schemas.ResourceChoiceSchema(many=True))
def resource_choices(args):
    """Resources I may put in a course section, matching ``q``: my own (any state) first,
    then published ones I may read.  For the editor's search picker."""
    from app.i18n import current_language

    locale = current_language()
    return [
        {
            "id": row.content_id,
            "title": row.translated("title", locale),
            "kind": row.kind,
            "kind_label": vocab.label("resource_kind", row.kind, locale),
            "state": row.state,
            "state_label": vocab.label("state", row.state, locale),
            "own": own,
            "duration_seconds": row.duration_seconds,
        }
        for row, own in services.resource_choices(actor(), args.get("q"), args["limit"])
    ]


# --- a course's parts, one at a time ----------------------------------------------------
# Each call edits the draft of the next version (as PATCH does) and answers with it, so a
# client sees the positions after the change.  Parts are addressed by 0-based position.

POS = schemas.PATH_POSITION
COURSE = "/courses/<content_id>"


@blp.route(f"{COURSE}/sessions", methods=["POST"])
@blp.arguments(schemas.SessionInSchema)
@blp.response(201, schemas.CourseSchema)
def add_session(data, content_id):
    """Add a session (kept in time order)."""
    return services.add_session(actor(), content_id, data)


@blp.route(f"{COURSE}/sessions/<{POS}:index>")
class SessionPart(MethodView):
    @blp.arguments(schemas.SessionUpdateSchema)
    @blp.response(200, schemas.CourseSchema)
    def patch(self, data, content_id, index):
        """Change some fields of one session."""
        return services.update_session(actor(), content_id, index, data)

    @blp.response(200, schemas.CourseSchema)
    def delete(self, content_id, index):
        """Remove one session."""
        return services.remove_session(actor(), content_id, index)


@blp.route(f"{COURSE}/sections", methods=["POST"])
@blp.arguments(schemas.SectionInSchema)
@blp.response(201, schemas.CourseSchema)
def add_section(data, content_id):
    """Append a section, empty or with items."""
    data["items"] = [{k: v for k, v in i.items() if k != "item_key"} for i in data["items"]]
    return services.add_section(actor(), content_id, data)


@blp.route(f"{COURSE}/sections/<{POS}:index>")
class SectionPart(MethodView):
    @blp.arguments(schemas.SectionUpdateSchema)
    @blp.response(200, schemas.CourseSchema)
    def patch(self, data, content_id, index):
        """Rename a section or change its summary."""
        return services.update_section(actor(), content_id, index, data)

    @blp.response(200, schemas.CourseSchema)
    def delete(self, content_id, index):
        """Remove a section with its items."""
        return services.remove_section(actor(), content_id, index)


@blp.route(f"{COURSE}/sections/<{POS}:index>/move", methods=["POST"])
@blp.arguments(schemas.MoveSchema)
@blp.response(200, schemas.CourseSchema)
def move_section(data, content_id, index):
    """Move a section to another position."""
    return services.move_section(actor(), content_id, index, data["to"])


@blp.route(f"{COURSE}/sections/<{POS}:index>/items", methods=["POST"])
@blp.arguments(schemas.ItemAddSchema)
@blp.response(201, schemas.CourseSchema)
def add_item(data, content_id, index):
    """Append an item (a resource you may read, and/or a title) to a section."""
    return services.add_item(actor(), content_id, index, data)


@blp.route(f"{COURSE}/sections/<{POS}:index>/items/<{POS}:item>")
class ItemPart(MethodView):
    @blp.arguments(schemas.ItemUpdateSchema)
    @blp.response(200, schemas.CourseSchema)
    def patch(self, data, content_id, index, item):
        """Change an item's title or resource (its item key and alignments stay)."""
        return services.update_item(actor(), content_id, index, item, data)

    @blp.response(200, schemas.CourseSchema)
    def delete(self, content_id, index, item):
        """Remove an item from a section."""
        return services.remove_item(actor(), content_id, index, item)


@blp.route(f"{COURSE}/sections/<{POS}:index>/items/<{POS}:item>/move", methods=["POST"])
@blp.arguments(schemas.ItemMoveSchema)
@blp.response(200, schemas.CourseSchema)
def move_item(data, content_id, index, item):
    """Move an item within its section or into another one."""
    target = data.get("section", index)
    return services.move_item(actor(), content_id, index, item, target, data["to"])
