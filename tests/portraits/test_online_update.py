"""The online update after new answers (``model.apply_observations``): a fixed number of
statements however many skills the student has (issue 14: it was 11, with a re-read of
her mastery rows for the snapshot and one SELECT per Elo rating), and the same numbers as
applying BKT and Elo by hand, answer by answer."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, select

from app.extensions import db
from app.portraits.models import EloRating, Mastery, Observation, SkillParams, Snapshot
from app.portraits.services import bkt, elo, model

# The skills' parameters, her mastery rows, the Elo ratings involved; then one upsert
# each for the ratings, the mastery rows and the day's snapshot.
STATEMENTS = 6
BKT = bkt.Params(0.3, 0.2, 0.2, 0.1)
START = datetime(2026, 10, 12, 9, 0)


def _observe(user_id: int, skill: str, correct: bool, n: int, item: str = "item-a", days=0):
    obs = Observation(
        user_id=user_id,
        skill=skill,
        knowledge_point=skill,
        item=item,
        correct=correct,
        kind="answer",
        statement_id=f"st-{n}",
        at=START + timedelta(days=days, minutes=n),
    )
    db.session.add(obs)
    db.session.flush()
    return obs


def _count(call) -> int:
    sent = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return len(sent)


@pytest.fixture
def generation(ctx):
    generation = model.active_generation()
    db.session.add(
        SkillParams(generation_id=generation.id, skill="kp-bkt", method="bkt", **BKT.as_dict())
    )
    db.session.commit()
    return generation


def test_one_answer_costs_a_fixed_number_of_statements(generation, make_user):
    student = make_user("student")
    # A student with many skills already: the update must not read or write per skill.
    db.session.add_all(
        Mastery(
            generation_id=generation.id,
            user_id=student.id,
            skill=f"kp-{i:02d}",
            p_known=0.5,
            method="elo",
            answers=1,
            correct=1,
        )
        for i in range(30)
    )
    db.session.commit()
    db.session.refresh(generation)  # expired by the commit: not the update's statement
    for n, (skill, correct) in enumerate(
        [("kp-bkt", True), ("kp-bkt", False), ("kp-05", True), ("kp-new", False)]
    ):
        obs = _observe(student.id, skill, correct, n)
        assert _count(lambda o=obs: model.apply_observations([o], generation)) == STATEMENTS
    db.session.commit()
    # Without the generation given, one more: the active generation.
    obs = _observe(student.id, "kp-bkt", True, 10)
    assert _count(lambda: model.apply_observations([obs])) == STATEMENTS + 1


def test_the_update_matches_bkt_and_elo_applied_by_hand(generation, make_user):
    first, second = make_user("student"), make_user("student")
    db.session.add(
        Mastery(
            generation_id=generation.id,
            user_id=first.id,
            skill="kp-bkt",
            p_known=0.4,
            method="bkt",
            answers=2,
            correct=1,
        )
    )
    db.session.add(
        EloRating(generation_id=generation.id, kind="item", key="item-b", value=0.7, count=4)
    )
    db.session.commit()
    # Loaded before the update: must not keep its old values afterwards.
    loaded = db.session.get(Mastery, (generation.id, first.id, "kp-bkt"))
    assert loaded.p_known == 0.4
    answers = [
        (first.id, "kp-bkt", False, "item-a", 0),
        (first.id, "kp-elo", True, "item-b", 0),
        (second.id, "kp-elo", False, "item-b", 0),
        (first.id, "kp-bkt", True, "item-a", 1),
        (first.id, "kp-elo", True, "item-b", 1),
    ]
    # One batch (as a job reads several statements) for the first three, then one by one.
    batch = [_observe(*a[:3], n, item=a[3], days=a[4]) for n, a in enumerate(answers[:3])]
    assert model.apply_observations(batch, generation) == {first.id, second.id}
    for n, a in enumerate(answers[3:], start=3):
        model.apply_observations([_observe(*a[:3], n, item=a[3], days=a[4])], generation)
    db.session.commit()

    # By hand: BKT from her stored 0.4, Elo from the stored item rating and fresh others.
    ratings = {("item", "item-b"): elo.Rating(0.7, 4)}

    def rating(kind, key):
        return ratings.setdefault((kind, key), elo.Rating())

    expected = {(first.id, "kp-bkt"): 0.4}
    counts: dict = {}
    for user_id, skill, correct, item, _day in answers:
        student = rating("student", str(user_id))
        pair = rating("skill", f"{user_id}:{skill}")
        elo.update(student, pair, rating("item", item), correct)
        key = (user_id, skill)
        if skill == "kp-bkt":
            expected[key] = bkt.update(expected[key], correct, BKT)
        else:
            expected[key] = elo.mastery(student, pair)
        n, right = counts.get(key, (2, 1) if key == (first.id, "kp-bkt") else (0, 0))
        counts[key] = (n + 1, right + int(correct))

    assert loaded.p_known == pytest.approx(expected[(first.id, "kp-bkt")])
    rows = {
        (m.user_id, m.skill): m
        for m in db.session.execute(
            select(Mastery).where(Mastery.generation_id == generation.id)
        ).scalars()
    }
    assert set(rows) == set(expected)
    for key, value in expected.items():
        assert rows[key].p_known == pytest.approx(value)
        assert (rows[key].answers, rows[key].correct) == counts[key]
        assert rows[key].method == ("bkt" if key[1] == "kp-bkt" else "elo")
    assert rows[(first.id, "kp-bkt")].last_observation_id > 0
    stored = {
        (r.kind, r.key): (r.value, r.count)
        for r in db.session.execute(
            select(EloRating).where(EloRating.generation_id == generation.id)
        ).scalars()
    }
    assert stored.keys() == ratings.keys()
    for key, r in ratings.items():
        assert stored[key][0] == pytest.approx(r.value) and stored[key][1] == r.count

    # Snapshots: one per student and day, the rounded mastery of all her skills then.
    snapshots = {
        (s.user_id, s.day): s for s in db.session.execute(select(Snapshot)).scalars().all()
    }
    day0, day1 = START.date(), (START + timedelta(days=1)).date()
    assert set(snapshots) == {(first.id, day0), (second.id, day0), (first.id, day1)}
    last = snapshots[(first.id, day1)]
    mine = {skill: v for (u, skill), v in expected.items() if u == first.id}
    assert last.mastery == {skill: round(v, 4) for skill, v in mine.items()}
    assert last.average == round(sum(mine.values()) / len(mine), 4)
    assert snapshots[(second.id, day0)].mastery == {
        "kp-elo": round(expected[(second.id, "kp-elo")], 4)
    }


def test_a_later_answer_the_same_day_rewrites_that_days_snapshot(generation, make_user):
    student = make_user("student")
    model.apply_observations([_observe(student.id, "kp-bkt", False, 0)], generation)
    model.apply_observations([_observe(student.id, "kp-bkt", True, 1)], generation)
    db.session.commit()
    rows = db.session.execute(select(Snapshot)).scalars().all()
    mastery = db.session.get(Mastery, (generation.id, student.id, "kp-bkt"))
    assert len(rows) == 1 and rows[0].mastery == {"kp-bkt": round(mastery.p_known, 4)}
    assert mastery.answers == 2 and mastery.correct == 1


def test_no_observations_change_nothing(generation):
    assert _count(lambda: model.apply_observations([], generation)) == 0
