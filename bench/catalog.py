"""Benchmark of the course list API (issue 2).

Seeds 100,000 resources in 10,000 courses (bulk inserts with SQLAlchemy Core), starts
``gunicorn -w 2 wsgi:app`` on the seeded database and sends a mix of
``GET /api/v1/courses`` requests (no filter, kind, subject+grade, district, language,
licence, tag; pages 1..50; anonymous and with student/teacher bearer tokens) from 16
concurrent clients.  Runs on SQLite and on a throwaway PostgreSQL database.

    .venv/bin/python bench/catalog.py                       # both backends, full size
    .venv/bin/python bench/catalog.py --backends postgresql --requests 2000
    .venv/bin/python bench/catalog.py --courses 1000 --resources 10000   # quick

Prints requests/s and p50/p95/p99 per backend (and per request kind), plus sizes.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text  # noqa: E402

from bench.common import (  # noqa: E402
    Gunicorn,
    format_result,
    machine_description,
    percentiles,
    run_load,
    throwaway_postgres,
)

CHUNK = 5000
NOW = datetime(2026, 11, 23, 8, 0, 0)

TOPICS = [
    "一元一次方程",
    "光的折射",
    "古诗词鉴赏",
    "细胞结构",
    "丝绸之路",
    "等高线地形图",
    "电路连接",
    "酸碱中和",
    "英语阅读策略",
    "函数图像",
    "浮力",
    "议论文写作",
    "宋代文化",
    "生态系统",
    "编程入门",
    "透视画法",
    "合唱基础",
    "篮球运球",
    "统计与概率",
    "文言文断句",
    "京剧脸谱",
    "茶叶的种类",
    "星座与四季",
    "楷书笔画",
    "围棋定式",
    "窗花剪纸",
    "古筝指法",
    "水墨山水",
    "航模原理",
    "篆刻刀法",
    "越剧唱腔",
    "太极拳",
]
TAG_WORDS = [
    "微课",
    "实验",
    "探究",
    "复习",
    "预习",
    "拓展",
    "传统文化",
    "非遗",
    "项目式学习",
    "跨学科",
    "阅读",
    "写作",
    "口语",
    "计算",
    "几何",
    "思维导图",
    "科学探究",
    "劳动",
    "艺术",
    "体育",
    "stem",
    "pbl",
    "杭州",
    "西湖",
    "运河",
    "良渚",
    "宋韵",
    "茶文化",
    "天文观测",
    "编程",
    "人工智能",
    "环境保护",
    "心理健康",
    "安全教育",
    "中考",
    "高考",
    "单元测试",
    "作业设计",
    "分层练习",
    "双语",
]
KIND_WEIGHTS = {
    "video": 30,
    "document": 25,
    "exercise": 15,
    "image": 8,
    "link": 8,
    "interactive": 8,
    "audio": 6,
}
LANG_WEIGHTS = {"zh": 80, "en": 8, "zh-en": 12}
LICENCE_WEIGHTS = {
    "CC-BY-4.0": 30,
    "CC-BY-SA-4.0": 15,
    "CC-BY-NC-4.0": 20,
    "CC-BY-NC-SA-4.0": 15,
    "CC-BY-ND-4.0": 4,
    "CC-BY-NC-ND-4.0": 6,
    "CC0-1.0": 4,
    "ARR": 6,
}
VISIBILITY_WEIGHTS = {"region": 60, "district": 20, "school": 15, "private": 5}


def weighted(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def chunks(rows: list, size: int = CHUNK):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class Seeder:
    """Builds every row in memory (deterministic, seeded), then bulk-inserts."""

    def __init__(
        self,
        courses: int,
        resources: int,
        districts: int = 12,
        schools_per_district: int = 20,
        teachers_per_school: int = 5,
        seed: int = 2026,
    ):
        from app.catalog import vocab

        self.vocab = vocab
        self.rng = random.Random(seed)
        self.n_courses = courses
        self.n_resources = resources
        self.n_districts = districts
        self.schools_per_district = schools_per_district
        self.teachers_per_school = teachers_per_school
        self.tags = sorted(set(TAG_WORDS + [f"专题{i:03d}" for i in range(160)]))

    def tag_sample(self, low: int, high: int) -> list[int]:
        # Zipf-like: the first tags are used far more often than the long tail.
        count = self.rng.randint(low, high)
        picked = set()
        while len(picked) < count:
            picked.add(min(int(self.rng.paretovariate(1.2)) - 1, len(self.tags) - 1))
        return sorted(picked)

    def run(self, conn, tables) -> dict[str, int]:
        rng, vocab = self.rng, self.vocab
        sizes: dict[str, int] = {}

        def put(name: str, rows: list[dict]) -> None:
            # executemany in chunks: psycopg pipelines the statements, SQLite runs them
            # in one transaction.
            for chunk in chunks(rows):
                conn.execute(insert(tables[name]), chunk)
            sizes[name] = sizes.get(name, 0) + len(rows)

        put(
            "regions",
            [
                {
                    "id": 1,
                    "code": "bench",
                    "name": "基准市",
                    "name_en": "Bench City",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            ],
        )
        districts, schools, users, roles = [], [], [], []
        school_district = {}
        for d in range(1, self.n_districts + 1):
            districts.append(
                {
                    "id": d,
                    "region_id": 1,
                    "code": f"bd{d:02d}",
                    "name": f"第{d}区",
                    "name_en": f"District {d}",
                    "requires_review": d <= 2,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
            for s in range(self.schools_per_district):
                sid = len(schools) + 1
                school_district[sid] = d
                schools.append(
                    {
                        "id": sid,
                        "district_id": d,
                        "code": f"bs{sid:04d}",
                        "name": f"第{d}区第{s + 1}学校",
                        "name_en": f"School {d}-{s + 1}",
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                )

        def add_user(public_id: str, email: str, name: str, role: str, school_id: int) -> int:
            """A user of ``school_id`` with ``role`` there (rows of users, role_assignments)."""
            uid = len(users) + 1
            users.append(
                {
                    "id": uid,
                    "public_id": public_id,
                    "email": email,
                    "name": name,
                    "password_hash": None,
                    "school_id": school_id,
                    "district_id": None,
                    "is_active_account": True,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
            roles.append(
                {
                    "id": len(roles) + 1,
                    "user_id": uid,
                    "role": role,
                    "school_id": school_id,
                    "district_id": None,
                }
            )
            return uid

        teachers = []
        for school in schools:
            for _ in range(self.teachers_per_school):
                uid = len(users) + 1
                public_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                add_user(public_id, f"t{uid}@bench.test", f"教师{uid}", "teacher", school["id"])
                teachers.append((uid, school["id"]))
        # Two users whose tokens the load test uses: a student and a teacher of school 1.
        for role in ("student", "teacher"):
            add_user(str(uuid.uuid4()), f"bench-{role}@bench.test", f"bench {role}", role, 1)
        put("districts", districts)
        put("schools", schools)
        put("users", users)
        put("role_assignments", roles)
        put("tags", [{"id": i + 1, "name": name} for i, name in enumerate(self.tags)])

        subjects, grades = list(vocab.SUBJECTS), list(vocab.GRADES)
        categories = [c for c in vocab.CATEGORIES if c != "other"]
        editions = list(vocab.EDITIONS)

        def common(
            row_id: int,
            title: str,
            author: tuple[int, int],
            published: datetime,
            state: str,
            version: int,
            content_id: str,
        ) -> dict:
            uid, sid = author
            has_en = rng.random() < 0.3
            return {
                "id": row_id,
                "content_id": content_id,
                "version": version,
                "state": state,
                "title": title,
                "summary": f"{title}：面向课堂教学的示例内容。",
                "description_html": f"<p>{title}</p>",
                "language": weighted(rng, LANG_WEIGHTS),
                "licence": weighted(rng, LICENCE_WEIGHTS),
                "visibility": weighted(rng, VISIBILITY_WEIGHTS),
                "translations": {"en": {"title": f"Bench item {row_id}"}} if has_en else {},
                "review_note": None,
                "published_at": published if state != "draft" else None,
                "source_content_id": None,
                "created_at": published,
                "updated_at": published,
                "author_id": uid,
                "school_id": sid,
                "district_id": school_district[sid],
            }

        def when() -> datetime:
            return NOW - timedelta(seconds=rng.randint(0, 730 * 86400))

        def versions_of(content_row: dict) -> list[dict]:
            """Some content has an older superseded version, some a draft of the next one."""
            rows = [content_row]
            roll = rng.random()
            if roll < 0.08:
                old = dict(
                    content_row,
                    version=1,
                    state="superseded",
                    published_at=content_row["published_at"] - timedelta(days=30),
                )
                content_row["version"] = 2
                rows.insert(0, old)
            elif roll < 0.12:
                rows.append(dict(content_row, version=2, state="draft", published_at=None))
            elif roll < 0.15:
                content_row["state"] = "draft"
                content_row["published_at"] = None
            return rows

        # Resources: 10 per course, in course order.
        resources, resource_grades, resource_tags = [], [], []
        resource_ids: list[str] = []
        next_id = 1
        for n in range(self.n_resources):
            author = teachers[rng.randrange(len(teachers))]
            subject = rng.choice(subjects)
            kind = weighted(rng, KIND_WEIGHTS)
            kind_zh = vocab.RESOURCE_KINDS[kind][0]
            title = f"{vocab.SUBJECTS[subject][0]}·{rng.choice(TOPICS)}（{kind_zh} {n + 1}）"
            content_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            resource_ids.append(content_id)
            base = common(0, title, author, when(), "published", 1, content_id)
            base.update(
                {
                    "kind": kind,
                    "url": "https://example.org/r/" + content_id if kind == "link" else None,
                    "data": {},
                    "usage_count": rng.randint(0, 500),
                }
            )
            first_grade = rng.randrange(len(grades))
            span = rng.choice([1, 1, 1, 2, 3])
            tag_ids = self.tag_sample(0, 4)
            for row in versions_of(base):
                row["id"] = next_id
                next_id += 1
                resources.append(row)
                for g in grades[first_grade : first_grade + span]:
                    resource_grades.append({"resource_id": row["id"], "grade": g})
                for t in tag_ids:
                    resource_tags.append({"resource_id": row["id"], "tag_id": t + 1})
        put("resources", resources)
        put("resource_grades", resource_grades)
        put("resource_tags", resource_tags)

        courses, course_tags, sections, items, sessions, seats = [], [], [], [], [], []
        next_id = 1
        per_course = max(1, self.n_resources // self.n_courses)
        for n in range(self.n_courses):
            author = teachers[rng.randrange(len(teachers))]
            extended = rng.random() < 0.4
            content_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            if extended:
                category = rng.choice(categories)
                title = f"{vocab.CATEGORIES[category][0]}拓展课：{rng.choice(TOPICS)} {n + 1}"
                extra = {
                    "kind": "extended",
                    "category": category,
                    "capacity": rng.choice([None, 12, 20, 30, 40]),
                    "grade": None,
                    "edition": None,
                    "subject": None,
                }
            else:
                subject, grade = rng.choice(subjects), rng.choice(grades)
                label = vocab.GRADES[grade][0] + vocab.SUBJECTS[subject][0]
                title = f"{label}：{rng.choice(TOPICS)} {n + 1}"
                extra = {
                    "kind": "curriculum",
                    "category": None,
                    "capacity": None,
                    "grade": grade,
                    "edition": rng.choice(editions),
                    "subject": subject,
                }
            base = common(0, title, author, when(), "published", 1, content_id)
            base.update(extra)
            base.update({"cover_url": None, "enrolment_open": True})
            tag_ids = self.tag_sample(1, 3)
            own = resource_ids[n * per_course : (n + 1) * per_course]
            n_sections = rng.randint(2, 4)
            for row in versions_of(base):
                row["id"] = next_id
                next_id += 1
                courses.append(row)
                for t in tag_ids:
                    course_tags.append({"course_id": row["id"], "tag_id": t + 1})
                for s in range(n_sections):
                    section_id = len(sections) + 1
                    sections.append(
                        {
                            "id": section_id,
                            "course_id": row["id"],
                            "position": s,
                            "title": f"第{s + 1}单元",
                            "summary": None,
                        }
                    )
                    for j, resource_id in enumerate(own[s::n_sections]):
                        items.append(
                            {
                                "id": len(items) + 1,
                                "section_id": section_id,
                                "position": j,
                                "title": None,
                                "resource_content_id": resource_id,
                                "item_key": str(uuid.uuid4()),
                            }
                        )
                if extended:
                    first = datetime(2026, 9, 7, 15, 30) + timedelta(days=rng.randint(0, 4))
                    for k in range(6):
                        start = first + timedelta(weeks=k * 2)
                        sessions.append(
                            {
                                "id": len(sessions) + 1,
                                "course_id": row["id"],
                                "position": k,
                                "starts_at": start,
                                "ends_at": start + timedelta(minutes=80),
                                "place": "多功能教室",
                                "online_url": None,
                                "note": None,
                            }
                        )
            if extended and base["state"] == "published":
                seats.append(
                    {"course_content_id": content_id, "capacity": base["capacity"], "taken": 0}
                )
        put("courses", courses)
        put("course_tags", course_tags)
        put("course_sections", sections)
        put("section_items", items)
        put("course_sessions", sessions)
        put("course_seats", seats)
        return sizes


def fix_sequences(conn, table_names: list[str]) -> None:
    """Explicit ids bypass PostgreSQL sequences; move them past the seeded rows."""
    for name in table_names:
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {name}), 1))"
            )
        )


def _seed_app(database_url: str, instance: str):
    """An app on the bench database, for seeding and preparing (no plugins, no Redis)."""
    from app import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "INSTANCE_PATH": instance,
            "SECRET_KEY": "bench-seed",
            "PLUGINS": [],
            "REDIS_URL": None,
        }
    )


def seed(database_url: str, instance: str, courses: int, resources: int) -> dict:
    from app.extensions import db

    app = _seed_app(database_url, instance)
    started = time.perf_counter()
    with app.app_context():
        db.create_all()
        tables = db.metadata.tables
        with db.engine.begin() as conn:
            sizes = Seeder(courses, resources).run(conn, tables)
            if db.engine.dialect.name == "postgresql":
                fix_sequences(
                    conn,
                    [
                        "regions",
                        "districts",
                        "schools",
                        "users",
                        "role_assignments",
                        "tags",
                        "resources",
                        "courses",
                        "course_sections",
                        "section_items",
                        "course_sessions",
                    ],
                )
        seeded_s = time.perf_counter() - started
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
            size = db.session.execute(
                text("SELECT pg_database_size(current_database())")
            ).scalar_one()
        else:
            with db.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
            size = Path(db.engine.url.database).stat().st_size
        db.session.remove()
        db.engine.dispose()
    return {"sizes": sizes, "seconds": seeded_s, "db_bytes": size}


def prepare_run(database_url: str, instance: str) -> dict:
    """Bearer tokens for the bench student and teacher, district ids, popular tags."""
    from app.accounts import services as accounts
    from app.accounts.models import User
    from app.extensions import db

    app = _seed_app(database_url, instance)
    with app.app_context():
        tokens = {}
        for role in ("student", "teacher"):
            user = db.session.query(User).filter_by(email=f"bench-{role}@bench.test").one()
            tokens[role] = accounts.issue_token(user, "bench")[1]
        db.session.commit()
        districts = [row[0] for row in db.session.execute(text("SELECT id FROM districts"))]
        tags = [
            row[0]
            for row in db.session.execute(
                text(
                    "SELECT tags.name FROM tags JOIN course_tags ON course_tags.tag_id = tags.id "
                    "GROUP BY tags.name ORDER BY count(*) DESC, tags.name LIMIT 40"
                )
            )
        ]
        db.session.remove()
        db.engine.dispose()
    return {"tokens": tokens, "districts": sorted(districts), "tags": tags}


def request_mix(n: int, seeded: dict, base_url: str, seed: int = 7) -> list[tuple[str, dict, str]]:
    """``n`` list requests: filter kinds in equal shares, pages 1..50 within each filter's
    page count (found by asking page 1 first), a third each anonymous/student/teacher."""
    import requests

    from app.catalog import vocab

    rng = random.Random(seed)
    tag_names = seeded["tags"]
    makers = {
        "none": lambda: {},
        "kind": lambda: {"kind": rng.choice(["extended", "curriculum"])},
        "subject+grade": lambda: {
            "subject": rng.choice(list(vocab.SUBJECTS)),
            "grade": rng.choice(list(vocab.GRADES)),
        },
        "district": lambda: {"district": rng.choice(seeded["districts"])},
        "language": lambda: {"language": rng.choice(list(vocab.LANGUAGES))},
        "licence": lambda: {"licence": rng.choice(list(vocab.LICENCES))},
        "tag": lambda: {"tag": rng.choice(tag_names)},
    }
    auth = [
        {},
        {"Authorization": "Bearer " + seeded["tokens"]["student"]},
        {"Authorization": "Bearer " + seeded["tokens"]["teacher"]},
    ]
    pages_cache: dict[str, int] = {}
    out = []
    with requests.Session() as session:
        for i in range(n):
            label = list(makers)[i % len(makers)]
            params = makers[label]()
            key = urlencode(sorted(params.items()))
            if key not in pages_cache:
                response = session.get(base_url + "/api/v1/courses?" + key, timeout=30)
                response.raise_for_status()
                pages_cache[key] = response.json()["pages"]
            last = min(50, pages_cache[key])
            # Readers mostly stay on the first pages; some page deep.
            page = rng.randint(1, min(3, last)) if rng.random() < 0.5 else rng.randint(1, last)
            params["page"] = page
            out.append(("/api/v1/courses?" + urlencode(params), auth[i % 3], label))
    rng.shuffle(out)
    return out


def bench_backend(name: str, database_url: str, args, seed_first: bool = True) -> None:
    with tempfile.TemporaryDirectory(prefix="shuyuan-bench-") as instance:
        if seed_first:
            print(
                f"\n== {name}: seeding {args.courses:,} courses / {args.resources:,} resources",
                flush=True,
            )
            seeded = seed(database_url, instance, args.courses, args.resources)
            sizes = ", ".join(f"{table} {count:,}" for table, count in seeded["sizes"].items())
            print(f"seeded in {seeded['seconds']:.1f} s; rows: {sizes}")
            print(f"database size: {seeded['db_bytes'] / 1024 / 1024:.1f} MiB")
        else:
            print(f"\n== {name}: using the already seeded database", flush=True)
        run = prepare_run(database_url, instance)
        with Gunicorn(database_url, workers=args.workers) as server:
            mix = request_mix(args.requests, run, server.base_url)
            for concurrency in args.concurrency:
                load_before = os.getloadavg()[0]
                result = run_load(
                    server.base_url,
                    mix,
                    concurrency=concurrency,
                    time_limit_s=args.time_limit,
                    warmup=min(200, len(mix)),
                )
                label = (
                    f"{name} GET /api/v1/courses ({args.workers} workers, {concurrency} clients)"
                )
                print(format_result(label, result))
                print(f"   load average before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f}")
                for kind, latencies in sorted(result.by_label.items()):
                    p = percentiles(latencies)
                    print(
                        f"   {kind:<14} n={len(latencies):<5} p50 {p['p50']:6.1f}  "
                        f"p95 {p['p95']:6.1f}  p99 {p['p99']:6.1f} ms"
                    )
                for sample in result.error_samples:
                    print("   error:", sample)


def browse_mix(n: int, seeded: dict, seed: int = 11) -> list[tuple[str, dict, str]]:
    """``n`` anonymous catalog page views (HTML): the course and resource catalogs, no
    filter or one filter, pages 1..5 (readers rarely go further)."""
    from app.catalog import vocab

    rng = random.Random(seed)
    out = []
    for i in range(n):
        base = "/" if i % 3 else "/resources"
        params = {}
        roll = rng.random()
        if roll < 0.3:
            params["subject"] = rng.choice(list(vocab.SUBJECTS))
        elif roll < 0.5:
            params["tag"] = rng.choice(seeded["tags"][:20])
        params["page"] = rng.randint(1, 5)
        out.append((base + "?" + urlencode(params), {}, "browse"))
    return out


def _measure(server, mix, concurrency, time_limit, database_url):
    """Closed-loop load on ``server``; (LoadResult, CPU ms per request of the server's
    processes and its PostgreSQL backends, load average before/after)."""
    from bench.common import CpuMeter

    load_before = os.getloadavg()[0]
    # Warm-up (connections, caches, imports) outside the measurement.
    run_load(server.base_url, mix[: min(100, len(mix))], concurrency=concurrency, time_limit_s=30)
    meter = CpuMeter(server.process.pid, database_url).start()
    result = run_load(server.base_url, mix, concurrency=concurrency, time_limit_s=time_limit)
    cpu = meter.stop()
    cpu_ms = cpu * 1000 / max(1, result.requests)
    return result, cpu_ms, (load_before, os.getloadavg()[0])


def shuyuan_cache_env() -> tuple[dict, str]:
    """Shuyuan's cache as deployed: on Redis (deploy/shuyuan.env.example sets REDIS_URL),
    so both workers share the cached pages, counts and row summaries and an entry lives
    ``SHUYUAN_CACHE_SECONDS`` (300 s), not the 10 s of a process's local cache.  Redis is
    ``BENCH_REDIS_URL`` (each engineer's own database), else database 4; without a Redis
    that answers, the per-process cache, said so in the table's note.  Only the cache:
    the catalog's GETs have no rate limit, and jobs stay in-process.  The throwaway
    database's name is in the cache's key prefix, so runs never read each other's entries."""
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
    try:
        from redis import Redis

        reachable = bool(Redis.from_url(redis_url, socket_connect_timeout=1).ping())
    except Exception:
        reachable = False
    if reachable:
        return {"SHUYUAN_CACHE_REDIS_URL": redis_url}, "cache on Redis"
    return {}, "cache per process (no Redis)"


def table_rows(full: bool) -> list:
    """The catalog's rows of ``python -m bench`` (bench/table.py): the list API beside a
    bare Flask route running the same queries (bench/catalog_bare.py), and the anonymous
    browse page, all on one throwaway PostgreSQL database, 2 gunicorn workers, 16 clients."""
    from bench.table import Row

    courses, resources = (10_000, 100_000) if full else (1_000, 10_000)
    requests_n, time_limit = (4000, 120.0) if full else (1500, 30.0)
    size = f"{resources // 1000}k resources, {courses // 1000}k courses"
    rows = []
    cache_env, cache_label = shuyuan_cache_env()
    with throwaway_postgres() as url, tempfile.TemporaryDirectory() as instance:
        seed(url, instance, courses, resources)
        run = prepare_run(url, instance)
        with Gunicorn(url, workers=2, extra_env=cache_env) as server:
            mix = request_mix(requests_n, run, server.base_url)
            api, api_cpu, api_load = _measure(server, mix, 16, time_limit, url)
            pages = browse_mix(requests_n, run)
            browse, _browse_cpu, browse_load = _measure(server, pages, 16, time_limit, url)
        with Gunicorn(url, workers=2, app_module="bench.catalog_bare:app") as bare_server:
            bare, bare_cpu, bare_load = _measure(bare_server, mix, 16, time_limit, url)
    errors = api.errors + bare.errors + browse.errors
    note = (
        f"{cache_label}; "
        f"load average {api_load[0]:.1f}->{api_load[1]:.1f} (Shuyuan), "
        f"{bare_load[0]:.1f}->{bare_load[1]:.1f} (bare); {errors} errors"
    )
    p_api = percentiles(api.latencies_ms)
    # The list API twice beside the bare route: its throughput, and its CPU per request.
    for path, figure, unit, baseline, target, met, api_note in (
        (
            "catalog list API (GET /api/v1/courses, 16 clients, 2 workers, PostgreSQL)",
            api.throughput,
            "req/s",
            bare.throughput,
            ">= 300 req/s",
            api.throughput >= 300 and not api.errors,
            f"p95 {p_api['p95']:.0f} ms; {note}",
        ),
        (
            "catalog list API, CPU per request (gunicorn workers + PostgreSQL backends)",
            api_cpu,
            "ms CPU",
            bare_cpu,
            "<= 2x baseline",
            bare_cpu > 0 and api_cpu <= 2 * bare_cpu,
            note,
        ),
    ):
        rows.append(
            Row(
                path=path,
                figure=figure,
                unit=unit,
                baseline=baseline,
                baseline_label="bare Flask route, same queries and JSON",
                target=target,
                met=met,
                size=size,
                note=api_note,
            )
        )
    p_browse = percentiles(browse.latencies_ms)
    rows.append(
        Row(
            path="catalog browse page (HTML, anonymous, 16 clients, 2 workers, PostgreSQL)",
            figure=browse.throughput,
            unit="req/s",
            baseline=None,
            baseline_label="",
            target=">= 200 req/s",
            met=browse.throughput >= 200 and not browse.errors,
            size=size,
            note=f"p95 {p_browse['p95']:.0f} ms; {cache_label}; load average "
            f"{browse_load[0]:.1f}->{browse_load[1]:.1f}; {browse.errors} errors",
        )
    )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument(
        "--concurrency",
        default="16",
        type=lambda text: [int(n) for n in text.split(",")],
        help="concurrent clients; a comma-separated list runs one load per value",
    )
    parser.add_argument(
        "--database-url",
        help="bench this already seeded database instead of seeding throwaway ones",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--time-limit", type=float, default=180.0, help="seconds of load per backend"
    )
    args = parser.parse_args(argv)
    print(f"machine: {machine_description()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    if args.database_url:
        bench_backend(args.database_url.split(":")[0], args.database_url, args, seed_first=False)
        return 0
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="shuyuan-bench-db-") as folder:
                bench_backend("SQLite", f"sqlite:///{os.path.join(folder, 'bench.db')}", args)
        elif backend == "postgresql":
            with throwaway_postgres() as url:
                bench_backend("PostgreSQL", url, args)
        else:
            parser.error(f"unknown backend {backend}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
