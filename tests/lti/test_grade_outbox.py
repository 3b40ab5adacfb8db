"""The AGS grade outbox on app.common.outbox, against the simulated LMS over real HTTP:
two deliverers never post the same score twice, and an LMS that fails and recovers
gets each score exactly once, retried on the common backoff schedule."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from app.common.models import utcnow
from app.extensions import db
from app.jobs import run_job
from app.lti.models import LtiGradeOutbox, OutboxStatus
from app.lti.services import ags

LINKS_PER_STUDENT = 4
SCORES_PER_LINK = 3


def _queue(platform, deployment, make_user, students: int) -> set[tuple]:
    """Pending scores for ``students`` × 4 line items × 3 scores; returns what the LMS
    must end up with: (userId, line item path, scoreGiven) once each."""
    expected = set()
    for s in range(students):
        user = make_user("student")
        for k in range(LINKS_PER_STUDENT):
            lineitem = f"{platform.url}/ctx/course-1/lineitems/link-{k}"
            link = ags.record_grade_link(
                deployment.platform,
                deployment,
                user,
                f"stu-{s}",
                f"rl-{k}",
                f"content-{k}",
                lineitem,
                [ags.SCOPE_SCORE, ags.SCOPE_LINEITEM],
            )
            for n in range(SCORES_PER_LINK):
                given = float(10 * k + n)
                db.session.add(
                    LtiGradeOutbox(
                        link_id=link.id,
                        score_given=given,
                        score_maximum=100.0,
                        timestamp=f"2026-11-30T08:0{n}:00.000Z",
                        attempts=0,
                        next_attempt_at=utcnow(),
                    )
                )
                expected.add((f"stu-{s}", f"/ctx/course-1/lineitems/link-{k}", given))
    db.session.commit()
    return expected


def _received(platform) -> list[tuple]:
    return [(s["userId"], s["lineitem"], s["scoreGiven"]) for s in platform.scores]


def _run_deliverers(app, workers: int, path: str, **kwargs) -> list[dict]:
    """``workers`` threads, each in its own app context, each running the job until it
    finds nothing to do (every job commits once, through app.jobs.run_job)."""
    results: list[dict] = []
    failures: list[BaseException] = []

    def deliverer():
        try:
            with app.app_context():
                while True:
                    counts = run_job(path, **kwargs)
                    results.append(counts)
                    if counts["sent"] + counts["failed"] == 0:
                        break
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=deliverer) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    return results


def _rows() -> list[LtiGradeOutbox]:
    db.session.expire_all()
    return list(db.session.execute(select(LtiGradeOutbox).order_by(LtiGradeOutbox.id)).scalars())


def test_two_deliverers_never_post_the_same_score_twice(
    app, backend, live, platform, registered, make_user, monkeypatch
):
    if backend == "sqlite":
        pytest.skip("SQLite has no row locks; there the claim is a plain SELECT (documented)")
    monkeypatch.setattr(ags, "BATCH_SIZE", 5)  # many small claims, so the two interleave
    expected = _queue(platform, registered, make_user, students=3)
    platform.score_barrier = threading.Barrier(2)

    results = _run_deliverers(app, 2, "app.lti.jobs:deliver_due_grades")

    assert not platform.score_barrier.broken, "the two deliverers never posted at the same time"
    received = _received(platform)
    assert len(received) == len(set(received)), "a score was posted twice"
    assert set(received) == expected
    assert sum(r["sent"] for r in results) == len(expected)
    assert sum(r["failed"] for r in results) == 0
    assert platform.score_requests == len(expected)
    rows = _rows()
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    assert all(row.sent_at is not None and row.attempts == 0 for row in rows)


def test_a_failing_lms_that_recovers_gets_each_score_exactly_once(
    app, backend, live, platform, registered, make_user
):
    workers = 2 if backend == "postgresql" else 1
    expected = _queue(platform, registered, make_user, students=2)
    total = len(expected)
    base = app.config["LTI_GRADE_RETRY_SECONDS"]
    path = "app.lti.services.ags:deliver_due_grades"

    def round_at(clock) -> list[dict]:
        return _run_deliverers(app, workers, path, now=clock)

    platform.score_failures = 10**6  # the LMS is down
    t0 = utcnow()
    results = round_at(t0)
    assert sum(r["failed"] for r in results) == total and platform.score_requests == total
    for row in _rows():
        assert row.status == OutboxStatus.PENDING and row.attempts == 1
        assert "503" in row.last_error
        # the common backoff: base seconds, shortened by at most 20 % jitter
        assert t0 + timedelta(seconds=0.8 * base) <= row.next_attempt_at
        assert row.next_attempt_at <= t0 + timedelta(seconds=base)

    # Before the retry time nobody posts anything.
    round_at(t0 + timedelta(seconds=0.75 * base))
    assert platform.score_requests == total

    t1 = t0 + timedelta(seconds=base)  # still down: the second wait doubles
    round_at(t1)
    assert platform.score_requests == 2 * total and platform.scores == []
    for row in _rows():
        assert row.status == OutboxStatus.PENDING and row.attempts == 2
        assert t1 + timedelta(seconds=1.6 * base) <= row.next_attempt_at
        assert row.next_attempt_at <= t1 + timedelta(seconds=2 * base)

    platform.score_failures = 0  # the LMS is back, but nothing is due yet
    round_at(t1 + timedelta(seconds=1.5 * base))
    assert platform.score_requests == 2 * total

    results = round_at(t1 + timedelta(seconds=2 * base))
    received = _received(platform)
    assert len(received) == len(set(received)) and set(received) == expected
    assert sum(r["sent"] for r in results) == total
    rows = _rows()
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    assert all(row.last_error is None and row.sent_at is not None for row in rows)

    # Sent scores are never posted again, however late the next run.
    round_at(t1 + timedelta(days=30))
    assert platform.score_requests == 3 * total and len(platform.scores) == total


def test_scores_give_up_after_max_attempts_on_the_common_schedule(
    app, live, platform, registered, make_user
):
    expected = _queue(platform, registered, make_user, students=1)
    app.config["LTI_GRADE_MAX_ATTEMPTS"] = 2
    try:
        platform.score_failures = 10**6
        clock = utcnow()
        first = _run_deliverers(app, 1, "app.lti.services.ags:deliver_due_grades", now=clock)
        assert sum(c["given_up"] for c in first) == 0
        clock += timedelta(hours=1)
        second = _run_deliverers(app, 1, "app.lti.services.ags:deliver_due_grades", now=clock)
        assert sum(c["given_up"] for c in second) == len(expected)
        clock += timedelta(hours=1)
        rows = _rows()
        assert {row.status for row in rows} == {OutboxStatus.FAILED}
        assert all(row.attempts == 2 for row in rows)
        assert platform.score_requests == 2 * len(expected)
        # Given up means given up: no later run posts them.
        _run_deliverers(app, 1, "app.lti.services.ags:deliver_due_grades", now=clock)
        assert platform.score_requests == 2 * len(expected)
    finally:
        app.config["LTI_GRADE_MAX_ATTEMPTS"] = 8


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(browser, live, user) -> None:
    token = _csrf(browser.get(live + "/login").text)
    data = {"email": user.email, "password": "password123", "csrf_token": token}
    assert browser.post(live + "/login", data=data, allow_redirects=False).status_code == 302


def _retry(browser, live, outbox_id: int) -> int:
    token = _csrf(browser.get(live + "/lti/admin/grades").text)
    return browser.post(
        f"{live}/lti/admin/grades/{outbox_id}/retry",
        data={"csrf_token": token},
        allow_redirects=False,
    ).status_code


def test_an_admin_retry_posts_a_given_up_score_once(
    app, live, platform, registered, make_user, orgs
):
    expected = _queue(platform, registered, make_user, students=1)
    app.config["LTI_GRADE_MAX_ATTEMPTS"] = 1
    try:
        platform.score_failures = 10**6
        _run_deliverers(app, 1, "app.lti.services.ags:deliver_due_grades")
    finally:
        app.config["LTI_GRADE_MAX_ATTEMPTS"] = 8
    rows = _rows()
    assert {row.status for row in rows} == {OutboxStatus.FAILED}
    target, others = rows[0], rows[1:]
    platform.score_failures = 0

    outsider = make_user("district_admin", district=orgs.review_district)
    admin = make_user("platform_admin")
    with requests.Session() as browser:
        _login(browser, live, outsider)
        assert _retry(browser, live, target.id) == 403
    assert platform.score_requests == len(expected)
    with requests.Session() as browser:
        _login(browser, live, admin)
        assert _retry(browser, live, target.id) == 302  # posted by a job after the commit
        assert _retry(browser, live, target.id) == 409  # already sent
        assert _retry(browser, live, 10**9) == 404
    assert platform.score_requests == len(expected) + 1
    assert _received(platform) == [("stu-0", "/ctx/course-1/lineitems/link-0", target.score_given)]
    rows = {row.id: row for row in _rows()}
    assert rows[target.id].status == OutboxStatus.SENT and rows[target.id].attempts == 0
    assert all(rows[row.id].status == OutboxStatus.FAILED for row in others)


@pytest.mark.parametrize(
    "result",
    [
        None,
        [],
        {"score": None},
        {"score": "high"},
        {"score": [0.5]},
        {"score": {"raw": "nan", "max": 10}},
        {"score": {"raw": 5, "max": "inf"}},
        {"score": {"scaled": "1e999"}},
        {"score": {"raw": 5, "max": -10}},
        {"score": {"raw": 5}},
        {"score": {"raw": {"$gt": 1}, "max": 10}},
    ],
)
def test_no_score_from_a_hostile_result(result):
    assert ags.score_from_result(result) is None


def test_scores_are_clamped_and_carry_their_progress():
    full = ags.score_from_result({"score": {"raw": 12, "max": 10}})
    assert (full.given, full.maximum, full.completed) == (10.0, 10.0, True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", full.timestamp)
    partial = ags.score_from_result({"score": {"scaled": -0.5}, "completion": False})
    assert (partial.given, partial.maximum, partial.completed) == (0.0, 100.0, False)
    assert ags.score_from_result({"score": 0.8}).given == pytest.approx(80.0)
