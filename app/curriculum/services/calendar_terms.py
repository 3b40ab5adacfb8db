"""Term arithmetic of teaching calendars: weeks, teaching days, holidays, the default spread."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from app.curriculum.models import (
    TeachingCalendar,
)
from app.errors import Invalid

MAX_WEEKS = 40


def today() -> date:
    """Today in the platform's time zone (school days are local days)."""
    zone = current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "Asia/Shanghai"
    return datetime.now(ZoneInfo(zone)).date()


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def parse_date(value, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise Invalid("Invalid date.", fields={name: [f"Not a date: {value!r}."]}) from None


def holiday_days(holidays: list[dict]) -> set[date]:
    days = set()
    for holiday in holidays:
        start, end = (
            parse_date(holiday["start"], "holidays"),
            parse_date(holiday["end"], "holidays"),
        )
        while start <= end:
            days.add(start)
            start += timedelta(days=1)
    return days


def term_weeks(term_start: date, term_end: date, holidays: list[dict]) -> list[dict]:
    """Weeks of a term (Monday to Sunday, clipped to the term) with their teaching days."""
    off = holiday_days(holidays)
    weeks = []
    start, number = monday(term_start), 1
    while start <= term_end and number <= MAX_WEEKS + 20:
        first, last = max(start, term_start), min(start + timedelta(days=6), term_end)
        teaching = sum(
            1
            for i in range((last - first).days + 1)
            if (first + timedelta(days=i)).weekday() < 5 and first + timedelta(days=i) not in off
        )
        weeks.append(
            {"week": number, "starts_on": first, "ends_on": last, "teaching_days": teaching}
        )
        start += timedelta(days=7)
        number += 1
    return weeks


def spread_lessons(
    lessons: list[int], weeks: list[dict], lessons_per_week: int
) -> dict[int, list[int]]:
    """Spread ``lessons`` in order over the teaching weeks, in proportion to each week's
    teaching time (a holiday week takes fewer, a week without school days none)."""
    capacity = [lessons_per_week * w["teaching_days"] / 5 for w in weeks]
    total = sum(capacity)
    plan: dict[int, list[int]] = {w["week"]: [] for w in weeks}
    if not lessons or total <= 0:
        return plan
    bounds, running = [], 0.0
    for cap in capacity:
        running += cap
        bounds.append(running)
    index = 0
    for i, lesson in enumerate(lessons):
        target = (i + 0.5) * total / len(lessons)
        while index < len(weeks) - 1 and (bounds[index] <= target or capacity[index] == 0):
            index += 1
        plan[weeks[index]["week"]].append(lesson)
    return plan


def validate_term(term_start: date, term_end: date, holidays: list[dict]) -> None:
    errors = {}
    if term_end < term_start:
        errors["term_end"] = ["The term ends before it starts."]
    elif (term_end - term_start).days > 7 * MAX_WEEKS:
        errors["term_end"] = [f"A term has at most {MAX_WEEKS} weeks."]
    for i, holiday in enumerate(holidays):
        start = parse_date(holiday.get("start"), f"holidays[{i}].start")
        end = parse_date(holiday.get("end"), f"holidays[{i}].end")
        if end < start:
            errors[f"holidays[{i}]"] = ["The holiday ends before it starts."]
        elif start < term_start or end > term_end:
            errors[f"holidays[{i}]"] = [
                f"{holiday.get('name') or 'Holiday'} ({start} to {end}) is outside the term "
                f"({term_start} to {term_end})."
            ]
    if errors:
        raise Invalid("The calendar is not valid.", fields=errors)


def holiday_entry(data: dict) -> dict:
    return {
        "name": str(data.get("name") or "")[:100],
        "start": parse_date(data.get("start"), "holidays").isoformat(),
        "end": parse_date(data.get("end"), "holidays").isoformat(),
    }


def week_number(calendar: TeachingCalendar, day: date) -> int:
    """The calendar week containing ``day`` (may be outside 1..last for days off term);
    ``calendar``: anything with its ``term_start`` (a ``FollowedCalendar`` row too)."""
    return (monday(day) - monday(calendar.term_start)).days // 7 + 1
