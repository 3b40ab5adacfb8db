"""One commit per request, and savepoints that stay nested on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.accounts.models import Region
from app.common.transaction import savepoint
from app.extensions import db


def _regions() -> int:
    return db.session.execute(select(func.count(Region.id))).scalar_one()


def test_savepoint_block_is_undone_by_the_outer_rollback(ctx):
    # The block is the first write of the transaction: on SQLite this is where a
    # SAVEPOINT used to open (and RELEASE to commit) a transaction of its own.
    with savepoint():
        db.session.add(Region(code="sp1", name="保存点", name_en="Savepoint"))
        db.session.flush()
    db.session.rollback()
    assert _regions() == 0


def test_failed_savepoint_keeps_the_callers_earlier_work(ctx):
    db.session.add(Region(code="kept", name="保留", name_en="Kept"))
    db.session.flush()
    with pytest.raises(RuntimeError), savepoint():
        db.session.add(Region(code="gone", name="撤销", name_en="Gone"))
        db.session.flush()
        raise RuntimeError("local failure")
    db.session.commit()
    assert db.session.execute(select(Region.code)).scalars().all() == ["kept"]


def _listen(app, signal):
    heard: list[str] = []

    def receiver(sender, **kwargs):
        heard.append(kwargs["what"])

    signal.connect(receiver, sender=app)
    return heard, lambda: signal.disconnect(receiver, sender=app)


def test_a_rolled_back_savepoint_drops_only_its_own_signals(app, ctx):
    from blinker import Namespace

    from app.common.events import commit, send_after_commit

    signal = Namespace().signal("test-savepoint-signal")
    heard, stop = _listen(app, signal)
    try:
        send_after_commit(signal, what="outer")
        with pytest.raises(RuntimeError), savepoint():
            db.session.add(Region(code="sp-sig", name="撤销", name_en="Undone"))
            db.session.flush()
            send_after_commit(signal, what="inside the undone savepoint")
            raise RuntimeError("local failure")
        send_after_commit(signal, what="after")
        commit()
    finally:
        stop()
    assert heard == ["outer", "after"]


def test_an_in_transaction_receiver_whose_savepoint_fails_runs_once(app, ctx):
    """A receiver that runs before the commit and whose own savepoint rolls back (a
    failed counter) must neither loop forever nor lose the change it was told about."""
    from blinker import Namespace

    from app.common.events import commit, connect_in_transaction, send_after_commit

    signal = Namespace().signal("test-in-transaction-signal")
    calls: list[str] = []

    def receiver(sender, what):
        calls.append(what)
        with pytest.raises(RuntimeError), savepoint():
            db.session.add(Region(code=f"rx-{len(calls)}", name="计数", name_en="Count"))
            db.session.flush()
            raise RuntimeError("the counter failed")

    connect_in_transaction(app, signal, receiver)
    db.session.add(Region(code="change", name="改动", name_en="Change"))
    send_after_commit(signal, what="change")
    commit()
    assert calls == ["change"]
    assert db.session.execute(select(Region.code)).scalars().all() == ["change"]
