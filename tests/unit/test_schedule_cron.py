"""The schedule's time logic (scheduling/cron.py) with fixed clocks: due times, catch-up, deadlines, windows, time
zones and daylight saving."""

import re
from datetime import datetime, timedelta, timezone

import pytest

from aurora_restore.scheduling.cron import (
    Skip, Start, Wait, Window, decide, in_window, most_recent_time, next_opening, next_time, parse_cron,
    parse_time_zone, placeholders,
)

UTC = parse_time_zone("UTC")
BERLIN = parse_time_zone("Europe/Berlin")
NEW_YORK = parse_time_zone("America/New_York")


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


# --- parsing -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("expression", ["* * * * *", "30 2 * * *", "*/15 1-5 * * Mon-Fri", "0 0 1 jan *",
                                        "0 0 1 JAN-mar sun,SAT"])
def test_five_field_expressions_are_accepted(expression):
    assert parse_cron(expression) == expression


@pytest.mark.parametrize("expression, says", [
    ("* * * *", "five fields"),
    ("* * * * * *", "five fields"),  # croniter's seconds field: not a CronJob schedule
    ("@hourly", "five fields"),
    ("61 * * * *", "not a valid cron expression"),
    ("*/0 * * * *", "not a valid cron expression"),
    ("0 0 31 2 *", "matches no date"),  # 31 February never comes
    # croniter's extensions, not CronJob syntax: R (random) and H (hashed) would move the due minute every turn.
    ("R * * * *", "five fields"),
    ("H * * * *", "five fields"),
    ("0 0 ? * *", "five fields"),
    ("0 0 L * *", "five fields"),
    ("0 0 1W * *", "five fields"),
    ("0 0 * * 1#2", "five fields"),
])
def test_invalid_expressions_are_refused_with_a_message(expression, says):
    with pytest.raises(ValueError, match=says):
        parse_cron(expression)


@pytest.mark.parametrize("name", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+5"])
def test_iana_time_zones_are_accepted(name):
    assert parse_time_zone(name).key == name


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "Europe/", ""])
def test_unknown_time_zones_are_refused(name):
    with pytest.raises(ValueError):
        parse_time_zone(name)


# --- cron times ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("expression", ["R * * * *", "H * * * *", "0 0 L * *"])
def test_the_crd_pattern_refuses_what_parse_cron_refuses(expression):
    from aurora_restore.api.crd import build_schedule_crd

    pattern = build_schedule_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["schedule"]["pattern"]
    assert "(?=" not in pattern and "(?!" not in pattern  # RE2 (the apiserver) has no look-arounds
    assert re.match(pattern, expression) is None and re.match(pattern, "*/15 1-5 * * Mon-Fri")


def test_next_time_is_deterministic():
    after = utc(2026, 1, 1, 12, 0, 30)
    for expression in ("* * * * *", "*/7 1-5 * * Mon-Fri", "0 0 1 jan *"):
        assert next_time(expression, BERLIN, after) == next_time(expression, BERLIN, after)


def test_next_time_is_strictly_after():
    assert next_time("* * * * *", UTC, utc(2026, 1, 1, 12, 0)) == utc(2026, 1, 1, 12, 1)
    assert next_time("* * * * *", UTC, utc(2026, 1, 1, 12, 0, 59)) == utc(2026, 1, 1, 12, 1)
    assert next_time("30 2 * * *", BERLIN, utc(2026, 1, 1)) == utc(2026, 1, 1, 1, 30)  # CET is UTC+1


def test_most_recent_time_includes_now_and_excludes_earliest():
    assert most_recent_time("* * * * *", UTC, utc(2026, 1, 1, 11), utc(2026, 1, 1, 12, 0)) == utc(2026, 1, 1, 12, 0)
    assert most_recent_time("* * * * *", UTC, utc(2026, 1, 1, 11), utc(2026, 1, 1, 12, 0, 30)) == utc(2026, 1, 1, 12)
    assert most_recent_time("* * * * *", UTC, utc(2026, 1, 1, 12), utc(2026, 1, 1, 12, 0, 59)) is None


