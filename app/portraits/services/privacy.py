"""PIPL-style access and erasure of a student's learning data (``flask portraits export
--student`` / ``forget --student``).  Other features and plugins add their part through
the ``personal_data_export`` / ``personal_data_erase`` signals."""

from __future__ import annotations

from sqlalchemy import delete, select

from app import signals
from app.common.models import utcnow
from app.extensions import db
from app.portraits.models import (
    EloRating,
    EngagementDay,
    Feedback,
    Forgotten,
    Interest,
    Mastery,
    Observation,
    Snapshot,
    Usage,
)


def _rows(model, user_id: int, order) -> list:
    return list(
        db.session.execute(select(model).where(model.user_id == user_id).order_by(*order)).scalars()
    )


def export(user) -> dict:
    out = {
        "student": {"public_id": user.public_id, "name": user.name},
        "observations": [
            {
                "skill": o.skill,
                "knowledge_point": o.knowledge_point,
                "correct": o.correct,
                "kind": o.kind,
                "resource": o.resource_content_id,
                "statement_id": o.statement_id,
                "at": o.at.isoformat() + "Z",
            }
            for o in _rows(Observation, user.id, [Observation.id])
        ],
        "mastery": [
            {
                "generation": m.generation_id,
                "skill": m.skill,
                "p_known": m.p_known,
                "method": m.method,
                "answers": m.answers,
                "correct": m.correct,
            }
            for m in _rows(Mastery, user.id, [Mastery.generation_id, Mastery.skill])
        ],
        "snapshots": [
            {"day": s.day.isoformat(), "average": s.average, "mastery": s.mastery}
            for s in _rows(Snapshot, user.id, [Snapshot.day])
        ],
        "engagement": [
            {
                "day": e.day.isoformat(),
                "seconds": e.seconds,
                "events": e.events,
                "completions": e.completions,
                "answers": e.answers,
            }
            for e in _rows(EngagementDay, user.id, [EngagementDay.day])
        ],
        "interests": [
            {"category": i.category, "seconds": i.seconds, "events": i.events}
            for i in _rows(Interest, user.id, [Interest.category])
        ],
        "resource_usage": [
            {
                "resource": u.resource_content_id,
                "first_at": u.first_at.isoformat() + "Z",
                "seconds": u.seconds,
                "completed": u.completed,
            }
            for u in _rows(Usage, user.id, [Usage.first_at])
        ],
        "recommendation_feedback": [
            {
                "resource": f.resource_content_id,
                "skill": f.skill,
                "action": f.action,
                "at": f.created_at.isoformat() + "Z",
            }
            for f in _rows(Feedback, user.id, [Feedback.id])
        ],
    }
    from flask import current_app

    for _receiver, section in signals.personal_data_export.send(
        current_app._get_current_object(), user=user
    ):
        if isinstance(section, dict):
            out.update(section)
    return out


def forget(user) -> dict:
    """Delete the student's portraits, evidence and (through the signal) exercise
    attempts; remember the moment so a later re-read of the LRS skips what came before."""
    counts = {}
    for model in (Observation, Mastery, Snapshot, EngagementDay, Interest, Usage, Feedback):
        counts[model.__tablename__] = db.session.execute(
            delete(model).where(model.user_id == user.id)
        ).rowcount
    counts["portraits_elo"] = db.session.execute(
        delete(EloRating).where(
            ((EloRating.kind == "student") & (EloRating.key == str(user.id)))
            | ((EloRating.kind == "skill") & EloRating.key.startswith(f"{user.id}:"))
        )
    ).rowcount
    from flask import current_app

    for receiver, deleted in signals.personal_data_erase.send(
        current_app._get_current_object(), user=user
    ):
        counts[getattr(receiver, "__module__", "plugin")] = deleted
    row = db.session.get(Forgotten, user.id)
    if row is None:
        db.session.add(Forgotten(user_id=user.id, at=utcnow()))
    else:
        row.at = utcnow()
    db.session.flush()
    return counts
