"""Prometheus metrics at ``/metrics``.

prometheus-flask-exporter counts requests and latencies per endpoint.  Under gunicorn every
worker is its own process, so with ``PROMETHEUS_MULTIPROC_DIR`` set the values go to files
in that folder and any worker's ``/metrics`` answers for all of them (gunicorn's
``child_exit`` hook in ``deploy/gunicorn.conf.py`` removes a dead worker's live gauges).

Job queue depth and failures are read from Redis when the scrape happens, so they are
right whichever process answers.
"""

from __future__ import annotations

from flask import Flask, current_app
from prometheus_client import Gauge


def _queue_stats() -> dict[str, float]:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return {}
    from redis import Redis
    from rq import Queue
    from rq.registry import FailedJobRegistry

    connection = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        queue = Queue(current_app.config.get("JOBS_QUEUE", "shuyuan"), connection=connection)
        return {"depth": len(queue), "failed": len(FailedJobRegistry(queue=queue))}
    except Exception:  # a scrape must not fail because Redis is down; /readyz says so
        return {}
    finally:
        connection.close()


def init_app(app: Flask) -> None:
    if app.config.get("METRICS_MULTIPROC_DIR"):
        from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

        exporter = GunicornInternalPrometheusMetrics(app, path="/metrics", group_by="endpoint")
        # Values go to the per-process files whatever the registry; the collector that
        # answers /metrics reads those files, so these gauges must not be registered twice.
        gauge_registry = None
    else:
        from prometheus_client import CollectorRegistry
        from prometheus_flask_exporter import PrometheusMetrics

        # A registry per app: a process may build several apps (tests, the CLI), and
        # metrics bound to the first app's hooks would never count the others' requests.
        gauge_registry = CollectorRegistry(auto_describe=True)
        exporter = PrometheusMetrics(
            app, path="/metrics", group_by="endpoint", registry=gauge_registry
        )
    app.extensions["shuyuan_metrics"] = exporter
    # Gauges computed at scrape time (multiprocess: "max" over the live workers; they all
    # read the same Redis).
    gauges = {
        name: Gauge(
            f"shuyuan_jobs_{name}", help_text, multiprocess_mode="max", registry=gauge_registry
        )
        for name, help_text in (
            ("depth", "Jobs waiting in the background queue"),
            ("failed", "Jobs in the failed-job registry"),
        )
    }

    @app.before_request
    def _refresh_queue_gauges():
        from flask import request

        if request.path != "/metrics":
            return
        for name, value in _queue_stats().items():
            gauges[name].set(value)
