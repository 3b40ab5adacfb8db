"""The learner model: generations and the full rebuild (split into one job per skill); the
online update after new answers is :mod:`app.portraits.services.online`.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
from flask import current_app
from sqlalchemy import (
    delete,
    func,
    insert,
    select,
    update,
)

from app.common.models import utcnow
from app.extensions import db
from app.portraits.models import (
    EloRating,
    Generation,
    Mastery,
    Observation,
    ResourceGain,
    SkillParams,
    Snapshot,
    Usage,
)
from app.portraits.services import bkt, elo

log = logging.getLogger(__name__)
CHUNK = 5000


def _config(name: str, default):
    return current_app.config.get(name, default)


def min_answers() -> int:
    return int(_config("PORTRAITS_BKT_MIN_ANSWERS", 60))


def min_students() -> int:
    return int(_config("PORTRAITS_BKT_MIN_STUDENTS", 8))


def mastered_threshold() -> float:
    return float(_config("PORTRAITS_MASTERED", 0.8))


_ACTIVE = select(Generation).where(Generation.state == "active").order_by(Generation.id.desc())


def active_generation_id():
    """The served generation's id as a select (one row or none), to use inside another
    statement: the generation :func:`active_generation` reads."""
    return (
        select(Generation.id)
        .where(Generation.state == "active")
        .order_by(Generation.id.desc())
        .limit(1)
    )


def active_generation(create: bool = True) -> Generation | None:
    generation = db.session.execute(_ACTIVE).scalar()
    if generation is None and create:
        generation = Generation(state="active", finished_at=utcnow())
        db.session.add(generation)
        db.session.flush()
    return generation


def plan_rebuild() -> tuple[Generation, list[tuple[str, str]]]:
    """A new generation in state ``building`` and its jobs: (skill, method) per skill,
    plus ("", "elo") for the Elo replay.  Stale builds are marked failed."""
    db.session.execute(
        update(Generation)
        .where(Generation.state == "building")
        .values(state="failed", finished_at=utcnow())
    )
    top = db.session.execute(select(func.max(Observation.id))).scalar() or 0
    jobs = sorted(skill_methods(top).items())
    jobs.append(("", "elo-replay"))
    generation = Generation(
        state="building", skills_total=len(jobs), skills_done=0, max_observation_id=top
    )
    db.session.add(generation)
    db.session.flush()
    return generation, jobs


def skill_methods(top: int) -> dict[str, str]:
    """Skill → "bkt" when it has enough answers and students for EM, else "elo"
    (deterministic for a given ``top`` observation id, so every job agrees)."""
    counts = db.session.execute(
        select(Observation.skill, func.count(), func.count(func.distinct(Observation.user_id)))
        .where(Observation.id <= top)
        .group_by(Observation.skill)
    ).all()
    return {
        skill: "bkt" if answers >= min_answers() and students >= min_students() else "elo"
        for skill, answers, students in counts
    }


def _skill_columns(generation: Generation, skill: str):
    rows = db.session.execute(
        select(Observation.user_id, Observation.correct)
        .where(Observation.skill == skill, Observation.id <= generation.max_observation_id)
        .order_by(Observation.user_id, Observation.at, Observation.id)
    ).all()
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0)
    data = np.array(rows, dtype=np.int64)
    return data[:, 0], data[:, 1].astype(np.float64)


def fit_skill(generation_id: int, skill: str, method: str) -> None:
    """Job: fit one skill's BKT parameters and write every student's mastery of it into
    the building generation.  Elo skills get their mastery from the Elo replay."""
    generation = db.session.get(Generation, generation_id)
    if generation is None or generation.state != "building":
        return
    students, correct = _skill_columns(generation, skill)
    sequences, user_ids = bkt.Sequences.from_columns(students, correct)
    counts = (
        np.bincount(np.searchsorted(user_ids, students), minlength=len(user_ids))
        if len(students)
        else []
    )
    right = (
        np.bincount(np.searchsorted(user_ids, students), weights=correct, minlength=len(user_ids))
        if len(students)
        else []
    )
    if method == "bkt":
        params, loglik = bkt.fit(sequences, restarts=int(_config("PORTRAITS_BKT_RESTARTS", 3)))
        mastery = bkt.final_mastery(sequences, params)
        now = utcnow()
        db.session.execute(
            insert(Mastery),
            [
                {
                    "generation_id": generation_id,
                    "user_id": int(u),
                    "skill": skill,
                    "p_known": float(m),
                    "method": "bkt",
                    "answers": int(n),
                    "correct": int(r),
                    "last_observation_id": 0,
                    "updated_at": now,
                }
                for u, m, n, r in zip(user_ids, mastery, counts, right, strict=True)
            ],
        ) if len(user_ids) else None
    else:
        params, loglik = bkt.DEFAULT, None
    db.session.add(
        SkillParams(
            generation_id=generation_id,
            skill=skill,
            method=method,
            answers=int(len(students)),
            students=int(len(user_ids)),
            loglik=loglik,
            **params.as_dict(),
        )
    )
    db.session.flush()
    _resource_gains(generation, skill)


def _resource_gains(generation: Generation, skill: str) -> None:
    """For each resource used by students between two answers on ``skill`` when the
    earlier answer was wrong: how many (users) and how many answered the next one right
    (helped)."""
    usage = db.session.execute(
        select(Usage.user_id, Usage.resource_content_id, Usage.first_at)
        .join(Observation, Observation.user_id == Usage.user_id)
        .where(Observation.skill == skill, Observation.id <= generation.max_observation_id)
        .distinct()
    ).all()
    if not usage:
        return
    answers = defaultdict(list)
    for user_id, at, correct in db.session.execute(
        select(Observation.user_id, Observation.at, Observation.correct)
        .where(Observation.skill == skill, Observation.id <= generation.max_observation_id)
        .order_by(Observation.at, Observation.id)
    ).all():
        answers[user_id].append((at, correct))
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for user_id, resource, first_at in usage:
        history = answers.get(user_id, [])
        before = [c for at, c in history if at <= first_at]
        after = [c for at, c in history if at > first_at]
        if before and not before[-1] and after:
            tally[resource][0] += 1
            tally[resource][1] += 1 if after[0] else 0
    for resource, (users, helped) in tally.items():
        db.session.add(
            ResourceGain(
                generation_id=generation.id,
                resource_content_id=resource,
                skill=skill,
                users=users,
                helped=helped,
            )
        )
    db.session.flush()


def replay_elo(generation_id: int) -> None:
    """Job: every observation of the build in order through Elo; writes the ratings and
    the mastery of the Elo skills."""
    generation = db.session.get(Generation, generation_id)
    if generation is None or generation.state != "building":
        return
    elo_skills = {
        skill
        for skill, method in skill_methods(generation.max_observation_id).items()
        if method == "elo"
    }
    students: dict[str, elo.Rating] = defaultdict(elo.Rating)
    pairs: dict[str, elo.Rating] = defaultdict(elo.Rating)
    items: dict[str, elo.Rating] = defaultdict(elo.Rating)
    tallies: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    last = 0
    while True:
        rows = db.session.execute(
            select(
                Observation.id,
                Observation.user_id,
                Observation.skill,
                Observation.item,
                Observation.correct,
            )
            .where(Observation.id > last, Observation.id <= generation.max_observation_id)
            .order_by(Observation.id)
            .limit(50000)
        ).all()
        if not rows:
            break
        for obs_id, user_id, skill, item, correct in rows:
            elo.update(students[str(user_id)], pairs[f"{user_id}:{skill}"], items[item], correct)
            if skill in elo_skills:
                tally = tallies[(user_id, skill)]
                tally[0] += 1
                tally[1] += 1 if correct else 0
            last = obs_id
    rating_rows = [
        {
            "generation_id": generation_id,
            "kind": kind,
            "key": key,
            "value": r.value,
            "count": r.count,
        }
        for kind, table in (("student", students), ("skill", pairs), ("item", items))
        for key, r in table.items()
    ]
    for start in range(0, len(rating_rows), CHUNK):
        db.session.execute(insert(EloRating), rating_rows[start : start + CHUNK])
    now = utcnow()
    mastery_rows = [
        {
            "generation_id": generation_id,
            "user_id": user_id,
            "skill": skill,
            "p_known": elo.mastery(students[str(user_id)], pairs[f"{user_id}:{skill}"]),
            "method": "elo",
            "answers": n,
            "correct": r,
            "last_observation_id": 0,
            "updated_at": now,
        }
        for (user_id, skill), (n, r) in tallies.items()
    ]
    for start in range(0, len(mastery_rows), CHUNK):
        db.session.execute(insert(Mastery), mastery_rows[start : start + CHUNK])
    db.session.flush()


def run_rebuild_job(generation_id: int, skill: str, method: str) -> bool:
    """One job of a rebuild.  The job that completes the count switches generations.
    Returns True when it switched."""
    if method == "elo-replay":
        replay_elo(generation_id)
    else:
        fit_skill(generation_id, skill, method)
    done = db.session.execute(
        update(Generation)
        .where(Generation.id == generation_id, Generation.state == "building")
        .values(skills_done=Generation.skills_done + 1)
        .returning(Generation.skills_done, Generation.skills_total)
    ).first()
    if done is None:
        return False
    if done[0] >= done[1]:
        switch(generation_id)
        return True
    return False


def switch(generation_id: int) -> None:
    """Make a completed build the served generation: replay what arrived during the build,
    then flip states in one transaction (readers see the old or the new, never a mix)."""
    generation = db.session.get(Generation, generation_id)
    late = list(
        db.session.execute(
            select(Observation)
            .where(Observation.id > generation.max_observation_id)
            .order_by(Observation.id)
        ).scalars()
    )
    if late:
        # Imported here: the online update reads this module's active generation, so a
        # module-level import both ways would be circular.
        from app.portraits.services.online import apply_observations

        apply_observations(late, generation)
    previous = (
        db.session.execute(select(Generation).where(Generation.state == "active")).scalars().all()
    )
    for old in previous:
        old.state = "retired"
    generation.state = "active"
    generation.finished_at = utcnow()
    db.session.flush()
    # Keep one retired generation (for comparison); older ones go.
    retired = (
        db.session.execute(
            select(Generation.id)
            .where(Generation.state.in_(("retired", "failed")))
            .order_by(Generation.id.desc())
        )
        .scalars()
        .all()
    )
    for old_id in retired[1:]:
        for model in (Mastery, SkillParams, EloRating, ResourceGain):
            db.session.execute(delete(model).where(model.generation_id == old_id))
        db.session.execute(delete(Generation).where(Generation.id == old_id))
    _snapshot_all(generation)


def _snapshot_all(generation: Generation) -> None:
    """Today's snapshot of every student of the generation, written in bulk."""
    from app.portraits import sources

    day = sources.today()
    per_user: dict[int, dict[str, float]] = defaultdict(dict)
    for user_id, skill, p in db.session.execute(
        select(Mastery.user_id, Mastery.skill, Mastery.p_known).where(
            Mastery.generation_id == generation.id
        )
    ).all():
        per_user[user_id][skill] = round(p, 4)
    users = list(per_user)
    for start in range(0, len(users), 900):
        db.session.execute(
            delete(Snapshot).where(
                Snapshot.day == day, Snapshot.user_id.in_(users[start : start + 900])
            )
        )
    rows = [
        {
            "user_id": u,
            "day": day,
            "mastery": values,
            "average": round(sum(values.values()) / len(values), 4),
        }
        for u, values in per_user.items()
    ]
    for start in range(0, len(rows), CHUNK):
        db.session.execute(insert(Snapshot), rows[start : start + CHUNK])
    db.session.flush()
