"""The periodic jobs, run from one scheduler process (``flask ops scheduler``).

APScheduler keeps the timetable; every tick only *enqueues* a job (:func:`app.jobs.enqueue`),
so the work itself runs on the workers and a slow job never delays the timetable.  Several
schedulers may be started (one per host, for availability): they elect a leader through a
Redis lock (``SET NX`` with a TTL the leader keeps renewing) and only the leader enqueues.
Without Redis (the embedded single-host set-up) a lock file in the instance folder plays
the same part.

Every job here is safe to repeat: outboxes claim rows with ``FOR UPDATE SKIP LOCKED``, key
rotation and garbage collection are idempotent steps.  So a tick lost while leadership
moves, or a job killed mid-way and run again, does no harm.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    path: str  # "module:function", resolved by the worker that runs it
    seconds: int
    kwargs: dict = field(default_factory=dict)


def periodic_jobs(config) -> list[PeriodicJob]:
    """The timetable; intervals come from config so an operator can tune them."""
    every = config.get("SCHEDULE_SECONDS", {})
    table = [
        PeriodicJob("lti-grades", "app.lti.jobs:deliver_due_grades", 60),
        PeriodicJob("lti-purge", "app.lti.jobs:purge_expired_launch_data", 3600),
        PeriodicJob("lti-rotate-keys", "app.lti.jobs:rotate_keys", 24 * 3600),
        PeriodicJob("xapi-forward", "app.xapi.services:forward_due", 30),
        PeriodicJob("media-gc", "app.media.services:collect_garbage", 24 * 3600, {"apply": True}),
        # Federated subscribers send their daily usage counts to the publishers (the last
        # week each time: the publisher replaces each day, so repeats are harmless).
        PeriodicJob("sharing-usage-report", "app.sharing.services.usage:report_upstream", 3600),
    ]
    if config.get("EDGE_UPSTREAM"):
        # Edge node: mirror its upstream; the job itself keeps to the mirror window.
        table.append(PeriodicJob("sharing-mirror", "app.sharing.services.mirror:mirror_job", 600))
    return [
        PeriodicJob(job.name, job.path, int(every.get(job.name, job.seconds)), job.kwargs)
        for job in table
        if every.get(job.name, job.seconds)  # 0 disables a job
    ]


class LeaderLock:
    """Held by at most one scheduler at a time; renewed on every heartbeat."""

    def __init__(self, app: Flask, ttl: int = 30):
        self.ttl = ttl
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._redis = None
        self._file = None
        url = app.config.get("REDIS_URL")
        if url:
            from redis import Redis

            self._redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            self._redis.ping()  # configured but unreachable: fail now, loudly
        else:
            self._path = Path(app.config["INSTANCE_PATH"]) / "scheduler.lock"

    KEY = "shuyuan:scheduler:leader"

    def acquire_or_renew(self) -> bool:
        if self._redis is not None:
            if self._redis.set(self.KEY, self.identity, nx=True, ex=self.ttl):
                return True
            # Renew only our own lock (compare-and-set in one round trip).
            renewed = self._redis.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then "
                "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end",
                1,
                self.KEY,
                self.identity,
                self.ttl,
            )
            return bool(renewed)
        if self._file is None:
            handle = open(self._path, "a+")  # noqa: SIM115 (held for the process lifetime)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            self._file = handle
        return True

    def release(self) -> None:
        if self._redis is not None:
            self._redis.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then "
                "return redis.call('del', KEYS[1]) else return 0 end",
                1,
                self.KEY,
                self.identity,
            )
        elif self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def build_scheduler(app: Flask, lock: LeaderLock, blocking: bool = True):
    """An APScheduler scheduler whose jobs enqueue only while ``lock`` is held."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    from app.jobs import enqueue

    state = {"leader": False}

    def heartbeat():
        was = state["leader"]
        state["leader"] = lock.acquire_or_renew()
        if state["leader"] != was:
            log.info("scheduler %s is %s", lock.identity, "leader" if state["leader"] else "idle")

    def tick(job: PeriodicJob):
        if not state["leader"]:
            return
        with app.app_context():
            enqueue(job.path, **job.kwargs)
        log.info("enqueued %s", job.name)

    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone="UTC")
    heartbeat()
    scheduler.add_job(heartbeat, "interval", seconds=max(1, lock.ttl // 3), id="heartbeat")
    for job in periodic_jobs(app.config):
        scheduler.add_job(
            tick,
            "interval",
            seconds=job.seconds,
            args=[job],
            id=job.name,
            coalesce=True,  # after a pause, one run, not a burst of missed ones
            max_instances=1,
        )
    scheduler.state_flags = state
    return scheduler
