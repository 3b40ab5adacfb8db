"""A Shuyuan cluster on this machine, for tests/cluster and bench/cluster.py.

nginx (rendered from deploy/nginx/shuyuan.conf) in front of N gunicorn "hosts" (each
started from deploy/gunicorn.conf.py with an instance folder of its own), one RQ worker,
the scheduler, PostgreSQL, Redis and an S3 server (moto).  Everything binds free ports
on 127.0.0.1; :func:`running_cluster` tears it all down again.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.conftest import make_app
from tests.lti.platform import Platform

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen | None = None, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited with {proc.returncode}")
        with contextlib.suppress(requests.RequestException):  # not listening yet
            if requests.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds} s")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def wait_for(condition, seconds: float = 30, step: float = 0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met in {seconds} s: {condition}")


@dataclass
class Cluster:
    root: Path
    env: dict
    web: dict = field(default_factory=dict)  # name -> (port, Popen)
    procs: dict = field(default_factory=dict)  # worker, scheduler, nginx
    lb: str = ""
    redis_db: int = 0
    tokens: dict = field(default_factory=dict)
    platform: Platform | None = None
    xapi_auth: tuple[str, str] | None = None
    web_workers: int = 1

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.web[name][0]}"

    def spawn(self, name: str, args: list[str], **env) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=dict(self.env, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc._log = log
        return proc

    def start_web(self, name: str, port: int | None = None) -> None:
        port = port or free_port()
        folder = self.root / f"host-{name}"
        folder.mkdir(exist_ok=True)
        (folder / "metrics").mkdir(exist_ok=True)
        proc = self.spawn(
            f"web-{name}",
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
            SHUYUAN_BIND=f"127.0.0.1:{port}",
            SHUYUAN_WEB_WORKERS=str(self.web_workers),
            SHUYUAN_WEB_THREADS="4",
            SHUYUAN_INSTANCE_PATH=str(folder),
            PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"),
        )
        self.web[name] = (port, proc)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)

    def start_worker(self) -> None:
        self.procs["worker"] = self.spawn(
            "worker", [sys.executable, "-m", "flask", "--app", "wsgi.py", "jobs", "worker"]
        )

    def kill(self, proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        proc.wait(timeout=30)

    def stop(self) -> None:
        for _, proc in self.web.values():
            self.kill(proc, signal.SIGTERM)
        for proc in self.procs.values():
            self.kill(proc, signal.SIGTERM)
        if self.platform:
            self.platform.stop()


def render_nginx(cluster: Cluster, lb_port: int) -> Path:
    """deploy/nginx/shuyuan.conf with this test's ports, inside a minimal nginx.conf."""
    site = (ROOT / "deploy/nginx/shuyuan.conf").read_text()
    servers = "\n".join(
        f"    server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;"
        for port, _ in cluster.web.values()
    )
    site = re.sub(r"^\s*server 127\.0\.0\.1:\d+ .*# @WEB_SERVERS@$", servers, site, flags=re.M)
    site = re.sub(r"listen 80;\s*# @LISTEN@", f"listen 127.0.0.1:{lb_port};", site)
    prefix = cluster.root / "nginx"
    # The site's own access log (buffered) is kept, only moved under this test's folder.
    site, logs = re.subn(
        r"access_log \S+ (.*);\s*# @ACCESS_LOG@$",
        lambda found: f"access_log {prefix}/logs/access.log {found.group(1)};",
        site,
        flags=re.M,
    )
    assert servers in site and f"127.0.0.1:{lb_port}" in site and logs == 1, (
        "placeholders moved in the site file"
    )
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{site}
}}
"""
    )
    return conf


def seed(cluster: Cluster) -> None:
    """Users, tokens, an LRS client and the simulated LMS's registration, written directly."""
    from app.accounts import services as accounts
    from app.accounts.models import Role
    from app.common.events import commit
    from app.lti.services.registrations import add_platform
    from app.xapi import services as xapi

    app = make_app(cluster.env["DATABASE_URL"], str(cluster.root / "seed"))
    with app.app_context():
        region = accounts.ensure_region("r", "测试市", "Test City")
        district = accounts.ensure_district(region, "d1", "西湖区", "Xihu")
        school = accounts.ensure_school(district, "s1", "求是中学", "Qiushi")
        users = {}
        for role in ("teacher", "student"):
            user = accounts.create_user(f"{role}@example.test", role, "password123", school=school)
            accounts.assign_role(user, Role(role), school=school)
            users[role] = user
        commit()
        for role, user in users.items():
            _, raw = accounts.issue_token(user, "cluster")
            cluster.tokens[role] = {"Authorization": f"Bearer {raw}"}
        client, secret = xapi.create_client(
            "cluster", district, ["statements/write", "statements/read"]
        )
        cluster.xapi_auth = (client.key, secret)
        add_platform(None, cluster.platform.registration(school.code), system=True)
        commit()


@contextlib.contextmanager
def running_cluster(
    root: Path, database_url: str, redis_db: int = 9, web_hosts: int = 2, web_workers: int = 1
) -> Iterator[Cluster]:
    """Start everything; yields the running :class:`Cluster`."""
    from moto.server import ThreadedMotoServer
    from redis import Redis

    redis = Redis.from_url(f"redis://127.0.0.1:6379/{redis_db}", socket_connect_timeout=1)
    redis.ping()
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    lb_port = free_port()
    queue = "cluster-" + uuid.uuid4().hex[:8]
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}",
        SHUYUAN_JOBS_QUEUE=queue,
        SHUYUAN_JOBS_MAINTENANCE_SECONDS="5",
        STORAGE_URL=f"s3://testing:testing@127.0.0.1:{moto_port}/cluster-{uuid.uuid4().hex[:8]}"
        "?secure=false",
        SEARCH_INDEX_DIR=str(root / "search-index"),  # one disk: Whoosh needs it shared
        SECRET_KEY="cluster-" + uuid.uuid4().hex,  # the same on every host
        SHUYUAN_PUBLIC_URL=f"http://127.0.0.1:{lb_port}",
        SHUYUAN_BEHIND_PROXY="1",
        SHUYUAN_PLUGINS="",
        SHUYUAN_LOG_FORMAT="json",
        SHUYUAN_LTI_REGISTRATION_ALLOW_PRIVATE="1",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cluster = Cluster(root=root, env=env, redis_db=redis_db, web_workers=web_workers)
    try:
        migrate = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi.py", "db", "upgrade"],
            cwd=ROOT,
            env=dict(env, SHUYUAN_INSTANCE_PATH=str(root / "migrate")),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        cluster.platform = Platform().start()
        seed(cluster)
        cluster.platform.tool_jwks_url = f"http://127.0.0.1:{lb_port}/lti/jwks.json"
        app = make_app(database_url, str(root / "bucket"), STORAGE_URL=env["STORAGE_URL"])
        with app.app_context():
            from app.media.storage import get_storage

            get_storage().ensure_bucket()
        for name in "abcdefgh"[:web_hosts]:
            cluster.start_web(name)
        cluster.start_worker()
        cluster.procs["scheduler"] = cluster.spawn(
            "scheduler", [sys.executable, "-m", "flask", "--app", "wsgi.py", "ops", "scheduler"]
        )
        conf = render_nginx(cluster, lb_port)
        cluster.procs["nginx"] = cluster.spawn(
            "nginx", [NGINX, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"]
        )
        cluster.lb = f"http://127.0.0.1:{lb_port}"
        wait_http(cluster.lb + "/healthz", cluster.procs["nginx"])
        yield cluster
    finally:
        cluster.stop()
        moto.stop()
        redis.flushdb()
