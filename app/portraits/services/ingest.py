"""Statements of the LRS → evidence: observations per skill, resource usage, engagement
per day and interests per category.

Every field of a statement is type-checked before use: the LRS accepts statements from
external clients, so a malformed one is skipped, never a crash.  The LRS is read in
primary-key order from a cursor; the cursor row is locked while a batch is processed, so
two jobs never read the same statements twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select

from app.extensions import db
from app.portraits import sources
from app.portraits.models import EngagementDay, IngestCursor, Interest, Observation, Usage

log = logging.getLogger(__name__)
ADL = "http://adlnet.gov/expapi/verbs/"
ANSWERED = ADL + "answered"
SCORED = {ADL + "completed", ADL + "passed", ADL + "failed"}
COMPLETED = ADL + "completed"
USE_VERBS = {
    ADL + "experienced",
    ADL + "completed",
    ADL + "progressed",
    "https://w3id.org/xapi/video/verbs/played",
    "http://activitystrea.ms/schema/1.0/open",
}
PASS_MARK = 0.6
MAX_SECONDS_PER_STATEMENT = 4 * 3600
_DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value) -> float:
    """Seconds of an ISO 8601 duration (``PT1M30S``); 0 for anything else."""
    if not isinstance(value, str) or len(value) > 40:
        return 0.0
    match = _DURATION.match(value)
    if not match:
        return 0.0
    d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return min(d * 86400 + h * 3600 + m * 60 + s, MAX_SECONDS_PER_STATEMENT)


def _timestamp(value) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict) else []


@dataclass
class Parsed:
    """What one statement says, checked."""

    statement_id: str
    actor: str
    verb: str
    at: datetime
    object_id: str
    resource: str | None
    course: str | None
    knowledge_points: list[str]
    via: str | None
    success: bool | None
    scaled: float | None
    seconds: float


def parse(full, prefixes: dict) -> Parsed | None:
    if not isinstance(full, dict):
        return None
    account = _dict(_dict(full.get("actor")).get("account"))
    actor = account.get("name")
    verb = _dict(full.get("verb")).get("id")
    statement_id = full.get("id")
    obj = _dict(full.get("object"))
    object_id = obj.get("id")
    at = _timestamp(full.get("timestamp")) or _timestamp(full.get("stored"))
    if not all(isinstance(v, str) for v in (actor, verb, statement_id, object_id)) or at is None:
        return None
    context = _dict(full.get("context"))
    extensions = _dict(context.get("extensions"))
    activities = _dict(context.get("contextActivities"))
    resource = course = None
    candidates = [object_id] + [
        _dict(a).get("id") for key in ("grouping", "parent") for a in _list(activities.get(key))
    ]
    for candidate in candidates:
        if not isinstance(candidate, str):
            continue
        if resource is None and candidate.startswith(prefixes["resource"]):
            resource = candidate[len(prefixes["resource"]) :].split("#", 1)[0].split("/", 1)[0][:36]
        if course is None and candidate.startswith(prefixes["course"]):
            course = candidate[len(prefixes["course"]) :].split("#", 1)[0].split("/", 1)[0][:36]
    points = extensions.get(prefixes["kp"])
    points = [
        p
        for p in (points if isinstance(points, list) else [])
        if isinstance(p, str) and 0 < len(p) <= 64
    ][:20]
    via = extensions.get(prefixes["via"])
    result = _dict(full.get("result"))
    success = result.get("success") if isinstance(result.get("success"), bool) else None
    scaled = _dict(result.get("score")).get("scaled")
    scaled = (
        float(scaled)
        if isinstance(scaled, int | float) and not isinstance(scaled, bool) and -1 <= scaled <= 1
        else None
    )
    seconds = parse_duration(result.get("duration"))
    if not seconds:
        time_from, time_to = prefixes["video"]
        ext = _dict(result.get("extensions"))
        start, end = ext.get(time_from), ext.get(time_to)
        if isinstance(start, int | float) and isinstance(end, int | float) and 0 <= start < end:
            seconds = min(float(end - start), MAX_SECONDS_PER_STATEMENT)
    return Parsed(
        statement_id[:36],
        actor,
        verb,
        at,
        object_id,
        resource,
        course,
        points,
        via if isinstance(via, str) else None,
        success,
        scaled,
        seconds,
    )


def _forgotten(user_ids: set[int]) -> dict:
    from app.portraits.models import Forgotten

    if not user_ids:
        return {}
    return dict(
        db.session.execute(
            select(Forgotten.user_id, Forgotten.at).where(Forgotten.user_id.in_(user_ids))
        ).all()
    )


def item_key(activity_id: str) -> str:
    return hashlib.sha1(activity_id.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass
class Batch:
    """Evidence extracted from a batch of statements, before it is written."""

    observations: list[dict] = field(default_factory=list)
    usage: dict = field(default_factory=dict)
    engagement: dict = field(default_factory=lambda: defaultdict(lambda: [0.0, 0, 0, 0]))
    interests: dict = field(default_factory=lambda: defaultdict(lambda: [0.0, 0]))


def _prefixes() -> dict:
    return {
        "resource": sources.resource_activity_prefix(),
        "course": sources.course_activity_prefix(),
        "kp": sources.knowledge_points_extension(),
        "via": sources.via_extension(),
        "video": sources.video_time_extensions(),
    }


def extract(rows: list[tuple[int, dict]]) -> Batch:
    prefixes = _prefixes()
    parsed = [p for p in (parse(full, prefixes) for _pk, full in rows) if p is not None]
    users = sources.user_ids_by_public_id({p.actor for p in parsed})
    forgotten = _forgotten(set(users.values()))
    parsed = [
        p
        for p in parsed
        if p.actor in users
        and not (users[p.actor] in forgotten and p.at <= forgotten[users[p.actor]])
    ]
    needs_alignment = {
        p.resource
        for p in parsed
        if p.resource
        and not p.knowledge_points
        and (p.verb == ANSWERED or (p.verb in SCORED and p.via != "exercise"))
    }
    aligned = sources.knowledge_points_of_resources(needs_alignment)
    all_points = {kp for p in parsed for kp in p.knowledge_points} | {
        kp for kps in aligned.values() for kp in kps
    }
    canonical = sources.canonical_skills(all_points)
    categories = sources.course_categories({p.course for p in parsed if p.course})
    kinds = sources.resource_kinds({p.resource for p in parsed if p.resource})
    batch = Batch()
    for p in parsed:
        user_id = users[p.actor]
        day = p.at.date()
        engagement = batch.engagement[(user_id, day)]
        engagement[0] += p.seconds
        engagement[1] += 1
        engagement[2] += 1 if p.verb == COMPLETED else 0
        engagement[3] += 1 if p.verb == ANSWERED else 0
        if p.course and p.course in categories:
            interest = batch.interests[(user_id, categories[p.course])]
            interest[0] += p.seconds
            interest[1] += 1
        evidence = None
        if p.verb == ANSWERED and p.success is not None:
            evidence = (p.success, item_key(p.object_id), "answer")
        elif (
            p.verb in SCORED
            and p.via != "exercise"
            and (p.success is not None or p.scaled is not None)
        ):
            correct = p.success if p.success is not None else p.scaled >= PASS_MARK
            evidence = (correct, item_key(p.object_id), "resource")
        if evidence is not None:
            points = p.knowledge_points or aligned.get(p.resource, [])
            for kp in points:
                batch.observations.append(
                    {
                        "user_id": user_id,
                        "skill": canonical.get(kp, kp),
                        "knowledge_point": kp,
                        "item": evidence[1],
                        "resource_content_id": p.resource,
                        "correct": evidence[0],
                        "kind": evidence[2],
                        "statement_id": p.statement_id,
                        "at": p.at,
                    }
                )
        if p.resource and p.verb in USE_VERBS and kinds.get(p.resource) not in (None, "exercise"):
            key = (user_id, p.resource)
            first, last, seconds, completed = batch.usage.get(key, (p.at, p.at, 0.0, False))
            batch.usage[key] = (
                min(first, p.at),
                max(last, p.at),
                seconds + p.seconds,
                completed or p.verb == COMPLETED,
            )
    return batch


def _lock_cursor(name: str) -> IngestCursor:
    cursor = db.session.execute(
        select(IngestCursor).where(IngestCursor.name == name).with_for_update()
    ).scalar_one_or_none()
    if cursor is None:
        try:
            with db.session.begin_nested():
                db.session.add(IngestCursor(name=name, position=0))
        except Exception:  # created concurrently: read the winner's row below
            log.debug("cursor %s created concurrently", name)
        cursor = db.session.execute(
            select(IngestCursor).where(IngestCursor.name == name).with_for_update()
        ).scalar_one()
    return cursor


def write(batch: Batch) -> list[Observation]:
    """Store a batch; returns the observations inserted (duplicates are skipped)."""
    new = []
    if batch.observations:
        existing = set(
            db.session.execute(
                select(Observation.statement_id, Observation.skill).where(
                    Observation.statement_id.in_({o["statement_id"] for o in batch.observations})
                )
            ).all()
        )
        for values in batch.observations:
            key = (values["statement_id"], values["skill"])
            if key in existing:
                continue
            existing.add(key)
            row = Observation(**values)
            db.session.add(row)
            new.append(row)
    for (user_id, resource), (first, last, seconds, completed) in batch.usage.items():
        row = db.session.get(Usage, (user_id, resource))
        if row is None:
            db.session.add(
                Usage(
                    user_id=user_id,
                    resource_content_id=resource,
                    first_at=first,
                    last_at=last,
                    seconds=seconds,
                    completed=completed,
                )
            )
        else:
            row.first_at, row.last_at = min(row.first_at, first), max(row.last_at, last)
            row.seconds += seconds
            row.completed = row.completed or completed
    for (user_id, day), (seconds, events, completions, answers) in batch.engagement.items():
        row = db.session.get(EngagementDay, (user_id, day))
        if row is None:
            row = EngagementDay(
                user_id=user_id, day=day, seconds=0.0, events=0, completions=0, answers=0
            )
            db.session.add(row)
        row.seconds += seconds
        row.events += events
        row.completions += completions
        row.answers += answers
    for (user_id, category), (seconds, events) in batch.interests.items():
        row = db.session.get(Interest, (user_id, category))
        if row is None:
            row = Interest(user_id=user_id, category=category, seconds=0.0, events=0)
            db.session.add(row)
        row.seconds += seconds
        row.events += events
    db.session.flush()
    return sorted(new, key=lambda o: o.id)


def ingest_new(limit: int = 2000, name: str = "lrs") -> tuple[list[Observation], int]:
    """Read the statements stored since the last call; returns (new observations, number
    of statements read)."""
    cursor = _lock_cursor(name)
    rows = sources.statements_after(cursor.position, limit)
    if not rows:
        return [], 0
    observations = write(extract(rows))
    cursor.position = rows[-1][0]
    db.session.flush()
    return observations, len(rows)


def reset_evidence() -> None:
    """Forget all extracted evidence (``flask portraits rebuild --reingest``)."""
    for model in (Observation, Usage, EngagementDay, Interest, IngestCursor):
        db.session.query(model).delete()
    db.session.flush()


def days_between(first: date, last: date) -> int:
    return (last - first).days + 1
