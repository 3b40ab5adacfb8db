"""Shuyuan's own events as xAPI statements (the vocabulary is documented in docs/xapi.md).

Receivers of :mod:`app.signals`, in two halves (issue 14: storing the statement inside
the request after its commit was 35-40 % of an LTI launch, most of it reloading the
objects the commit had expired):

1. *inside* the transaction that sends the event, just before it commits
   (:func:`app.common.events.connect_in_transaction`), the statement is built from the
   objects the request has loaded anyway, and kept in the session;
2. *after* the commit, every statement the transaction built is handed to one job,
   :func:`store_job`, which validates and stores them in the LRS tenant of the student's
   district (with the student's school, so school-scoped clients see them too), on the
   job queue (:mod:`app.jobs`), off the request.

A transaction that rolls back hands nothing over.  Neither half raises: an event that
cannot be expressed as a valid statement is logged and skipped; a job that fails is
retried by the queue.
"""

from __future__ import annotations

import logging
import uuid

from flask import Flask, current_app
from marshmallow import ValidationError

from app import signals
from app.common import events
from app.extensions import db
from app.xapi import schemas, services

log = logging.getLogger(__name__)

ADL = "http://adlnet.gov/expapi/verbs/"
VIDEO = "https://w3id.org/xapi/video/verbs/"

# Platform verb -> (verb IRI, English display, Chinese display).
VERBS: dict[str, tuple[str, str, str]] = {
    "launched": (ADL + "launched", "launched", "启动"),
    "opened": ("http://activitystrea.ms/schema/1.0/open", "opened", "打开"),
    "experienced": (ADL + "experienced", "experienced", "学习"),
    "progressed": (ADL + "progressed", "progressed", "进展"),
    "completed": (ADL + "completed", "completed", "完成"),
    "passed": (ADL + "passed", "passed", "通过"),
    "failed": (ADL + "failed", "failed", "未通过"),
    "answered": (ADL + "answered", "answered", "作答"),
    "attempted": (ADL + "attempted", "attempted", "尝试"),
    "played": (VIDEO + "played", "played", "播放"),
    "paused": (VIDEO + "paused", "paused", "暂停"),
    "seeked": (VIDEO + "seeked", "seeked", "跳转"),
    "enrolled": (ADL + "registered", "enrolled", "报名"),
    "unenrolled": ("http://id.tincanapi.com/verb/unregistered", "unenrolled", "退出"),
}

# Resource kind -> activity type.
ACTIVITY_TYPES = {
    "video": "https://w3id.org/xapi/video/activity-type/video",
    "audio": "http://adlnet.gov/expapi/activities/media",
    "document": "http://id.tincanapi.com/activitytype/document",
    "link": "http://adlnet.gov/expapi/activities/link",
    "interactive": "http://adlnet.gov/expapi/activities/interaction",
    "h5p": "http://adlnet.gov/expapi/activities/interaction",
    "quiz": "http://adlnet.gov/expapi/activities/assessment",
    "course": "http://adlnet.gov/expapi/activities/course",
    "lesson": "http://adlnet.gov/expapi/activities/lesson",
    "knowledge-point": "http://adlnet.gov/expapi/activities/objective",
    "class": "http://adlnet.gov/expapi/activities/meeting",
}
RESOURCE_TYPE_DEFAULT = "http://adlnet.gov/expapi/activities/media"

CMI5_PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"
VIDEO_TIME = "https://w3id.org/xapi/video/extensions/time"
VIDEO_TIME_FROM = "https://w3id.org/xapi/video/extensions/time-from"
VIDEO_TIME_TO = "https://w3id.org/xapi/video/extensions/time-to"
VIDEO_LENGTH = "https://w3id.org/xapi/video/extensions/length"


def base_url() -> str:
    return current_app.config.get("XAPI_PLATFORM_URL", "http://localhost:5000").rstrip("/")


def vocab(kind: str, name: str) -> str:
    """A Shuyuan vocabulary IRI, e.g. ``vocab("extensions", "lesson")``."""
    return f"{base_url()}/xapi/vocab/{kind}/{name}"


