"""A job for the cluster test: slow enough to be killed mid-way, and it records in Redis
when it starts and when it finishes, so the test can count runs across processes."""

from __future__ import annotations

import time

from flask import current_app
from redis import Redis


def slow_marker(key: str, seconds: float) -> None:
    redis = Redis.from_url(current_app.config["REDIS_URL"])
    redis.incr(f"{key}:started")
    time.sleep(seconds)
    # SETNX + INCR: "finished" counts real completions; "done" is what a user would see.
    redis.incr(f"{key}:finished")
