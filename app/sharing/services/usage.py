"""Publisher usage by subscriber district: counted from the ``learning_event`` signal of
the subscriber's own users, aggregated per item and day (no names, no statements), and
drawn as a server-side SVG chart.

Federated subscribers count the same way on their own instance and report the daily
counts upstream (:func:`report_upstream`, a scheduled job): a signed request per remote
subscription carrying, for each of the last days, ``{content_id: counts}`` — no user,
no statement, no actor id.  The publisher checks every value before storing anything and
*replaces* each reported day (:func:`receive_report`), so a re-sent day never doubles.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from sqlalchemy import Text, cast, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError

from app.accounts.models import RoleAssignment
from app.common.models import utcnow
from app.common.transaction import savepoint
from app.extensions import db
from app.sharing.models import (
    Release,
    RemoteSubscriber,
    RemoteUsage,
    SubscribedItem,
    Subscription,
    SubscriptionStatus,
    SyncLog,
    Usage,
)

log = logging.getLogger(__name__)

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
    rows = _read_ahead_rows(user, content_ids, districts)
    if rows is None:
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


# --- the subscriptions of a launch, read by the launch's own statement ---------------------
#
# Issue 14: the counter's SELECT was the one statement of a returning LTI launch besides the
# launch statement itself.  The launch now reads the same rows in its statement (a scalar
# subquery, PostgreSQL) and hands them over with :func:`read_ahead`; :func:`record` uses
# them instead of its SELECT when they answer exactly its question: the same transaction,
# user and item, and districts the read covered.  Nothing is cached across transactions,
# so no subscription write has to invalidate anything.

_AHEAD = "sharing_usage_read_ahead"


def subscriptions_column(content_id, user_id, user_district_id):
    """A scalar SQL expression (PostgreSQL) for a statement that reads a user: the active
    subscriptions giving ``content_id`` to her districts (those of her role assignments
    and ``user_district_id``, as :meth:`User.member_district_ids` has them), as JSON text
    ``[[subscription id, subscriber district id], ...]``, or NULL when there is none.
    The arguments are SQL expressions (a bind parameter, the read user's columns)."""
    pair = func.json_build_array(
        SubscribedItem.subscription_id, Subscription.subscriber_district_id
    )
    roles = select(RoleAssignment.district_id).where(RoleAssignment.user_id == user_id)
    return (
        # As text: the caller's result may be made unique by row, and a list is unhashable.
        select(cast(func.json_agg(aggregate_order_by(pair, SubscribedItem.subscription_id)), Text))
        .select_from(SubscribedItem)
        .join(Subscription, Subscription.id == SubscribedItem.subscription_id)
        .where(
            SubscribedItem.content_id == content_id,
            SubscribedItem.withdrawn.is_(False),
            Subscription.status == SubscriptionStatus.ACTIVE,
            or_(
                Subscription.subscriber_district_id == user_district_id,
                Subscription.subscriber_district_id.in_(roles),
            ),
        )
        .scalar_subquery()
    )


def read_ahead(user, districts: frozenset[int], content_id: str, found) -> None:
    """Keep, for this transaction's counter, what :func:`subscriptions_column` read
    (``found``) for ``user`` and ``content_id`` when her districts were ``districts``
    (taken from the same statement's rows)."""
    pairs = tuple((int(sub), int(district)) for sub, district in json.loads(found or "[]"))
    db.session.info[_AHEAD] = (
        db.session().get_transaction(),
        user.id,
        content_id,
        frozenset(districts),
        pairs,
    )


def _read_ahead_rows(user, content_ids: list[str], districts: set[int]):
    """The (subscription id, content id) rows of the read-ahead, or None when it does not
    answer this question (another transaction, user or item, or a district it did not
    cover: a role given after the read)."""
    ahead = db.session.info.get(_AHEAD)
    if ahead is None:
        return None
    transaction, user_id, content_id, covered, pairs = ahead
    if (
        transaction is not db.session().get_transaction()
        or user_id != user.id
        or set(content_ids) != {content_id}
        or not districts <= covered
    ):
        return None
    return [(sub, content_id) for sub, district in pairs if district in districts]


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
    """Usage of a catalog's items per subscriber district over the last ``days`` days:
    local subscriptions and, marked with their instance, federated ones."""
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
    remote_rows = db.session.execute(
        select(
            RemoteSubscriber.id,
            RemoteUsage.day,
            func.sum(RemoteUsage.launches),
            func.sum(RemoteUsage.completions),
            func.sum(RemoteUsage.score_sum),
            func.sum(RemoteUsage.score_count),
        )
        .join(RemoteSubscriber, RemoteSubscriber.id == RemoteUsage.remote_subscriber_id)
        .where(RemoteSubscriber.catalog_id == catalog_id, RemoteUsage.day >= since)
        .group_by(RemoteSubscriber.id, RemoteUsage.day)
    ).all()
    found: dict[tuple, DistrictUsage] = {}
    sums: dict[tuple, list[float]] = {}

    def name_of(key: tuple) -> str:
        if key[0] == "local":
            return db.session.get(Subscription, key[1]).subscriber_district.name
        remote = db.session.get(RemoteSubscriber, key[1])
        return f"{remote.district_name} ({urlsplit(remote.origin).netloc or remote.origin})"

    for kind, source in (("local", rows), ("remote", remote_rows)):
        for row_id, day, launches, completions, score_sum, score_count in source:
            key = (kind, row_id)
            entry = found.get(key)
            if entry is None:
                entry = found[key] = DistrictUsage(name_of(key), 0, 0, None, {})
                sums[key] = [0.0, 0]
            entry.launches += int(launches or 0)
            entry.completions += int(completions or 0)
            entry.by_day[day] = entry.by_day.get(day, 0) + int(launches or 0)
            sums[key][0] += float(score_sum or 0)
            sums[key][1] += int(score_count or 0)
    for key, entry in found.items():
        if sums[key][1]:
            entry.average_score = sums[key][0] / sums[key][1]
    return sorted(found.values(), key=lambda e: (-e.launches, e.district))


# --- federated subscribers: report upstream (subscriber) and receive (publisher) -----------

USAGE_PATH = "/sharing/federation/catalogs/{uid}/usage"
REPORT_DAYS_MAX = 62  # days in one report
REPORT_ITEMS_MAX = 20000  # items of one day
REPORT_AGE_MAX = 400  # days back a report may reach
_COUNTS = ("launches", "completions", "score_sum", "score_count")


class ReportRefused(Exception):
    """A usage report that cannot be stored; ``status`` is the HTTP answer (4xx)."""

    def __init__(self, reason: str, status: int = 422):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def report_body(subscription: Subscription, days: int) -> dict:
    """The report of one remote subscription: its last ``days`` days, every day listed
    (an empty day too, so a day whose counts vanished is replaced by nothing)."""
    today = utcnow().date()
    since = today - timedelta(days=days - 1)
    by_day: dict[date, dict] = {since + timedelta(days=i): {} for i in range(days)}
    for row in db.session.execute(
        select(
            Usage.day,
            Usage.content_id,
            Usage.launches,
            Usage.completions,
            Usage.score_sum,
            Usage.score_count,
        ).where(Usage.subscription_id == subscription.id, Usage.day >= since)
    ):
        by_day.setdefault(row.day, {})[row.content_id] = {
            "launches": row.launches,
            "completions": row.completions,
            "score_sum": round(float(row.score_sum), 6),
            "score_count": row.score_count,
        }
    return {
        "catalog": subscription.remote_catalog_uid,
        "request_id": subscription.remote_request_id,
        "days": [{"day": day.isoformat(), "items": items} for day, items in sorted(by_day.items())],
    }


def report_upstream(days: int = 7) -> dict[int, str]:
    """Job (scheduled): send every active remote subscription's daily counts of the last
    ``days`` days to its publisher.  Idempotent: the publisher replaces each day."""
    from app.sharing.services import federation, keys
    from app.sharing.services.manifest import canonical

    days = max(1, min(int(days), REPORT_DAYS_MAX))
    outcome: dict[int, str] = {}
    subscriptions = db.session.execute(
        select(Subscription).where(
            Subscription.remote_origin.is_not(None),
            Subscription.status == SubscriptionStatus.ACTIVE,
        )
    ).scalars()
    for sub in list(subscriptions):
        body = canonical(report_body(sub, days))
        url = sub.remote_origin + USAGE_PATH.format(uid=sub.remote_catalog_uid)
        try:
            keys.allowed_origin(sub.remote_origin)
            response = federation._send("POST", url, body)
        except keys.FederationRefused as exc:
            outcome[sub.id] = f"usage report not delivered: {exc.reason}"
        else:
            outcome[sub.id] = (
                "usage report delivered"
                if response.status_code < 300
                else f"usage report refused: the publisher answered {response.status_code}"
            )
        ok = outcome[sub.id].endswith("delivered")
        if not ok:
            log.warning("sharing: subscription %s: %s", sub.id, outcome[sub.id])
        last = db.session.execute(
            select(SyncLog.ok, SyncLog.message)
            .where(SyncLog.subscription_id == sub.id)
            .order_by(SyncLog.id.desc())
            .limit(1)
        ).first()
        # Hourly reports must not push the sync history off the page: a success right
        # after the same success is not logged again.
        if not (ok and last is not None and last.ok and last.message == outcome[sub.id]):
            db.session.add(SyncLog(subscription_id=sub.id, ok=ok, message=outcome[sub.id]))
            db.session.flush()
    return outcome


def _whole_count(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
        raise ReportRefused(f"{name} must be a whole number from 0")
    return value


def receive_report(origin: str, uid: str, data) -> int:
    """Publisher: store a verified peer's usage report of one of our catalogs.  Every
    value is checked before anything is written; each day in it replaces the stored
    day.  Returns the number of rows stored."""
    from app.sharing.services.catalogs import catalog_by_uid
    from app.sharing.services.manifest import CONTENT_ID

    catalog = catalog_by_uid(uid)
    if not isinstance(data, dict) or set(data) != {"catalog", "request_id", "days"}:
        raise ReportRefused("the report must be an object with catalog, request_id and days")
    if data["catalog"] != catalog.uid:
        raise ReportRefused("the report names another catalog")
    request_id = data["request_id"]
    if not isinstance(request_id, str) or not CONTENT_ID.match(request_id):
        raise ReportRefused("bad request_id")
    subscriber = db.session.execute(
        select(RemoteSubscriber).filter_by(
            catalog_id=catalog.id, origin=origin, request_id=request_id
        )
    ).scalar_one_or_none()
    if subscriber is None or subscriber.status != SubscriptionStatus.ACTIVE:
        raise ReportRefused("no approved subscription of that instance to this catalog", 403)
    days = data["days"]
    if not isinstance(days, list) or len(days) > REPORT_DAYS_MAX:
        raise ReportRefused(f"days must be a list of at most {REPORT_DAYS_MAX}")
    known = _catalog_items(catalog.id)
    today = utcnow().date()
    clean: dict[date, list[dict]] = {}
    for entry in days:
        if not isinstance(entry, dict) or set(entry) != {"day", "items"}:
            raise ReportRefused("each day must be an object with day and items")
        try:
            day = date.fromisoformat(entry["day"]) if isinstance(entry["day"], str) else None
        except ValueError:
            day = None
        if day is None or len(entry["day"]) != 10:
            raise ReportRefused("day must be a date (YYYY-MM-DD)")
        if day > today + timedelta(days=1) or day < today - timedelta(days=REPORT_AGE_MAX):
            raise ReportRefused(f"day {day} is out of range")
        if day in clean:
            raise ReportRefused(f"day {day} is listed twice")
        items = entry["items"]
        if not isinstance(items, dict) or len(items) > REPORT_ITEMS_MAX:
            raise ReportRefused(f"items must be an object of at most {REPORT_ITEMS_MAX}")
        rows = []
        for content_id, counts in items.items():
            if not CONTENT_ID.match(content_id) or content_id not in known:
                raise ReportRefused(f"item {content_id[:40]!r} is not in this catalog")
            if not isinstance(counts, dict) or set(counts) != set(_COUNTS):
                raise ReportRefused(f"counts of {content_id} must be exactly {', '.join(_COUNTS)}")
            score_sum = counts["score_sum"]
            score_count = _whole_count(counts["score_count"], "score_count")
            if (
                not isinstance(score_sum, int | float)
                or isinstance(score_sum, bool)
                or not 0 <= score_sum <= score_count  # scaled scores lie in [0, 1]
            ):
                raise ReportRefused("score_sum must be a number from 0 to score_count")
            rows.append(
                {
                    "remote_subscriber_id": subscriber.id,
                    "day": day,
                    "content_id": content_id,
                    "launches": _whole_count(counts["launches"], "launches"),
                    "completions": _whole_count(counts["completions"], "completions"),
                    "score_sum": float(score_sum),
                    "score_count": score_count,
                    "received_at": utcnow(),
                }
            )
        clean[day] = rows
    stored = 0
    with savepoint():
        for day, rows in clean.items():
            db.session.execute(
                delete(RemoteUsage).where(
                    RemoteUsage.remote_subscriber_id == subscriber.id, RemoteUsage.day == day
                )
            )
            if rows:
                db.session.execute(insert(RemoteUsage), rows)
                stored += len(rows)
    return stored


def _catalog_items(catalog_id: int) -> set[str]:
    """Every content id any release of the catalog carried (usage of an item dropped
    later may still be reported for the days it was there)."""
    from app.sharing.services.subscriptions import _manifest

    known: set[str] = set()
    for row in db.session.execute(
        select(Release.id, Release.digest).where(Release.catalog_id == catalog_id)
    ):
        known.update(_manifest(Release, row.id, row.digest))
    return known


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
