"""The verification's read-back (app/media/services/verification.py): a reader thread
reads ahead while blocks are hashed.  A read that fails part-way must fail the
verification, never look like the end of the file (a partial SHA-256 would become the
content address of an upload that declared none)."""

from __future__ import annotations

import hashlib

import pytest

from app.media.services.verification import PREFETCH_BLOCKS, _prefetched


def test_blocks_arrive_in_order_and_complete():
    blocks = [bytes([n]) * 1000 for n in range(50)]
    with _prefetched(iter(blocks)) as got:
        assert list(got) == blocks


def test_a_failed_read_is_raised_not_taken_for_the_end():
    def broken():
        yield b"a" * 10
        yield b"b" * 10
        raise OSError("connection reset")

    digest = hashlib.sha256()
    with pytest.raises(OSError, match="connection reset"), _prefetched(broken()) as got:
        for block in got:
            digest.update(block)


def test_leaving_early_stops_the_reader_and_closes_the_source():
    state = {"closed": False, "read": 0}

    def endless():
        try:
            while True:
                state["read"] += 1
                yield b"x" * 10
        finally:
            state["closed"] = True

    with _prefetched(endless()) as got:
        assert next(got) == b"x" * 10
    assert state["closed"]
    assert state["read"] <= PREFETCH_BLOCKS + 3  # read ahead a little, not to the end
