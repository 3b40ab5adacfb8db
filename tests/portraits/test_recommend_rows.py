"""Issue 14, fifth round: the recommender reads the weeks' lessons and knowledge points
as rows (``syllabus.NodeRow``) instead of ``Node`` entities, and the extended courses in
one statement; both must read what the curriculum's and catalog's functions give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.catalog.models import Course, Enrolment, EnrolmentStatus
from app.curriculum.services import knowledge_points_of
from app.extensions import db
from app.portraits import sources, syllabus
from app.portraits.models import Interest
from app.portraits.services import recommend
from tests.catalog.helpers import make_content
from tests.portraits.test_learner_model import material, week  # noqa: F401
from tests.portraits.test_recommend_ranking import crowded  # noqa: F401
from tests.portraits.test_recommend_walk import tangled  # noqa: F401


def _row(node) -> tuple:
    return (node.id, node.identifier, node.title, node.title_en)


def test_the_weeks_as_rows_equal_the_curriculum_weeks(ctx, klass, tangled):  # noqa: F811
    student = klass.student
    weeks = syllabus.syllabus_weeks(student, (0, -1, 1))
    for offset in (0, -1, 1):
        views = sources.weeks_of(student, offset)
        lessons = [lesson["node"] for view in views for lesson in view.lessons]
        points = knowledge_points_of(lessons)
        expected = [
            (
                view.week,
                [
                    (_row(n), [_row(kp) for kp in points.get(n.identifier, [])])
                    for n in (lesson["node"] for lesson in view.lessons)
                ],
            )
            for view in views
        ]
        got = [
            (
                one["week"],
                [
                    (_row(lesson["node"]), [_row(kp) for kp in lesson["knowledge_points"]])
                    for lesson in one["lessons"]
                ],
            )
            for one in weeks[offset]
        ]
        assert got == expected
        assert any(lessons for _week, lessons in got)
    assert any(
        kps for one in weeks[0] for lesson in one["lessons"] for kps in [lesson["knowledge_points"]]
    )


def test_extended_courses_leave_out_hers_without_cutting_the_list_short(ctx, klass):
    student, teacher = klass.student, klass.teacher
    for category, seconds in (("opera", 300.0), ("tea", 200.0), ("go", 100.0), ("papercut", 5.0)):
        db.session.add(Interest(user_id=student.id, category=category, seconds=seconds, events=1))
    courses = [
        make_content(
            teacher, Course, title=f"课程 {i}", category=("opera", "tea", "papercut")[i % 3]
        )
        for i in range(21)
    ]
    start = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    for i, content_id in enumerate(courses):  # distinct times: course i is the i-th newest
        db.session.execute(
            update(Course)
            .where(Course.content_id == content_id)
            .values(published_at=start - timedelta(days=i))
        )
    # Enrolled in most of the newest courses (one of them left: not enrolled any more).
    in_categories = [c for i, c in enumerate(courses) if i % 3 != 2]
    for n, content_id in enumerate(in_categories[:10]):
        status = EnrolmentStatus.LEFT if n == 4 else EnrolmentStatus.ENROLLED
        db.session.add(
            Enrolment(course_content_id=content_id, student_id=student.id, status=status)
        )
    db.session.commit()
    shown = [c.content_id for c in recommend._extended(student)]
    # The newest in her top 3 categories (not "papercut") she is not enrolled in: the
    # one she left, then those after the 10 enrolments (9 still enrolled); the old read
    # cut the list to the 12 newest before dropping hers, and showed 3.
    assert shown == [in_categories[4], *in_categories[10:13]]
    assert len(shown) == 4
