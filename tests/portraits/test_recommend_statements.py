"""One student's recommendations cost a fixed number of SQL statements, however many
resources and knowledge points this and last week's lessons bring (no N+1)."""

from __future__ import annotations

from sqlalchemy import event

from app.curriculum import services as curriculum
from app.extensions import db
from app.portraits import sources
from app.portraits.models import Feedback
from app.portraits.services import model, recommend
from tests.portraits.test_learner_model import material, week  # noqa: F401

# One class with one calendar: the feedback, the generation, her mastery; this, last and
# next week's lessons in one statement, their knowledge points; the canonical skills, the
# model's parameters and gains; the equivalents of the lessons and knowledge points and
# the aligned resources ranked and limited in SQL (issue 14: it was 20, with every aligned
# resource loaded, three week statements and the class's progress); interests,
# enrolments, courses; the assignments of her classes (issue 14, third round: her classes
# are a subquery, they were a statement of their own: 17).  Fifth round: the
# equivalents read once for the canonical skills and the aligned resources (they were
# read twice), and the extended courses in one statement with her interests and
# enrolments as sub-selects (interests, enrolments and their courses were three more): 16.
# Seventh round: the served generation and her masteries in one statement (they were
# two), and each class's calendar per subject as rows in one statement (her classes,
# with their school and editions, were one and each class and subject's calendar one
# more): 13.
STATEMENTS = 11


def _count(student) -> tuple[int, recommend.Recommendations]:
    student.roles  # noqa: B018  (loaded before, as by the request's login)
    sent = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        recs = recommend.recommend(student, None, "zh_CN")
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return len(sent), recs


def test_recommendations_run_a_fixed_number_of_statements(ctx, klass, material, publish):  # noqa: F811
    model.active_generation()
    db.session.commit()
    student = klass.student
    first, recs = _count(student)
    assert material["video"] in {r.resource.content_id for r in recs.this_week}

    # More resources on every knowledge point and lesson of this and last week, and
    # feedback on some of them: the same statements.
    added = []
    for offset in (0, -1):
        for view in sources.weeks_of(student, offset):
            for lesson in view.lessons:
                nodes = [lesson["node"], *lesson["knowledge_points"]]
                for i, node in enumerate(nodes):
                    content_id = publish(klass.teacher, f"资源 {offset} {node.id}", kind="document")
                    curriculum.align(
                        klass.teacher,
                        node.id,
                        "resource",
                        content_id,
                        ("teaches", "assesses")[i % 2],
                    )
                    added.append(content_id)
    db.session.add(Feedback(user_id=student.id, resource_content_id=added[0], action="clicked"))
    db.session.add(Feedback(user_id=student.id, resource_content_id=added[1], action="not_useful"))
    db.session.commit()
    assert len(added) > 4
    second, recs = _count(student)
    shown = {r.resource.content_id for r in recs.this_week + recs.last_week}
    assert shown & set(added[2:]) and added[1] not in shown
    assert first == second == STATEMENTS
