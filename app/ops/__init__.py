"""Operations: what a cluster of stateless web processes needs around the features.

- :mod:`app.ops.health` — ``/readyz`` (database, Redis, storage) beside the cheap ``/healthz``;
- :mod:`app.ops.metrics` — Prometheus metrics at ``/metrics``, aggregated across gunicorn
  workers when ``PROMETHEUS_MULTIPROC_DIR`` is set (see ``deploy/gunicorn.conf.py``);
- :mod:`app.ops.logs` — one log line per event, JSON when ``SHUYUAN_LOG_FORMAT=json``, each
  carrying the request id (``X-Request-ID``) of the request that caused it;
- :mod:`app.ops.scheduler` — ``flask ops scheduler``: the one process that enqueues the
  periodic jobs, elected through a Redis lock so a second scheduler stays idle.

No feature imports this package; it only reads their public job functions by dotted path.
"""

from flask import Flask


def init_app(app: Flask) -> None:
    from app.ops import cli, health, logs, metrics

    logs.init_app(app)
    metrics.init_app(app)
    app.register_blueprint(health.bp)
    app.cli.add_command(cli.ops_cli)
