"""Work to do once the unit of work that asked for it has committed.

Shared caches stay right by noting, while a unit of work writes, what its commit will make
stale, and acting on that (a tombstone, a generation bump) only once the commit is real:
the API token cache (app/accounts/token_cache.py), the week structures
(app/curriculum/services/week_cache.py) and the LTI registrations and framing origins
(app/lti/origins.py).  Each feature decides *what* to note; :class:`CommitNote` keeps the
rules every one of them needs, which are easy to get subtly wrong one at a time:

- SQLAlchemy sends ``after_commit`` for a released SAVEPOINT too.  Only the outermost
  commit counts: a reader between the release and the real commit would cache the old
  rows again under the new generation.
- A rollback of the outermost transaction forgets the note (nothing was committed, so
  nothing cached is stale).  A rolled-back SAVEPOINT keeps it: what the unit of work
  wrote before the savepoint may still commit.
- The action runs once per commit, and only with an application context (it needs the
  app's cache).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import db


class CommitNote:
    """A note carried by the session's unit of work and handed to ``on_commit`` after the
    outermost commit.

    A flag (``on_commit(True)``) by default; with ``collects=True`` the note is the set of
    items marked during the unit of work (``on_commit(items)``), e.g. token hashes."""

    def __init__(self, name: str, on_commit: Callable[[Any], None], *, collects: bool = False):
        self.key = f"shuyuan_commit_note:{name}"
        self.on_commit = on_commit
        self.collects = collects

    def mark(self, session: Session | None = None, items: Iterable = ()) -> None:
        info = (session or db.session).info
        if self.collects:
            info.setdefault(self.key, set()).update(items)
        else:
            info[self.key] = True

    def marked(self, session: Session | None = None) -> bool:
        return bool((session or db.session).info.get(self.key))

    def install(self) -> None:
        if not event.contains(db.session, "after_commit", self._after_commit):
            event.listen(db.session, "after_commit", self._after_commit)
            event.listen(db.session, "after_soft_rollback", self._after_rollback)

    def _after_commit(self, session) -> None:
        if session.in_nested_transaction():
            return
        note = session.info.pop(self.key, None)
        if note and has_app_context():
            self.on_commit(note)

    def _after_rollback(self, session, previous) -> None:
        if previous.parent is None and not previous.nested:
            session.info.pop(self.key, None)
