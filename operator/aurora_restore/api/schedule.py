"""Pydantic models of the AuroraRestoreSchedule: AuroraRestores created on a cron schedule, like a CronJob's Jobs.

The template is an AuroraRestore spec whose target identifier may hold the placeholders {date} (YYYYMMDD) and
{time} (HHMM) of the scheduled time in the schedule's time zone. The run's spec, after substitution, is validated
as an ordinary AuroraRestoreSpec (here, and by the apiserver when the run is created).
"""

import copy
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from . import GROUP
from .models import ApiModel, AuroraRestoreSpec, Condition
from ..scheduling.cron import (
    CRON_PATTERN, TIME_ZONE_PATTERN, WINDOW_PATTERN, Window, parse_cron, parse_time_zone, placeholders,
)

SCHEDULE_KIND = "AuroraRestoreSchedule"
SCHEDULE_PLURAL = "aurorarestoreschedules"
SCHEDULE_SINGULAR = "aurorarestoreschedule"
SCHEDULE_SHORT_NAMES = ["ars"]
# On every run: the schedule's name (runs are listed by it) and the scheduled time (RFC 3339, UTC).
SCHEDULE_LABEL = f"{GROUP}/schedule"
SCHEDULED_TIME_ANNOTATION = f"{GROUP}/scheduled-time"
# A run is named <schedule>-<minutes since the epoch> (8 digits until the year 2160): a schedule name of at most
# 52 characters keeps it a 63-character DNS label, as a CronJob's Job names are.
SCHEDULE_NAME_MAX_LENGTH = 52
# The target identifier of a template: RDS's identifier rules, where {date} and {time} count as digits.
TEMPLATE_IDENTIFIER_PATTERN = r"^[a-zA-Z](-?([a-zA-Z0-9]|\{date\}|\{time\}))*$"
# Placeholder values that make no real time, only to validate a template before any run exists.
_SAMPLE_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)


def render_template(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The run's spec: the template with {date} and {time} substituted in target.clusterIdentifier."""
    spec = copy.deepcopy(template)
    target = spec.get("target")
    if isinstance(target, dict) and isinstance(target.get("clusterIdentifier"), str):
        identifier = target["clusterIdentifier"]
        for placeholder, value in values.items():
            identifier = identifier.replace(placeholder, value)
        target["clusterIdentifier"] = identifier
    return spec


class AuroraRestoreScheduleSpec(ApiModel):
    """When to create AuroraRestores from the template, and how many of their runs to keep."""

    schedule: str = Field(
        pattern=CRON_PATTERN, max_length=256,
        description="Cron expression of five fields (minute hour day-of-month month day-of-week), read in "
        "timeZone, e.g. '30 2 * * *': digits, '*', ',', '/', '-' and month/day names (JAN-DEC, SUN-SAT), as a "
        "CronJob takes them.",
    )
    time_zone: str = Field(
        default="UTC", pattern=TIME_ZONE_PATTERN, max_length=64,
        description="IANA time zone of schedule, windows and the {date}/{time} placeholders (default UTC).",
    )
    template: dict[str, Any] = Field(
        json_schema_extra={"type": "object", "properties": {}},  # crd.py puts the AuroraRestore spec's schema here
        description="The spec of each run: an AuroraRestore spec. target.clusterIdentifier may contain {date} "
        "(YYYYMMDD) and {time} (HHMM) of the scheduled time in timeZone.",
    )
    concurrency_policy: Literal["Forbid", "Replace", "Allow"] = Field(
        default="Forbid",
        description="Forbid (default): a due run waits while an earlier run is unfinished (two restores of one "
        "target cannot run together anyway); Replace: delete (cancel) the unfinished run and start the new one; "
        "Allow: start it regardless.",
    )
    suspend: bool = Field(default=False, description="Create no runs while true (runs already made go on).")
    starting_deadline_seconds: int | None = Field(
        default=None, ge=0,
        description="Skip a run that cannot start within this many seconds of its scheduled time (operator down, "
        "window closed, Forbid). Unset: it starts late, however late (only the most recent missed run).",
    )
    windows: list[str] = Field(
        default_factory=list,
        description="Maintenance windows in timeZone, e.g. 'Sat 01:00-05:00', 'Mon-Fri 22:00-02:00' (crossing "
        "midnight), '* 01:00-05:00'. A run due outside every window waits for the next opening. Empty: any time.",
        json_schema_extra={"items": {"type": "string", "pattern": WINDOW_PATTERN}},
    )
    successful_runs_history_limit: int = Field(
        default=3, ge=0, description="How many finished successful runs (Succeeded, or Planned for a dry run) to "
        "keep; older ones are deleted (each follows its own deletionPolicy).",
    )
    failed_runs_history_limit: int = Field(
        default=1, ge=0, description="How many finished failed runs (Failed, Cancelled) to keep.",
    )

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return parse_cron(value)

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        parse_time_zone(value)
        return value

    @field_validator("windows")
    @classmethod
    def _valid_windows(cls, value: list[str]) -> list[str]:
        for text in value:
            Window.parse(text)
        return value

    @model_validator(mode="after")
    def _template_makes_valid_runs(self) -> "AuroraRestoreScheduleSpec":
        """The run's spec is validated as an AuroraRestore's, with placeholder values of the right width."""
        self.run_spec(_SAMPLE_TIME)
        return self

    @property
    def zone(self):
        return parse_time_zone(self.time_zone)

    @property
    def parsed_windows(self) -> list[Window]:
        return [Window.parse(text) for text in self.windows]

    def run_spec(self, scheduled: datetime) -> dict[str, Any]:
        """The spec of the run scheduled at `scheduled` (as written, placeholders filled in); ValueError naming the
        template's field when it is not a valid AuroraRestore spec."""
        spec = render_template(self.template, placeholders(scheduled, self.zone))
        try:
            AuroraRestoreSpec.model_validate(spec)
        except ValidationError as error:
            problems = []
            for item in error.errors(include_input=False, include_url=False):
                location = ".".join(str(part) for part in item["loc"])
                problems.append(f"template.{location}: {item['msg']}" if location else item["msg"])
            raise ValueError("the runs' spec would be invalid: " + "; ".join(problems)) from None
        return spec


class ActiveRun(ApiModel):
    """An unfinished run."""

    name: str = Field(description="The AuroraRestore's name.")
    uid: str = Field(description="The AuroraRestore's UID.")


class ScheduleCondition(Condition):
    """A Kubernetes-style condition of the schedule."""

    type: str = Field(description="Ready, Suspended or InvalidSchedule.")


class AuroraRestoreScheduleStatus(ApiModel):
    """What the schedule did last and does next."""

    observed_generation: int | None = Field(default=None, description="The generation this status describes.")
    last_schedule_time: datetime | None = Field(default=None, description="Scheduled time of the last run created.")
    last_successful_time: datetime | None = Field(
        default=None, description="When the last successful run finished (Succeeded, or Planned for a dry run)."
    )
    last_skipped_time: datetime | None = Field(
        default=None, description="Scheduled time of the last run skipped (window or deadline missed)."
    )
    next_schedule_time: datetime | None = Field(default=None, description="The next scheduled time.")
    active: list[ActiveRun] = Field(default_factory=list, description="The unfinished runs.")
    conditions: list[ScheduleCondition] = Field(
        default_factory=list, description="Ready, Suspended and InvalidSchedule."
    )
    message: str | None = Field(default=None, description="What the schedule is doing or waiting for.")