def test_many_missed_times_give_only_the_most_recent():
    """CronJob's mostRecentScheduleTime: a week of missed hourly runs owes one run, the latest."""
    assert most_recent_time("0 * * * *", UTC, utc(2026, 1, 1), utc(2026, 1, 8, 5, 59)) == utc(2026, 1, 8, 5)


def test_summer_time_shifts_utc_but_not_the_wall_clock():
    assert next_time("30 2 * * *", BERLIN, utc(2026, 7, 1)) == utc(2026, 7, 1, 0, 30)  # CEST is UTC+2


def test_a_time_skipped_by_spring_forward_runs_at_the_first_minute_after():
    # Berlin 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 does not exist that day.
    assert next_time("30 2 * * *", BERLIN, utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1, 0)
    assert next_time("30 2 * * *", BERLIN, utc(2026, 3, 29, 1, 0)) == utc(2026, 3, 30, 0, 30)


def test_a_time_repeated_by_fall_back_runs_once():
    # Berlin 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 happens at 00:30 and 01:30 UTC.
    assert next_time("30 2 * * *", BERLIN, utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 0, 30)
    assert next_time("30 2 * * *", BERLIN, utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 26, 1, 30)
    assert most_recent_time("30 2 * * *", BERLIN, utc(2026, 10, 24), utc(2026, 10, 25, 1, 45)) == utc(2026, 10, 25, 0, 30)


def test_new_york_fall_back():
    # New York 2026-11-01: 02:00 EDT becomes 01:00 EST (06:00 UTC); 01:15 happens at 05:15 and 06:15 UTC.
    assert next_time("15 1 * * *", NEW_YORK, utc(2026, 11, 1)) == utc(2026, 11, 1, 5, 15)
    assert next_time("15 1 * * *", NEW_YORK, utc(2026, 11, 1, 5, 15)) == utc(2026, 11, 2, 6, 15)


def test_placeholders_are_the_local_date_and_time():
    assert placeholders(utc(2026, 12, 31, 23, 30), BERLIN) == {"{date}": "20270101", "{time}": "0030"}
    assert placeholders(utc(2026, 12, 31, 23, 30), UTC) == {"{date}": "20261231", "{time}": "2330"}


# --- windows -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, days", [
    ("Sat 01:00-05:00", {5}),
    ("Mon-Fri 22:00-02:00", {0, 1, 2, 3, 4}),
    ("Fri-Mon 01:00-02:00", {4, 5, 6, 0}),
    ("* 01:00-05:00", set(range(7))),
])
def test_windows_parse(text, days):
    assert Window.parse(text).days == days


@pytest.mark.parametrize("text", ["Sat 1:00-05:00", "Saturday 01:00-05:00", "Sat 01:00-01:00", "Sat 24:00-01:00",
                                  "Sat01:00-05:00", "Mon,Tue 01:00-02:00"])
def test_bad_windows_are_refused(text):
    with pytest.raises(ValueError):
        Window.parse(text)


def test_in_window_and_crossing_midnight():
    weeknights = [Window.parse("Mon-Fri 22:00-02:00")]
    # 2026-12-04 is a Friday: its window runs into Saturday 02:00; Saturday opens none.
    assert in_window(weeknights, UTC, utc(2026, 12, 4, 22, 0))
    assert in_window(weeknights, UTC, utc(2026, 12, 5, 1, 59))
    assert not in_window(weeknights, UTC, utc(2026, 12, 5, 2, 0))  # the end is exclusive
    assert not in_window(weeknights, UTC, utc(2026, 12, 5, 22, 30))
    assert not in_window(weeknights, UTC, utc(2026, 12, 4, 21, 59))
    assert in_window([], UTC, utc(2026, 12, 5, 22, 30))  # no windows: always


def test_windows_are_read_in_the_time_zone():
    saturday_night = [Window.parse("Sat 01:00-05:00")]
    # Saturday 2026-12-05 01:00 in Berlin is Friday 2026-12-05 00:00 UTC.
    assert in_window(saturday_night, BERLIN, utc(2026, 12, 5, 0, 0))
    assert not in_window(saturday_night, UTC, utc(2026, 12, 5, 0, 0))
    assert next_opening(saturday_night, BERLIN, utc(2026, 12, 1, 22)) == utc(2026, 12, 5, 0, 0)