def resource_activity(resource) -> dict:
    name = {"zh-CN": resource.title}
    english = (resource.translations or {}).get("en", {}).get("title")
    if english:
        name["en"] = english
    definition = {"name": name, "type": ACTIVITY_TYPES.get(resource.kind, RESOURCE_TYPE_DEFAULT)}
    if resource.summary:
        definition["description"] = {"zh-CN": resource.summary}
    extensions = {vocab("extensions", "resource-kind"): resource.kind}
    if resource.subject:
        extensions[vocab("extensions", "subject")] = resource.subject
    definition["extensions"] = extensions
    return {
        "objectType": "Activity",
        "id": f"{base_url()}/resources/{resource.content_id}",
        "definition": definition,
    }


def course_activity(course) -> dict:
    name = {"zh-CN": course.title}
    english = (course.translations or {}).get("en", {}).get("title")
    if english:
        name["en"] = english
    return {
        "objectType": "Activity",
        "id": f"{base_url()}/courses/{course.content_id}",
        "definition": {"name": name, "type": ACTIVITY_TYPES["course"]},
    }


def course_ref(content_id: str) -> dict:
    return {
        "objectType": "Activity",
        "id": f"{base_url()}/courses/{content_id}",
        "definition": {"type": ACTIVITY_TYPES["course"]},
    }


def _verb(name: str) -> dict:
    iri, english, chinese = VERBS[name]
    return {"id": iri, "display": {"en-US": english, "zh-CN": chinese}}


def build_context(user, event_context: dict | None, course=None) -> dict:
    """xAPI context from a ``learning_event`` context dict (class, lesson, platform...)."""
    event_context = dict(event_context or {})
    context: dict = {
        "platform": current_app.config.get("PLATFORM_NAME", "Shuyuan"),
        "language": "zh-CN",
    }
    activities: dict[str, list] = {}
    extensions: dict = {}
    if course is not None:
        activities.setdefault("parent", []).append(course_activity(course))
    elif event_context.get("course_content_id") or event_context.get("course"):
        ref = event_context.get("course_content_id") or event_context.get("course")
        if isinstance(ref, str):
            activities.setdefault("parent", []).append(course_ref(ref))
    lesson = event_context.get("lesson") or event_context.get("lesson_id")
    if isinstance(lesson, dict):
        lesson = lesson.get("id") or lesson.get("code")
    if lesson:
        extensions[vocab("extensions", "lesson")] = str(lesson)
        activities.setdefault("grouping", []).append(
            {
                "objectType": "Activity",
                "id": vocab("lessons", str(lesson)),
                "definition": {"type": ACTIVITY_TYPES["lesson"]},
            }
        )
    points = event_context.get("knowledge_points") or event_context.get("knowledge_point")
    if points:
        points = points if isinstance(points, list) else [points]
        extensions[vocab("extensions", "knowledge-points")] = [str(p) for p in points]
    if event_context.get("class_id") is not None:
        extensions[vocab("extensions", "class")] = str(event_context["class_id"])
    if event_context.get("item_key"):
        extensions[vocab("extensions", "section-item")] = str(event_context["item_key"])
    if event_context.get("platform"):
        # The LMS the student came from (LTI issuer); the xAPI platform stays Shuyuan.
        extensions[vocab("extensions", "lms")] = str(event_context["platform"])
    if event_context.get("via"):
        extensions[vocab("extensions", "via")] = str(event_context["via"])
    if user.school is not None:
        extensions[vocab("extensions", "school")] = user.school.code
    registration = event_context.get("registration")
    if isinstance(registration, str) and schemas.is_uuid(registration):
        context["registration"] = registration.lower()
    if activities:
        context["contextActivities"] = activities
    if extensions:
        context["extensions"] = extensions
    return context


