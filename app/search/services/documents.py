"""Search documents: what a published course or resource looks like to the index."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC

from sqlalchemy import func, select

from app.catalog.models import Course, Resource, State
from app.curriculum import services as curriculum
from app.extensions import db
from app.search.whoosh_backend import fingerprint

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def plain_text(markup: str | None) -> str:
    if not markup:
        return ""
    text = _TAG.sub(" ", markup.replace("<br", "\n<br").replace("</p>", "</p>\n"))
    return _SPACE.sub(" ", html.unescape(text)).strip()


def alignment_terms(content_id: str) -> list[str]:
    """Curriculum words of a resource, as search indexes them: the title (Chinese and
    English) of every node it is aligned to, and of the unit and volume around it.

    The one place that reads :func:`app.curriculum.services.alignments_for_resource`;
    if its answer changes shape, this is what to adapt."""
    terms = [
        term.strip()
        for alignment in curriculum.alignments_for_resource(content_id)
        for term in alignment.terms
        if term and term.strip()
    ]
    return list(dict.fromkeys(terms))[:50]


def alignment_edition(content_id: str) -> str:
    """The textbook edition a resource is aligned to (its first alignment in textbook
    order), so the edition facet and filter find resources too; '' when unaligned."""
    return next(
        (a.edition for a in curriculum.alignments_for_resource(content_id) if a.edition), ""
    )


def chapter_content_ids(user, chapter: int) -> set[str]:
    """The resources under a chapter (section, lesson) of a textbook that ``user`` may
    see — the adapter to :func:`app.curriculum.filters.filter_content_ids`."""
    from app.curriculum.filters import filter_content_ids

    return filter_content_ids(user, None, chapter) or set()


def chapter_choices(edition: str | None = None) -> list[tuple[int, str]]:
    """(node id, label) of the chapters the search page's chapter filter offers."""
    from app.curriculum.filters import chapter_options

    return chapter_options(edition)


def _epoch(moment) -> int:
    if moment is None:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def document_for(obj: Course | Resource) -> dict:
    """The search document of a published course or resource."""
    is_course = isinstance(obj, Course)
    en = (obj.translations or {}).get("en", {}) or {}
    body_parts = [plain_text(obj.description_html), plain_text(en.get("description_html"))]
    if is_course:
        for section in obj.sections:
            body_parts.append(section.title or "")
            body_parts.append(section.summary or "")
            body_parts.extend(item.title or "" for item in section.items)
        grades = [obj.grade] if obj.grade else []
        terms = []
        edition = obj.edition or ""
    else:
        grades = list(obj.grades)
        terms = alignment_terms(obj.content_id)
        edition = alignment_edition(obj.content_id)
    doc = {
        "id": f"{'course' if is_course else 'resource'}:{obj.content_id}",
        "type": "course" if is_course else "resource",
        "content_id": obj.content_id,
        "version": obj.version,
        "kind": obj.kind,
        "subject": obj.subject or "",
        "grade": grades,
        "edition": edition,
        "category": (obj.category or "") if is_course else "",
        "language": obj.language or "",
        "licence": obj.licence or "",
        "district": str(obj.district_id),
        "school": str(obj.school_id or ""),
        "visibility": str(obj.visibility),  # a StrEnum, or its value before a flush
        "author": obj.author.public_id if obj.author else "",
        "published": _epoch(obj.published_at),
        "usage": int(getattr(obj, "usage_count", 0) or 0),
        "title": obj.title,
        "title_en": en.get("title") or "",
        "summary": obj.summary or "",
        "summary_en": en.get("summary") or "",
        "body": " ".join(p for p in body_parts if p)[:5000],
        "tags": [tag.name for tag in obj.tags],
        "terms": terms,
        "url": f"/{'courses' if is_course else 'resources'}/{obj.content_id}",
    }
    doc["fingerprint"] = fingerprint(doc)
    return doc


def iter_documents(batch: int = 200) -> Iterator[dict]:
    """Every published course and resource as a document, streamed in batches."""
    for model in (Resource, Course):
        last_id = 0
        while True:
            rows = (
                db.session.execute(
                    select(model)
                    .where(model.state == State.PUBLISHED, model.id > last_id)
                    .order_by(model.id)
                    .limit(batch)
                )
                .scalars()
                .all()
            )
            if not rows:
                break
            for row in rows:
                yield document_for(row)
            last_id = rows[-1].id
            db.session.expunge_all()


def count_documents() -> int:
    return sum(
        db.session.execute(select(func.count(m.id)).where(m.state == State.PUBLISHED)).scalar_one()
        for m in (Resource, Course)
    )
