# ruff: noqa: E501  (long literal tables of topic terms)
"""Benchmark of full-text search (issue 7).

Builds a synthetic catalog of N resources (default 100,000) with Chinese and English
titles and descriptions drawn from a vocabulary of thousands of terms, indexes it with
each real search backend (Whoosh on SQLite, then the PostgreSQL backend on a throwaway
database of the local server; the same jieba / pinyin / English analysers) and measures:

- index build time and size on disk;
- query latency p50/p95 through ``app.search.services.search`` (query understanding,
  visibility scope of an anonymous reader, ranking, highlights, did-you-mean) for 500
  mixed queries, without facet counts and with 8 facet counts;
- the same queries on an SQLite FTS5 table of the same texts pre-tokenised with jieba
  (``highlight()`` + ``bm25`` top 10, and the same facet GROUP BYs) as a baseline.

    .venv/bin/python bench/search.py                      # 100,000 resources
    .venv/bin/python bench/search.py --docs 20000         # quicker
    .venv/bin/python bench/search.py --procs 1            # one writer process (default: CPUs)
    .venv/bin/python bench/search.py --skip-postgresql    # Whoosh only
    .venv/bin/python bench/search.py --fts5               # plus the SQLite FTS5 baseline
    .venv/bin/python bench/search.py --skip-whoosh --pg-database shuyuan_bench_mine
        # PostgreSQL only, on a database that is kept: a second run with the same
        # --docs finds the index there and skips the build (profiling, before/after)

Each backend is also timed bare on its own index (Whoosh alone / plain SQL, no query
understanding, visibility, highlights or did-you-mean), and ``table_rows(full)`` returns
the figures as ``bench.table.Row`` objects for ``python -m bench``.

The vocabulary: curriculum topics per subject (hand-written, Chinese with English), the
catalog's vocabulary labels, the search user dictionary, and the 4,000 most frequent
multi-character nouns and verbs of jieba's dictionary; English words from the topic
translations and a list of common school words.  Term frequencies follow a Zipf law.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.catalog import vocab  # noqa: E402
from bench.common import kept_postgres, percentile, throwaway_postgres  # noqa: E402

TOPICS = {
    "math": [
        ("分数的加法", "adding fractions"),
        ("分数的意义", "meaning of fractions"),
        ("小数乘法", "decimal multiplication"),
        ("一元一次方程", "linear equations"),
        ("二元一次方程组", "simultaneous equations"),
        ("勾股定理", "Pythagorean theorem"),
        ("三角函数", "trigonometric functions"),
        ("平行四边形", "parallelograms"),
        ("有理数", "rational numbers"),
        ("因式分解", "factorisation"),
        ("全等三角形", "congruent triangles"),
        ("二次函数", "quadratic functions"),
        ("圆的面积", "area of a circle"),
        ("统计图", "statistical charts"),
        ("概率初步", "introduction to probability"),
        ("鸡兔同笼", "chickens and rabbits puzzle"),
        ("数轴", "number line"),
        ("绝对值", "absolute value"),
    ],
    "chinese": [
        ("古诗词", "classical poems"),
        ("文言文", "classical Chinese prose"),
        ("朗读", "reading aloud"),
        ("作文", "composition"),
        ("阅读理解", "reading comprehension"),
        ("汉字", "Chinese characters"),
        ("拼音", "pinyin"),
        ("成语故事", "idiom stories"),
        ("春晓", "spring morning poem"),
        ("静夜思", "quiet night thoughts"),
    ],
    "english": [
        ("自然拼读", "phonics"),
        ("英语语法", "English grammar"),
        ("现在进行时", "present continuous"),
        ("一般过去时", "simple past tense"),
        ("英语口语", "spoken English"),
        ("单词记忆", "vocabulary building"),
    ],
    "physics": [
        ("牛顿第一定律", "Newton's first law"),
        ("浮力", "buoyancy"),
        ("电路", "electric circuits"),
        ("光的折射", "refraction of light"),
        ("声音的传播", "propagation of sound"),
        ("压强", "pressure"),
    ],
    "chemistry": [
        ("化学方程式", "chemical equations"),
        ("元素周期表", "periodic table"),
        ("酸碱盐", "acids bases and salts"),
        ("氧化还原反应", "redox reactions"),
        ("分子和原子", "molecules and atoms"),
    ],
    "biology": [
        ("光合作用", "photosynthesis"),
        ("细胞", "cells"),
        ("生态系统", "ecosystems"),
        ("遗传与变异", "heredity and variation"),
        ("人体消化", "human digestion"),
    ],
    "history": [
        ("丝绸之路", "Silk Road"),
        ("秦始皇统一六国", "Qin unification"),
        ("辛亥革命", "Xinhai Revolution"),
        ("五四运动", "May Fourth Movement"),
        ("唐朝的繁荣", "prosperity of the Tang dynasty"),
    ],
    "geography": [
        ("地球仪", "globe"),
        ("等高线", "contour lines"),
        ("季风气候", "monsoon climate"),
        ("水的循环", "water cycle"),
        ("太阳系", "solar system"),
    ],
    "music": [
        ("京剧", "Peking opera"),
        ("京剧脸谱", "Peking opera masks"),
        ("民歌", "folk songs"),
        ("节奏", "rhythm"),
        ("合唱", "choir singing"),
        ("古筝", "guzheng"),
    ],
    "art": [
        ("剪纸", "paper cutting"),
        ("国画", "Chinese painting"),
        ("书法", "calligraphy"),
        ("水墨画", "ink wash painting"),
        ("陶艺", "pottery"),
    ],
    "pe": [
        ("跳绳", "rope skipping"),
        ("篮球", "basketball"),
        ("广播体操", "broadcast gymnastics"),
        ("武术", "martial arts"),
    ],
    "it": [
        ("编程入门", "introduction to programming"),
        ("机器人", "robotics"),
        ("网络安全", "internet safety"),
        ("数据处理", "data processing"),
    ],
    "science": [
        ("天文观测", "astronomy observation"),
        ("星空", "the night sky"),
        ("植物的生长", "how plants grow"),
        ("磁铁", "magnets"),
    ],
    "politics": [("宪法", "the constitution"), ("诚信", "honesty"), ("垃圾分类", "waste sorting")],
}
FORMS = [
    ("教案", "lesson plan"),
    ("课件", "slides"),
    ("微课", "micro lesson"),
    ("练习", "exercises"),
    ("导学案", "study guide"),
    ("复习", "review"),
    ("单元测试", "unit test"),
    ("实验", "experiment"),
    ("拓展阅读", "further reading"),
]
ENGLISH_COMMON = [
    "lesson",
    "unit",
    "practice",
    "review",
    "students",
    "teacher",
    "classroom",
    "activity",
    "worksheet",
    "group",
    "discussion",
    "project",
    "introduction",
    "basic",
    "advanced",
    "example",
    "exercise",
    "question",
    "answer",
    "homework",
    "reading",
    "writing",
    "listening",
    "speaking",
    "video",
    "audio",
    "picture",
    "diagram",
    "model",
    "experiment",
    "observation",
    "record",
    "report",
    "summary",
    "chapter",
    "section",
    "step",
    "method",
    "problem",
    "solution",
    "strategy",
    "game",
    "story",
    "song",
    "poem",
    "culture",
    "history",
    "nature",
    "science",
    "art",
    "music",
    "sport",
    "health",
    "safety",
    "team",
    "skill",
    "knowledge",
    "understanding",
    "explore",
    "compare",
    "explain",
    "describe",
    "design",
    "build",
    "measure",
    "calculate",
    "draw",
]


def build_vocabulary(rng: random.Random) -> tuple[list[str], list[str]]:
    import jieba

    chinese = set()
    for topics in TOPICS.values():
        chinese.update(zh for zh, _ in topics)
    chinese.update(zh for zh, _ in FORMS)
    for table in (vocab.SUBJECTS, vocab.GRADES, vocab.EDITIONS, vocab.CATEGORIES):
        chinese.update(zh for zh, _ in table.values())
    from app.search.analysis import dictionary_terms

    chinese.update(dictionary_terms())
    dictionary = Path(jieba.__file__).parent / "dict.txt"
    common = []
    for line in dictionary.read_text(encoding="utf-8").splitlines():
        word, freq, tag = line.split(" ")
        if 2 <= len(word) <= 4 and tag in ("n", "vn", "v", "a", "nz") and int(freq) > 2000:
            common.append((int(freq), word))
    common.sort(reverse=True)
    chinese.update(word for _, word in common[:4000])
    english = set(ENGLISH_COMMON)
    for topics in TOPICS.values():
        for _, en in topics:
            english.update(w.lower() for w in en.replace("'", " ").split() if len(w) > 2)
    chinese_list, english_list = sorted(chinese), sorted(english)
    rng.shuffle(chinese_list)
    rng.shuffle(english_list)
    return chinese_list, english_list


def zipf_picker(words: list[str], rng: random.Random, s: float = 1.05):
    weights = [1 / (rank + 1) ** s for rank in range(len(words))]
    cumulative = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)

    def pick(k: int) -> list[str]:
        return rng.choices(words, cum_weights=cumulative, k=k)

    return pick


def make_documents(n: int, seed: int = 7):
    rng = random.Random(seed)
    chinese, english = build_vocabulary(rng)
    pick_zh, pick_en = zipf_picker(chinese, rng), zipf_picker(english, rng)
    subjects = list(TOPICS)
    grades = list(vocab.GRADES)
    editions = list(vocab.EDITIONS)
    kinds = list(vocab.RESOURCE_KINDS)
    licences = list(vocab.LICENCES)
    docs = []
    for i in range(n):
        subject = rng.choice(subjects)
        topic_zh, topic_en = rng.choice(TOPICS[subject])
        form_zh, form_en = rng.choice(FORMS)
        first = rng.randrange(len(grades))
        doc_grades = grades[first : first + rng.choice((1, 1, 1, 2, 3))]
        edition = rng.choice(editions)
        english_doc = rng.random() < 0.25
        if english_doc:
            title = f"{topic_en.capitalize()} {form_en} – {' '.join(pick_en(2))}"
            description = " ".join(pick_en(rng.randint(12, 30))).capitalize() + "."
            language = "en"
        else:
            title = (
                f"{vocab.EDITIONS[edition][0]} {vocab.GRADES[doc_grades[0]][0]} {vocab.SUBJECTS[subject][0]} "
                f"{topic_zh}{form_zh} {''.join(pick_zh(1))}"
            )
            words = pick_zh(rng.randint(12, 30))
            description = (
                "，".join("".join(words[j : j + 3]) for j in range(0, len(words), 3)) + "。"
            )
            language = "zh"
        docs.append(
            {
                "id": f"resource:{i:08d}",
                "type": "resource",
                "content_id": f"{i:08d}",
                "version": 1,
                "kind": rng.choice(kinds),
                "subject": subject,
                "grade": doc_grades,
                "edition": edition,
                "category": "",
                "language": language,
                "licence": rng.choice(licences),
                "district": str(rng.randint(1, 10)),
                "school": str(rng.randint(1, 200)),
                "visibility": rng.choices(["region", "district", "school"], weights=[80, 15, 5])[0],
                "author": f"author-{rng.randint(1, 5000)}",
                "published": 1_600_000_000_000 + i * 1000,
                "usage": int(rng.paretovariate(1.2)),
                "title": title,
                "title_en": "" if english_doc else f"{topic_en.capitalize()} {form_en}",
                "summary": description[:120],
                "summary_en": "",
                "body": description,
                "tags": [topic_zh],
                "terms": [],
                "url": f"/resources/{i:08d}",
                "fingerprint": str(i),
            }
        )
    return docs, chinese, english


def make_queries(docs, chinese, english, n: int = 500, seed: int = 11) -> list[str]:
    from app.search.analysis import pinyin_of

    rng = random.Random(seed)
    topics = [zh for t in TOPICS.values() for zh, _ in t]
    topics_en = [en for t in TOPICS.values() for _, en in t]
    queries = []
    for _ in range(n):
        r = rng.random()
        if r < 0.25:
            queries.append(rng.choice(topics))
        elif r < 0.40:
            queries.append(rng.choice(chinese[:2000]))
        elif r < 0.50:
            queries.append(f"{rng.choice(topics)} {rng.choice(chinese[:500])}")
        elif r < 0.62:
            queries.append(rng.choice(topics_en).lower())
        elif r < 0.68:
            queries.append(" ".join(rng.sample(english, 2)))
        elif r < 0.76:
            queries.append(pinyin_of(rng.choice(topics)))
        elif r < 0.80:
            queries.append(pinyin_of(rng.choice(topics), initials=True))
        elif r < 0.92:
            grade = rng.choice(list(vocab.GRADES.values()))[0]
            subject = rng.choice(list(vocab.SUBJECTS.values()))[0]
            queries.append(
                rng.choice(
                    [f"{grade} {subject} 视频", f"{subject} {rng.choice(topics)}", f"{grade} 练习"]
                )
            )
        else:
            word = rng.choice(topics_en).split()[0].lower()
            if len(word) > 4:
                k = rng.randrange(1, len(word) - 1)
                word = word[:k] + word[k + 1] + word[k] + word[k + 2 :]
            queries.append(word)
    return queries


def timed(fn, queries):
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), percentile(sorted(times), 0.95)


def bare_whoosh(root: str, queries) -> dict:
    """The baseline without our layers: Whoosh alone on the same index folder — the
    query words (jieba precise mode) OR-ed over the four text fields and AND-ed,
    top 10 with stored fields; then the same with Whoosh's own facet grouping."""
    from whoosh import index, query
    from whoosh.sorting import FieldFacet

    from app.search.analysis import query_words, stem

    ix = index.open_dir(f"{root}/{Path(root, 'CURRENT').read_text().strip()}")
    searcher = ix.searcher()

    def build(q):
        groups = []
        for word in query_words(q):
            english = stem(word) if word.isascii() else word
            groups.append(
                query.Or(
                    [
                        query.Term("title_zh", word),
                        query.Term("body_zh", word),
                        query.Term("title_en", english),
                        query.Term("body_en", english),
                    ]
                )
            )
        return query.And(groups) if groups else query.Every()

    def plain(q):
        results = searcher.search(build(q), limit=10)
        [hit.fields() for hit in results]
        len(results)

    facets = [FieldFacet(f) for f in ("type", "kind", "subject", "grade", "edition", "district")]
    facets += [FieldFacet("language"), FieldFacet("licence")]

    def faceted(q):
        results = searcher.search(build(q), limit=10, groupedby=facets)
        [hit.fields() for hit in results]
        for name in results.facet_names():
            results.groups(name)

    try:
        plain(queries[0])  # open the segments once, as the services' warm-up did
        return {"plain": timed(plain, queries), "faceted": timed(faceted, queries)}
    finally:
        searcher.close()


