"""The edge node's mirror: sync the subscribed catalogs of its upstream, fetch their
media, and forward the xAPI statements made here — inside the configured window and
under the bandwidth limit.

Every step is safe to cut and repeat: a sync stores a release all or nothing, each
media object is committed as soon as it is verified (so a cut never loses finished
objects and they are never fetched again), partial files are resumed with Range, and
statements leave the outbox only once the upstream LRS accepted them (statement ids
make the upstream idempotent, so a batch re-sent after a cut mid-forward is stored
once).  While the upstream is unreachable the edge goes on serving from its own
database and storage; the next run picks up where this one stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import queue as stdlib_queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
from flask import current_app
from sqlalchemy import select

from app.common.events import commit
from app.errors import AppError
from app.extensions import db
from app.sharing.models import Subscription, SubscriptionStatus
from app.sharing.services import edge, federation, keys, materialise, media_fetch
from app.sharing.services.keys import FederationRefused, normalise_origin

log = logging.getLogger(__name__)


@dataclass
class MirrorReport:
    ran: bool
    reason: str = ""
    synced: dict = field(default_factory=dict)  # subscription id → status
    media: media_fetch.FetchStats = field(default_factory=media_fetch.FetchStats)
    media_total: int = 0  # bytes still to fetch when the media step began
    media_seconds: float = 0.0  # wall time of the media step (index, downloads, storing)
    forwarded: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.ran and not self.errors


class _Busy(Exception):
    """Another process holds the mirror lock: this run does nothing."""


class _RunLock:
    """One mirror at a time per instance (two would fight over the partial files)."""

    def __init__(self, folder: str):
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        self.handle = (path / "mirror.lock").open("w")

    def __enter__(self):
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise _Busy() from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def mirrored_subscriptions() -> list[Subscription]:
    """Remote subscriptions to mirror: those to the upstream (all remote ones when no
    upstream is configured, e.g. ``flask sharing mirror`` on a regional instance)."""
    upstream = current_app.config.get("EDGE_UPSTREAM")
    statement = select(Subscription).where(
        Subscription.remote_origin.like("http%"),
        Subscription.status.in_([SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING]),
    )
    if upstream:
        statement = statement.where(Subscription.remote_origin == normalise_origin(upstream))
    return list(db.session.execute(statement.order_by(Subscription.id)).scalars())


def mirror(
    force: bool = False,
    now=None,
    progress: Callable[[int, int], None] | None = None,
    on_object: Callable[[str], None] | None = None,
    bucket: edge.TokenBucket | None = None,
    forward: bool = True,
) -> MirrorReport:
    """One mirror run.  Commits as it goes (each release, each media object), so this
    is called from a job or the CLI, never inside a web request.

    ``progress(done_bytes, total_bytes)`` follows the media download; ``on_object(sha)``
    is called after each object is committed.
    """
    config = current_app.config
    window = edge.parse_window(config.get("EDGE_MIRROR_WINDOW"))
    timezone = config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")

    def open_now() -> bool:
        return force or edge.in_window(window, now or edge.local_now(timezone))

    if not open_now():
        return MirrorReport(False, f"outside the mirror window {window}")
    bucket = bucket or edge.TokenBucket(int(config.get("EDGE_BANDWIDTH_LIMIT") or 0))
    try:
        with _RunLock(config["INSTANCE_PATH"]):
            return _run(open_now, bucket, progress, on_object, forward)
    except _Busy:
        return MirrorReport(False, "another mirror run is in progress")


def _run(open_now, bucket, progress, on_object, forward) -> MirrorReport:
    report = MirrorReport(True)
    subscriptions = mirrored_subscriptions()
    # 1. Catalogs: each release all or nothing; a refusal keeps its sync-log line.
    for sub in subscriptions:
        try:
            result = federation.sync(sub)
            report.synced[sub.id] = result.status
            materialise.reconcile(sub)
        except FederationRefused as exc:
            report.errors.append(f"sync {sub.id}: {exc.reason}")
        except AppError as exc:
            report.errors.append(f"sync {sub.id}: {exc}")
        commit()
    # 2. Media of accepted items, by hash.
    started = time.perf_counter()
    with requests.Session() as session:
        plans: dict[str, tuple[str, dict, list[str]]] = {}  # sha → (origin, entry, items)
        for sub in subscriptions:
            if sub.status != SubscriptionStatus.ACTIVE:
                continue
            try:
                index = media_fetch.fetch_index(session, sub)
            except (media_fetch.MediaRefused, media_fetch.Interrupted) as exc:
                report.errors.append(f"media index {sub.id}: {exc.reason}")
                continue
            for content_id, entry in media_fetch.plan(sub, index):
                plans.setdefault(entry["sha256"], (sub.remote_origin, entry, []))[2].append(
                    content_id
                )
            commit()
    todo = []
    for sha, (_origin, entry, content_ids) in plans.items():
        obj = media_fetch.already_here(entry)
        if obj is None:
            todo.append(sha)
            continue
        report.media.add(reused=1)  # deduplicated by hash: never fetched again
        for content_id in content_ids:
            media_fetch.attach(content_id, entry, obj)
    commit()
    report.media_total = sum(plans[sha][1]["size"] for sha in todo)
    _fetch_all(todo, plans, report, open_now, bucket, progress, on_object)
    report.media_seconds = time.perf_counter() - started
    # 3. Statements made here go upstream (exactly once: see the module docstring).
    if forward:
        from app.xapi.services.forwarding import forward_due

        report.forwarded = forward_due()
        commit()
    return report


def _fetch_all(todo, plans, report, open_now, bucket, progress, on_object) -> None:
    """Download over up to ``EDGE_MIRROR_PARALLEL`` connections at once (so one request's
    latency overlaps another's transfer); store and record each object in this thread,
    in the order they are verified, committing after each.

    Objects without a partial file go in batches (:func:`media_fetch.download_batch`: one
    request, one signature and access check on the publisher for several objects; each
    connection takes its share of what is left), one with a partial file on its own
    (resumed with Range).  Objects verified while this thread was busy are stored under
    one commit.  (Sending large objects one per request instead, so the publisher could
    answer each with ``sendfile``, was tried and measured slower with three
    connections: docs/sharing.md, "Mirror throughput, 2026-12-01".)"""
    app = current_app._get_current_object()
    parallel = max(1, int(app.config.get("EDGE_MIRROR_PARALLEL") or 1))
    local = threading.local()
    lock = threading.Lock()
    done = 0
    # What the downloads report to this thread, as (kind, a, b, last): ("verified", sha,
    # part), ("refused", sha, reason), ("interrupted", reason, None), ("ended", None,
    # None) or ("failed", exc, None); ``last`` = the download's connection is free.
    events: stdlib_queue.SimpleQueue = stdlib_queue.SimpleQueue()

    def advance(n: int) -> None:
        nonlocal done
        with lock:
            done += n
            if progress:
                progress(done, report.media_total)

    def work(batch: list[str]) -> None:
        origin = plans[batch[0]][0]
        if not hasattr(local, "session"):
            local.session = requests.Session()
        reported = set()

        def verified(entry, part):
            reported.add(entry["sha256"])
            last = len(reported) == len(batch)
            events.put(("verified", entry["sha256"], part, last))

        def refused(entry, exc):
            reported.add(entry["sha256"])
            last = len(reported) == len(batch)
            events.put(("refused", entry["sha256"], exc.reason, last))

        ended = ("ended", None, None, True)
        with app.app_context():  # the partial folder and our origin are configuration
            try:
                if len(batch) == 1:
                    entry = plans[batch[0]][1]
                    try:
                        part = media_fetch.download(
                            local.session,
                            origin,
                            entry,
                            report.media,
                            bucket.consume,
                            advance,
                            chunk,
                            signer,
                            hash_thread,
                        )
                    except media_fetch.MediaRefused as exc:
                        refused(entry, exc)
                    else:
                        verified(entry, part)
                else:
                    media_fetch.download_batch(
                        local.session,
                        origin,
                        [plans[sha][1] for sha in batch],
                        report.media,
                        verified,
                        refused,
                        bucket.consume,
                        advance,
                        chunk,
                        signer,
                        hash_thread,
                    )
            except media_fetch.Interrupted as exc:
                ended = ("interrupted", exc.reason, None, True)
            except Exception as exc:  # a bug: raised again in the mirror's thread
                ended = ("failed", exc, None, True)
            finally:
                db.session.remove()
                if len(reported) < len(batch):
                    events.put(ended)
                elif ended[0] != "ended":  # every object was reported: nothing is lost
                    log.error("sharing: media download ended with %s", ended[1])

    chunk = bucket.read_size(media_fetch.CHUNK)
    # One connection: hash in a thread beside the transfer; several: each receiving
    # thread hashes its own bytes (media_fetch._Hasher says why).
    hash_thread = parallel == 1
    # Read once here: the downloads sign without a query, so none waits for the SQLite
    # lock while this thread commits a finished object (seen as 40-350 ms stalls).
    signer = keys.current_signer()
    queue = []  # objects with a partial file: each on its own, first
    fresh: dict[str, list[str]] = {}  # origin → objects to fetch whole, in batches
    for sha in todo:
        if media_fetch.partial_path(sha).exists():
            queue.append([sha])
        else:
            fresh.setdefault(plans[sha][0], []).append(sha)
    running = 0
    stopped = False

    def next_batch() -> list[str]:
        if queue:
            return queue.pop(0)
        origin, left = next(iter(fresh.items()))
        # This connection's share of what is left, so the connections end together.
        take = min(media_fetch.MEDIA_BATCH_MAX, -(-len(left) // (parallel - running)))
        batch = left[:take]
        del left[:take]
        if not left:
            del fresh[origin]
        return batch

    with ThreadPoolExecutor(parallel, thread_name_prefix="shuyuan-mirror") as pool:

        def start_more() -> None:
            nonlocal stopped, running
            while (queue or fresh) and running < parallel and not stopped:
                if not open_now():
                    report.errors.append("the mirror window closed")
                    stopped = True
                    break
                pool.submit(work, next_batch())
                running += 1

        start_more()
        failure = None
        while running:
            arrived = [events.get()]
            # Everything else already reported is stored under the same commit: with
            # three connections objects arrive faster than one thread stores and commits
            # them one by one.  Nothing waits for more (a lone object is committed at
            # once), and each row still follows its bytes' fsync (durable_replace).
            with contextlib.suppress(stdlib_queue.Empty):
                while True:
                    arrived.append(events.get_nowait())
            for kind, first, _second, last in arrived:
                if last:
                    running -= 1
                if kind == "interrupted":
                    # The link is down: start nothing more; partial files wait for the
                    # next run (the downloads under way end on their own).
                    report.errors.append(first)
                    stopped = True
                elif kind == "failed":
                    failure, stopped = failure or first, True
            # The next downloads start before this thread stores and commits the finished
            # ones, so the database work overlaps a transfer even on one connection.
            start_more()
            stored = []
            for kind, first, second, _last in arrived:
                if kind == "refused":
                    origin = plans[first][0]
                    log.warning("sharing: refused media from %s: %s", origin, second)
                    report.media.refused.append(second)
                    report.errors.append(second)
                elif kind == "verified":
                    _, entry, content_ids = plans[first]
                    obj = media_fetch.finish(entry, second, report.media)
                    for content_id in content_ids:
                        media_fetch.attach(content_id, entry, obj)
                    stored.append(first)
            if stored:
                commit()
                if on_object:
                    for sha in stored:
                        on_object(sha)
        if failure is not None:
            raise failure


def mirror_job() -> dict:
    """Scheduler entry point: runs only on an edge node, only inside its window."""
    if not current_app.config.get("EDGE_UPSTREAM"):
        return {"ran": False, "reason": "not an edge node (EDGE_UPSTREAM unset)"}
    report = mirror()
    return {
        "ran": report.ran,
        "reason": report.reason,
        "fetched": report.media.fetched,
        "bytes": report.media.bytes,
        "errors": report.errors[:20],
    }
