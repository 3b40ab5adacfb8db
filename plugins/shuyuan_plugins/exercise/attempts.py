"""Starting, submitting and reading exercise attempts (the plugin's business logic).

Scoring happens here, on the server, against the question versions the attempt was
started with.  Functions flush; the request (or the caller) commits.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import func, select, update

from app import hooks
from app.hooks import db

from . import questions as q
from .models import Answer, Attempt, QuestionVersion, utcnow

DEFAULT_ATTEMPT_MINUTES = 120


class ExerciseError(Exception):
    """A refused request: ``status`` (4xx), a machine ``code`` and a translated message."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def _expected(kind: str) -> str:
    texts = {
        "index": _("Expected an option index."),
        "indexes": _("Expected a list of option indexes."),
        "boolean": _("Expected true or false."),
        "text": _("Expected text of at most %(n)s characters.", n=q.MAX_TEXT_ANSWER),
        "number": _("Expected a number."),
    }
    return texts.get(kind, texts["text"])


def _require_user(user):
    if user is None:
        raise ExerciseError(401, "unauthorized", _("Log in to answer exercises."))
    return user


def exercise_resource(content_id: str, user):
    resource = hooks.visible_resource(content_id, user)
    if resource is None or resource.kind != "exercise":
        raise ExerciseError(404, "not_found", _("Exercise not found."))
    return resource


def questions_of(resource) -> list[dict]:
    try:
        return q.load_exercise(resource.data or {})
    except ValidationError as exc:
        current_app.logger.warning("exercise %s is malformed: %s", resource.content_id, exc)
        raise ExerciseError(
            422, "malformed_exercise", _("This exercise is malformed and cannot be answered.")
        ) from None


def _version_of(content_id: str, question: dict) -> QuestionVersion:
    """The stored version of ``question`` (created on first use).  Two first uses racing:
    the loser's insert fails on the unique digest and it reads the winner's row."""
    fingerprint = q.digest(question)
    lookup = select(QuestionVersion).where(
        QuestionVersion.resource_content_id == content_id,
        QuestionVersion.question_id == question["id"],
        QuestionVersion.digest == fingerprint,
    )
    found = db.session.execute(lookup).scalar_one_or_none()
    if found is not None:
        return found
    for _attempt in range(3):
        latest = db.session.execute(
            select(func.max(QuestionVersion.version)).where(
                QuestionVersion.resource_content_id == content_id,
                QuestionVersion.question_id == question["id"],
            )
        ).scalar()
        row = QuestionVersion(
            resource_content_id=content_id,
            question_id=question["id"],
            version=(latest or 0) + 1,
            digest=fingerprint,
            body=question,
        )
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except Exception:  # IntegrityError: a concurrent first use won; read its row
            found = db.session.execute(lookup).scalar_one_or_none()
            if found is not None:
                return found
            continue
        return row
    raise ExerciseError(409, "busy", _("The exercise is being edited; try again."))


def _minutes() -> int:
    value = current_app.config.get("PLUGIN_EXERCISE_ATTEMPT_MINUTES", DEFAULT_ATTEMPT_MINUTES)
    return int(value)


def is_open(attempt: Attempt) -> bool:
    return attempt.state == "open" and attempt.expires_at > utcnow()


def start_attempt(user, content_id: str) -> tuple[Attempt, bool]:
    """The user's open attempt at this exercise (resumed after a reload) or a new one.
    Returns (attempt, created)."""
    user = _require_user(user)
    resource = exercise_resource(content_id, user)
    current = db.session.execute(
        select(Attempt)
        .where(
            Attempt.user_id == user.id,
            Attempt.resource_content_id == content_id,
            Attempt.state == "open",
            Attempt.expires_at > utcnow(),
        )
        .order_by(Attempt.started_at.desc())
    ).scalar()
    if current is not None:
        return current, False
    versions = [_version_of(content_id, question) for question in questions_of(resource)]
    now = utcnow()
    attempt = Attempt(
        id=str(uuid.uuid4()),
        user_id=user.id,
        resource_content_id=content_id,
        resource_version=resource.version,
        question_version_ids=[v.id for v in versions],
        state="open",
        started_at=now,
        expires_at=now + timedelta(minutes=_minutes()),
    )
    db.session.add(attempt)
    db.session.flush()
    return attempt, True