_FACET_SQL = ("type", "kind", "subject", "edition", "district", "language", "licence")


def bare_postgresql(queries) -> dict:
    """The baseline without our layers: plain SQL on the same table — the query words
    as one tsquery on the ``lexemes`` GIN index, ``ts_rank`` top 10 and a count; then
    plus one GROUP BY per facet (grades through unnest)."""
    from app.extensions import db
    from app.search.analysis import query_words, stem
    from app.search.pg_query import FIELD_CODES, _tsquery

    def tsquery(q):
        groups = []
        for word in query_words(q):
            english = stem(word) if word.isascii() else word
            alternatives = [
                _tsquery(f"{FIELD_CODES[f]}:{w}")
                for f, w in (
                    ("title_zh", word),
                    ("body_zh", word),
                    ("title_en", english),
                    ("body_en", english),
                )
            ]
            groups.append("(" + " | ".join(alternatives) + ")")
        return " & ".join(groups)

    connection = db.engine.raw_connection()
    cursor = connection.cursor()

    def plain(q, facets=False):
        match = tsquery(q)
        if not match:
            return
        condition = "lexemes @@ CAST(%(q)s AS tsquery) AND visibility = 'region'"
        cursor.execute(
            f"SELECT fields FROM search_documents WHERE {condition}"
            " ORDER BY ts_rank(lexemes, CAST(%(q)s AS tsquery)) DESC LIMIT 10",
            {"q": match},
        )
        cursor.fetchall()
        cursor.execute(f"SELECT count(*) FROM search_documents WHERE {condition}", {"q": match})
        cursor.fetchall()
        if facets:
            for column in _FACET_SQL:
                cursor.execute(
                    f"SELECT {column}, count(*) FROM search_documents WHERE {condition}"
                    f" GROUP BY {column}",
                    {"q": match},
                )
                cursor.fetchall()
            cursor.execute(
                "SELECT g, count(*) FROM search_documents, unnest(grade) g"
                f" WHERE {condition} GROUP BY g",
                {"q": match},
            )
            cursor.fetchall()
        connection.rollback()

    try:
        plain(queries[0])
        return {
            "plain": timed(plain, queries),
            "faceted": timed(lambda q: plain(q, facets=True), queries),
        }
    finally:
        connection.close()


