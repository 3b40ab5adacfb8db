"""Shuyuan as a cluster, on this machine: nginx (from deploy/nginx/shuyuan.conf) in front of
two gunicorn instances (deploy/gunicorn.conf.py, each its own "host": own instance folder),
one RQ worker, one scheduler, PostgreSQL, Redis and an S3 server (moto).

Each test is one promise an operator relies on: what one instance writes, the other serves;
an LTI launch may land anywhere; an xAPI burst split across hosts loses and duplicates
nothing; a dead web process costs only its in-flight requests; a worker killed mid-job has
its job run again to completion after restart.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import create_postgres_database, make_app
from tests.lti.platform import Platform

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(
    not os.path.exists(NGINX), reason="nginx is not installed (make test installs it)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen | None = None, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds} s")


def _children(pid: int) -> list[int]:
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


def _wait_for(condition, seconds: float = 30, step: float = 0.1):
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
        port = port or _free_port()
        folder = self.root / f"host-{name}"
        folder.mkdir(exist_ok=True)
        (folder / "metrics").mkdir(exist_ok=True)
        proc = self.spawn(
            f"web-{name}",
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
            SHUYUAN_BIND=f"127.0.0.1:{port}",
            SHUYUAN_WEB_WORKERS="1",
            SHUYUAN_WEB_THREADS="4",
            SHUYUAN_INSTANCE_PATH=str(folder),
            PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"),
        )
        self.web[name] = (port, proc)
        _wait_http(f"http://127.0.0.1:{port}/healthz", proc)

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


def _render_nginx(cluster: Cluster, lb_port: int) -> Path:
    """deploy/nginx/shuyuan.conf with this test's ports, inside a minimal nginx.conf."""
    site = (ROOT / "deploy/nginx/shuyuan.conf").read_text()
    servers = "\n".join(
        f"    server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;"
        for port, _ in cluster.web.values()
    )
    site = re.sub(r"^\s*server 127\.0\.0\.1:\d+ .*# @WEB_SERVERS@$", servers, site, flags=re.M)
    site = re.sub(r"listen 80;\s*# @LISTEN@", f"listen 127.0.0.1:{lb_port};", site)
    assert servers in site and f"127.0.0.1:{lb_port}" in site, "placeholders moved in the site file"
    prefix = cluster.root / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/logs/access.log;
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


