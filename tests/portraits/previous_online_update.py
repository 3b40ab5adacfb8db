"""The online update as it was before the single-read version (commit b9137b9, issue 14
first round), kept verbatim apart from the imports: ``tests/portraits/test_online_update.py``
runs it and the current ``online.apply_observations`` on the same answers from the same
stored state and requires identical mastery, Elo ratings and snapshots.  Test code only."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import bindparam, select

from app.common.models import utcnow
from app.extensions import db
from app.portraits.models import EloRating, Generation, Mastery, SkillParams, Snapshot
from app.portraits.services import bkt, elo
from app.portraits.services.model import active_generation

# The online update's statements, built once: building a statement (and an upsert's
# ``excluded`` columns) on every call was a third of its CPU time (issue 14 profile).
_PARAMS = select(
    SkillParams.skill,
    SkillParams.method,
    SkillParams.prior,
    SkillParams.learn,
    SkillParams.guess,
    SkillParams.slip,
).where(
    SkillParams.generation_id == bindparam("generation_id"),
    SkillParams.skill.in_(bindparam("skills", expanding=True)),
)
_MASTERY_OF_USERS = select(
    Mastery.user_id,
    Mastery.skill,
    Mastery.p_known,
    Mastery.method,
    Mastery.answers,
    Mastery.correct,
).where(
    Mastery.generation_id == bindparam("generation_id"),
    Mastery.user_id.in_(bindparam("users", expanding=True)),
)
# kind IN … AND key IN … walks the primary key (generation, kind, key); the few pairs
# this matches beyond the ones wanted are dropped in Python.
_ELO = select(EloRating.kind, EloRating.key, EloRating.value, EloRating.count).where(
    EloRating.generation_id == bindparam("generation_id"),
    EloRating.kind.in_(bindparam("kinds", expanding=True)),
    EloRating.key.in_(bindparam("keys", expanding=True)),
)
_UPSERTS: dict = {}


def _params(generation_id: int, skills: set[str]) -> dict:
    """Skill → its parameters row (skill, method, prior, learn, guess, slip)."""
    if not skills:
        return {}
    return {
        row.skill: row
        for row in db.session.execute(
            _PARAMS, {"generation_id": generation_id, "skills": sorted(skills)}
        )
    }


def _upsert(model, rows: list[dict], index_elements: tuple[str, ...], update: tuple[str, ...]):
    """INSERT … ON CONFLICT DO UPDATE of ``rows`` in one executemany (SQLite and
    PostgreSQL both have it): no SELECT-then-INSERT/UPDATE per row through the ORM."""
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    statement = _UPSERTS.get((model, dialect))
    if statement is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        statement = dialect_insert(model.__table__)
        statement = _UPSERTS[(model, dialect)] = statement.on_conflict_do_update(
            index_elements=list(index_elements), set_={c: statement.excluded[c] for c in update}
        )
    db.session.execute(statement, rows)
    # Core writes bypass the identity map: an entity of these rows already loaded in
    # this session would otherwise keep its old values.
    identity_map = db.session.identity_map
    if len(identity_map):
        for row in rows:
            loaded = identity_map.get((model, tuple(row[c] for c in index_elements), None))
            if loaded is not None:
                db.session.expire(loaded)


def _chunks(values: list, size: int = 400):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def apply_observations(observations: list, generation: Generation | None = None) -> set[int]:
    """The online update for new observations (in id order); returns the users changed.

    Reads the skills' parameters, every mastery row of the students concerned (the rows
    the answers update *and* what the day's snapshot averages) and the Elo ratings
    involved, one statement each; updates in memory; writes back with three upserts
    (Elo, mastery, snapshot).  Six statements for one answer (plus the active generation
    when not given), whatever the number of the student's skills (issue 14)."""
    if not observations:
        return set()
    generation = generation or active_generation()
    gid = generation.id
    params = _params(gid, {o.skill for o in observations})
    users = sorted({o.user_id for o in observations})
    masteries: dict[tuple[int, str], dict] = {}
    for chunk in _chunks(users):
        for user_id, skill, p_known, method, answers, correct in db.session.execute(
            _MASTERY_OF_USERS, {"generation_id": gid, "users": chunk}
        ):
            masteries[(user_id, skill)] = {
                "p_known": p_known,
                "method": method,
                "answers": answers,
                "correct": correct,
            }
    ratings = _elo_ratings(
        gid,
        {
            key
            for o in observations
            for key in (
                ("student", str(o.user_id)),
                ("skill", f"{o.user_id}:{o.skill}"),
                ("item", o.item),
            )
        },
    )
    changed: dict[tuple[int, str], dict] = {}
    now = utcnow()
    for obs in observations:
        key = (obs.user_id, obs.skill)
        row = masteries.get(key)
        student = ratings[("student", str(obs.user_id))]
        student_skill = ratings[("skill", f"{obs.user_id}:{obs.skill}")]
        elo.update(student, student_skill, ratings[("item", obs.item)], obs.correct)
        skill = params.get(obs.skill)
        if skill is not None and skill.method == "bkt":
            p = bkt.Params(skill.prior, skill.learn, skill.guess, skill.slip)
            before = row["p_known"] if row is not None else p.prior
            value, method = bkt.update(before, obs.correct, p), "bkt"
        else:
            value, method = elo.mastery(student, student_skill), "elo"
        if row is None:
            row = masteries[key] = {"answers": 0, "correct": 0}
        row["p_known"], row["method"] = float(value), method
        row["answers"] = (row["answers"] or 0) + 1
        row["correct"] = (row["correct"] or 0) + (1 if obs.correct else 0)
        row["last_observation_id"] = obs.id
        changed[key] = row
    _upsert(
        EloRating,
        [
            {"generation_id": gid, "kind": kind, "key": k, "value": r.value, "count": r.count}
            for (kind, k), r in ratings.items()
        ],
        ("generation_id", "kind", "key"),
        ("value", "count"),
    )
    _upsert(
        Mastery,
        [
            {
                "generation_id": gid,
                "user_id": user_id,
                "skill": skill,
                "p_known": row["p_known"],
                "method": row["method"],
                "answers": row["answers"],
                "correct": row["correct"],
                "last_observation_id": row["last_observation_id"],
                "updated_at": now,
            }
            for (user_id, skill), row in changed.items()
        ],
        ("generation_id", "user_id", "skill"),
        ("p_known", "method", "answers", "correct", "last_observation_id", "updated_at"),
    )
    # The day's snapshot of each student from the rows in memory (what a re-read of her
    # mastery rows after the update would give).
    per_user: dict[int, dict[str, float]] = defaultdict(dict)
    for (user_id, skill), row in masteries.items():
        per_user[user_id][skill] = row["p_known"]
    days: dict[int, object] = {}
    for obs in observations:
        day = obs.at.date()
        if obs.user_id not in days or day > days[obs.user_id]:
            days[obs.user_id] = day
    _upsert(
        Snapshot,
        [
            {
                "user_id": user_id,
                "day": days[user_id],
                "mastery": {k: round(v, 4) for k, v in per_user[user_id].items()},
                "average": round(sum(per_user[user_id].values()) / len(per_user[user_id]), 4),
            }
            for user_id in users
        ],
        ("user_id", "day"),
        ("mastery", "average"),
    )
    return set(users)


def _elo_ratings(
    generation_id: int, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], elo.Rating]:
    """(kind, key) → its rating in the generation (a new one at 0 when absent), one
    statement per 400 keys."""
    found = {key: elo.Rating() for key in keys}
    for chunk in _chunks(sorted(keys)):
        wanted = set(chunk)
        for kind, key, value, count in db.session.execute(
            _ELO,
            {
                "generation_id": generation_id,
                "kinds": sorted({kind for kind, _key in chunk}),
                "keys": sorted({key for _kind, key in chunk}),
            },
        ):
            if (kind, key) in wanted:
                found[(kind, key)] = elo.Rating(value, count)
    return found
