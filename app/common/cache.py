"""The shared cache (Flask-Caching): Redis when ``REDIS_URL`` is set, SimpleCache otherwise.

What is cached is read far more often than it changes (anonymous catalog pages and list
counts, API token lookups).  Invalidation is by *generation*: every entry is stored with
the number of its scope (``"catalog"``...) current when it was made, and a change bumps
that number (:func:`bump`, called from signal receivers), so an entry of an older number
is a miss and is made again.  The number and the entry are read together in one round
trip (:func:`scoped_read`), not one after the other.  A reader that read the old number
while a publish committed stores its page with the old number, which no reader accepts
any more: no stale page is served after the bump.

The cache is an optimisation, never a dependency: when Redis does not answer, reads are
misses and writes are dropped (logged once a minute), and requests are served from the
database.  Settings are in app/config.py (``CACHE_*``).
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable
from hashlib import sha256
from typing import Any

from flask import Flask, current_app

from app.extensions import cache

log = logging.getLogger(__name__)

_MISS = object()
_last_warning = 0.0


def _failed(action: str, exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 60:
        _last_warning = now
        log.warning(
            "cache unavailable (%s: %s: %s); serving without it", action, type(exc).__name__, exc
        )


def _errors() -> tuple[type[Exception], ...]:
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - redis is a dependency
        return (OSError,)
    return (RedisError, OSError, pickle.PickleError)


def key(*parts: Any) -> str:
    """A short, safe cache key for any tuple of parts (query strings can be long)."""
    text = repr(parts).encode()
    return sha256(text).hexdigest()[:40]


def generation(scope: str) -> int:
    try:
        return int(cache.get(f"gen:{scope}") or 0)
    except _errors() as exc:
        _failed("read", exc)
        return -1  # entries of generation -1 are never written (see remember)


def bump(scope: str) -> None:
    """Make every entry of ``scope`` stale, in every process sharing the cache."""
    name = f"gen:{scope}"
    try:
        if current_app.config.get("CACHE_TYPE") == "RedisCache":
            cache.cache.inc(name)  # INCR: atomic across processes; the key never expires
        else:
            # Never expiring (timeout 0): a generation number that expired and restarted
            # from an old value could find entries stored under it before.
            current = int(cache.get(name) or 0)
            cache.set(name, max(current + 1, time.time_ns() // 1000), timeout=0)
    except _errors() as exc:
        _failed("invalidate", exc)


def get(name: str, default: Any = None) -> Any:
    try:
        value = cache.get(name)
    except _errors() as exc:
        _failed("read", exc)
        return default
    return default if value is None else value


def set(name: str, value: Any, timeout: int | None = None) -> None:  # noqa: A001
    try:
        cache.set(name, value, timeout=timeout)
    except _errors() as exc:
        _failed("write", exc)


def add(name: str, value: Any, timeout: int) -> bool:
    """Store ``value`` only if nothing is stored under ``name`` (an invalidation marker
    written meanwhile must win over a reader's older value).  True when stored."""
    try:
        backend = cache.cache
        if current_app.config.get("CACHE_TYPE") == "RedisCache":
            # One SET NX EX: cachelib's add() is SETNX then EXPIRE, and a process stopped
            # between the two would leave an entry that never expires.
            client = backend._write_client
            return bool(
                client.set(
                    f"{backend._get_prefix()}{name}",
                    backend.serializer.dumps(value),
                    nx=True,
                    ex=timeout,
                )
            )
        return bool(cache.add(name, value, timeout=timeout))
    except _errors() as exc:
        _failed("write", exc)
        return False


def delete(name: str) -> None:
    try:
        cache.delete(name)
    except _errors() as exc:
        _failed("delete", exc)


def _entry_name(scope: str, parts: tuple) -> str:
    return f"{scope}:e:{key(*parts)}"


class DecodedMemo:
    """Values decoded from Redis, by the exact bytes stored (per process, a few entries).

    Unpickling an entry on every read cost a returning LTI login + launch more CPU than
    its two MGETs' round trips (issue 14, fifth pass: ORM rows of platform and deployment
    with school and district).  The bytes are still read from Redis on every request,
    generation included, so what is returned is exactly what is stored now: the memo
    only skips decoding bytes decoded before.  The values are shared between requests:
    callers must not change them (registry_cache merges its rows, ``load=False``, which
    copies them into the request's session)."""

    def __init__(self, size: int = 32):
        self._size = size
        self._values: dict[bytes, Any] = {}

    def loads(self, serializer, raw: bytes | None) -> Any:
        if raw is None or len(raw) < 64:  # a miss, a generation number
            return serializer.loads(raw)
        value = self._values.get(raw, _MISS)
        if value is _MISS:
            value = serializer.loads(raw)
            if len(self._values) >= self._size:
                self._values.clear()  # new generations: the old bytes are never read again
            self._values[raw] = value
        return value


class BuiltFor:
    """Things built from objects someone else keeps (per process, a bounded LRU), by
    the identity of those objects.

    A statement built around a reader's cached visibility clause is the same statement
    as long as the clause is the same object (the catalog keeps one clause object per
    reader key), and building it again cost a sixth of a recommendation (issue 14,
    fourth and seventh rounds).  An entry holds the objects it was built from, so their
    ids are never reused for other objects while it lives, and it is returned only for
    those very objects; ``extra`` (hashable values) tells builds of the same objects
    apart.  Thread-safe; two threads may build the same entry once each."""

    def __init__(self, size: int = 64):
        from collections import OrderedDict
        from threading import Lock

        self._size = size
        self._entries: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = Lock()

    def get(self, objects: tuple, build: Callable[[], Any], extra: tuple = ()) -> Any:
        key = (*map(id, objects), *extra)
        with self._lock:
            found = self._entries.get(key)
            if found is not None and all(a is b for a, b in zip(found[0], objects, strict=True)):
                self._entries.move_to_end(key)
                return found[1]
        built = build()
        with self._lock:
            self._entries[key] = (objects, built)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return built


def _get_many(names: list[str], memo: DecodedMemo | None) -> list[Any]:
    if memo is None or current_app.config.get("CACHE_TYPE") != "RedisCache":
        return cache.get_many(*names)
    backend = cache.cache
    prefix = backend._get_prefix() if backend.key_prefix else ""
    raw = backend._read_client.mget([f"{prefix}{name}" for name in names])
    return [memo.loads(backend.serializer, each) for each in raw]


def scoped_read(
    scope: str, names: list[str], memo: DecodedMemo | None = None
) -> tuple[int, list[Any]] | None:
    """The current number of ``scope`` and the values its entries ``names`` hold *in that
    generation* (None for a miss or an entry of an older number), in one round trip
    (Redis MGET).  None when the cache does not answer (the caller reads the source and
    stores nothing).  ``memo``: decode through it (values shared between requests)."""
    try:
        raw_number, *entries = _get_many([f"gen:{scope}", *names], memo)
    except _errors() as exc:
        _failed("read", exc)
        return None
    number = int(raw_number or 0)
    values = [
        entry[1] if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == number else None
        for entry in entries
    ]
    return number, values


def scoped_write(number: int, values: dict[str, Any], timeout: int | None = None) -> None:
    """Store ``values`` (name → value) as entries of generation ``number``, as read by
    :func:`scoped_read` before they were made."""
    try:
        cache.set_many({name: (number, value) for name, value in values.items()}, timeout)
    except _errors() as exc:
        _failed("write", exc)


def remember(scope: str, parts: tuple, produce: Callable[[], Any], timeout: int | None = None):
    """The cached value of ``parts`` in the current generation of ``scope``, or
    ``produce()`` (stored for the next reader; a None is returned but not stored)."""
    name = _entry_name(scope, parts)
    found = scoped_read(scope, [name])
    if found is None:
        return produce()
    number, (value,) = found
    if value is None:
        value = produce()
        if value is not None:
            scoped_write(number, {name: value}, timeout)
    return value


def remember_many(
    scope: str, parts: list[tuple], produce: Callable[[list[int]], list[Any]]
) -> list[Any]:
    """:func:`remember` for many entries in one round trip: the cached values of
    ``parts``, in order; ``produce(positions)`` makes the missing ones (the values for
    those positions of ``parts``, in that order), which are stored for the next reader
    (a None is returned but not stored)."""
    names = [_entry_name(scope, each) for each in parts]
    found = scoped_read(scope, names)
    if found is None:
        return produce(list(range(len(parts))))
    number, values = found
    missing = [position for position, value in enumerate(values) if value is None]
    if missing:
        made = produce(missing)
        for position, value in zip(missing, made, strict=True):
            values[position] = value
        made_values = {names[p]: values[p] for p in missing if values[p] is not None}
        if made_values:
            scoped_write(number, made_values)
    return values


def init_app(app: Flask) -> None:
    cache.init_app(app)