def _seed(cluster: Cluster) -> None:
    """Users, tokens, an LRS client and the simulated LMS's registration, written directly."""
    from app.accounts import services as accounts
    from app.accounts.models import Role
    from app.common.events import commit
    from app.lti import services as lti
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
        lti.add_platform(None, cluster.platform.registration(school.code), system=True)
        commit()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from moto.server import ThreadedMotoServer
    from redis import Redis

    root = tmp_path_factory.mktemp("cluster")
    database_url, drop_database = create_postgres_database()
    redis_db = 9
    redis = Redis.from_url(f"redis://127.0.0.1:6379/{redis_db}", socket_connect_timeout=1)
    try:
        redis.ping()
    except Exception as exc:
        drop_database()
        pytest.skip(f"Redis not reachable: {exc}")
    moto_port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    lb_port = _free_port()
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
    cluster = Cluster(root=root, env=env, redis_db=redis_db)
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
        seed_env = {k: env[k] for k in ("STORAGE_URL",)}
        os.environ.update({})  # the seeding app gets its settings explicitly below
        cluster.platform = Platform().start()
        cluster.env.update(seed_env)
        _seed(cluster)
        cluster.platform.tool_jwks_url = f"http://127.0.0.1:{lb_port}/lti/jwks.json"
        app = make_app(database_url, str(root / "bucket"), STORAGE_URL=env["STORAGE_URL"])
        with app.app_context():
            from app.media.storage import get_storage

            get_storage().ensure_bucket()
        cluster.start_web("a")
        cluster.start_web("b")
        cluster.start_worker()
        cluster.procs["scheduler"] = cluster.spawn(
            "scheduler", [sys.executable, "-m", "flask", "--app", "wsgi.py", "ops", "scheduler"]
        )
        conf = _render_nginx(cluster, lb_port)
        cluster.procs["nginx"] = cluster.spawn(
            "nginx", [NGINX, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"]
        )
        cluster.lb = f"http://127.0.0.1:{lb_port}"
        _wait_http(cluster.lb + "/healthz", cluster.procs["nginx"])
        yield cluster
    finally:
        cluster.stop()
        moto.stop()
        redis.flushdb()
        drop_database()


def _publish(base: str, headers: dict, title: str, kind: str = "link", **extra) -> str:
    data = {"title": title, "kind": kind, "visibility": "region", **extra}
    if kind == "link":
        data.setdefault("url", "https://example.org/" + uuid.uuid4().hex)
    created = requests.post(f"{base}/api/v1/resources", json=data, headers=headers, timeout=30)
    assert created.status_code == 201, created.text[:500]
    content_id = created.json()["id"]
    return content_id


def _submit(base: str, headers: dict, content_id: str) -> None:
    submitted = requests.post(
        f"{base}/api/v1/resources/{content_id}/submit", headers=headers, timeout=30
    )
    assert submitted.status_code == 200, submitted.text[:500]
    assert submitted.json()["state"] == "published"


def test_readiness_of_both_hosts_through_the_balancer(cluster):
    for base in (cluster.url("a"), cluster.url("b"), cluster.lb):
        ready = requests.get(base + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert {name for name, c in ready.json()["checks"].items() if c["status"] == "ok"} == {
            "database",
            "redis",
            "storage",
        }


def _search(base: str, headers: dict, word: str) -> str:
    hits = requests.get(f"{base}/api/v1/search", params={"q": word}, headers=headers, timeout=60)
    assert hits.status_code == 200, hits.text[:300]
    return hits.text


def test_published_on_a_is_found_on_b_within_a_second(cluster):
    word = "天文观测" + uuid.uuid4().hex[:6]
    # Each worker loads its Chinese dictionary once; that start-up cost is not what the
    # promise is about, so both hosts answer one search first.
    for host in ("a", "b"):
        _search(cluster.url(host), cluster.tokens["student"], "预热")
    content_id = _publish(cluster.url("a"), cluster.tokens["teacher"], f"{word} 入门")
    _submit(cluster.url("a"), cluster.tokens["teacher"], content_id)
    published_at = time.monotonic()

    def found():
        return content_id in _search(cluster.url("b"), cluster.tokens["student"], word)

    _wait_for(found, seconds=5, step=0.05)
    assert time.monotonic() - published_at < 1.0


def test_upload_through_a_download_through_b(cluster):
    teacher = cluster.tokens["teacher"]
    content_id = _publish(cluster.url("a"), teacher, "观星视频", kind="video")
    head = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
    data = head + b"\x42\x82\x84webm" + os.urandom(200_000)
    started = requests.post(
        f"{cluster.url('a')}/api/v1/media/uploads",
        headers=teacher,
        json={
            "resource_id": content_id,
            "filename": "观星.webm",
            "size": len(data),
            "checksum": hashlib.sha256(data).hexdigest(),
        },
        timeout=30,
    )
    assert started.status_code == 201, started.text[:500]
    upload = started.json()
    assert upload["mode"] == "single"
    assert requests.put(upload["url"], data=data, timeout=60).status_code == 200
    done = requests.post(
        f"{cluster.url('a')}/api/v1/media/uploads/{upload['id']}/complete",
        headers=teacher,
        json={"parts": [{"part_number": 1}]},
        timeout=60,
    )
    assert done.status_code in (200, 201, 202), done.text[:500]
    if done.json()["state"] == "verifying":
        # Verification (size, sniffed type, checksum) runs on the worker process.
        def verified():
            state = requests.get(
                f"{cluster.url('b')}/api/v1/media/uploads/{upload['id']}",
                headers=teacher,
                timeout=30,
            ).json()["state"]
            assert state != "failed"
            return state == "complete"

        _wait_for(verified, seconds=60, step=0.2)
    _submit(cluster.url("a"), teacher, content_id)
    listed = requests.get(
        f"{cluster.url('b')}/api/v1/resources/{content_id}/media", headers=teacher, timeout=30
    )
    assert listed.status_code == 200, listed.text[:500]
    attachments = listed.json()
    items = attachments["items"] if isinstance(attachments, dict) else attachments
    attachment_id = items[0]["id"]
    link = requests.get(
        f"{cluster.url('b')}/api/v1/media/{attachment_id}/url", headers=teacher, timeout=30
    )
    assert link.status_code == 200, link.text[:500]
    body = requests.get(link.json()["url"], timeout=60)
    assert body.status_code == 200 and body.content == data


def test_lti_login_on_a_launch_on_b(cluster):
    platform = cluster.platform
    content_id = _publish(cluster.url("a"), cluster.tokens["teacher"], "分数练习")
    _submit(cluster.url("a"), cluster.tokens["teacher"], content_id)
    hint = platform.prepare(sub="stu-cluster", name="韩梅梅", custom={"resource": content_id})
    with requests.Session() as browser:
        login = browser.get(
            cluster.url("a") + "/lti/login",
            params=platform.login_params(hint),
            allow_redirects=False,
            timeout=30,
        )
        assert login.status_code == 302, login.text[:500]
        action, fields = platform.authorize(browser, login.headers["Location"])
        # The LMS posts to the public address; here we aim it at host B on purpose.
        action_on_b = re.sub(r"^https?://[^/]+", cluster.url("b"), action)
        launched = browser.post(action_on_b, data=fields, allow_redirects=False, timeout=30)
        assert launched.status_code == 302, launched.text[:800]
        assert launched.headers["Location"].endswith(f"/resources/{content_id}")
        page = browser.get(cluster.url("a") + f"/resources/{content_id}", timeout=30)
        assert page.status_code == 200 and "韩梅梅" in page.text


def _statement(statement_id: str, n: int) -> dict:
    return {
        "id": statement_id,
        "actor": {"mbox": f"mailto:learner{n % 7}@example.test", "objectType": "Agent"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"id": f"https://example.test/activity/{n % 11}", "objectType": "Activity"},
    }


def test_xapi_burst_across_both_hosts_loses_and_duplicates_nothing(cluster):
    marker = uuid.uuid4().hex[:8]
    ids = [str(uuid.uuid4()) for _ in range(120)]
    headers = {"X-Experience-API-Version": "1.0.3"}

    def send(index: int) -> int:
        base = cluster.url("a") if index % 2 else cluster.url("b")
        statement = _statement(ids[index], index)
        statement["context"] = {"registration": str(uuid.UUID(int=int(marker, 16)))}
        answer = requests.post(
            f"{base}/xapi/statements",
            json=statement,
            auth=cluster.xapi_auth,
            headers=headers,
            timeout=60,
        )
        return answer.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, range(len(ids))))
    assert statuses == [200] * len(ids)
    # Re-sending the same statements (a client retry) must not store them twice.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        again = list(pool.map(send, range(0, len(ids), 10)))
    assert set(again) <= {200, 204, 409}, again
    stored: list[str] = []
    url = f"{cluster.lb}/xapi/statements?registration={uuid.UUID(int=int(marker, 16))}&limit=50"
    while url:
        page = requests.get(url, auth=cluster.xapi_auth, headers=headers, timeout=60)
        assert page.status_code == 200, page.text[:300]
        body = page.json()
        stored += [s["id"] for s in body["statements"]]
        url = cluster.lb + body["more"] if body.get("more") else None
    assert sorted(stored) == sorted(ids)