def build_result(verb: str, result: dict | None) -> dict | None:
    if not result:
        return None
    out: dict = {}
    extensions: dict = {}
    score = result.get("score")
    if isinstance(score, dict):
        out["score"] = {
            k: v
            for k, v in score.items()
            if k in ("scaled", "raw", "min", "max") and isinstance(v, int | float)
        }
    elif isinstance(score, int | float) and 0 <= score <= 1:
        out["score"] = {"scaled": score}
    for key in ("success", "completion"):
        if isinstance(result.get(key), bool):
            out[key] = result[key]
    if isinstance(result.get("response"), str):
        out["response"] = result["response"]
    if isinstance(result.get("duration"), str):
        out["duration"] = result["duration"]
    progress = result.get("progress")
    if isinstance(progress, int | float) and 0 <= progress <= 1:
        extensions[CMI5_PROGRESS] = round(progress * 100)
    for key, iri in (
        ("time", VIDEO_TIME),
        ("time_from", VIDEO_TIME_FROM),
        ("time_to", VIDEO_TIME_TO),
    ):
        if isinstance(result.get(key), int | float):
            extensions[iri] = round(float(result[key]), 3)
    if verb == "completed":
        out.setdefault("completion", True)
    if verb in ("passed", "failed"):
        out.setdefault("success", verb == "passed")
    if extensions:
        out["extensions"] = extensions
    return out or None


_BUILT = "shuyuan_xapi_built_statements"  # session.info key: [(district, school, statement)]


def _store(user, statements: list[dict]) -> None:
    """Keep the statements for the job that stores them once this transaction commits."""
    district_id = services.user_district_id(user)
    if district_id is None:
        log.info("xAPI: user %s has no district; statements not recorded", user.public_id)
        return
    built = db.session.info.setdefault(_BUILT, [])
    built.extend((district_id, user.school_id, statement) for statement in statements)


def store_job(batches: list) -> int:
    """Validate and store built statements; ``batches`` is a list of
    ``[district_id, school_id, [statement, ...]]``.  Run by :func:`app.jobs.run_job`,
    which commits once.  Statement ids were set when they were built, so a retried job
    stores nothing twice (the LRS accepts the same statement again as a no-op)."""
    stored = 0
    for district_id, school_id, statements in batches:
        principal = services.platform_principal(district_id, school_id)
        valid = []
        for statement in statements:
            try:
                schemas.validate_statement(statement, "2.0.0")
            except ValidationError as exc:
                flat = schemas.flatten_errors(exc.messages)
                log.warning("xAPI: dropped an invalid statement: %s", schemas.describe_errors(flat))
                continue
            valid.append(statement)
        if valid:
            stored += len(services.store_statements(principal, valid, "2.0.0"))
    return stored


def _hand_over(app, **_) -> None:
    """After the commit: one job for every statement the transaction built."""
    built = db.session.info.pop(_BUILT, None)
    if not built:
        return
    grouped: dict[tuple, list] = {}
    for district_id, school_id, statement in built:
        grouped.setdefault((district_id, school_id), []).append(statement)
    batches = [[d, s, statements] for (d, s), statements in grouped.items()]
    from app.jobs import enqueue

    try:
        enqueue("app.xapi.emit:store_job", batches)
    except Exception:
        # Redis configured and unreachable (JobsUnavailable): store them here, as before
        # the queue, rather than lose them; the request has committed already.
        log.exception("xAPI: could not queue %d statements; storing them now", len(built))
        try:
            store_job(batches)
            events.commit()
        except Exception:
            db.session.rollback()
            log.exception("xAPI: %d statements lost: %s", len(built), batches)


def _forget_built(session, previous_transaction=None) -> None:
    session.info.pop(_BUILT, None)


def statement_for(
    user, verb: str, obj: dict, result: dict | None = None, context: dict | None = None
) -> dict:
    statement = {
        "id": str(uuid.uuid4()),
        "actor": services.actor_for(user),
        "verb": _verb(verb),
        "object": obj,
        "timestamp": schemas.format_timestamp(_now()),
    }
    if result:
        statement["result"] = result
    if context:
        statement["context"] = context
    return statement


def _now():
    from app.common.models import utcnow

    return utcnow()


