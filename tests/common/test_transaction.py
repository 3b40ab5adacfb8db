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
