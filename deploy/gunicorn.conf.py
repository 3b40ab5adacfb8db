"""gunicorn settings for Shuyuan web processes (``gunicorn -c deploy/gunicorn.conf.py wsgi:app``).

Every value can be overridden by the environment file (deploy/shuyuan.env.example), since
gunicorn reads ``GUNICORN_CMD_ARGS`` too.  The cluster test in tests/cluster starts its web
instances with this very file.
"""

import multiprocessing
import os

bind = os.environ.get("SHUYUAN_BIND", "127.0.0.1:8000")
# Two per core is gunicorn's rule of thumb for I/O-bound sync workers (PostgreSQL, S3).
workers = int(os.environ.get("SHUYUAN_WEB_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "gthread"
threads = int(os.environ.get("SHUYUAN_WEB_THREADS", 4))
timeout = int(os.environ.get("SHUYUAN_WEB_TIMEOUT", 60))
graceful_timeout = 30  # in-flight requests get this long on `systemctl reload` (SIGHUP)
keepalive = 5  # nginx keeps upstream connections open (see deploy/nginx/shuyuan.conf)
# Recycle workers now and then so a slow leak never takes a host down; jitter keeps all
# workers from restarting at the same moment.  Not too often: a worker builds the whole
# app when it starts (about 3 s of CPU, measured 2026-11-30), so at 5,000 requests a
# busy worker spent ~0.6 ms a request on restarts alone, more than a whole presigned-URL
# request of the bare Flask baseline (docs/media.md).  50,000 is still every few
# minutes under load.
max_requests = int(os.environ.get("SHUYUAN_WEB_MAX_REQUESTS", 50000))
max_requests_jitter = max_requests // 10
# Not preloaded: the app starts background threads (jieba warm-up, the in-process job pool),
# and a fork while such a thread holds a lock leaves the worker's copy of the lock held
# forever (seen here: the first search indexing in every worker hung).  Each worker builds
# its own app; a broken configuration still stops the worker at boot with one clear line.
preload_app = False
# gunicorn's control socket lives at one path per user; two instances on one host (the
# cluster test, or blue/green on one machine) would fight over it.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("SHUYUAN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss rid=%({x-request-id}o)s'


def child_exit(server, worker):
    # Metrics of a dead worker stop counting as live (multiprocess mode only).
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

        GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