def segmentation_floor(docs, sample: int = 2000) -> float:
    """Seconds jieba alone needs to segment (search mode) every title and description
    once, estimated from a sample: the floor of any index build with these analysers."""
    from app.search.analysis import segmenter

    seg = segmenter()
    picked = docs[:: max(1, len(docs) // sample)]
    start = time.perf_counter()
    for doc in picked:
        list(seg.tokenize(doc["title"] + " " + doc["title_en"], mode="search"))
        list(seg.tokenize(doc["body"], mode="search"))
    return (time.perf_counter() - start) * len(docs) / len(picked)


def run_backend(docs, queries, folder, procs, database_url=None, reuse=False):
    """Index ``docs`` with the configured backend and time ``queries`` through the
    search service: Whoosh on SQLite, or the PostgreSQL backend on ``database_url``;
    then the bare baseline on the same index.  With ``reuse`` an index that already
    holds exactly these documents (same count and fingerprints) is not rebuilt."""
    from app import create_app
    from app.extensions import db
    from app.search import services

    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{folder}/bench.db",
            "INSTANCE_PATH": folder,
            "SECRET_KEY": "bench",
            "SEARCH_INDEX_DIR": f"{folder}/index",
            "SEARCH_BACKEND": "postgresql" if database_url else "whoosh",
            "PLUGINS": [],
            "JOBS_EAGER": True,
            "REDIS_URL": None,
        }
    )

    def search(q, **kwargs):
        # each query in its own transaction, as each request has its own
        try:
            return services.search(None, q, per_page=10, **kwargs)
        finally:
            db.session.rollback()

    with app.app_context():
        db.create_all()
        backend = services.get_backend()
        build = None
        if not (reuse and backend.fingerprints() == {d["id"]: d["fingerprint"] for d in docs}):
            start = time.perf_counter()
            backend.rebuild(iter(docs), procs=procs, limitmb=256)
            db.session.commit()
            if database_url:
                db.session.execute(db.text("ANALYZE search_documents"))
                db.session.execute(db.text("ANALYZE search_terms"))
                db.session.commit()
            build = time.perf_counter() - start
        else:
            print("index reused (same documents already indexed)", flush=True)
            db.session.rollback()
        size = backend.size_bytes()
        search("京剧")  # open the searcher and warm caches once
        search("xyzzyq")  # and the did-you-mean vocabulary
        hits = [search(q, facets=()).total for q in queries]
        plain = timed(lambda q: search(q, facets=()), queries)
        faceted = timed(search, queries)
        bare = bare_postgresql(queries) if database_url else bare_whoosh(f"{folder}/index", queries)
        db.session.remove()
        db.engine.dispose()
    return {
        "build_s": build,
        "size_mb": size / 1e6,
        "plain": plain,
        "faceted": faceted,
        "bare": bare,
        "mean_hits": statistics.mean(hits),
        "zero_hit_queries": sum(1 for h in hits if h == 0),
        "load": os.getloadavg()[0],
    }


