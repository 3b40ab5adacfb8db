"""The catalog's forms: read what a page posted and check it with the API's input
schemas (app.catalog.schemas), so a page and the API accept the same data."""

from __future__ import annotations

from datetime import date, datetime, time

from flask import request
from flask_babel import gettext as _
from marshmallow import ValidationError

from app.catalog import schemas
from app.catalog.models import Course
from app.catalog.views.common import as_list, translated_fields
from app.errors import Invalid
from app.i18n import translate_message

COMMON_FIELDS = (
    "title",
    "summary",
    "description_html",
    "language",
    "licence",
    "visibility",
    "subject",
)


COURSE_FIELDS = COMMON_FIELDS + ("category", "capacity", "grade", "edition")


RESOURCE_FIELDS = COMMON_FIELDS + ("url",)


OPTIONAL = {"subject", "category", "grade", "edition", "url", "capacity"}


TRANSLATED = ("title", "summary", "description_html")


def _text(name: str, limit: int = 100_000) -> str:
    return (request.form.get(name) or "").strip()[:limit]


def _split_tags(raw: str) -> list[str]:
    for separator in ("，", "、", ";", "；"):
        raw = raw.replace(separator, ",")
    return [tag.strip() for tag in raw.split(",") if tag.strip()]


def content_form(model, creating: bool) -> tuple[dict, dict]:
    """The submitted content form as (values to show again, data for the service)."""
    names = COURSE_FIELDS if model is Course else RESOURCE_FIELDS
    values = {name: _text(name) for name in names}
    values["tags"] = _text("tags", 2000)
    for field in TRANSLATED:
        values[f"{field}_en"] = _text(f"{field}_en")
    if model is Course:
        values["enrolment_open"] = bool(request.form.get("enrolment_open"))
    else:
        values["grades"] = [g[:8] for g in request.form.getlist("grades")][:12]
    if creating:
        values["kind"] = _text("kind", 20)

    # An edit form sends only the fields of its kind; the others stay as they are.
    data: dict = {name: values[name] for name in names if creating or name in request.form}
    for name in OPTIONAL & set(data):
        if data[name] == "":
            data[name] = None
    data["tags"] = _split_tags(values["tags"])
    english = {field: values[f"{field}_en"] for field in TRANSLATED if values[f"{field}_en"]}
    data["translations"] = {"en": english} if english else {}
    if model is Course:
        if creating or "capacity" in request.form:
            data["enrolment_open"] = values["enrolment_open"]
        kind = values.get("kind") if creating else None
        if kind == "curriculum":
            data.update(category=None, capacity=None)
        elif kind == "extended":
            data.update(grade=None, edition=None)
    else:
        data["grades"] = values["grades"]
    if creating:
        data["kind"] = values["kind"]
    return values, data


def _flatten_errors(messages: dict) -> dict[str, list[str]]:
    """Marshmallow's nested messages -> {form field: [messages]}."""
    errors: dict[str, list[str]] = {}
    for name, value in messages.items():
        if name == "translations" and isinstance(value, dict):
            for lang_messages in value.values():
                inner = (
                    lang_messages.get("value", lang_messages)
                    if isinstance(lang_messages, dict)
                    else {}
                )
                for field, field_messages in (inner or {}).items():
                    errors[f"{field}_en"] = as_list(field_messages)
            continue
        if isinstance(value, dict):  # list fields: {index: [messages]}
            flat = [m for inner in value.values() for m in as_list(inner)]
            errors[name] = flat
        else:
            errors[name] = as_list(value)
    return errors


def _validated(schema, data: dict, partial: bool = False) -> dict:
    """Check the data with the API's input schema, so pages and API accept the same."""
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise Invalid(
            "The submitted data is not valid.", fields=_flatten_errors(exc.messages)
        ) from None


def _capacity(data: dict, errors: dict) -> None:
    if "capacity" not in data:
        return
    raw = data["capacity"]
    if raw in (None, ""):
        data["capacity"] = None
        return
    try:
        data["capacity"] = int(raw)
    except (TypeError, ValueError):
        errors["capacity"] = [_("Enter a whole number.")]


