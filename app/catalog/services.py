"""Catalog business logic: authorisation, versioned publishing, enrolment.

Every function takes the acting user (``None`` for an anonymous reader) and flushes;
the caller commits.  Authorisation lives here, not in views, so the API, the pages, the
CLI and LTI launches all obey the same rules.

Who may do what (one rule set for courses and resources):

- **Read** a published version: region-public → everyone, anonymous included;
  district → members of the owning district; school → members of the owning school;
  private → nobody but editors.  Editors (below) read every version in every state.
  An older (superseded) version is readable only by someone who may read the current
  published version *and* that old version; archived content is visible to editors only.
- **Edit** (PATCH, submit, withdraw, archive, restore, discard draft, delete): the
  author, a district admin of the owning district, or a platform admin.  Other
  teachers, even of the same school, cannot.
- **Review** (approve, reject): a district admin of the owning district or a platform admin.
- **Create**: teachers, district admins and platform admins with a school or district.
- **Enrol**: students who may read the published extended course.

Errors follow one rule so ids cannot be probed: content the user cannot read at all
is ``NotFound`` (404), even for a write; content she can read but not change is
``Forbidden`` (403); a write without a user is ``Unauthorized`` (401); a request that
does not fit the content's state (nothing to publish, already enrolled) is ``Conflict``
(409); bad data is ``Invalid`` (422).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app import sharing, signals
from app.accounts.models import Role, School, User
from app.catalog import vocab
from app.catalog.models import (
    Course,
    CourseSeats,
    CourseSection,
    CourseSession,
    Enrolment,
    EnrolmentStatus,
    Resource,
    ResourceGrade,
    SectionItem,
    State,
    Tag,
    Visibility,
)
from app.common.events import send_after_commit
from app.common.models import utcnow
from app.common.pagination import Page, paginate
from app.common.sanitize import sanitize_html
from app.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from app.extensions import db

MAX_TAGS = 20
ContentModel = type[Course] | type[Resource]

_SIGNALS = {
    Course: {
        "published": signals.course_published,
        "archived": signals.course_archived,
        "deleted": signals.course_deleted,
        "submitted": signals.course_submitted,
        "kwarg": "course",
    },
    Resource: {
        "published": signals.resource_published,
        "archived": signals.resource_archived,
        "deleted": signals.resource_deleted,
        "submitted": signals.resource_submitted,
        "kwarg": "resource",
    },
}

# --- authorisation --------------------------------------------------------------------


def visibility_condition(user: User | None, model: ContentModel):
    """SQL condition: rows of ``model`` that ``user`` may read once published.

    Used inside queries (never to filter a page afterwards) so counts stay right.
    """
    if user is not None and user.is_platform_admin:
        return True
    clauses = [model.visibility == Visibility.REGION]
    if user is not None:
        schools = user.member_school_ids()
        districts = user.member_district_ids()
        if schools:
            clauses.append(
                and_(model.visibility == Visibility.SCHOOL, model.school_id.in_(schools))
            )
        if districts:
            clauses.append(
                and_(model.visibility == Visibility.DISTRICT, model.district_id.in_(districts))
            )
            # SHARING HOOK (app/sharing): items the districts receive by subscription.
            clauses.append(
                and_(
                    model.visibility != Visibility.PRIVATE,
                    model.content_id.in_(sharing.subscribed_content_select(districts)),
                )
            )
        admin_of = user.admin_district_ids()
        if admin_of:
            clauses.append(model.district_id.in_(admin_of))
        clauses.append(model.author_id == user.id)
    return or_(*clauses)


def can_view(user: User | None, obj: Course | Resource) -> bool:
    if can_edit(user, obj):
        return True
    if obj.state not in (State.PUBLISHED, State.SUPERSEDED):
        return False
    if obj.visibility == Visibility.REGION:
        return True
    if user is None:
        return False
    if obj.visibility == Visibility.DISTRICT and obj.district_id in user.member_district_ids():
        return True
    if (
        obj.visibility == Visibility.SCHOOL
        and obj.school_id is not None
        and obj.school_id in user.member_school_ids()
    ):
        return True
    # SHARING HOOK (app/sharing): items the user's districts receive by subscription.
    # An item its owner made private since the release is not shown to subscribers.
    return obj.visibility != Visibility.PRIVATE and sharing.is_subscribed(
        obj.content_id, user.member_district_ids()
    )


def visible_to_organisation(
    obj: Course | Resource, district_id: int | None, school_id: int | None
) -> bool:
    """Whether published ``obj`` is visible to the members of a school (or, without one,
    of a district) as such, whoever else they are — e.g. through an LMS deployment that
    belongs to that school, when the user also belongs elsewhere."""
    if obj.state not in (State.PUBLISHED, State.SUPERSEDED):
        return False
    if obj.visibility == Visibility.REGION:
        return True
    if obj.visibility == Visibility.DISTRICT:
        return district_id is not None and obj.district_id == district_id
    if obj.visibility == Visibility.SCHOOL:
        return school_id is not None and obj.school_id == school_id
    return False


def can_edit(user: User | None, obj: Course | Resource) -> bool:
    if user is None:
        return False
    return (
        obj.author_id == user.id
        or user.is_platform_admin
        or user.is_district_admin(obj.district_id)
    )


def _require_user(user: User | None) -> User:
    if user is None:
        raise Unauthorized("Log in first.")
    return user


def _require_author(user: User | None) -> User:
    user = _require_user(user)
    if not (user.is_teacher or user.is_district_admin() or user.is_platform_admin):
        raise Forbidden("Only teachers and administrators can create content.")
    return user


def _owning_school(user: User) -> tuple[int | None, int]:
    """The school and district new content of ``user`` belongs to."""
    for assignment in user.roles:
        if assignment.role == Role.TEACHER and assignment.school_id:
            school = db.session.get(School, assignment.school_id)
            return school.id, school.district_id
    if user.school_id:
        return user.school_id, user.school.district_id
    districts = sorted(user.admin_district_ids() or user.member_district_ids())
    if districts:
        return None, districts[0]
    raise Forbidden("Your account belongs to no school or district, so it cannot own content.")


# --- loading --------------------------------------------------------------------------


_CONTENT_ID = re.compile(r"^[0-9A-Za-z-]{1,36}$")


def _rows(model: ContentModel, content_id: str) -> list:
    """Every version of one content, oldest first ([] for an id that cannot exist)."""
    # Ids come straight from URLs: anything that is not a plain id (NUL bytes, 10 kB of
    # junk) is simply not found rather than sent to the database.
    if not isinstance(content_id, str) or not _CONTENT_ID.match(content_id):
        return []
    return list(
        db.session.execute(
            select(model).filter_by(content_id=content_id).order_by(model.version)
        ).scalars()
    )


def _published(rows: list):
    return next((row for row in rows if row.state in (State.PUBLISHED, State.ARCHIVED)), None)


def _working(rows: list):
    """The row the owner edits: the open draft or review copy, else the newest row."""
    for row in reversed(rows):
        if row.state in (State.DRAFT, State.IN_REVIEW):
            return row
    return rows[-1] if rows else None


def _readable_rows(user: User | None, rows: list) -> list:
    """The versions of one content ``user`` may read (all of them for an editor)."""
    if not rows:
        return []
    if can_edit(user, rows[-1]):
        return list(rows)
    current = next((row for row in rows if row.state == State.PUBLISHED), None)
    if current is None or not can_view(user, current):
        return []
    return [
        row
        for row in rows
        if row.state in (State.PUBLISHED, State.SUPERSEDED) and can_view(user, row)
    ]


def _load_for_write(
    user: User | None, model: ContentModel, content_id: str, action: str
) -> tuple[User, list]:
    """All versions of a content ``user`` wants to change: 401 without a user, 404 when
    she cannot even read it, 403 when she can read but not edit it."""
    user = _require_user(user)
    rows = _rows(model, content_id)
    if not _readable_rows(user, rows):
        raise NotFound(f"{model.__name__} not found.")
    if not can_edit(user, rows[-1]):
        raise Forbidden(
            f"Only the owner or her district admin can {action} this {model.__name__.lower()}."
        )
    return user, rows


def get_content(
    user: User | None, model: ContentModel, content_id: str, version: str | int | None = None
):
    """Load what ``user`` may see of one content.

    ``version`` None → the published row (or, for an editor with nothing published,
    her working draft); ``"latest"`` → the editor's working row; a number → that version.
    Anything the user may not see is reported as not found, so ids cannot be probed.
    """
    rows = _rows(model, content_id)
    not_found = NotFound(f"{model.__name__} not found.")
    readable = _readable_rows(user, rows)
    if not readable:
        raise not_found
    editor = can_edit(user, rows[-1])
    if version in (None, "", "published"):
        row = _published(readable)
        if row is None and editor:
            row = _working(readable)
    elif version == "latest":
        if not editor:
            raise not_found
        row = _working(readable)
    else:
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise Invalid(
                "Invalid version.", fields={"version": ["A number, 'latest' or 'published'."]}
            ) from None
        row = next((r for r in readable if r.version == number), None)
    if row is None:
        raise not_found
    return row


def list_versions(user: User | None, model: ContentModel, content_id: str) -> list:
    """Every version ``user`` may read, oldest first (editors see drafts too)."""
    visible = _readable_rows(user, _rows(model, content_id))
    if not visible:
        raise NotFound(f"{model.__name__} not found.")
    return visible


@dataclass
class CatalogFilters:
    kind: str | None = None
    subject: str | None = None
    grade: str | None = None
    district: int | None = None
    school: int | None = None
    language: str | None = None
    licence: str | None = None
    tag: str | None = None
    category: str | None = None
    edition: str | None = None
    q: str | None = None
    sort: str = "newest"


def _apply_filters(statement, model: ContentModel, filters: CatalogFilters):
    if filters.kind:
        statement = statement.where(model.kind == filters.kind)
    if filters.subject:
        statement = statement.where(model.subject == filters.subject)
    if filters.grade:
        if model is Course:
            statement = statement.where(Course.grade == filters.grade)
        else:
            statement = statement.where(
                Resource.id.in_(
                    select(ResourceGrade.resource_id).where(ResourceGrade.grade == filters.grade)
                )
            )
    if filters.district:
        statement = statement.where(model.district_id == filters.district)
    if filters.school:
        statement = statement.where(model.school_id == filters.school)
    if filters.language:
        statement = statement.where(model.language == filters.language)
    if filters.licence:
        statement = statement.where(model.licence == filters.licence)
    if filters.category and model is Course:
        statement = statement.where(Course.category == filters.category)
    if filters.edition and model is Course:
        statement = statement.where(Course.edition == filters.edition)
    if filters.tag:
        tag_table = model.tags.property.secondary
        key = tag_table.c.course_id if model is Course else tag_table.c.resource_id
        statement = statement.where(
            model.id.in_(
                select(key)
                .join(Tag, Tag.id == tag_table.c.tag_id)
                .where(Tag.name == filters.tag.strip().lower())
            )
        )
    if filters.q:
        needle = (
            "%"
            + filters.q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            + "%"
        )
        statement = statement.where(
            or_(model.title.ilike(needle, escape="\\"), model.summary.ilike(needle, escape="\\"))
        )
    return statement


_SORTS = {
    "newest": lambda m: (m.published_at.desc(), m.id.desc()),
    "oldest": lambda m: (m.published_at.asc(), m.id.asc()),
    "title": lambda m: (m.title.asc(), m.id.asc()),
}
_MAX_FILTER_TEXT = 200
_MAX_ID = 2**31 - 1


def check_filters(filters: CatalogFilters) -> None:
    """Reject filters no database should see (pages pass query strings unchecked)."""
    errors: dict = {}
    if filters.sort not in _SORTS:
        errors["sort"] = [f"One of {', '.join(_SORTS)}."]
    for name in (
        "kind",
        "subject",
        "grade",
        "language",
        "licence",
        "tag",
        "category",
        "edition",
        "q",
    ):
        value = getattr(filters, name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > _MAX_FILTER_TEXT or "\x00" in value:
            errors[name] = ["Not a valid filter value."]
    for name in ("district", "school"):
        value = getattr(filters, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_ID
        ):
            errors[name] = ["Not a valid id."]
    if errors:
        raise Invalid("Invalid filters.", fields=errors)


def _list_options(model: ContentModel) -> list:
    """Load what list pages and API summaries show in a fixed number of queries
    (tags and grades are ``selectin`` on the model), never one query per row."""
    # selectin, not joined: a JOIN makes PostgreSQL join every row before OFFSET on deep
    # pages; three small IN (...) queries on the page's ids stay cheap (docs/catalog.md).
    # The author's roles are not needed to list her name.
    return [
        selectinload(model.author).lazyload(User.roles),
        selectinload(model.school),
        selectinload(model.district),
    ]


def list_published(
    user: User | None,
    model: ContentModel,
    filters: CatalogFilters,
    page: int = 1,
    per_page: int = 20,
) -> Page:
    """One page of the published content ``user`` may read, filtered and sorted."""
    check_filters(filters)
    condition = and_(model.state == State.PUBLISHED, visibility_condition(user, model))
    statement = _apply_filters(select(model).where(condition), model, filters)
    count = _apply_filters(select(func.count(model.id)).where(condition), model, filters)
    statement = statement.order_by(*_SORTS[filters.sort](model)).options(*_list_options(model))
    return paginate(statement, page, per_page, count_statement=count)


def list_editable(
    user: User | None,
    model: ContentModel,
    page: int = 1,
    per_page: int = 20,
    state: str | None = None,
) -> Page:
    """The working row of each content ``user`` may edit (her own; her district's if admin)."""
    user = _require_user(user)
    if state is not None and state not in {s.value for s in State}:
        raise Invalid("Unknown state.", fields={"state": ["Not a valid state."]})
    owned = [model.author_id == user.id]
    if user.admin_district_ids():
        owned.append(model.district_id.in_(user.admin_district_ids()))
    newest = (
        select(model.content_id, func.max(model.version).label("version"))
        .where(or_(*owned))
        .group_by(model.content_id)
        .subquery()
    )
    statement = select(model).join(
        newest, and_(model.content_id == newest.c.content_id, model.version == newest.c.version)
    )
    if state:
        statement = statement.where(model.state == state)
    statement = statement.order_by(model.updated_at.desc(), model.id.desc()).options(
        *_list_options(model)
    )
    return paginate(statement, page, per_page)


def list_review_queue(user: User | None, page: int = 1, per_page: int = 50) -> dict[str, Page]:
    """Content waiting for review in the districts ``user`` administers (all for a
    platform admin), oldest first."""
    user = _require_user(user)
    districts = user.admin_district_ids()
    if not districts and not user.is_platform_admin:
        raise Forbidden("Only district admins review content.")
    result = {}
    for name, model in (("courses", Course), ("resources", Resource)):
        statement = select(model).where(model.state == State.IN_REVIEW)
        if not user.is_platform_admin:
            statement = statement.where(model.district_id.in_(districts))
        statement = statement.order_by(model.updated_at, model.id).options(*_list_options(model))
        result[name] = paginate(statement, page, per_page)
    return result


# --- editing --------------------------------------------------------------------------


def _check_vocab(data: dict, field: str, vocabulary: str, errors: dict) -> None:
    value = data.get(field)
    if value not in (None, "") and value not in vocab.VOCABULARIES[vocabulary]:
        errors[field] = [f"Unknown {vocabulary} '{value}'."]


def _validate_common(data: dict, model: ContentModel) -> None:
    errors: dict = {}
    _check_vocab(data, "language", "language", errors)
    _check_vocab(data, "licence", "licence", errors)
    _check_vocab(data, "subject", "subject", errors)
    _check_vocab(data, "visibility", "visibility", errors)
    if model is Course:
        _check_vocab(data, "kind", "course_kind", errors)
        _check_vocab(data, "category", "category", errors)
        _check_vocab(data, "grade", "grade", errors)
        _check_vocab(data, "edition", "edition", errors)
    else:
        _check_vocab(data, "kind", "resource_kind", errors)
        for grade in data.get("grades") or []:
            if grade not in vocab.GRADES:
                errors["grades"] = [f"Unknown grade '{grade}'."]
    if errors:
        raise Invalid("The submitted data is not valid.", fields=errors)


def _insert_ignoring_duplicates(table, rows: list[dict]):
    """``INSERT ... ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite alike.

    Used instead of a SAVEPOINT: concurrent requests may create the same row, and the
    SQLite driver's savepoints outside a transaction would commit half a request."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(table).values(rows).on_conflict_do_nothing())


def _tags(names: list[str]) -> list[Tag]:
    cleaned = []
    for name in names:
        name = " ".join(name.split()).lower()
        if name and name not in cleaned:
            cleaned.append(name)
    if len(cleaned) > MAX_TAGS:
        raise Invalid("Too many tags.", fields={"tags": [f"At most {MAX_TAGS}."]})
    if not cleaned:
        return []
    existing = {
        t.name: t for t in db.session.execute(select(Tag).where(Tag.name.in_(cleaned))).scalars()
    }
    missing = [name for name in cleaned if name not in existing]
    if missing:
        _insert_ignoring_duplicates(Tag.__table__, [{"name": name} for name in missing])
        existing.update(
            {
                t.name: t
                for t in db.session.execute(select(Tag).where(Tag.name.in_(missing))).scalars()
            }
        )
    return [existing[name] for name in cleaned]


_SCALAR_FIELDS = {
    Course: (
        "title",
        "summary",
        "language",
        "licence",
        "visibility",
        "subject",
        "translations",
        "cover_url",
        "category",
        "capacity",
        "enrolment_open",
        "grade",
        "edition",
    ),
    Resource: (
        "title",
        "summary",
        "language",
        "licence",
        "visibility",
        "subject",
        "translations",
        "url",
        "data",
    ),
}


def _apply(obj, data: dict, user: User) -> None:
    model = type(obj)
    for field in _SCALAR_FIELDS[model]:
        if field in data:
            setattr(obj, field, data[field])
    if "description_html" in data:
        obj.description_html = sanitize_html(data["description_html"])
    if "translations" in data:
        translations = {}
        for lang, fields in (data["translations"] or {}).items():
            fields = dict(fields)
            if "description_html" in fields:
                fields["description_html"] = sanitize_html(fields["description_html"])
            translations[lang] = fields
        obj.translations = translations
    if "tags" in data:
        obj.tags = _tags(data["tags"])
    if model is Resource and "grades" in data:
        obj.grade_rows = [ResourceGrade(grade=g) for g in dict.fromkeys(data["grades"])]
    if model is Course:
        if "sessions" in data:
            obj.sessions = [
                CourseSession(position=i, **session) for i, session in enumerate(data["sessions"])
            ]
        if "sections" in data:
            _replace_sections(obj, data["sections"], user)


def _replace_sections(course: Course, sections: list[dict], user: User) -> None:
    referenced = {
        item["resource_id"]
        for s in sections
        for item in s.get("items", [])
        if item.get("resource_id")
    }
    for content_id in referenced:
        if not _readable_rows(user, _rows(Resource, content_id)):
            raise Invalid(
                "Unknown resource.", fields={"sections": [f"Resource {content_id} not found."]}
            )
    course.sections = [
        CourseSection(
            position=i,
            title=section["title"],
            summary=section.get("summary"),
            items=[
                SectionItem(
                    position=j,
                    title=item.get("title"),
                    resource_content_id=item.get("resource_id"),
                    **({"item_key": item["item_key"]} if item.get("item_key") else {}),
                )
                for j, item in enumerate(section.get("items", []))
            ],
        )
        for i, section in enumerate(sections)
    ]


def create_content(user: User | None, model: ContentModel, data: dict):
    """Create version 1 of a course or resource as a draft owned by ``user``'s school."""
    user = _require_author(user)
    _validate_common(data, model)
    if not data.get("kind"):
        raise Invalid("Kind is required.", fields={"kind": ["Missing data for required field."]})
    school_id, district_id = _owning_school(user)
    obj = model(
        kind=data["kind"],
        author_id=user.id,
        school_id=school_id,
        district_id=district_id,
        state=State.DRAFT,
        version=1,
    )
    if school_id is None and data.get("visibility", "school") == Visibility.SCHOOL:
        obj.visibility = Visibility.DISTRICT
    _apply(obj, data, user)
    db.session.add(obj)
    db.session.flush()
    return obj


def _copy_row(row):
    """A new draft row carrying everything of ``row`` (the next version)."""
    model = type(row)
    skip = {"id", "state", "version", "created_at", "updated_at", "published_at", "review_note"}
    values = {
        c.key: getattr(row, c.key) for c in model.__mapper__.column_attrs if c.key not in skip
    }
    copy = model(**values, state=State.DRAFT, version=row.version + 1)
    copy.tags = list(row.tags)
    if model is Resource:
        copy.grade_rows = [ResourceGrade(grade=g.grade) for g in row.grade_rows]
    else:
        copy.sessions = [
            CourseSession(
                position=s.position,
                starts_at=s.starts_at,
                ends_at=s.ends_at,
                place=s.place,
                online_url=s.online_url,
                note=s.note,
            )
            for s in row.sessions
        ]
        copy.sections = [
            CourseSection(
                position=s.position,
                title=s.title,
                summary=s.summary,
                items=[
                    SectionItem(
                        position=i.position,
                        title=i.title,
                        resource_content_id=i.resource_content_id,
                        item_key=i.item_key,
                    )
                    for i in s.items
                ],
            )
            for s in row.sections
        ]
    db.session.add(copy)
    if model is Resource:  # media copies the files of the previous version (app.signals)
        signals.resource_version_created.send(
            current_app._get_current_object(), resource=copy, previous=row
        )
    return copy


def _editable_draft(user: User | None, model: ContentModel, content_id: str):
    user, rows = _load_for_write(user, model, content_id, "edit")
    working = _working(rows)
    if working.state == State.IN_REVIEW:
        raise Conflict("This version is waiting for review; withdraw it or wait for the decision.")
    if working.state == State.DRAFT:
        return working
    # Published, archived: never changed in place; edits go to a copy, the next version.
    return _copy_row(working)


def update_content(user: User | None, model: ContentModel, content_id: str, data: dict):
    """Edit the draft of the next version; readers keep seeing the published one.

    A published (or archived, superseded) row is never changed: the first edit after
    publishing copies it into a draft numbered one higher.  401/404/403 as in the
    module docstring; 409 while a version waits for review; 422 for bad data or an
    empty change."""
    if not data:
        raise Invalid("Nothing to change.", fields={"_schema": ["Send at least one field."]})
    _validate_common(data, model)
    draft = _editable_draft(user, model, content_id)
    if "kind" in data and data["kind"] != draft.kind:
        raise Invalid("Kind cannot change.", fields={"kind": ["Create new content instead."]})
    _apply(draft, data, user)
    draft.updated_at = utcnow()
    try:
        db.session.flush()
    except IntegrityError:
        # Two editors opened the next version at the same moment; the other one won.
        db.session.rollback()
        raise Conflict("Someone else is editing this content; try again.") from None
    return draft


def _check_publishable(obj) -> None:
    errors = {}
    if not obj.title or not obj.title.strip():
        errors["title"] = ["A title is required before publishing."]
    if isinstance(obj, Course) and obj.kind == "extended" and not obj.category:
        errors["category"] = ["An extended course needs a category."]
    if isinstance(obj, Resource) and obj.kind == "link" and not obj.url:
        errors["url"] = ["A web link needs its address."]
    if errors:
        raise Invalid("Not ready to publish.", fields=errors)


def _publish_row(row, user: User) -> None:
    model = type(row)
    for other in _rows(model, row.content_id):
        if other.id != row.id and other.state in (State.PUBLISHED, State.ARCHIVED):
            other.state = State.SUPERSEDED
    db.session.flush()
    row.state = State.PUBLISHED
    row.published_at = utcnow()
    row.review_note = None
    if model is Course:
        _sync_seats(row)
    db.session.flush()
    names = _SIGNALS[model]
    send_after_commit(names["published"], **{names["kwarg"]: row, "user": user})


def submit_content(user: User | None, model: ContentModel, content_id: str):
    """Publish the working draft, or queue it for review if the district requires it
    (unless the submitter is one of its reviewers).  409 when there is no draft."""
    user, rows = _load_for_write(user, model, content_id, "publish")
    row = _working(rows)
    if row.state != State.DRAFT:
        raise Conflict("There is no draft to publish.")
    _check_publishable(row)
    reviewer = user.is_district_admin(row.district_id) or user.is_platform_admin
    if row.district.requires_review and not reviewer:
        row.state = State.IN_REVIEW
        row.review_note = None
        row.updated_at = utcnow()
        db.session.flush()
        names = _SIGNALS[model]
        send_after_commit(names["submitted"], **{names["kwarg"]: row, "user": user})
    else:
        _publish_row(row, user)
    return row


def _review_target(user: User | None, model: ContentModel, content_id: str):
    user = _require_user(user)
    rows = _rows(model, content_id)
    if not _readable_rows(user, rows):
        raise NotFound(f"{model.__name__} not found.")
    if not (user.is_district_admin(rows[-1].district_id) or user.is_platform_admin):
        raise Forbidden("Only the district's admins can review.")
    row = next((r for r in rows if r.state == State.IN_REVIEW), None)
    if row is None:
        raise Conflict("Nothing is waiting for review.")
    return user, row


def approve_content(user: User | None, model: ContentModel, content_id: str):
    """Publish the version waiting for review (district admin of the owner, platform admin)."""
    user, row = _review_target(user, model, content_id)
    _publish_row(row, user)
    return row


def reject_content(user: User | None, model: ContentModel, content_id: str, note: str):
    """Send the version waiting for review back to a draft, with the reviewer's note."""
    note = (note or "").strip()
    if not note:
        raise Invalid("A note is required.", fields={"note": ["Tell the author what to change."]})
    user, row = _review_target(user, model, content_id)
    row.state = State.DRAFT
    row.review_note = note[:1000]
    db.session.flush()
    return row


def withdraw_content(user: User | None, model: ContentModel, content_id: str):
    """The author takes a version back out of the review queue to keep editing."""
    user, rows = _load_for_write(user, model, content_id, "withdraw")
    row = next((r for r in rows if r.state == State.IN_REVIEW), None)
    if row is None:
        raise Conflict("Nothing is waiting for review.")
    row.state = State.DRAFT
    db.session.flush()
    return row


def archive_content(user: User | None, model: ContentModel, content_id: str):
    """Take published content out of the catalog (editors still see it; restorable)."""
    user, rows = _load_for_write(user, model, content_id, "archive")
    row = next((r for r in rows if r.state == State.PUBLISHED), None)
    if row is None:
        raise Conflict("Only published content can be archived.")
    row.state = State.ARCHIVED
    db.session.flush()
    names = _SIGNALS[model]
    send_after_commit(names["archived"], **{names["kwarg"]: row, "user": user})
    return row


def restore_content(user: User | None, model: ContentModel, content_id: str):
    """Bring archived content back to the catalog."""
    user, rows = _load_for_write(user, model, content_id, "restore")
    row = next((r for r in rows if r.state == State.ARCHIVED), None)
    if row is None:
        raise Conflict("Nothing archived to restore.")
    row.state = State.PUBLISHED
    db.session.flush()
    names = _SIGNALS[model]
    send_after_commit(names["published"], **{names["kwarg"]: row, "user": user})
    return row


def delete_content(user: User | None, model: ContentModel, content_id: str) -> None:
    """Delete every version.  Enrolments of a deleted course go with it."""
    user, rows = _load_for_write(user, model, content_id, "delete")
    for row in rows:
        db.session.delete(row)
    if model is Course:
        db.session.execute(
            Enrolment.__table__.delete().where(Enrolment.course_content_id == content_id)
        )
        db.session.execute(
            CourseSeats.__table__.delete().where(CourseSeats.course_content_id == content_id)
        )
    db.session.flush()
    send_after_commit(_SIGNALS[model]["deleted"], content_id=content_id, user=user)


def discard_draft(user: User | None, model: ContentModel, content_id: str) -> None:
    """Throw away unpublished edits; the published version stays.  409 when there is
    no draft, or when the draft is all there is (delete the content instead)."""
    user, rows = _load_for_write(user, model, content_id, "discard the draft of")
    draft = _working(rows)
    if draft.state != State.DRAFT or _published(rows) is None:
        raise Conflict("There is no draft of a published version to discard.")
    db.session.delete(draft)
    db.session.flush()


def resolve_resources(user: User | None, content_ids: list[str]) -> dict[str, Resource]:
    """Published resources by content id, only those ``user`` may see."""
    if not content_ids:
        return {}
    rows = db.session.execute(
        select(Resource).where(
            Resource.content_id.in_(set(content_ids)),
            Resource.state == State.PUBLISHED,
            visibility_condition(user, Resource),
        )
    ).scalars()
    return {row.content_id: row for row in rows}


# --- enrolment ------------------------------------------------------------------------


def _sync_seats(course: Course) -> None:
    """Publishing a course version sets its capacity; a larger one moves waitlisted
    students up at once."""
    seats = db.session.get(CourseSeats, course.content_id)
    if seats is None:
        seats = CourseSeats(course_content_id=course.content_id, capacity=course.capacity, taken=0)
        db.session.add(seats)
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            raise Conflict("This course is being published by someone else; try again.") from None
        return
    seats = _lock_seats(course.content_id)
    seats.capacity = course.capacity
    db.session.flush()
    _promote_waitlisted(course.content_id)


def _lock_seats(content_id: str) -> CourseSeats | None:
    """Lock the course's seat counter for the rest of the transaction (None if the
    course never took enrolments).

    A no-op UPDATE takes the row lock (PostgreSQL) or the database write lock (SQLite),
    so every enrolment change of one course runs one after another, whatever the worker,
    and what is read after it is the committed state.
    """
    result = db.session.execute(
        update(CourseSeats)
        .where(CourseSeats.course_content_id == content_id)
        .values(taken=CourseSeats.taken)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return db.session.get(CourseSeats, content_id, populate_existing=True)


def _promote_waitlisted(content_id: str) -> Enrolment | None:
    """Fill free seats from the waiting list, first come first served.  The caller
    holds the seat lock."""
    seats = db.session.get(CourseSeats, content_id, populate_existing=True)
    promoted = None
    while seats.capacity is None or seats.taken < seats.capacity:
        first = db.session.execute(
            select(Enrolment)
            .where(
                Enrolment.course_content_id == content_id,
                Enrolment.status == EnrolmentStatus.WAITLISTED,
            )
            .order_by(Enrolment.queued_at, Enrolment.id)
            .limit(1)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if first is None:
            break
        first.status = EnrolmentStatus.ENROLLED
        seats.taken += 1
        promoted = promoted or first
        db.session.flush()
    return promoted


def _enrollable_course(user: User, content_id: str) -> Course:
    course = get_content(user, Course, content_id)
    if course.state != State.PUBLISHED:
        raise NotFound("Course not found.")
    if course.kind != "extended":
        raise Conflict("Only extended courses take enrolments.")
    return course


def enrol(user: User | None, content_id: str) -> Enrolment:
    """Enrol ``user`` in a published extended course she may read; when it is full she
    joins the waiting list.

    401 anonymous, 403 not a student, 404 course not readable, 409 curriculum course,
    enrolment closed or already enrolled/waitlisted.  Concurrent enrolments for the last
    seat are serialised by the seat lock: exactly one gets it, the others wait in line.
    """
    user = _require_user(user)
    if not user.is_student:
        raise Forbidden("Only students can enrol.")
    course = _enrollable_course(user, content_id)
    if not course.enrolment_open:
        raise Conflict("Enrolment for this course is closed.")
    seats = _lock_seats(content_id)
    if seats is None:
        raise Conflict("This course does not take enrolments.")
    enrolment = db.session.execute(
        select(Enrolment)
        .filter_by(course_content_id=content_id, student_id=user.id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if enrolment is not None and enrolment.status != EnrolmentStatus.LEFT:
        raise Conflict(
            f"You are already {enrolment.status.value} in this course.", code="already_enrolled"
        )
    has_seat = seats.capacity is None or seats.taken < seats.capacity
    status = EnrolmentStatus.ENROLLED if has_seat else EnrolmentStatus.WAITLISTED
    if enrolment is None:
        enrolment = Enrolment(course_content_id=content_id, student_id=user.id, status=status)
        db.session.add(enrolment)
    else:
        enrolment.status = status
        enrolment.queued_at = utcnow()
    if has_seat:
        seats.taken += 1
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(
            "You are already enrolled in this course.", code="already_enrolled"
        ) from None
    send_after_commit(signals.student_enrolled, enrolment=enrolment, user=user)
    return enrolment


def leave(user: User | None, content_id: str) -> Enrolment:
    """Leave a course or its waiting list; the first waitlisted student moves up.
    404 when ``user`` is neither enrolled nor waitlisted."""
    user = _require_user(user)
    seats = _lock_seats(content_id) if _CONTENT_ID.match(content_id or "") else None
    if seats is None:
        raise NotFound("You are not enrolled in this course.")
    enrolment = db.session.execute(
        select(Enrolment)
        .filter_by(course_content_id=content_id, student_id=user.id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if enrolment is None or enrolment.status == EnrolmentStatus.LEFT:
        raise NotFound("You are not enrolled in this course.")
    held_seat = enrolment.status == EnrolmentStatus.ENROLLED
    enrolment.status = EnrolmentStatus.LEFT
    promoted = None
    if held_seat:
        seats.taken -= 1
        db.session.flush()
        promoted = _promote_waitlisted(content_id)
    db.session.flush()
    send_after_commit(signals.student_unenrolled, enrolment=enrolment, user=user, promoted=promoted)
    return enrolment


def enrolment_of(user: User | None, content_id: str) -> Enrolment | None:
    if user is None or not _CONTENT_ID.match(content_id or ""):
        return None
    return db.session.execute(
        select(Enrolment).filter_by(course_content_id=content_id, student_id=user.id)
    ).scalar_one_or_none()


def waitlist_position(enrolment: Enrolment) -> int | None:
    if enrolment.status != EnrolmentStatus.WAITLISTED:
        return None
    ahead = db.session.execute(
        select(func.count(Enrolment.id)).where(
            Enrolment.course_content_id == enrolment.course_content_id,
            Enrolment.status == EnrolmentStatus.WAITLISTED,
            or_(
                Enrolment.queued_at < enrolment.queued_at,
                and_(Enrolment.queued_at == enrolment.queued_at, Enrolment.id < enrolment.id),
            ),
        )
    ).scalar_one()
    return ahead + 1


def seats_of(content_id: str) -> CourseSeats | None:
    if not _CONTENT_ID.match(content_id or ""):
        return None
    return db.session.get(CourseSeats, content_id)


def list_enrolments(user: User | None, content_id: str) -> list[Enrolment]:
    user = _require_user(user)
    rows = _rows(Course, content_id)
    if not _readable_rows(user, rows):
        raise NotFound("Course not found.")
    if not can_edit(user, rows[-1]):
        raise Forbidden("Only the course's owner sees its enrolments.")
    return list(
        db.session.execute(
            select(Enrolment)
            .where(
                Enrolment.course_content_id == content_id, Enrolment.status != EnrolmentStatus.LEFT
            )
            .order_by(Enrolment.status, Enrolment.queued_at, Enrolment.id)
        ).scalars()
    )


def my_enrolments(user: User | None) -> list[tuple[Enrolment, Course | None]]:
    user = _require_user(user)
    enrolments = list(
        db.session.execute(
            select(Enrolment)
            .where(Enrolment.student_id == user.id, Enrolment.status != EnrolmentStatus.LEFT)
            .order_by(Enrolment.queued_at)
        ).scalars()
    )
    courses = {
        c.content_id: c
        for c in db.session.execute(
            select(Course).where(
                Course.content_id.in_([e.course_content_id for e in enrolments] or [""]),
                Course.state == State.PUBLISHED,
            )
        ).scalars()
    }
    return [(e, courses.get(e.course_content_id)) for e in enrolments]


def count_published(model: ContentModel) -> int:
    return db.session.execute(
        select(func.count(model.id)).where(model.state == State.PUBLISHED)
    ).scalar_one()


def facet_counts(
    user: User | None, model: ContentModel, filters: CatalogFilters, field: str
) -> dict[str, int]:
    """How many published rows ``user`` may see per value of ``field`` (e.g. category),
    under every other active filter; for the catalog's filter counts.  (Pages helper.)"""
    from dataclasses import replace

    column = getattr(model, field)
    condition = and_(model.state == State.PUBLISHED, visibility_condition(user, model))
    others = replace(filters, **{field: None}) if hasattr(filters, field) else filters
    statement = _apply_filters(select(column, func.count(model.id)).where(condition), model, others)
    rows = db.session.execute(statement.group_by(column)).all()
    return {value: number for value, number in rows if value}
