"""The demo's calendars follow the school year they are loaded in, so `make run` in a
later year still has a term; between terms the last term is what the class followed."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from app.curriculum import demo, services

SPEC = Path(__file__).resolve().parents[2] / "content" / "curriculum" / "demo.yaml"


@pytest.mark.parametrize(
    ("today", "years"),
    [
        (date(2026, 8, 31), 0),  # the written school year, before its term starts
        (date(2027, 1, 22), 0),  # its last day
        (date(2027, 7, 31), 0),  # still that school year (the term has ended)
        (date(2027, 8, 1), 1),  # the next school year starts
        (date(2029, 10, 15), 3),
        (date(2025, 10, 1), 0),  # never moved backwards
    ],
)
def test_school_years_to_today(today, years):
    assert demo.school_years_to_today(date(2026, 9, 1), today) == years


def test_a_demo_calendar_moves_whole_years_with_its_holidays_code_and_title(monkeypatch):
    [entry, *_] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["calendars"]
    assert entry["follow_school_year"] is True
    monkeypatch.setattr(services, "today", lambda: date(2027, 10, 15))
    moved = demo._following_school_year(entry)
    assert (moved["term_start"], moved["term_end"]) == (date(2027, 9, 1), date(2028, 1, 22))
    assert moved["term"] == "2027-2028-1"
    assert moved["title"].startswith("2027学年第一学期")
    assert moved["holidays"][0]["start"] == date(2027, 10, 1)
    assert moved["week_kinds"] == entry["week_kinds"]
    # Loaded in the school year it was written for: unchanged.
    monkeypatch.setattr(services, "today", lambda: date(2026, 11, 30))
    same = demo._following_school_year(entry)
    assert (same["term"], str(same["term_start"])) == ("2026-2027-1", "2026-09-01")


def test_leap_day_moves_to_the_28th():
    assert demo._years_later(date(2028, 2, 29), 1) == date(2029, 2, 28)


def test_between_terms_the_last_ended_calendar_is_the_one_followed(klass):
    calendar = klass.calendar
    after = calendar.term_end + timedelta(days=1)
    assert services.effective_calendar(klass.school_class, "math", after) is None
    assert services.last_ended_calendar(klass.school_class, "math", after) == calendar
    # During the term there is no ended one yet, and another edition has none at all.
    assert services.last_ended_calendar(klass.school_class, "math", calendar.term_end) is None
    assert services.last_ended_calendar(klass.school_class, "physics", after) is None


def test_the_portraits_demo_between_terms_simulates_the_whole_last_term(klass):
    from app.portraits import demo as portraits_demo

    calendar = klass.calendar
    result = portraits_demo.simulate_term(
        on=calendar.term_end + timedelta(days=40), students=2, rebuild=False
    )
    weeks = services.calendar_plan(calendar)
    assert result["weeks"] == len(weeks) > 0
    assert result["students"] == 2 + 1  # the class's own student and two simulated ones
