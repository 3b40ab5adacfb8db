"""Keeping the index in line with the catalog: one item at a time (signals, jobs), a
full rebuild, and a check that finds (and repairs) what drifted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from app.catalog.models import Course, Resource, State
from app.extensions import db
from app.jobs import enqueue
from app.search.backend import IndexBusy, SearchBackend
from app.search.services.documents import document_for, iter_documents
from app.search.whoosh_backend import WhooshBackend

BACKENDS = ("whoosh", "postgresql")


def get_backend(app=None) -> SearchBackend:
    """The engine ``SEARCH_BACKEND`` names: Whoosh (a folder) or PostgreSQL (tables in the
    application database, written in the caller's session)."""
    app = app or current_app._get_current_object()
    backend = app.extensions.get("search_backend")
    if backend is None:
        name = app.config.get("SEARCH_BACKEND") or "whoosh"
        if name == "postgresql":
            if not str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
                raise RuntimeError("SEARCH_BACKEND=postgresql needs a PostgreSQL DATABASE_URL.")
            from app.search.pg_backend import PostgresBackend

            backend = PostgresBackend(lambda: db.session)
        elif name == "whoosh":
            backend = WhooshBackend(app.config["SEARCH_INDEX_DIR"])
        else:
            raise RuntimeError(
                f"SEARCH_BACKEND must be one of {', '.join(BACKENDS)}, not {name!r}."
            )
        app.extensions["search_backend"] = backend
    return backend


def _published_row(model, content_id: str):
    return db.session.execute(
        select(model).where(model.content_id == content_id, model.state == State.PUBLISHED)
    ).scalar_one_or_none()


def _model(kind: str):
    if kind not in ("course", "resource"):
        raise ValueError(f"unknown content type {kind!r}")
    return Course if kind == "course" else Resource


# A request waits this long for the index lock; then the update moves to a background job.
REQUEST_WRITE_WAIT = 5.0
JOB_WRITE_WAIT = 120.0


def index_content(
    kind: str, content_id: str, wait: float | None = None, retry_later: bool = True
) -> str:
    """Bring one item's document in line with the database: index its published version,
    or remove it when nothing is published.  Returns "indexed", "removed" or "queued"
    (the index stayed locked by another writer for ``wait`` seconds, so a background job
    retries with a longer wait)."""
    row = _published_row(_model(kind), content_id)
    backend = get_backend()
    try:
        if row is None:
            backend.delete([f"{kind}:{content_id}"], timeout=wait)
            return "removed"
        backend.upsert([document_for(row)], timeout=wait)
        return "indexed"
    except IndexBusy:
        if not retry_later:
            raise
        enqueue("app.search.services.indexing:index_content_job", kind, content_id)
        return "queued"


def index_content_job(kind: str, content_id: str) -> str:
    """Background retry of :func:`index_content` (waits longer, does not re-queue; if it
    still fails, ``flask search check --repair`` picks the item up)."""
    return index_content(kind, content_id, wait=JOB_WRITE_WAIT, retry_later=False)


def remove_content(kind: str, content_id: str) -> None:
    _model(kind)
    get_backend().delete([f"{kind}:{content_id}"])


@dataclass
class CheckReport:
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    indexed: int = 0
    published: int = 0
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def check_index(repair: bool = False, progress: Callable[[int], None] | None = None) -> CheckReport:
    """Compare the index with the database; with ``repair``, fix every difference."""
    backend = get_backend()
    indexed = backend.fingerprints()
    report = CheckReport(indexed=len(indexed))
    fresh: list[dict] = []
    seen = set()
    for doc in iter_documents():
        report.published += 1
        seen.add(doc["id"])
        have = indexed.get(doc["id"])
        if have is None:
            report.missing.append(doc["id"])
            fresh.append(doc)
        elif have != doc["fingerprint"]:
            report.stale.append(doc["id"])
            fresh.append(doc)
        if progress:
            progress(1)
    report.extra = sorted(set(indexed) - seen)
    if repair and not report.ok:
        for start in range(0, len(fresh), 500):
            backend.upsert(fresh[start : start + 500])
        backend.delete(report.extra)
        report.repaired = True
    return report


def reindex(progress: Callable[[int], None] | None = None, procs: int = 1) -> int:
    """Rebuild the whole index into a new folder, swap it in, then catch up with changes
    made while it was building (on PostgreSQL: replace every row in the caller's
    transaction).  Returns the number of documents."""
    backend = get_backend()
    count = backend.rebuild(iter_documents(), progress=progress, procs=procs)
    check_index(repair=True)
    return count
