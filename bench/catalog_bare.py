"""The bare baseline of the course list API: a plain Flask route, no Shuyuan.

``GET /api/v1/courses`` here runs the same work as Shuyuan's endpoint and answers the same
JSON (same fields, same order of rows, same ``total``), written directly: the bearer
token's user and memberships in one SQL statement, the same visibility condition, the same
filters, one COUNT, the page query with the author, school and district joined, the tags
in one more query, ``json.dumps``.  No ORM, marshmallow, flask-smorest, Flask-Login,
Flask-Babel, CSRF, rate limits, security headers or caching: what any Flask service must
at least spend to answer this request.  Subscriptions (app/sharing) are left out: the
benchmark's database has none.

    DATABASE_URL=postgresql+psycopg://... gunicorn -w 2 bench.catalog_bare:app
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC

from flask import Flask, Response, request
from sqlalchemy import create_engine, text

app = Flask(__name__)
engine = create_engine(os.environ.get("DATABASE_URL", "sqlite://"), pool_size=5)

FILTERS = {
    "kind": "c.kind = :kind",
    "subject": "c.subject = :subject",
    "grade": "c.grade = :grade",
    "district": "c.district_id = :district",
    "language": "c.language = :language",
    "licence": "c.licence = :licence",
    "tag": (
        "c.id IN (SELECT ct.course_id FROM course_tags ct JOIN tags t ON t.id = ct.tag_id "
        "WHERE t.name = :tag)"
    ),
}
COLUMNS = (
    "c.id, c.content_id, c.version, c.state, c.kind, c.title, c.summary, c.translations, "
    "c.language, c.licence, c.visibility, c.subject, c.published_at, c.updated_at, "
    "c.source_content_id, c.category, c.grade, c.edition, c.capacity, c.cover_url, "
    "u.public_id AS author_id, u.name AS author_name, s.id AS school_id, s.name AS school_name, "
    "d.id AS district_id, d.name AS district_name"
)


def _user(conn) -> tuple | None | bool:
    """(user id, school ids, district ids) of the bearer token; None anonymous; False bad."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    digest = hashlib.sha256(header[7:].strip().encode()).hexdigest()
    rows = conn.execute(
        text(
            "SELECT u.id, u.school_id, u.district_id, r.school_id, r.district_id "
            "FROM api_tokens t JOIN users u ON u.id = t.user_id "
            "LEFT JOIN role_assignments r ON r.user_id = u.id "
            "WHERE t.token_hash = :h AND t.revoked_at IS NULL "
            "AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.is_active_account"
        ),
        {"h": digest},
    ).all()
    if not rows:
        return False
    schools = {r[1] for r in rows if r[1]} | {r[3] for r in rows if r[3]}
    districts = {r[2] for r in rows if r[2]} | {r[4] for r in rows if r[4]}
    return rows[0][0], sorted(schools), sorted(districts)


def _stamp(value):
    return value.replace(tzinfo=UTC).isoformat() if value is not None else None


@app.get("/healthz")
def healthz():
    return "ok"


@app.get("/api/v1/courses")
def courses():
    args = request.args
    page = int(args.get("page", 1))
    per_page = int(args.get("per_page", 20))
    english = (args.get("lang") or "").startswith("en")
    with engine.connect() as conn:
        who = _user(conn)
        if who is False:
            return Response('{"error": "unauthorized"}', 401, mimetype="application/json")
        params: dict = {}
        visible = ["c.visibility = 'region'"]
        if who:
            uid, schools, districts = who
            params["uid"] = uid
            if schools:
                visible.append("(c.visibility = 'school' AND c.school_id = ANY(:schools))")
                params["schools"] = schools
            if districts:
                visible.append("(c.visibility = 'district' AND c.district_id = ANY(:districts))")
                params["districts"] = districts
            visible.append("c.author_id = :uid")
        where = ["c.state = 'published'", "(" + " OR ".join(visible) + ")"]
        for name, clause in FILTERS.items():
            if args.get(name):
                where.append(clause)
                params[name] = int(args[name]) if name == "district" else args[name]
        condition = " AND ".join(where)
        total = conn.execute(
            text(f"SELECT count(c.id) FROM courses c WHERE {condition}"), params
        ).scalar_one()
        rows = conn.execute(
            text(
                f"SELECT {COLUMNS} FROM (SELECT * FROM courses c WHERE {condition} "
                "ORDER BY c.published_at DESC, c.id DESC LIMIT :limit OFFSET :offset) c "
                "JOIN users u ON u.id = c.author_id LEFT JOIN schools s ON s.id = c.school_id "
                "JOIN districts d ON d.id = c.district_id "
                "ORDER BY c.published_at DESC, c.id DESC"
            ),
            {**params, "limit": per_page, "offset": (page - 1) * per_page},
        ).all()
        tags: dict[int, list[str]] = {}
        if rows:
            for course_id, name in conn.execute(
                text(
                    "SELECT ct.course_id, t.name FROM course_tags ct JOIN tags t "
                    "ON t.id = ct.tag_id WHERE ct.course_id = ANY(:ids) ORDER BY t.name"
                ),
                {"ids": [row.id for row in rows]},
            ):
                tags.setdefault(course_id, []).append(name)

    def localised(row, field):
        if english:
            value = (row.translations or {}).get("en", {}).get(field)
            if value:
                return value
        return getattr(row, field)

    items = [
        {
            "id": row.content_id,
            "row_id": row.id,
            "version": row.version,
            "state": row.state,
            "kind": row.kind,
            "title": localised(row, "title"),
            "summary": localised(row, "summary"),
            "language": row.language,
            "licence": row.licence,
            "visibility": row.visibility,
            "subject": row.subject,
            "tags": tags.get(row.id, []),
            "author": {"id": row.author_id, "name": row.author_name},
            "school": {"id": row.school_id, "name": row.school_name}
            if row.school_id is not None
            else None,
            "district": {"id": row.district_id, "name": row.district_name},
            "published_at": _stamp(row.published_at),
            "updated_at": _stamp(row.updated_at),
            "source_content_id": row.source_content_id,
            "category": row.category,
            "grade": row.grade,
            "edition": row.edition,
            "capacity": row.capacity,
            "cover_url": row.cover_url,
        }
        for row in rows
    ]
    body = {
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": max(1, -(-total // per_page)),
    }
    return Response(json.dumps(body, ensure_ascii=False), mimetype="application/json")
