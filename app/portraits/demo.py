"""A term of simulated but plausible answers for the demo class (``flask content load``
runs it after the curriculum demo; ``flask portraits simulate`` on demand).

The simulation follows the model it will be measured with: every knowledge point of the
class calendar gets BKT parameters (prior 0.15–0.45, learn 0.10–0.30, guess 0.20,
slip 0.08), every student an ability a ~ N(0, 1) that shifts her prior and learn rate on
the logit scale.  Week by week, each student answers 2–4 questions on each knowledge
point of that week's lessons (on school days of that week), and a student who got one
wrong watches an aligned non-exercise resource half of the time, which raises her chance
to learn before her next answer.  The answers are stored as xAPI statements in the LRS
(the path real answers take) and read into portraits week by week, so the trend has a
point per week; a rebuild fits the parameters at the end.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from app.extensions import db
from app.portraits import sources
from app.portraits.models import IngestCursor

CLASS_NAME = "七年级（3）班"
SIMULATED_STUDENTS = 22
MARKER = "demo-simulated"
ADL = "http://adlnet.gov/expapi/verbs/"


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _statement(
    user, verb: str, object_id: str, at: datetime, result=None, points=None, grouping=None
) -> dict:
    from app.xapi.emit import vocab

    statement = {
        "id": str(uuid.uuid4()),
        "actor": sources.actor_for(user),
        "verb": {"id": ADL + verb, "display": {"en-US": verb}},
        "object": {"objectType": "Activity", "id": object_id},
        "timestamp": at.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z"),
        "context": {"extensions": {vocab("extensions", "via"): "simulation"}},
    }
    if points:
        statement["context"]["extensions"][vocab("extensions", "knowledge-points")] = points
    if grouping:
        statement["context"]["contextActivities"] = {
            "grouping": [{"objectType": "Activity", "id": grouping}]
        }
    if result:
        statement["result"] = result
    return statement


def simulate_term(
    seed: int = 7, on=None, students: int = SIMULATED_STUDENTS, rebuild: bool = True
) -> dict:
    """Simulate the demo class's term up to ``on`` (default today; between terms, the
    last term).  Idempotent: a second
    run does nothing."""
    from app.portraits.services import updates

    if db.session.get(IngestCursor, MARKER) is not None:
        return {"skipped": "already simulated"}
    school_class = sources.find_class(CLASS_NAME)
    if school_class is None:
        return {"skipped": "no demo class"}
    on = on or sources.today()
    calendar = sources.class_calendar(school_class, "math", on)
    if calendar is None:
        # Between terms: the whole term that ended last, so the demo has portraits.
        calendar = sources.last_class_calendar(school_class, "math", on)
        if calendar is None:
            return {"skipped": "no calendar"}
        on = calendar.term_end
    rng = random.Random(seed)
    learners = list(sources.class_students(school_class))
    for n in range(1, students + 1):
        learners.append(
            sources.ensure_student(f"sim{n:02d}@shuyuan.test", f"模拟学生{n:02d}", school_class)
        )
    db.session.flush()
    ability = {u.id: rng.gauss(0, 1) for u in learners}
    weeks = [w for w in sources.calendar_weeks(calendar) if w["starts_on"] and w["starts_on"] <= on]
    prefix = sources.resource_activity_prefix()
    params, known = {}, {}
    statements = 0
    for week in weeks:
        lessons = week["lessons"]
        aligned = sources.resources_aligned_to(learners[0], lessons) if lessons else {}
        batch: dict[int, list] = {u.id: [] for u in learners}
        for lesson in lessons:
            points = week["knowledge_points"].get(lesson.identifier) or []
            helpers = [
                a.resource for a in aligned.get(lesson.id, []) if a.resource.kind != "exercise"
            ]
            exercises = [
                a.resource for a in aligned.get(lesson.id, []) if a.resource.kind == "exercise"
            ]
            for kp in points:
                if kp.identifier not in params:
                    params[kp.identifier] = (
                        rng.uniform(0.15, 0.45),
                        rng.uniform(0.10, 0.30),
                        0.20,
                        0.08,
                    )
                prior, learn, guess, slip = params[kp.identifier]
                for user in learners:
                    state = known.setdefault(
                        (user.id, kp.identifier),
                        rng.random() < _sigmoid(_logit(prior) + 0.8 * ability[user.id]),
                    )
                    rate = _sigmoid(_logit(learn) + 0.5 * ability[user.id])
                    for i in range(rng.randint(2, 4)):
                        day = week["starts_on"] + timedelta(days=min(4, i + rng.randint(0, 2)))
                        at = datetime.combine(day, time(8 + rng.randint(0, 9), rng.randint(0, 59)))
                        correct = rng.random() > slip if state else rng.random() < guess
                        exercise = exercises[0].content_id if exercises else "simulated"
                        question = (
                            f"{prefix}{exercise}#question=sim-{kp.identifier[:8]}-{i}&version=1"
                        )
                        batch[user.id].append(
                            _statement(
                                user,
                                "answered",
                                question,
                                at,
                                {"success": correct, "duration": f"PT{rng.randint(20, 90)}S"},
                                [kp.identifier],
                                f"{prefix}{exercise}",
                            )
                        )
                        boost = 0.0
                        if not correct and helpers and rng.random() < 0.5:
                            helper = helpers[rng.randrange(len(helpers))]
                            watched = at + timedelta(minutes=10)
                            batch[user.id].append(
                                _statement(
                                    user,
                                    "completed",
                                    f"{prefix}{helper.content_id}",
                                    watched,
                                    {"completion": True, "duration": f"PT{rng.randint(240, 600)}S"},
                                )
                            )
                            boost = 0.25
                        if not state and rng.random() < min(0.95, rate + boost):
                            state = True
                        known[(user.id, kp.identifier)] = state
        # One LRS call per week: the class is one school, so one principal stores all.
        week_statements = [s for user in learners for s in batch[user.id]]
        if week_statements:
            sources.store_statements(learners[0], week_statements)
            statements += len(week_statements)
        db.session.flush()
        updates.ingest_job()
    db.session.add(IngestCursor(name=MARKER, position=statements))
    db.session.commit()
    generation = updates.rebuild() if rebuild else None
    return {
        "students": len(learners),
        "weeks": len(weeks),
        "knowledge_points": len(params),
        "statements": statements,
        "generation": generation.id if generation else None,
    }


def load(folder, report, tick) -> None:
    """Demo loader step (after the curriculum's): simulate the term once."""
    done = db.session.execute(
        select(IngestCursor).where(IngestCursor.name == MARKER)
    ).scalar_one_or_none()
    if done is not None:
        report.add("simulated term", False)
        return
    result = simulate_term()
    report.add("simulated term", "statements" in result)


def register() -> None:
    from app.demo.services import register_loader

    register_loader("portraits", load)
