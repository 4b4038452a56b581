"""AGE-style cells: how long ago a timestamp was, the way `kubectl get` shows it.

A port of apimachinery's `util/duration` (HumanDuration, ShortHumanDuration) plus the
printers' `translateTimestampSince`. Kubernetes computes these on the server, so an
AGE cell of a real cluster reads "45s", "3m12s", "5h", "2d3h", "10d", "3y6d" -- users
compare them, so the thresholds below follow the Go code exactly, including its
truncation of negative durations toward zero (a clock up to 2s ahead still reads "0s").

Durations are handled as integer microseconds (Python's resolution) so the boundaries
fall where Go's nanosecond arithmetic puts them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

UNKNOWN = "<unknown>"

_SECOND = 1_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_GO_ZERO_TIME = datetime(1, 1, 1)


def _micros(d: timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * _SECOND + d.microseconds


def _trunc_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, like Go's."""
    q = abs(a) // b
    return q if a >= 0 else -q


def short_human_duration(d: timedelta) -> str:
    """ShortHumanDuration: one unit only ("5s", "3m", "4h", "12d", "2y")."""
    us = _micros(d)
    seconds = _trunc_div(us, _SECOND)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    minutes = us // _MINUTE
    if minutes < 60:
        return f"{minutes}m"
    hours = us // _HOUR
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"


def human_duration(d: timedelta) -> str:
    """HumanDuration: about two significant units ("2m5s", "5h10m", "3d4h", "2y12d")."""
    us = _micros(d)
    seconds = _trunc_div(us, _SECOND)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = us // _MINUTE
    if minutes < 10:
        s = (us // _SECOND) % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = us // _HOUR
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (metav1.Time or MicroTime) as an aware datetime.

    None for unset, empty, unparsable, or Go's zero time (0001-01-01T00:00:00Z), all
    of which Kubernetes treats as "not set".
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    if t.utcoffset() == timedelta(0) and t.replace(tzinfo=None) == _GO_ZERO_TIME:
        return None
    return t


def since(value: object, now: datetime) -> str:
    """translateTimestampSince: HumanDuration of now - timestamp; "<unknown>" if unset."""
    t = parse_time(value)
    if t is None:
        return UNKNOWN
    return human_duration(now - t)


def between(start: datetime, end: datetime) -> str:
    """HumanDuration of end - start (a Job's DURATION)."""
    return human_duration(end - start)


def utc_now() -> datetime:
    """The current time, timezone-aware, for callers that pass no `now`."""
    return datetime.now(UTC)
