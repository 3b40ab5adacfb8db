"""Job entry points (``app.jobs.enqueue("app.portraits.services.updates:...")``) and the
rebuild driver used by the CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.extensions import db
from app.portraits.models import Generation
from app.portraits.services import ingest, model, online

log = logging.getLogger(__name__)


def ingest_job(max_batches: int = 50) -> dict:
    """Job: read the new statements, store the evidence and update the portraits of the
    students concerned (the incremental path).  Commits per batch."""
    statements = observations = 0
    for _ in range(max_batches):
        new, read = ingest.ingest_new()
        if not read:
            break
        online.apply_observations(new)
        db.session.commit()
        statements += read
        observations += len(new)
    return {"statements": statements, "observations": observations}


def rebuild_job(generation_id: int, skill: str, method: str) -> bool:
    """Job: one skill of a rebuild (or the Elo replay)."""
    return model.run_rebuild_job(generation_id, skill, method)


def start_rebuild(reingest: bool = False) -> tuple[Generation, list[tuple[str, str]]]:
    """Catch up with the LRS (everything again with ``reingest``), then plan a new
    generation.  Commits, so jobs in other processes see the plan."""
    if reingest:
        ingest.reset_evidence()
        db.session.commit()
    while True:
        new, read = ingest.ingest_new(limit=5000)
        if not read:
            break
        online.apply_observations(new)
        db.session.commit()
    generation, jobs = model.plan_rebuild()
    db.session.commit()
    return generation, jobs


def rebuild(
    reingest: bool = False,
    queue: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Generation:
    """A full rebuild.  ``queue``: one background job per skill (several workers share
    it; the last one switches); otherwise the jobs run here, one by one, each committed.
    An interruption leaves the generation ``building`` and the previous one served."""
    from app.jobs import enqueue

    generation, jobs = start_rebuild(reingest)
    generation_id = generation.id  # eager jobs end their session: keep the id, not the row
    for skill, method in jobs:
        if queue:
            enqueue("app.portraits.services.updates:rebuild_job", generation_id, skill, method)
            continue
        try:
            model.run_rebuild_job(generation_id, skill, method)
            db.session.commit()
        except Exception:
            db.session.rollback()
            db.session.get(Generation, generation_id).state = "failed"
            db.session.commit()
            raise
        if progress:
            progress(1)
    return db.session.get(Generation, generation_id)
