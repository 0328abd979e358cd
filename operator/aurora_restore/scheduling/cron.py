"""When an AuroraRestoreSchedule's runs are due: cron times, maintenance windows, catch-up and deadlines.

Pure functions of the spec and a clock (no Kubernetes, no `now()`), so every rule is unit-tested with fixed
clocks, time zones and daylight-saving changes.

Cron expressions have five fields and are read in the schedule's time zone (croniter). Daylight saving time:
a wall-clock time skipped by a spring-forward change runs at the first minute after the change; a wall-clock
time repeated by a fall-back change runs once (its first occurrence), so a daily run never runs twice.

Catch-up follows Kubernetes' CronJob (pkg/controller/cronjob/utils.go, mostRecentScheduleTime): of all the times
missed since the last one handled, only the most recent is started, and only while startingDeadlineSeconds has
not passed since it.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY = "(" + "|".join(DAYS) + ")"
_CLOCK = "([01][0-9]|2[0-3]):[0-5][0-9]"
# `Sat 01:00-05:00`, `Mon-Fri 22:00-02:00` (an end before the start crosses midnight), `* 01:00-05:00`.
WINDOW_PATTERN = rf"^(\*|{_DAY}(-{_DAY})?) {_CLOCK}-{_CLOCK}$"
# Five fields separated by spaces, each of digits, `*`, `,`, `/`, `-` and month or day names (JAN-DEC, SUN-SAT, any
# case), as a CronJob takes them; croniter checks each field. croniter's extensions are refused: `R` (random) and
# `H` (hashed) would make each turn compute a different due minute, and `?`, `L`, `W`, `#` are not CronJob syntax.
# RE2-compatible (the apiserver checks it too): no look-arounds.
_CRON_NAME = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT"
_CRON_FIELD = rf"([0-9*,/-]|(?i:{_CRON_NAME}))+"
CRON_PATTERN = rf"^{_CRON_FIELD}( +{_CRON_FIELD}){{4}}$"
# An IANA name (Europe/Berlin, UTC, America/Argentina/Buenos_Aires, Etc/GMT+5); zoneinfo decides if it exists.
TIME_ZONE_PATTERN = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"


def parse_cron(expression: str) -> str:
    """The expression, if it has five fields croniter accepts and that match some date; else ValueError."""
    if not re.match(CRON_PATTERN, expression.strip()):
        raise ValueError(f"{expression!r} is not a cron expression of five fields (minute hour day-of-month "
                         "month day-of-week) of digits, '*', ',', '/', '-' and month or day names, e.g. '30 2 * * *'")
    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=timezone.utc)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"{expression!r} is not a valid cron expression: it matches no date (e.g. 30 February)") \
            from None
    except (ValueError, KeyError) as error:  # croniter's errors are ValueErrors; KeyError for some bad names
        raise ValueError(f"{expression!r} is not a valid cron expression: {error}") from None
    return expression.strip()


def parse_time_zone(name: str) -> ZoneInfo:
    """The IANA time zone, else ValueError (like a CronJob's timeZone)."""
    if not re.match(TIME_ZONE_PATTERN, name):
        raise ValueError(f"{name!r} is not an IANA time zone name (e.g. Europe/Berlin, UTC)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC") from None


# --- cron times ----------------------------------------------------------------------------------------------------


def _is_second(moment: datetime) -> bool:
    """Whether this aware local time is the later of two instants with the same wall clock."""
    first = moment.replace(fold=0).astimezone(timezone.utc)
    return moment.astimezone(timezone.utc) != first


def next_time(expression: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first cron time strictly after `after` (UTC)."""
    iterator = croniter(expression, after.astimezone(tz))
    while True:
        moment = iterator.get_next(datetime)
        if moment.astimezone(timezone.utc) > after and not _is_second(moment.astimezone(tz)):
            return moment.astimezone(timezone.utc)


PERIOD_GAPS = 8


def period_seconds(expression: str, tz: ZoneInfo, after: datetime) -> float:
    """The schedule's period, for the AuroraRestoreScheduleMissed alert (last success older than 2 periods): the
    largest of the next PERIOD_GAPS gaps between due times, since a gap can vary (a weekday-only cron's Friday to
    Monday gap is three days; the largest keeps the alert from firing over a weekend)."""
    times = [next_time(expression, tz, after)]
    for _ in range(PERIOD_GAPS):
        times.append(next_time(expression, tz, times[-1]))
    return max((b - a).total_seconds() for a, b in zip(times, times[1:]))


def most_recent_time(expression: str, tz: ZoneInfo, earliest: datetime, now: datetime) -> datetime | None:
    """The latest cron time t with earliest < t <= now (UTC), or None: the one run a schedule owes at `now`."""
    # croniter's get_prev is exclusive of its start and works in whole seconds: start just after `now`.
    start = now.replace(microsecond=0) + timedelta(seconds=1)
    iterator = croniter(expression, start.astimezone(tz))
    while True:
        moment = iterator.get_prev(datetime)
        utc = moment.astimezone(timezone.utc)
        if utc <= earliest:
            return None
        if utc <= now and not _is_second(moment.astimezone(tz)):
            return utc


# --- maintenance windows -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Runs may start on `days` (0 = Monday) from `start` until `end` (the next day when end <= start)."""

    text: str
    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> "Window":
        if not re.match(WINDOW_PATTERN, text):
            raise ValueError(f"{text!r} is not a window like 'Sat 01:00-05:00', 'Mon-Fri 22:00-02:00' or "
                             "'* 01:00-05:00'")
        days_text, clocks = text.split(" ")
        start_text, end_text = clocks.split("-")
        start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
        if start == end:
            raise ValueError(f"window {text!r} opens and closes at the same time")
        if days_text == "*":
            days = frozenset(range(7))
        else:
            first, _, last = days_text.partition("-")
            a, b = DAYS.index(first), DAYS.index(last or first)
            days = frozenset((a + i) % 7 for i in range((b - a) % 7 + 1))  # Fri-Mon wraps over the weekend
        return cls(text, days, start, end)

    def openings(self, tz: ZoneInfo, around: datetime) -> list[tuple[datetime, datetime]]:
        """(opens, closes) in UTC for the days from a day before `around` to eight days after."""
        local_day = around.astimezone(tz).date()
        spans = []
        for offset in range(-2, 9):
            day = local_day + timedelta(days=offset)
            if day.weekday() in self.days:
                spans.append((_at(day, self.start, tz),
                              _at(day + timedelta(days=1 if self.end <= self.start else 0), self.end, tz)))
        return spans


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """A local wall-clock time as UTC (a time skipped by daylight saving maps to the hour after it)."""
    return datetime.combine(day, clock, tzinfo=tz).astimezone(timezone.utc)


def in_window(windows: list[Window], tz: ZoneInfo, moment: datetime) -> bool:
    """Whether `moment` is inside one of the windows; no windows means always."""
    if not windows:
        return True
    return any(opens <= moment < closes for window in windows for opens, closes in window.openings(tz, moment))


def next_opening(windows: list[Window], tz: ZoneInfo, after: datetime) -> datetime:
    """When the next window opens after `after` (UTC); every window opens at least once a week."""
    return min(opens for window in windows for opens, _ in window.openings(tz, after) if opens > after)


# --- the decision --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Start the run of `scheduled` now."""

    scheduled: datetime


@dataclass(frozen=True)
class Wait:
    """Nothing to start now; look again at `until`. `scheduled` is a due run waiting for a window to open."""

    until: datetime
    scheduled: datetime | None = None


@dataclass(frozen=True)
class Skip:
    """The run of `scheduled` can no longer start within its deadline: record it as skipped."""

    scheduled: datetime
    reason: str  # MissedWindow or MissedDeadline
    message: str


def decide(expression: str, tz: ZoneInfo, windows: list[Window], deadline_seconds: int | None,
           earliest: datetime, now: datetime) -> Start | Wait | Skip:
    """What a schedule owes at `now`, given the last time it handled (`earliest`: its last run or skip, else its
    creation). The most recent due time is started, unless startingDeadlineSeconds passed since it (skipped);
    outside every window it waits for the next opening, or is skipped at once when the deadline passes before."""
    following = next_time(expression, tz, now)
    due = most_recent_time(expression, tz, earliest, now)
    if due is None:
        return Wait(following)
    deadline = due + timedelta(seconds=deadline_seconds) if deadline_seconds is not None else None
    if deadline is not None and now > deadline:
        return Skip(due, "MissedDeadline", f"the run due at {due.isoformat()} could not start within "
                    f"startingDeadlineSeconds ({deadline_seconds}): skipped")
    if not in_window(windows, tz, now):
        opening = next_opening(windows, tz, now)
        if deadline is not None and opening > deadline:
            return Skip(due, "MissedWindow", f"the run due at {due.isoformat()} is outside every window and the "
                        f"next opens at {opening.isoformat()}, after startingDeadlineSeconds ({deadline_seconds}): "
                        "skipped")
        return Wait(min(opening, following), scheduled=due)
    return Start(due)


def placeholders(scheduled: datetime, tz: ZoneInfo) -> dict[str, str]:
    """{date} (YYYYMMDD) and {time} (HHMM) of the scheduled time, in the schedule's time zone."""
    local = scheduled.astimezone(tz)
    return {"{date}": local.strftime("%Y%m%d"), "{time}": local.strftime("%H%M")}
