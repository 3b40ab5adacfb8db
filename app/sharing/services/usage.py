"""Publisher usage by subscriber district: counted from the ``learning_event`` signal of
the subscriber's own users, aggregated per item and day (no names, no statements), and
drawn as a server-side SVG chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from xml.sax.saxutils import escape

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.common.models import utcnow
from app.extensions import db
from app.sharing.models import SubscribedItem, Subscription, SubscriptionStatus, Usage

LAUNCH_VERBS = {"launched", "opened", "experienced", "played"}
COMPLETION_VERBS = {"completed", "passed"}


def record(user, verb: str, content_ids: list[str], result: dict | None) -> int:
    """Count one learning event for every subscription that gave the user's districts
    the item.  Returns the number of counters touched; the caller commits."""
    if user is None or not content_ids:
        return 0
    launches = int(verb in LAUNCH_VERBS)
    completions = int(verb in COMPLETION_VERBS)
    score = None
    if isinstance(result, dict) and isinstance(result.get("score"), dict):
        scaled = result["score"].get("scaled")
        if isinstance(scaled, int | float) and not isinstance(scaled, bool) and 0 <= scaled <= 1:
            score = float(scaled)
    if not (launches or completions or score is not None):
        return 0
    districts = user.member_district_ids()
    if not districts:
        return 0
    rows = db.session.execute(
        select(SubscribedItem.subscription_id, SubscribedItem.content_id)
        .join(Subscription, Subscription.id == SubscribedItem.subscription_id)
        .where(
            Subscription.subscriber_district_id.in_(districts),
            Subscription.status == SubscriptionStatus.ACTIVE,
            SubscribedItem.content_id.in_(content_ids),
            SubscribedItem.withdrawn.is_(False),
        )
    ).all()
    if not rows:
        return 0
    # The writes in a savepoint: the caller may be the event's own transaction (an
    # in-transaction receiver), whose commit a failed counter must not fail.
    with db.session.begin_nested():
        _count(rows, launches, completions, score)
    return len(rows)


def _count(rows, launches: int, completions: int, score: float | None) -> None:
    today = utcnow().date()
    for subscription_id, content_id in rows:
        values = {
            "launches": Usage.launches + launches,
            "completions": Usage.completions + completions,
            "score_sum": Usage.score_sum + (score or 0.0),
            "score_count": Usage.score_count + (1 if score is not None else 0),
        }
        key = (
            (Usage.subscription_id == subscription_id)
            & (Usage.content_id == content_id)
            & (Usage.day == today)
        )
        # One atomic UPDATE; the first event of the day inserts (a racing worker's
        # insert makes ours fail, and the UPDATE then counts it).
        if db.session.execute(update(Usage).where(key).values(**values)).rowcount:
            continue
        try:
            with db.session.begin_nested():
                db.session.add(
                    Usage(
                        subscription_id=subscription_id,
                        content_id=content_id,
                        day=today,
                        launches=launches,
                        completions=completions,
                        score_sum=score or 0.0,
                        score_count=1 if score is not None else 0,
                    )
                )
        except IntegrityError:
            db.session.execute(update(Usage).where(key).values(**values))


@dataclass
class DistrictUsage:
    district: str
    launches: int
    completions: int
    average_score: float | None
    by_day: dict[date, int]


def usage_for_catalog(catalog_id: int, days: int = 30) -> list[DistrictUsage]:
    since = utcnow().date() - timedelta(days=days - 1)
    rows = db.session.execute(
        select(
            Subscription.id,
            Usage.day,
            func.sum(Usage.launches),
            func.sum(Usage.completions),
            func.sum(Usage.score_sum),
            func.sum(Usage.score_count),
        )
        .join(Subscription, Subscription.id == Usage.subscription_id)
        .where(Subscription.catalog_id == catalog_id, Usage.day >= since)
        .group_by(Subscription.id, Usage.day)
    ).all()
    found: dict[int, DistrictUsage] = {}
    sums: dict[int, list[float]] = {}
    for sub_id, day, launches, completions, score_sum, score_count in rows:
        entry = found.get(sub_id)
        if entry is None:
            sub = db.session.get(Subscription, sub_id)
            entry = found[sub_id] = DistrictUsage(sub.subscriber_district.name, 0, 0, None, {})
            sums[sub_id] = [0.0, 0]
        entry.launches += int(launches or 0)
        entry.completions += int(completions or 0)
        entry.by_day[day] = entry.by_day.get(day, 0) + int(launches or 0)
        sums[sub_id][0] += float(score_sum or 0)
        sums[sub_id][1] += int(score_count or 0)
    for sub_id, entry in found.items():
        if sums[sub_id][1]:
            entry.average_score = sums[sub_id][0] / sums[sub_id][1]
    return sorted(found.values(), key=lambda e: -e.launches)


COLOURS = ["#2f6f9f", "#c0504d", "#9bbb59", "#8064a2", "#f79646", "#4bacc6"]


def chart_svg(usage: list[DistrictUsage], days: int = 30, title: str = "") -> str:
    """Launches per day, one line per subscriber district (an accessible SVG)."""
    width, height, left, bottom = 640, 240, 40, 30
    today = utcnow().date()
    axis = [today - timedelta(days=days - 1 - i) for i in range(days)]
    peak = max([1] + [n for e in usage for n in e.by_day.values()])
    step = (width - left - 10) / max(1, days - 1)

    def y(value: int) -> float:
        return height - bottom - (height - bottom - 10) * value / peak

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" class="usage-chart">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#999"/>',
        f'<text x="{left - 6}" y="{y(peak) + 4:.0f}" text-anchor="end" font-size="11">'
        f"{peak}</text>",
        f'<text x="{left - 6}" y="{height - bottom + 4}" text-anchor="end" font-size="11">0</text>',
        f'<text x="{left}" y="{height - 8}" font-size="11">{axis[0]:%m-%d}</text>',
        f'<text x="{width - 10}" y="{height - 8}" font-size="11" text-anchor="end">'
        f"{axis[-1]:%m-%d}</text>",
    ]
    for n, entry in enumerate(usage):
        colour = COLOURS[n % len(COLOURS)]
        points = " ".join(
            f"{left + i * step:.1f},{y(entry.by_day.get(day, 0)):.1f}" for i, day in enumerate(axis)
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
            f"<title>{escape(entry.district)}: {entry.launches}</title></polyline>"
        )
        parts.append(
            f'<text x="{left + 8}" y="{18 + 14 * n}" font-size="12" fill="{colour}">'
            f"{escape(entry.district)} ({entry.launches})</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