def report(label, r, docs, procs=None):
    writers = f", procs={procs}" if procs else ""
    build = (
        f"build {r['build_s']:.1f} s ({docs / r['build_s']:.0f} docs/s{writers})"
        if r["build_s"]
        else "build skipped (index reused)"
    )
    print(
        f"{label}: {build}, "
        f"size {r['size_mb']:.1f} MB; mean hits/query {r['mean_hits']:.0f}, zero-hit queries {r['zero_hit_queries']}"
    )
    print(
        f"{label}: query + highlights      p50 {r['plain'][0]:.1f} ms  p95 {r['plain'][1]:.1f} ms"
    )
    print(
        f"{label}: query + highlights + 8 facet counts  p50 {r['faceted'][0]:.1f} ms  p95 {r['faceted'][1]:.1f} ms"
    )
    bare = r["bare"]
    print(
        f"{label} bare (no layers): top 10 p50 {bare['plain'][0]:.1f} ms  p95 {bare['plain'][1]:.1f} ms;"
        f" + facets p50 {bare['faceted'][0]:.1f} ms  p95 {bare['faceted'][1]:.1f} ms"
        f"  (load average {r['load']:.1f})"
    )


def run_fts5(docs, queries, folder):
    import jieba

    from app.search.analysis import query_words, segmenter

    seg = segmenter()
    path = f"{folder}/fts.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE docs(rowid INTEGER PRIMARY KEY, title TEXT, body TEXT, kind TEXT, subject TEXT,
                          edition TEXT, language TEXT, licence TEXT, district TEXT, visibility TEXT);
        CREATE TABLE grades(rowid INTEGER, grade TEXT);
        CREATE INDEX ix_grades ON grades(rowid);
        CREATE VIRTUAL TABLE fts USING fts5(title, body, tokenize='unicode61');
    """)
    start = time.perf_counter()
    for i, doc in enumerate(docs, 1):
        title = doc["title"] + " " + doc["title_en"]
        conn.execute(
            "INSERT INTO docs VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                i,
                title,
                doc["body"],
                doc["kind"],
                doc["subject"],
                doc["edition"],
                doc["language"],
                doc["licence"],
                doc["district"],
                doc["visibility"],
            ),
        )
        conn.executemany("INSERT INTO grades VALUES (?,?)", [(i, g) for g in doc["grade"]])
        conn.execute(
            "INSERT INTO fts(rowid, title, body) VALUES (?,?,?)",
            (
                i,
                " ".join(seg.cut_for_search(title)).lower(),
                " ".join(seg.cut_for_search(doc["body"])).lower(),
            ),
        )
    conn.commit()
    build = time.perf_counter() - start
    size = os.path.getsize(path)
    del jieba

    def match_of(q):
        words = [w.replace('"', "") for w in query_words(q)]
        return " AND ".join(f'"{w}"' for w in words if w) or None

    def plain(q):
        m = match_of(q)
        if not m:
            return
        conn.execute(
            "SELECT d.rowid, highlight(fts, 0, '<mark>', '</mark>'), snippet(fts, 1, '<mark>', '</mark>', '…', 16) "
            "FROM fts JOIN docs d ON d.rowid = fts.rowid WHERE fts MATCH ? AND d.visibility = 'region' "
            "ORDER BY bm25(fts, 3.0, 1.0) LIMIT 10",
            (m,),
        ).fetchall()
        conn.execute(
            "SELECT count(*) FROM fts JOIN docs d ON d.rowid = fts.rowid WHERE fts MATCH ? "
            "AND d.visibility = 'region'",
            (m,),
        ).fetchone()

    def faceted(q):
        plain(q)
        m = match_of(q)
        if not m:
            return
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS hits(rowid INTEGER PRIMARY KEY)")
        conn.execute("DELETE FROM hits")
        conn.execute(
            "INSERT INTO hits SELECT d.rowid FROM fts JOIN docs d ON d.rowid = fts.rowid "
            "WHERE fts MATCH ? AND d.visibility = 'region'",
            (m,),
        )
        for column in ("kind", "subject", "edition", "language", "licence", "district"):
            conn.execute(
                f"SELECT d.{column}, count(*) FROM hits h JOIN docs d ON d.rowid = h.rowid "
                f"GROUP BY d.{column}"
            ).fetchall()
        conn.execute(
            "SELECT g.grade, count(*) FROM hits h JOIN grades g ON g.rowid = h.rowid GROUP BY g.grade"
        ).fetchall()

    return {
        "build_s": build,
        "size_mb": size / 1e6,
        "plain": timed(plain, queries),
        "faceted": timed(faceted, queries),
    }


def measure(
    n_docs: int,
    n_queries: int,
    procs: int,
    postgresql: bool = True,
    whoosh: bool = True,
    pg_database: str | None = None,
) -> dict:
    """Whoosh and (unless told not to) PostgreSQL on the same documents and queries, in
    one run, each with its bare baseline and the jieba floor of a build.  With
    ``pg_database`` PostgreSQL uses (and keeps) that database of the local server,
    reusing the index it holds when it has the same documents."""
    from app.search.analysis import warm_up

    warm_up()
    start = time.perf_counter()
    docs, chinese, english = make_documents(n_docs)
    queries = make_queries(docs, chinese, english, n_queries)
    print(
        f"{n_docs:,} documents generated in {time.perf_counter() - start:.1f} s; vocabulary "
        f"{len(chinese):,} Chinese + {len(english):,} English terms; {len(queries)} queries",
        flush=True,
    )
    out = {"docs": n_docs, "queries": len(queries), "procs": procs}
    out["floor_s"] = segmentation_floor(docs)
    print(
        f"jieba alone (search mode, titles + descriptions): {out['floor_s']:.1f} s",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="search-bench-") as folder:
        if whoosh:
            out["whoosh"] = run_backend(docs, queries, folder, procs)
            report("Whoosh", out["whoosh"], n_docs, procs)
        if postgresql:
            database = kept_postgres(pg_database) if pg_database else throwaway_postgres()
            with database as url:
                out["postgresql"] = run_backend(
                    docs, queries, folder, procs, database_url=url, reuse=bool(pg_database)
                )
            report("PostgreSQL", out["postgresql"], n_docs, procs)
        if whoosh and postgresql:
            w, p = out["whoosh"], out["postgresql"]
            print(
                f"ratio PostgreSQL/Whoosh p95: highlights {p['plain'][1] / max(w['plain'][1], 1e-6):.1f}x, "
                f"facets {p['faceted'][1] / max(w['faceted'][1], 1e-6):.1f}x",
                flush=True,
            )
    out["folder_docs"] = (docs, queries, None)
    return out


def rows_from(result: dict) -> list:
    """bench.table.Row objects of one :func:`measure` result."""
    from bench.table import Row

    size = f"{result['docs']:,} docs, {result['queries']} queries"
    rows = []
    for key, label in (("whoosh", "Whoosh"), ("postgresql", "PostgreSQL")):
        r = result.get(key)
        if not r:
            continue
        load = f"load average {r['load']:.1f}"
        for kind, path, bare, limit_ms in (
            (
                "plain",
                f"search with highlights, p95 ({label}, anonymous, via services.search)",
                f"bare {label} top-10 query, same index",
                40,
            ),
            (
                "faceted",
                f"search with 8 facet counts, p95 ({label})",
                f"bare {label} top-10 + facet grouping, same index",
                60,
            ),
        ):
            rows.append(
                Row(
                    path=path,
                    figure=round(r[kind][1], 1),
                    unit="ms p95",
                    baseline=round(r["bare"][kind][1], 1),
                    baseline_label=bare,
                    target=f"< {limit_ms} ms p95",
                    met=r[kind][1] < limit_ms,
                    size=size,
                    note=load,
                )
            )
        if not r["build_s"]:
            continue  # index reused: no build figure
        rows.append(
            Row(
                path=f"search index build ({label}, {result['procs']} processes)",
                figure=round(r["build_s"], 1),
                unit="s",
                baseline=round(result["floor_s"], 1),
                baseline_label="jieba alone segmenting the same texts once",
                target="< 300 s at 100k docs",
                met=r["build_s"] < 300 * result["docs"] / 100_000,
                size=f"{result['docs']:,} docs",
                note=load,
            )
        )
    return rows


def table_rows(full: bool) -> list:
    """Rows for ``python -m bench``: 100,000 documents and 500 queries with ``full``,
    else 5,000 and 200 (about two minutes); both backends, each beside its bare
    baseline."""
    if full:
        result = measure(100_000, 500, os.cpu_count() or 1)
    else:
        result = measure(5_000, 200, os.cpu_count() or 1)
    return rows_from(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--fts5", action="store_true", help="also the SQLite FTS5 baseline")
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--skip-whoosh", action="store_true")
    parser.add_argument(
        "--pg-database",
        help="a database of the local server to use and keep (created if missing); an index"
        " of the same documents found there is reused instead of rebuilt",
    )
    args = parser.parse_args()
    result = measure(
        args.docs,
        args.queries,
        args.procs,
        postgresql=not args.skip_postgresql,
        whoosh=not args.skip_whoosh,
        pg_database=args.pg_database,
    )
    if args.fts5 and "whoosh" in result:
        docs, queries, _ = result["folder_docs"]
        with tempfile.TemporaryDirectory(prefix="search-bench-fts-") as folder:
            f = run_fts5(docs, queries, folder)
        w = result["whoosh"]
        print(
            f"FTS5:   build {f['build_s']:.1f} s (jieba pre-tokenised), size {f['size_mb']:.1f} MB"
        )
        print(
            f"FTS5:   query + highlight/snippet + count  p50 {f['plain'][0]:.1f} ms  p95 {f['plain'][1]:.1f} ms"
        )
        print(
            f"FTS5:   + 7 facet GROUP BYs  p50 {f['faceted'][0]:.1f} ms  p95 {f['faceted'][1]:.1f} ms"
        )
        print(
            f"ratio Whoosh/FTS5 p95: highlights {w['plain'][1] / max(f['plain'][1], 1e-6):.1f}x, "
            f"facets {w['faceted'][1] / max(f['faceted'][1], 1e-6):.1f}x"
        )
    print()
    print("| path | size | figure | baseline | ratio | target | met | note |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows_from(result):
        ratio = f"{row.ratio:.2f}x" if row.ratio else "–"
        print(
            f"| {row.path} | {row.size} | {row.figure} {row.unit} | {row.baseline} ({row.baseline_label})"
            f" | {ratio} | {row.target} | {'yes' if row.met else 'no'} | {row.note} |"
        )


if __name__ == "__main__":
    main()
