"""Helpers shared by the benchmarks in ``bench/``.

* :func:`free_port` – an unused TCP port on 127.0.0.1;
* :func:`throwaway_postgres` – create a uniquely named PostgreSQL database, drop it after;
  :func:`kept_postgres` – a named one, created if missing, kept;
* :class:`Gunicorn` – run ``wsgi:app`` under gunicorn with a given environment, wait until
  ``/healthz`` answers, stop it again;
* :func:`run_threads` – callables in threads of their own, waited for;
* :func:`run_load` – N concurrent clients (threads, one ``requests.Session`` each) working
  through a list of requests, with a request budget and a time limit;
* :func:`percentiles` / :func:`format_result` – latency figures;
* :func:`bare_statement_times` – a service call's statements replayed on a raw cursor;
* :func:`load_average` – the machine's load, printed beside the figures it weighs on;
* :func:`seed_school_people`, :func:`seed_aligned_resources`, :func:`seed_term_calendar` –
  curriculum data to query.

Benchmarks print figures; they never assert on them.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}){memory}, {system}, Python {platform.python_version()}"


@contextlib.contextmanager
def throwaway_postgres(admin_url: str | None = None) -> Iterator[str]:
    """Yield the URL of a new, empty PostgreSQL database; drop it afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = admin_url or os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{os.environ.get('BENCH_PG_PREFIX', 'shuyuan_bench_')}{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def kept_postgres(name: str, admin_url: str | None = None) -> Iterator[str]:
    """Yield the URL of database ``name`` of the local server, created if missing and
    kept afterwards (a benchmark can reuse what it built there)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = admin_url or os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def gunicorn_command(app_module: str, port: int, workers: int, threads: int | None = None) -> list:
    """The gunicorn command line of a benchmark's server.  With ``threads``, the way
    production runs it: ``-c deploy/gunicorn.conf.py`` (gthread workers with keep-alive,
    one access-log line per request) with ``workers`` x ``threads``; without, ``workers``
    sync workers (gunicorn's defaults: every connection closed after one request)."""
    gunicorn = PROJECT_ROOT / ".venv" / "bin" / "gunicorn"
    if not gunicorn.exists():
        gunicorn = Path(sys.executable).parent / "gunicorn"
    config = []
    if threads:
        config = [
            "-c",
            str(PROJECT_ROOT / "deploy" / "gunicorn.conf.py"),
            "--threads",
            str(threads),
        ]
    return [
        str(gunicorn),
        *config,
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        app_module,
    ]


class Gunicorn:
    """``gunicorn -w N -b 127.0.0.1:PORT wsgi:app`` with its own instance folder (with
    ``threads``: production's ``deploy/gunicorn.conf.py``, see :func:`gunicorn_command`)."""

    def __init__(
        self,
        database_url: str,
        workers: int = 2,
        extra_env: dict | None = None,
        instance_path: str | None = None,
        app_module: str = "wsgi:app",
        threads: int | None = None,
    ):
        self.app_module = app_module
        self.threads = threads
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self._tmp = None
        if instance_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="shuyuan-bench-instance-")
            instance_path = self._tmp.name
        self.instance_path = instance_path
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SHUYUAN_INSTANCE_PATH": instance_path,
            "SECRET_KEY": "bench-only-" + uuid.uuid4().hex,
            "SHUYUAN_PLUGINS": "",
            **(extra_env or {}),
        }
        self.env.pop("REDIS_URL", None)
        self.process: subprocess.Popen | None = None
        self.log_path = Path(instance_path) / "gunicorn.log"

    def start(self, timeout: float = 60.0) -> Gunicorn:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            gunicorn_command(self.app_module, self.port, self.workers, self.threads),
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not answer /healthz in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    bytes_received: int = 0
    by_label: dict[str, list[float]] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def bare_statement_times(
    engine, call, repeat: int, commit: bool = False, warmup: int = 0
) -> tuple[int, list[float]]:
    """The bare baseline of a service call: the statements ``call()`` sends once (captured
    on ``engine``), replayed ``repeat`` times on a raw DBAPI cursor with no ORM and no
    service code.  Returns how many statements, and the sorted milliseconds per replay.
    ``commit``: end each replay with COMMIT, not ROLLBACK (psycopg forgets its prepared
    statements at a rollback).  ``warmup``: replays run first and not timed (with
    ``commit``, past psycopg's prepare threshold and PostgreSQL's five custom plans)."""
    from sqlalchemy import event

    sent: list[tuple] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        replays = []
        for round_number in range(warmup + repeat):
            began = time.perf_counter()
            for statement, parameters in sent:
                cursor.execute(statement, parameters)
                cursor.fetchall()
            if round_number >= warmup:
                replays.append((time.perf_counter() - began) * 1000)
            raw.commit() if commit else raw.rollback()
    finally:
        raw.close()
    return len(sent), sorted(replays)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, "unknown" where the system has none."""
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def percentiles(latencies_ms: list[float]) -> dict[str, float]:
    values = sorted(latencies_ms)
    return {
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": values[-1] if values else float("nan"),
    }


def run_load(
    base_url: str,
    requests_list: list[tuple[str, dict, str]],
    concurrency: int = 16,
    time_limit_s: float = 120.0,
    warmup: int = 0,
) -> LoadResult:
    """Send ``requests_list`` (path, headers, label) with ``concurrency`` threads.

    Each thread takes the next request from the shared list until the list is used up or
    the time limit passes.  Only 2xx answers count as successes; ``warmup`` requests are
    sent first (sequentially) and not measured.
    """
    with requests.Session() as session:
        for path, headers, _label in requests_list[:warmup]:
            session.get(base_url + path, headers=headers, timeout=30)
    result = LoadResult()
    lock = threading.Lock()
    cursor = iter(requests_list)
    start = time.perf_counter()
    deadline = start + time_limit_s

    def worker():
        with requests.Session() as session:
            while time.perf_counter() < deadline:
                with lock:
                    item = next(cursor, None)
                if item is None:
                    return
                path, headers, label = item
                began = time.perf_counter()
                try:
                    response = session.get(base_url + path, headers=headers, timeout=30)
                    body = response.content
                    ok = 200 <= response.status_code < 300
                except requests.RequestException as exc:
                    ok, body, response = False, b"", exc
                took = (time.perf_counter() - began) * 1000
                with lock:
                    if ok:
                        result.latencies_ms.append(took)
                        result.by_label.setdefault(label, []).append(took)
                        result.bytes_received += len(body)
                    else:
                        result.errors += 1
                        if len(result.error_samples) < 5:
                            status = getattr(response, "status_code", response)
                            result.error_samples.append(f"{path}: {status} {body[:200]!r}")

    run_threads([worker] * concurrency)
    result.elapsed_s = time.perf_counter() - start
    return result


def run_threads(workers: list) -> float:
    """Start one daemon thread per callable in ``workers``, wait for all of them; returns
    the seconds from the first start to the last end."""
    threads = [threading.Thread(target=work, daemon=True) for work in workers]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def format_result(label: str, result: LoadResult) -> str:
    p = percentiles(result.latencies_ms)
    return (
        f"{label}: {result.requests} ok, {result.errors} errors in {result.elapsed_s:.1f} s -> "
        f"{result.throughput:.0f} req/s; latency ms p50 {p['p50']:.1f} p95 {p['p95']:.1f} "
        f"p99 {p['p99']:.1f} max {p['max']:.1f}"
    )


def seed_school_people():
    """A region, district and school with a teacher and a student of the school and an
    administrator of the district (no passwords: benchmarks call services or use tokens);
    committed.  Returns (district, school, teacher, student, admin)."""
    from app.accounts import services as accounts
    from app.accounts.models import Role
    from app.extensions import db

    region = accounts.ensure_region("r", "市")
    district = accounts.ensure_district(region, "d", "区")
    school = accounts.ensure_school(district, "s", "校")
    people = []
    for email, role, scope in (
        ("t@bench.test", Role.TEACHER, {"school": school}),
        ("s@bench.test", Role.STUDENT, {"school": school}),
        ("a@bench.test", Role.DISTRICT_ADMIN, {"district": district}),
    ):
        user = accounts.create_user(email, email[0], None, **scope)
        accounts.assign_role(user, role, **scope)
        people.append(user)
    db.session.commit()
    return district, school, *people


def seed_term_calendar(school, student, admin, district, volume, holidays: list[dict]):
    """Grade 7 class 1 of ``school`` with ``student`` in it, on PEP maths, and the autumn
    term's teaching calendar of ``volume`` for ``district`` (made by ``admin``)."""
    from app.curriculum import services

    school_class = services.get_or_create_class(school, "七年级（1）班", grade="g7")
    services.add_class_member(school_class, student, "student")
    services.set_class_edition(admin, school_class.id, "math", "pep")
    services.create_calendar(
        admin,
        {
            "term": "t",
            "volume_id": volume.id,
            "term_start": "2026-09-01",
            "term_end": "2027-01-22",
            "district_id": district.id,
            "holidays": holidays,
        },
    )
    return school_class


