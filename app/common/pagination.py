"""Page/per-page pagination shared by every list endpoint and page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.errors import Invalid
from app.extensions import db

MAX_PER_PAGE = 100
MAX_PAGE = 10_000


class PageNumbers:
    """Page arithmetic for a result with ``page``, ``per_page`` and ``total``."""

    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1


@dataclass
class Page(PageNumbers):
    items: list
    page: int
    per_page: int
    total: int


def check_page_args(page: int, per_page: int) -> None:
    errors = {}
    if page < 1 or page > MAX_PAGE:
        errors["page"] = [f"Must be between 1 and {MAX_PAGE}."]
    if per_page < 1 or per_page > MAX_PER_PAGE:
        errors["per_page"] = [f"Must be between 1 and {MAX_PER_PAGE}."]
    if errors:
        raise Invalid("Invalid pagination.", fields=errors)


def paginate(
    statement, page: int = 1, per_page: int = 20, count_statement=None, count=None
) -> Page:
    """Run ``statement`` for one page; ``count_statement`` counts without ORDER BY work;
    ``count`` (a function of the count statement, e.g. a cached one) runs it."""
    check_page_args(page, per_page)
    if count_statement is None:
        count_statement = select(func.count()).select_from(statement.order_by(None).subquery())
    if count is None:
        total = db.session.execute(count_statement).scalar_one()
    else:
        total = count(count_statement)
    items = (
        db.session.execute(statement.limit(per_page).offset((page - 1) * per_page)).scalars().all()
    )
    return Page(items=list(items), page=page, per_page=per_page, total=total)