def forwarded_statement(user, statement: dict, resource, event_context: dict) -> dict:
    """An H5P (or other player) statement, with the student as actor."""
    out = {
        k: v
        for k, v in statement.items()
        if k not in ("id", "actor", "authority", "stored", "version")
    }
    out["id"] = str(uuid.uuid4())
    out["actor"] = services.actor_for(user)
    out.setdefault("timestamp", schemas.format_timestamp(_now()))
    context = dict(out.get("context") or {})
    activities = dict(context.get("contextActivities") or {})
    if resource is not None and isinstance(out.get("object"), dict):
        grouping = activities.get("grouping") or []
        grouping = grouping if isinstance(grouping, list) else [grouping]
        grouping.append(resource_activity(resource))
        activities["grouping"] = grouping
    if activities:
        context["contextActivities"] = activities
    extensions = dict(context.get("extensions") or {})
    extensions[vocab("extensions", "forwarded-from")] = "player"
    ours = build_context(user, event_context).get("extensions") or {}
    extensions.update(ours)
    context["extensions"] = extensions
    obj = out.get("object") or {}
    if isinstance(obj, dict) and obj.get("objectType", "Activity") == "Activity":
        context.setdefault("platform", current_app.config.get("PLATFORM_NAME", "Shuyuan"))
    out["context"] = context
    return out


# --- receivers ------------------------------------------------------------------------------


def on_learning_event(
    app, user=None, verb=None, resource=None, course=None, result=None, context=None, **_
):
    if user is None or verb is None:
        return
    try:
        context = dict(context or {})
        statement = context.pop("statement", None)
        if isinstance(statement, dict):
            statements = [forwarded_statement(user, statement, resource, context)]
        elif verb in VERBS:
            if resource is not None:
                obj = resource_activity(resource)
            elif course is not None:
                obj = course_activity(course)
            else:
                return
            xcontext = build_context(user, context, course=course if resource is not None else None)
            if verb in ("played", "paused", "seeked") and isinstance(result, dict):
                length = result.get("length")
                if isinstance(length, int | float):
                    xcontext.setdefault("extensions", {})[VIDEO_LENGTH] = round(float(length), 3)
            statements = [statement_for(user, verb, obj, build_result(verb, result), xcontext)]
        else:
            log.info("xAPI: no vocabulary for learning_event verb %r", verb)
            return
        _store(user, statements)
    except Exception:
        log.exception("xAPI: could not record a learning event")


def _course_of(enrolment):
    from app.catalog.models import Course, State

    return db.session.execute(
        db.select(Course).where(
            Course.content_id == enrolment.course_content_id, Course.state == State.PUBLISHED
        )
    ).scalar_one_or_none()


def _enrolment_statement(enrolment, verb: str) -> tuple:
    student = enrolment.student
    course = _course_of(enrolment)
    obj = course_activity(course) if course else course_ref(enrolment.course_content_id)
    context = build_context(student, {})
    return student, statement_for(student, verb, obj, None, context)


def on_student_enrolled(app, enrolment=None, **_):
    try:
        if enrolment is None or str(enrolment.status) != "enrolled":
            return
        student, statement = _enrolment_statement(enrolment, "enrolled")
        _store(student, [statement])
    except Exception:
        log.exception("xAPI: could not record an enrolment")


def on_student_unenrolled(app, enrolment=None, promoted=None, **_):
    try:
        if enrolment is not None:
            student, statement = _enrolment_statement(enrolment, "unenrolled")
            _store(student, [statement])
        if promoted is not None and str(promoted.status) == "enrolled":
            student, statement = _enrolment_statement(promoted, "enrolled")
            _store(student, [statement])
    except Exception:
        log.exception("xAPI: could not record an unenrolment")


def connect(app: Flask) -> None:
    from sqlalchemy import event

    # Built inside the transaction (the objects are loaded, nothing is reloaded) ...
    events.connect_in_transaction(app, signals.learning_event, on_learning_event)
    events.connect_in_transaction(app, signals.student_enrolled, on_student_enrolled)
    events.connect_in_transaction(app, signals.student_unenrolled, on_student_unenrolled)
    # ... queued after its commit.  Connected before the other features' receivers of
    # the same signals (app.portraits reads what the LRS stored), so the statements'
    # job is queued before theirs.
    for signal in (signals.learning_event, signals.student_enrolled, signals.student_unenrolled):
        signal.connect(_hand_over, sender=app, weak=False)
    if not event.contains(db.session, "after_soft_rollback", _forget_built):
        event.listen(db.session, "after_soft_rollback", _forget_built)