def seed_aligned_resources(
    session, count: int, node_ids: list[int], author, school, district, kinds: list[str]
):
    """``count`` published maths resources by ``author``, each aligned (teaches or
    assesses) to one random node of ``node_ids``; multi-row inserts of 5,000, then a
    commit.  Visibility is spread over every level so visibility filters do real work."""
    import random

    from sqlalchemy import insert

    from app.catalog.models import Resource
    from app.curriculum.models import Alignment

    rng = random.Random(3)
    for start in range(0, count, 5000):
        rows, alignments = [], []
        for i in range(start, min(start + 5000, count)):
            content_id = str(uuid.uuid4())
            rows.append(
                {
                    "content_id": content_id,
                    "version": 1,
                    "state": "published",
                    "title": f"资源 {i}",
                    "summary": "",
                    "description_html": "",
                    "language": "zh",
                    "licence": "CC-BY-4.0",
                    "visibility": rng.choice(["district", "region", "school", "private"]),
                    "translations": {},
                    "kind": rng.choice(kinds),
                    "author_id": author.id,
                    "school_id": school.id,
                    "district_id": district.id,
                    "data": {},
                    "usage_count": 0,
                    "subject": "math",
                }
            )
            alignments.append(
                {
                    "node_id": rng.choice(node_ids),
                    "target_type": "resource",
                    "target_key": content_id,
                    "alignment_type": rng.choice(["teaches", "assesses"]),
                }
            )
        session.execute(insert(Resource), rows)
        session.execute(insert(Alignment), alignments)
    session.commit()