def check_content(model, data: dict, creating: bool) -> dict:
    """Every field error at once: the page's own checks and the API's input schema."""
    errors: dict = {}
    if model is Course:
        _capacity(data, errors)
        if errors:
            data = {k: v for k, v in data.items() if k != "capacity"}
    if model is Course:
        schema = schemas.CourseCreateSchema() if creating else schemas.CourseUpdateSchema()
    else:
        schema = schemas.ResourceCreateSchema() if creating else schemas.ResourceUpdateSchema()
    try:
        loaded = _validated(schema, data, partial=not creating)
    except Invalid as exc:
        errors = {**exc.fields, **errors}
    if errors:
        raise Invalid("The submitted data is not valid.", fields=errors)
    return loaded


def empty_values(model) -> dict:
    values = {
        "language": "zh",
        "licence": "CC-BY-4.0",
        "visibility": "school",
        "tags": "",
        "enrolment_open": True,
        "grades": [],
    }
    values["kind"] = "extended" if model is Course else "document"
    return values


def values_of(obj) -> dict:
    """A stored course or resource as form values."""
    model = type(obj)
    names = COURSE_FIELDS if model is Course else RESOURCE_FIELDS
    values = {name: getattr(obj, name) for name in names}
    values = {k: ("" if v is None else v) for k, v in values.items()}
    values["kind"] = obj.kind
    values["tags"] = ", ".join(t.name for t in obj.tags)
    english = (obj.translations or {}).get("en", {})
    for field in TRANSLATED:
        values[f"{field}_en"] = english.get(field, "")
    if model is Course:
        values["enrolment_open"] = obj.enrolment_open
    else:
        values["grades"] = obj.grades
    return values


def parse_session() -> tuple[dict, dict, dict]:
    values = {
        name: _text(name, 2100) for name in ("date", "start", "end", "place", "online_url", "note")
    }
    errors: dict = {}
    day = start = end = None
    try:
        day = date.fromisoformat(values["date"])
    except ValueError:
        errors["date"] = [_("Enter a date like 2026-09-01.")]
    for name in ("start", "end"):
        try:
            parsed = time.fromisoformat(values[name])
        except ValueError:
            errors[name] = [_("Enter a time like 15:30.")]
        else:
            if name == "start":
                start = parsed
            else:
                end = parsed
    if not values["place"] and not values["online_url"]:
        errors["place"] = [_("Give a place or an online address.")]
    session = {
        "place": values["place"] or None,
        "online_url": values["online_url"] or None,
        "note": values["note"] or None,
    }
    if not errors:
        session["starts_at"] = datetime.combine(day, start)
        session["ends_at"] = datetime.combine(day, end)
        try:
            loaded = schemas.SessionInSchema().load(
                {
                    **session,
                    "starts_at": session["starts_at"].isoformat(),
                    "ends_at": session["ends_at"].isoformat(),
                }
            )
        except ValidationError as exc:
            flat = _flatten_errors(exc.messages)
            if "ends_at" in flat:
                flat["end"] = [_("The end must be after the start.")]
                flat.pop("ends_at")
            errors.update({k: [translate_message(m) for m in v] for k, v in flat.items()})
        else:
            session = loaded
    return values, session, errors


def section_form() -> tuple[dict, dict, dict]:
    """A section's title and summary: (values to show again, data, field errors)."""
    values = {"title": _text("title", 1000), "summary": _text("summary", 5000)}
    try:
        data = schemas.load_form(
            schemas.SectionInSchema(),
            {"title": values["title"], "summary": values["summary"] or None},
        )
    except Invalid as exc:
        return values, {}, translated_fields(exc.fields)
    data.pop("items", None)
    return values, data, {}


def item_form() -> tuple[dict, dict, dict]:
    """A resource picked for a section: (values to show again, data, field errors)."""
    values = {"resource_id": _text("resource_id", 100), "title": _text("title", 1000)}
    errors: dict = {}
    data: dict = {}
    try:
        data = schemas.load_form(
            schemas.ItemInSchema(),
            {"resource_id": values["resource_id"] or None, "title": values["title"] or None},
        )
    except Invalid as exc:
        errors = translated_fields(exc.fields)
    if not data.get("resource_id") and "title" not in errors:
        # This form adds a resource; a title alone is for the API's placeholders.
        errors["resource_id"] = [_("Choose a resource.")]
    return values, data, errors


def review_note() -> tuple[str, str | None]:
    """The reviewer's note, checked like the API's (RejectSchema): (note, error)."""
    note = _text("note", 100_000)
    try:
        return schemas.load_form(schemas.RejectSchema(), {"note": note})["note"], None
    except Invalid:
        if not note:
            return note, _("Write a note telling the author what to change.")
        return note, _("The note may have at most %(n)s characters.", n=schemas.MAX_NOTE)
