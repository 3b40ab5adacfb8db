"""Readiness, request ids, metrics and the scheduler's leader election."""

from __future__ import annotations

import importlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from app.ops import scheduler as periodic
from tests.conftest import make_app

ROOT = Path(__file__).resolve().parents[2]


def test_readyz_reports_each_backing_service(app, client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "storage"}
    assert all(check["status"] == "ok" for check in body["checks"].values())


def test_readyz_names_an_unreachable_redis_without_leaking_its_address(database_url, tmp_path):
    broken = make_app(database_url, str(tmp_path), REDIS_URL="redis://:s3cret@127.0.0.1:1/0")
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["redis"]["status"] == "unavailable"
    assert body["checks"]["database"]["status"] == "ok"
    assert "s3cret" not in response.get_data(as_text=True)
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_request_id_is_echoed_or_made(client):
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id " + "x" * 100})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])


def test_metrics_count_requests_by_endpoint(client):
    for _ in range(3):
        client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    counts = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("flask_http_request_duration_seconds_count")
        and 'endpoint="core.healthz"' in line
        and 'status="200"' in line
    ]
    assert counts and counts[0] >= 3


def test_every_periodic_job_names_a_real_function(app):
    for job in periodic.periodic_jobs(app.config):
        module, _, name = job.path.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), job.path


def test_schedule_can_be_tuned_and_disabled(app):
    config = dict(app.config, SCHEDULE_SECONDS={"xapi-forward": 5, "media-gc": 0})
    jobs = {job.name: job for job in periodic.periodic_jobs(config)}
    assert jobs["xapi-forward"].seconds == 5
    assert "media-gc" not in jobs


def _redis_or_skip():
    from redis import Redis

    client = Redis.from_url("redis://127.0.0.1:6379/15", socket_connect_timeout=1)
    try:
        client.ping()
    except Exception as exc:
        pytest.skip(f"Redis not reachable: {exc}")
    return client


def test_only_one_scheduler_leads_through_redis(database_url, tmp_path):
    redis = _redis_or_skip()
    redis.delete(periodic.LeaderLock.KEY)
    app = make_app(database_url, str(tmp_path), REDIS_URL="redis://127.0.0.1:6379/15")
    first, second = periodic.LeaderLock(app, ttl=5), periodic.LeaderLock(app, ttl=5)
    try:
        assert first.acquire_or_renew() is True
        assert second.acquire_or_renew() is False
        assert first.acquire_or_renew() is True  # renewal of its own lock
        first.release()
        assert second.acquire_or_renew() is True
        assert first.acquire_or_renew() is False
    finally:
        second.release()
        redis.delete(periodic.LeaderLock.KEY)


def test_only_one_scheduler_leads_on_one_host_without_redis(app):
    first, second = periodic.LeaderLock(app), periodic.LeaderLock(app)
    try:
        assert first.acquire_or_renew() is True
        assert second.acquire_or_renew() is False
        first.release()
        assert second.acquire_or_renew() is True
    finally:
        first.release()
        second.release()


def test_idle_scheduler_enqueues_nothing(app, monkeypatch):
    holder, idle = periodic.LeaderLock(app), periodic.LeaderLock(app)
    assert holder.acquire_or_renew()
    enqueued = []
    monkeypatch.setattr("app.jobs.enqueue", lambda path, **kw: enqueued.append(path))
    try:
        scheduler = periodic.build_scheduler(app, idle, blocking=False)
        assert scheduler.state_flags["leader"] is False
        names = {job.id for job in scheduler.get_jobs()}
        assert {"heartbeat", "xapi-forward", "lti-grades"} <= names
        for job in scheduler.get_jobs():
            if job.id != "heartbeat":
                job.func(*job.args)
        assert enqueued == []
        holder.release()
        scheduler.get_job("heartbeat").func()
        scheduler.get_job("xapi-forward").func(*scheduler.get_job("xapi-forward").args)
        assert enqueued == ["app.xapi.services:forward_due"]
    finally:
        holder.release()
        idle.release()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(sys.platform != "linux", reason="gunicorn runs on Linux here")
def test_metrics_aggregate_across_gunicorn_workers(database_url, tmp_path, backend):
    if backend != "sqlite":
        pytest.skip("the process model is the same on both databases; run once")
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        SHUYUAN_INSTANCE_PATH=str(tmp_path / "instance"),
        SECRET_KEY="test-" + uuid.uuid4().hex,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        SHUYUAN_BIND=f"127.0.0.1:{port}",
        SHUYUAN_WEB_WORKERS="2",
        SHUYUAN_PLUGINS="",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=10)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError(server.stderr.read().decode()[-2000:]) from None
                time.sleep(0.2)
        for _ in range(40):
            # A fresh connection each time, so the requests spread over both workers.
            with requests.Session() as session:
                assert session.get(f"{base}/readyz", timeout=30).status_code == 200
        totals = set()
        for _ in range(4):
            text = requests.get(f"{base}/metrics", timeout=5).text
            total = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("flask_http_request_duration_seconds_count")
                and 'endpoint="ops.readyz"' in line
            )
            totals.add(total)
        # 40 readiness checks were answered, by whichever worker; every scrape sees them all.
        assert totals == {40.0}
        assert len(list(metrics_dir.iterdir())) >= 2  # both workers wrote their values
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
