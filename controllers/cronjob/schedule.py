"""Schedules: spec.schedule (standard 5-field cron or @descriptors) in spec.timeZone.

As the v2 controller:
- `@every <Go duration>` is a constant delay from the previous time (whole seconds, at
  least one), as robfig/cron's ConstantDelaySchedule; other descriptors go to croniter.
- spec.timeZone (an IANA name) is the supported way to pick a zone; without it, times are
  in the controller-manager's zone, UTC here. A `CRON_TZ=` / `TZ=` prefix in the schedule
  still works (robfig/cron parses it) but earns an UnsupportedSchedule warning.
- mostRecentScheduleTime: start from status.lastScheduleTime (else the creation time),
  or from now - startingDeadlineSeconds when that is later; the most recent schedule time
  at or before now that lies after that start is the one to run, and how many were
  passed over is reported (over 100: a TooManyMissedTimes warning).
- The requeue for the next run is 100 ms after the next schedule time (nextScheduleDelta).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from controllers.common import objects

Obj = dict[str, Any]
NEXT_SCHEDULE_DELTA = 0.1
MAX_COUNTED_MISSES = 100_000  # counting stops here (Kubernetes estimates from the period)


class ScheduleError(ValueError):
    """An unparseable schedule or unknown time zone (the message is the Event's)."""


@dataclass(frozen=True)
class Schedule:
    expression: str
    zone: ZoneInfo | None  # None: UTC
    every: float | None = None  # `@every <duration>`: whole seconds (robfig ConstantDelaySchedule)

    def next_after(self, moment: datetime) -> datetime:
        if self.every is not None:
            return moment.replace(microsecond=0) + timedelta(seconds=self.every)
        start = moment.astimezone(self.zone or UTC)
        return croniter(self.expression, start).get_next(datetime).astimezone(UTC)


_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """time.ParseDuration for non-negative durations, in seconds."""
    text = text.strip()
    if text == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _GO_DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ScheduleError(f"time: invalid duration \"{text}\"")
    return total


def load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"invalid timeZone: {_quote(name)}: {exc}") from exc


def uses_tz_prefix(cronjob: Obj) -> bool:
    return "TZ" in str(objects.spec(cronjob).get("schedule") or "")


def parse(cronjob: Obj) -> Schedule:
    """The schedule of `cronjob`; ScheduleError when it cannot be used."""
    spec = objects.spec(cronjob)
    text = str(spec.get("schedule") or "").strip()
    zone: ZoneInfo | None = load_zone(spec["timeZone"]) if spec.get("timeZone") else None
    if text.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, text = text.partition(" ")
        try:
            zone = load_zone(prefix.split("=", 1)[1])
        except ScheduleError as exc:
            raise ScheduleError(f"unparseable schedule: {_quote(spec.get('schedule'))} : {exc}") from exc
        text = text.strip()
    if text.startswith("@every "):
        try:
            seconds = parse_go_duration(text[len("@every "):])
        except ScheduleError as exc:
            raise ScheduleError(f"unparseable schedule: {_quote(spec.get('schedule'))} : "
                                f"failed to parse duration {text}: {exc}") from exc
        return Schedule(text, zone, every=float(max(int(seconds), 1)))
    fields = text.split()
    if not text.startswith("@") and len(fields) != 5:
        raise ScheduleError(f"unparseable schedule: {_quote(spec.get('schedule'))} : "
                            f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    if not croniter.is_valid(text):
        raise ScheduleError(f"unparseable schedule: {_quote(spec.get('schedule'))} : invalid expression {text}")
    return Schedule(text, zone)


def _quote(value: Any) -> str:
    """Go's %q for a plain string."""
    return '"' + str(value or "").replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Missed:
    earliest: datetime
    most_recent: datetime | None
    count: int


def most_recent_schedule_time(cronjob: Obj, now: datetime, schedule: Schedule, *,
                              include_starting_deadline: bool = True) -> Missed:
    earliest = objects.parse_time(objects.status(cronjob).get("lastScheduleTime")) or objects.creation_time(cronjob)
    deadline = objects.spec(cronjob).get("startingDeadlineSeconds")
    if include_starting_deadline and deadline is not None:
        scheduling_deadline = now - timedelta(seconds=int(deadline))
        if scheduling_deadline > earliest:
            earliest = scheduling_deadline
    first = schedule.next_after(earliest)
    if now < first:
        return Missed(earliest, None, 0)
    most_recent, count = first, 1
    while count < MAX_COUNTED_MISSES:
        following = schedule.next_after(most_recent)
        if now < following:
            break
        most_recent, count = following, count + 1
    return Missed(earliest, most_recent, count)


def next_schedule_delay(cronjob: Obj, now: datetime, schedule: Schedule) -> float:
    """Seconds until just after the next schedule time (nextScheduleTimeDuration)."""
    missed = most_recent_schedule_time(cronjob, now, schedule, include_starting_deadline=False)
    base = missed.most_recent or missed.earliest
    return (schedule.next_after(base) - now).total_seconds() + NEXT_SCHEDULE_DELTA


def job_name(cronjob: Obj, scheduled: datetime) -> str:
    """`<cronjob>-<scheduled time in minutes since the epoch>` (getJobName)."""
    return f"{objects.name(cronjob)}-{int(scheduled.timestamp()) // 60}"


def rfc1123z(moment: datetime) -> str:
    """Go's time.RFC1123Z in UTC: `Mon, 02 Jan 2006 15:04:05 +0000`."""
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def rfc3339_in(moment: datetime, zone: ZoneInfo | None) -> str:
    """Go's time.RFC3339 in `zone` (`Z` for UTC)."""
    local = moment.astimezone(zone or UTC)
    if local.utcoffset() == timedelta(0):
        return local.strftime("%Y-%m-%dT%H:%M:%SZ")
    return local.isoformat(timespec="seconds")