def _process_cpu_seconds(pid: int, reaped_children: bool = False) -> float:
    """User + system CPU seconds of one process (0 when it is gone); with
    ``reaped_children``, plus those of its children that ended and were waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class CpuMeter:
    """CPU seconds spent by a process tree (e.g. gunicorn's master and workers) and,
    optionally, by the PostgreSQL backends serving one database, between :meth:`start`
    and :meth:`stop`; so a benchmark reports CPU per request, not only a rate that other
    processes on a shared machine can depress."""

    def __init__(self, root_pid: int, database_url: str | None = None):
        self.root_pid = root_pid
        self.database_url = database_url
        self.seconds = 0.0

    def _pids(self) -> list[int]:
        pids, todo = [], [self.root_pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            todo.extend(_children(pid))
        self._last_tree = set(pids)
        if self.database_url and self.database_url.startswith("postgresql"):
            from sqlalchemy import create_engine, text
            from sqlalchemy.engine import make_url

            url = make_url(self.database_url)
            engine = create_engine(url)
            with engine.connect() as conn:
                pids += [
                    row[0]
                    for row in conn.execute(
                        text(
                            "SELECT pid FROM pg_stat_activity WHERE datname = :name "
                            "AND pid <> pg_backend_pid()"
                        ),
                        {"name": url.database},
                    )
                ]
            engine.dispose()
        return pids

    def _sample(self) -> dict[int, float]:
        # The root's reaped children count too: gunicorn recycles a worker every
        # ``max_requests`` (5,000) requests, i.e. every few seconds at 1,000 req/s, and the
        # CPU of a worker that ended during the measure would otherwise vanish with it
        # (the presign bench showed the bare route at 0.04 ms a request).
        return {
            pid: _process_cpu_seconds(pid, reaped_children=pid == self.root_pid)
            for pid in self._pids()
        }

    def start(self) -> CpuMeter:
        self._before = self._sample()
        self._start_tree = self._last_tree  # gunicorn's master and workers at the start
        return self

    def stop(self) -> float:
        after = self._sample()
        self.seconds = sum(cpu - self._before.get(pid, 0.0) for pid, cpu in after.items())
        # A worker gone since the start (recycled) has its whole life in the root's
        # reaped-children time by now: take off what it had used before the start.  (A
        # PostgreSQL backend that went is not ours to reap: its last seconds are lost.)
        self.seconds -= sum(
            cpu for pid, cpu in self._before.items() if pid not in after and pid in self._start_tree
        )
        return self.seconds
