"""app.common.cache.BuiltFor: what is built from objects is reused for those very
objects only (the recommender's statements per reader clause)."""

from __future__ import annotations

from app.common.cache import BuiltFor


class _Clause:
    pass


def test_built_once_for_the_same_objects_and_apart_for_others():
    memo = BuiltFor(size=2)
    builds = []

    def build(tag):
        builds.append(tag)
        return tag

    a, b = _Clause(), _Clause()
    assert memo.get((a,), lambda: build("a")) == "a"
    assert memo.get((a,), lambda: build("again")) == "a"
    assert memo.get((a,), lambda: build("a-5"), extra=(5,)) == "a-5"  # extra tells apart
    assert memo.get((b,), lambda: build("b")) == "b"
    assert builds == ["a", "a-5", "b"]
    # size 2: the least recently used entry ("a" without extra) went
    assert memo.get((a,), lambda: build("a rebuilt")) == "a rebuilt"


def test_an_entry_is_returned_for_those_very_objects_only():
    memo = BuiltFor()
    first = _Clause()
    memo.get((first,), lambda: "first")
    # Another object given the same key (as a reused id would be) does not get it.
    other = _Clause()
    key = next(iter(memo._entries))
    memo._entries[(id(other),)] = memo._entries.pop(key)
    assert memo.get((other,), lambda: "other") == "other"
