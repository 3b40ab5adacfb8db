"""Signal receivers: scores from players and exercises go to the LMS gradebook.

``learning_event`` arrives after the request's commit, so nothing is written here: a
score for content launched from an LMS with a line item is handed to a job
(:func:`app.lti.jobs.record_score`), which stores it in the outbox and commits."""

from __future__ import annotations

from app.jobs import enqueue


def on_learning_event(
    app, user=None, verb=None, resource=None, course=None, result=None, context=None, **kwargs
) -> None:
    from app.lti.services import ags

    score = ags.score_from_result(result)
    if user is None or score is None:
        return
    content_ids = [obj.content_id for obj in (resource, course) if obj is not None]
    # A read, so that scores of people who never came from an LMS start no job.
    if not ags.has_score_links(user.id, content_ids):
        return
    enqueue(
        "app.lti.jobs:record_score",
        user.id,
        content_ids,
        score.given,
        score.maximum,
        score.completed,
        score.timestamp,
    )