def get_attempt(user, attempt_id: str) -> Attempt:
    user = _require_user(user)
    attempt = db.session.get(Attempt, attempt_id) if isinstance(attempt_id, str) else None
    # Another student's attempt is reported exactly like a missing one.
    if attempt is None or attempt.user_id != user.id:
        raise ExerciseError(404, "not_found", _("Attempt not found."))
    return attempt


def versions_of(attempt: Attempt) -> list[QuestionVersion]:
    rows = {
        v.id: v
        for v in db.session.execute(
            select(QuestionVersion).where(QuestionVersion.id.in_(attempt.question_version_ids))
        ).scalars()
    }
    return [rows[i] for i in attempt.question_version_ids if i in rows]


def submit_attempt(user, attempt_id: str, answers) -> Attempt:
    """Score ``answers`` (question id → response) and close the attempt.

    Refused without storing anything: an unknown question id or a response of the wrong
    shape (422), an attempt already submitted (409) or past its time (409).  Questions left
    out count as wrong.  Closing is one conditional UPDATE, so two submissions racing
    cannot both be scored.
    """
    attempt = get_attempt(user, attempt_id)
    if attempt.state != "open":
        raise ExerciseError(409, "already_submitted", _("This attempt was already submitted."))
    if not is_open(attempt):
        raise ExerciseError(409, "attempt_closed", _("This attempt has closed; start a new one."))
    if not isinstance(answers, dict) or len(answers) > q.MAX_QUESTIONS:
        raise ExerciseError(
            422, "invalid", _("Answers must be an object of question ids."), {"answers": ["object"]}
        )
    versions = versions_of(attempt)
    by_id = {v.question_id: v for v in versions}
    errors, checked = {}, {}
    for question_id, response in answers.items():
        version = by_id.get(question_id)
        if version is None:
            errors[str(question_id)[:40]] = [_("Unknown question.")]
            continue
        if response is None:
            continue
        try:
            checked[question_id] = q.check_response(version.body, response)
        except q.ResponseError as exc:
            errors[question_id] = [_expected(str(exc))]
    if errors:
        raise ExerciseError(422, "invalid_answers", _("Some answers are invalid."), errors)
    now = utcnow()
    closed = db.session.execute(
        update(Attempt)
        .where(Attempt.id == attempt.id, Attempt.state == "open")
        .values(state="submitted", submitted_at=now)
        .execution_options(synchronize_session=False)
    )
    if closed.rowcount != 1:
        raise ExerciseError(409, "already_submitted", _("This attempt was already submitted."))
    raw = maximum = 0.0
    for version in versions:
        body = version.body
        response = checked.get(version.question_id)
        correct = response is not None and q.is_correct(body, response)
        points = float(body.get("points") or 1.0)
        maximum += points
        raw += points if correct else 0.0
        db.session.add(
            Answer(
                attempt_id=attempt.id,
                question_version_id=version.id,
                response=response,
                correct=correct,
                points=points if correct else 0.0,
            )
        )
    db.session.execute(
        update(Attempt)
        .where(Attempt.id == attempt.id)
        .values(score_raw=raw, score_max=maximum)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    db.session.refresh(attempt)
    _report(user, attempt)
    return attempt


def _iso_duration(seconds: float) -> str:
    return f"PT{max(0.0, seconds):.0f}S"


def _report(user, attempt: Attempt) -> None:
    """xAPI ``answered`` per question and ``completed`` with the score, delivered after
    commit; the LTI feature sends a score with a result to the LMS gradebook."""
    resource = hooks.visible_resource(attempt.resource_content_id, user)
    if resource is None:
        return
    base = hooks.content_url("resource", attempt.resource_content_id)
    all_points: list[str] = []
    for answer in attempt.answers:
        version = answer.question_version
        body = version.body
        points = list(body.get("knowledge_points") or [])
        all_points += [p for p in points if p not in all_points]
        definition = {
            "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
            "interactionType": q.INTERACTION_TYPES[body["type"]],
            "name": {"zh-CN": body["prompt"][:500]},
        }
        if body["type"] in q.CHOICE_TYPES:
            definition["choices"] = [
                {"id": str(i), "description": {"zh-CN": text[:500]}}
                for i, text in enumerate(body["options"])
            ]
        result = {"success": answer.correct}
        if answer.response is not None:
            result["response"] = q.xapi_response(body, answer.response)
        statement = {
            "verb": {
                "id": "http://adlnet.gov/expapi/verbs/answered",
                "display": {"en-US": "answered", "zh-CN": "作答"},
            },
            "object": {
                "objectType": "Activity",
                "id": f"{base}#question={version.question_id}&version={version.version}",
                "definition": definition,
            },
            "result": result,
            "context": {"registration": attempt.id},
        }
        hooks.emit_learning_event(
            user,
            "answered",
            resource=resource,
            result=result,
            context={
                "statement": statement,
                "knowledge_points": points,
                "via": "exercise",
                "registration": attempt.id,
            },
        )
    scaled = attempt.score_raw / attempt.score_max if attempt.score_max else 0.0
    hooks.emit_learning_event(
        user,
        "completed",
        resource=resource,
        result={
            "score": {
                "raw": attempt.score_raw,
                "min": 0,
                "max": attempt.score_max,
                "scaled": round(scaled, 4),
            },
            "success": scaled >= 0.6,
            "completion": True,
            "duration": _iso_duration((attempt.submitted_at - attempt.started_at).total_seconds()),
        },
        context={"knowledge_points": all_points, "via": "exercise", "registration": attempt.id},
    )


def attempt_view(attempt: Attempt, locale: str | None) -> dict:
    """An attempt as JSON: questions without answers while open; after submission each
    question with the response, correctness, the right answer and the explanation."""
    versions = versions_of(attempt)
    out = {
        "id": attempt.id,
        "exercise": attempt.resource_content_id,
        "resource_version": attempt.resource_version,
        "state": "open"
        if is_open(attempt)
        else attempt.state
        if attempt.state != "open"
        else "closed",
        "started_at": attempt.started_at.isoformat() + "Z",
        "expires_at": attempt.expires_at.isoformat() + "Z",
        "submitted_at": attempt.submitted_at.isoformat() + "Z" if attempt.submitted_at else None,
    }
    if attempt.state != "submitted":
        out["questions"] = [
            q.public_view(v.body, locale) | {"version": v.version} for v in versions
        ]
        return out
    answers = {a.question_version_id: a for a in attempt.answers}
    out["score"] = {"raw": attempt.score_raw, "max": attempt.score_max}
    out["questions"] = []
    for version in versions:
        shown = q.localised(version.body, locale)
        answer = answers.get(version.id)
        out["questions"].append(
            q.public_view(version.body, locale)
            | {
                "version": version.version,
                "response": answer.response if answer else None,
                "correct": bool(answer and answer.correct),
                "answer": version.body["answer"],
                "explanation": shown.get("explanation") or "",
            }
        )
    return out


def attempts_of(user, content_id: str) -> list[Attempt]:
    user = _require_user(user)
    return list(
        db.session.execute(
            select(Attempt)
            .where(Attempt.user_id == user.id, Attempt.resource_content_id == content_id)
            .order_by(Attempt.started_at.desc())
            .limit(50)
        ).scalars()
    )


# --- personal data (PIPL export / erasure), via app.signals ---------------------------------


def export_for(user) -> dict:
    rows = db.session.execute(
        select(Attempt).where(Attempt.user_id == user.id).order_by(Attempt.started_at)
    ).scalars()
    return {"exercise_attempts": [attempt_view(a, None) for a in rows]}


def erase_for(user) -> int:
    rows = list(db.session.execute(select(Attempt).where(Attempt.user_id == user.id)).scalars())
    for row in rows:
        db.session.delete(row)
    db.session.flush()
    return len(rows)