def test_next_opening_skips_the_open_window():
    assert next_opening([Window.parse("* 01:00-05:00")], UTC, utc(2026, 12, 5, 2)) == utc(2026, 12, 6, 1)


# --- decide --------------------------------------------------------------------------------------------------------


def test_nothing_due_waits_until_the_next_time():
    assert decide("0 * * * *", UTC, [], None, utc(2026, 1, 1, 12), utc(2026, 1, 1, 12, 30)) == Wait(utc(2026, 1, 1, 13))


def test_due_starts_the_most_recent_time():
    assert decide("0 * * * *", UTC, [], None, utc(2026, 1, 1, 9), utc(2026, 1, 1, 12, 30)) == Start(utc(2026, 1, 1, 12))


def test_catch_up_after_downtime_only_within_the_deadline():
    earliest, now = utc(2026, 1, 1, 9), utc(2026, 1, 1, 12, 30)
    assert decide("0 * * * *", UTC, [], 3600, earliest, now) == Start(utc(2026, 1, 1, 12))
    skipped = decide("0 * * * *", UTC, [], 600, earliest, now)
    assert isinstance(skipped, Skip) and skipped.scheduled == utc(2026, 1, 1, 12)
    assert skipped.reason == "MissedDeadline" and "600" in skipped.message


def test_a_deadline_of_zero_allows_only_the_exact_second():
    assert decide("0 * * * *", UTC, [], 0, utc(2026, 1, 1, 11), utc(2026, 1, 1, 12)) == Start(utc(2026, 1, 1, 12))
    assert isinstance(decide("0 * * * *", UTC, [], 0, utc(2026, 1, 1, 11), utc(2026, 1, 1, 12, 0, 1)), Skip)


def test_outside_every_window_a_due_run_waits_for_the_opening():
    windows = [Window.parse("* 01:00-05:00")]
    decision = decide("0 * * * *", UTC, windows, None, utc(2026, 1, 1, 11, 30), utc(2026, 1, 1, 12, 30))
    assert decision == Wait(utc(2026, 1, 1, 13), scheduled=utc(2026, 1, 1, 12))  # wakes at the next cron time
    daily = decide("0 12 * * *", UTC, windows, None, utc(2026, 1, 1, 11), utc(2026, 1, 1, 12, 30))
    assert daily == Wait(utc(2026, 1, 2, 1), scheduled=utc(2026, 1, 1, 12))
    # At the opening the run starts, late but without a deadline.
    assert decide("0 12 * * *", UTC, windows, None, utc(2026, 1, 1, 11), utc(2026, 1, 2, 1)) == Start(
        utc(2026, 1, 1, 12))


def test_a_window_opening_after_the_deadline_skips_the_run_at_once():
    windows = [Window.parse("* 01:00-05:00")]
    decision = decide("0 12 * * *", UTC, windows, 3600, utc(2026, 1, 1, 11), utc(2026, 1, 1, 12, 0, 5))
    assert isinstance(decision, Skip) and decision.reason == "MissedWindow"
    assert decision.scheduled == utc(2026, 1, 1, 12) and "2026-01-02T01:00:00+00:00" in decision.message
    # A deadline that reaches the opening lets it wait.
    assert decide("0 12 * * *", UTC, windows, 14 * 3600, utc(2026, 1, 1, 11), utc(2026, 1, 1, 12, 0, 5)) == Wait(
        utc(2026, 1, 2, 1), scheduled=utc(2026, 1, 1, 12))


def test_inside_a_window_the_run_starts_on_time():
    windows = [Window.parse("Mon-Fri 22:00-02:00")]
    now = utc(2026, 12, 5, 1, 0, 2)  # Saturday 01:00:02, within Friday's window
    assert decide("0 * * * *", UTC, windows, 60, now - timedelta(hours=1), now) == Start(utc(2026, 12, 5, 1))
