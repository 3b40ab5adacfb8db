"""The online update of the learner model after new answers (the rest of the model —
generations, the full rebuild — is :mod:`app.portraits.services.model`).

Online update of one answer on skill k by student s (active generation):
BKT skills: P(known) <- update(P(known), correct) with the skill's fitted parameters;
Elo skills (too little data for BKT): the ratings move and P(known) is the Elo mastery.
Elo ratings are kept for every answer, so a skill can switch method at a rebuild.
"""

from __future__ import annotations

import json
from collections import defaultdict

from sqlalchemy import (
    Float,
    Integer,
    String,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.common.models import utcnow
from app.extensions import db
from app.portraits.models import EloRating, Generation, Mastery, SkillParams, Snapshot
from app.portraits.services import bkt, elo
from app.portraits.services.model import active_generation

# --- the online update ------------------------------------------------------------------
#
# Issue 14: after the first round (7 statements, ~1 ms CPU) most of an update's CPU was
# SQLAlchemy's cost per statement, not the database: an ORM-enabled ``Session.execute``
# costs about three times a Core ``Connection.execute`` of the same SELECT, and an
# ``IN`` list with an expanding parameter re-renders the SQL at every execution (about
# doubling it again).  So the update reads everything it needs in ONE statement on the
# session's connection, with the lists passed as one parameter (a PostgreSQL array, a
# JSON array read by SQLite's ``json_each``) so the SQL never changes, and writes with
# one upsert per table: 4 statements whatever the number of answers and skills.

_M, _E, _P, _G = Mastery.__table__, EloRating.__table__, SkillParams.__table__, Generation.__table__
_KINDS = ("item", "skill", "student")  # every answer touches one rating of each kind
_READS: dict = {}
_UPSERTS: dict = {}


def _member(column, name: str, item_type, dialect: str):
    """``column`` is one of the values of list parameter ``name`` — the same SQL for
    any number of values (see :func:`_list_value`)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(item_type)))
    values = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(values.c.value).scalar_subquery())


def _list_value(values: list, dialect: str):
    return values if dialect == "postgresql" else json.dumps(values)


def _read_statement(dialect: str, given: bool):
    """One UNION ALL of the generation's id (the active one, or ``generation_id`` when
    ``given``), the parameters of the answers' skills, every mastery row of the students
    (the rows the answers update *and* what the day's snapshot averages) and the Elo
    ratings, as rows of ``(part, n, s, t, x, i, j, y, z, w)``:

    * ``g``: n = generation id (NULL when there is no active generation);
    * ``p``: s = skill, t = method, x/y/z/w = prior/learn/guess/slip;
    * ``m``: n = user, s = skill, t = method, x = p_known, i/j = answers/correct;
    * ``e``: n = count, s = key, t = kind, x = value.

    ``kind IN (…) AND key IN (…)`` walks the Elo primary key (generation, kind, key);
    the few pairs it matches beyond the ones wanted are dropped in Python."""
    statement = _READS.get((dialect, given))
    if statement is not None:
        return statement
    if given:
        generation_id = bindparam("generation_id", type_=Integer)
        head = select(literal_column("'g'").label("part"), generation_id.label("n"))
    else:  # the active generation: the newest one in state "active"
        newest = func.max(_G.c.id)
        generation_id = select(newest).where(_G.c.state == "active").scalar_subquery()
        head = select(literal_column("'g'").label("part"), newest.label("n")).where(
            _G.c.state == "active"
        )
    # Typed NULLs: PostgreSQL resolves a UNION's column types branch by branch and
    # would take two untyped NULLs for text.
    i_, s_, f_ = (cast(null(), t) for t in (Integer, String, Float))
    parts = [
        head.add_columns(s_, s_, f_, i_, i_, f_, f_, f_),
        select(
            literal_column("'p'"),
            i_,
            _P.c.skill,
            _P.c.method,
            _P.c.prior,
            i_,
            i_,
            _P.c.learn,
            _P.c.guess,
            _P.c.slip,
        ).where(
            _P.c.generation_id == generation_id,
            _member(_P.c.skill, "skills", String, dialect),
        ),
        select(
            literal_column("'m'"),
            _M.c.user_id,
            _M.c.skill,
            _M.c.method,
            _M.c.p_known,
            _M.c.answers,
            _M.c.correct,
            f_,
            f_,
            f_,
        ).where(
            _M.c.generation_id == generation_id,
            _member(_M.c.user_id, "users", Integer, dialect),
        ),
        select(
            literal_column("'e'"),
            _E.c.count,
            _E.c.key,
            _E.c.kind,
            _E.c.value,
            i_,
            i_,
            f_,
            f_,
            f_,
        ).where(
            _E.c.generation_id == generation_id,
            _E.c.kind.in_([literal_column(f"'{kind}'") for kind in _KINDS]),
            _member(_E.c.key, "keys", String, dialect),
        ),
    ]
    statement = _READS[(dialect, given)] = union_all(*parts)
    return statement


def _upsert(session, connection, model, rows: list[dict], index_elements, update) -> None:
    """INSERT … ON CONFLICT DO UPDATE of ``rows`` in one statement (SQLite and PostgreSQL
    both have it), built once per dialect."""
    if not rows:
        return
    dialect = connection.dialect.name
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
    connection.execute(statement, rows)
    # Core writes bypass the identity map: an entity of these rows already loaded in
    # this session would otherwise keep its old values.
    identity_map = session.identity_map
    if len(identity_map):
        for row in rows:
            loaded = identity_map.get((model, tuple(row[c] for c in index_elements), None))
            if loaded is not None:
                session.expire(loaded)


def apply_observations(observations: list, generation: Generation | None = None) -> set[int]:
    """The online update for new observations (in id order); returns the users changed.

    One read (:func:`_read_statement`: the active generation unless given, the skills'
    parameters, every mastery row of the students concerned, the Elo ratings involved),
    the update in memory, then one upsert each for the Elo ratings, the mastery rows and
    the day's snapshots: 4 statements whatever the number of answers, students and
    skills (issue 14).  Pending ORM changes are flushed first, as the ORM reads of the
    previous version did (autoflush)."""
    if not observations:
        return set()
    session = db.session()  # the request's or job's Session itself, not the scoped proxy
    session.flush()
    connection = session.connection()
    dialect = connection.dialect.name
    users = sorted({o.user_id for o in observations})
    wanted = set()
    for o in observations:
        wanted.add(("student", str(o.user_id)))
        wanted.add(("skill", f"{o.user_id}:{o.skill}"))
        wanted.add(("item", o.item))
    values = {
        "skills": _list_value(sorted({o.skill for o in observations}), dialect),
        "users": _list_value(users, dialect),
        "keys": _list_value(sorted({key for _kind, key in wanted}), dialect),
    }
    if generation is not None:
        values["generation_id"] = generation.id
    rows = connection.execute(_read_statement(dialect, generation is not None), values).all()
    # The "g" row is always there (an aggregate when the generation is not given).
    gid = next(n for part, n, *_rest in rows if part == "g")
    if gid is None:  # no model yet: an empty active generation (nothing to read in it)
        gid, rows = active_generation().id, []
    params: dict[str, bkt.Params] = {}
    masteries: dict[tuple[int, str], dict] = {}
    ratings = {key: elo.Rating() for key in wanted}
    for part, n, s, t, x, i, j, y, z, w in rows:
        if part == "m":
            masteries[(n, s)] = {"p_known": x, "method": t, "answers": i, "correct": j}
        elif part == "e":
            if (t, s) in wanted:
                ratings[(t, s)] = elo.Rating(x, n)
        elif part == "p" and t == "bkt":
            params[s] = bkt.Params(x, y, z, w)
    changed: dict[tuple[int, str], dict] = {}
    now = utcnow()
    for obs in observations:
        key = (obs.user_id, obs.skill)
        row = masteries.get(key)
        student = ratings[("student", str(obs.user_id))]
        student_skill = ratings[("skill", f"{obs.user_id}:{obs.skill}")]
        elo.update(student, student_skill, ratings[("item", obs.item)], obs.correct)
        p = params.get(obs.skill)
        if p is not None:
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
        session,
        connection,
        EloRating,
        [
            {"generation_id": gid, "kind": kind, "key": k, "value": r.value, "count": r.count}
            for (kind, k), r in ratings.items()
        ],
        ("generation_id", "kind", "key"),
        ("value", "count"),
    )
    _upsert(
        session,
        connection,
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
        session,
        connection,
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


# --- rebuild -----------------------------------------------------------------------------------