def test_killing_one_web_host_costs_only_in_flight_requests(cluster):
    results: list[tuple[float, int]] = []
    killed_at: list[float] = []
    stop_at = time.monotonic() + 6

    def client():
        while time.monotonic() < stop_at:
            try:
                status = requests.get(
                    cluster.lb + "/api/v1/resources", headers=cluster.tokens["student"], timeout=10
                ).status_code
            except requests.RequestException:
                status = 0
            results.append((time.monotonic(), status))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(client) for _ in range(4)]
        time.sleep(2)
        killed_at.append(time.monotonic())
        cluster.kill(cluster.web["a"][1])
        for future in futures:
            future.result()
    failures = [t for t, status in results if status != 200]
    assert len(results) > 20
    # At most the requests in flight at the kill (one per client) may fail...
    assert len(failures) <= 4, failures
    # ...and everything after the first second past the kill succeeds on host B.
    assert all(t < killed_at[0] + 1 for t in failures)
    assert any(t > killed_at[0] + 1 for t, status in results if status == 200)
    cluster.start_web("a", port=cluster.web["a"][0])  # back for the next tests


def test_worker_killed_mid_job_finishes_it_after_restart_exactly_once(cluster):
    from redis import Redis
    from rq import Queue, Retry

    redis = Redis.from_url(cluster.env["REDIS_URL"])
    key = "cluster-job-" + uuid.uuid4().hex[:8]
    queue = Queue(cluster.env["SHUYUAN_JOBS_QUEUE"], connection=redis)
    from app.jobs import run_job

    queue.enqueue(
        run_job,
        "tests.cluster.jobs:slow_marker",
        key,
        4.0,
        retry=Retry(max=2),  # what app.jobs.enqueue gives every job
        job_timeout=30,
    )
    _wait_for(lambda: redis.get(f"{key}:started"), seconds=60)
    # Mid-job, as a lost host or the OOM killer would: the worker AND its work horse (RQ
    # forks one per job, in a session of its own, so killing the group would spare it).
    worker = cluster.procs["worker"]
    horses = _children(worker.pid)
    assert horses, "the job should be running in a work horse"
    for pid in horses:
        os.kill(pid, signal.SIGKILL)
    cluster.kill(worker)
    assert redis.get(f"{key}:finished") is None
    cluster.start_worker()
    # RQ finds the abandoned job once its heartbeat lease (job monitoring interval + 60 s)
    # runs out, then re-queues it (retry); the restarted worker runs it to the end.
    _wait_for(lambda: redis.get(f"{key}:finished"), seconds=180, step=0.5)
    assert int(redis.get(f"{key}:finished")) == 1
    assert int(redis.get(f"{key}:started")) == 2
