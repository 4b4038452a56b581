"""AGE formatting: apimachinery's HumanDuration / ShortHumanDuration boundaries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apiserver.tables.duration import human_duration, parse_time, short_human_duration, since
from tests.apiserver.tables.helpers import NOW, ago


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        pytest.param(timedelta(0), "0s", id="zero"),
        pytest.param(timedelta(seconds=-1), "0s", id="clock-skew-1s-is-now"),
        pytest.param(timedelta(seconds=-1.5), "0s", id="clock-skew-truncates-toward-zero"),
        pytest.param(timedelta(seconds=-2), "<invalid>", id="future-beyond-tolerance"),
        pytest.param(timedelta(seconds=45), "45s", id="seconds"),
        pytest.param(timedelta(seconds=119.9), "119s", id="seconds-until-two-minutes"),
        pytest.param(timedelta(minutes=2), "2m", id="two-minutes"),
        pytest.param(timedelta(minutes=3, seconds=12), "3m12s", id="minutes-and-seconds"),
        pytest.param(timedelta(minutes=9, seconds=59), "9m59s", id="last-minute-with-seconds"),
        pytest.param(timedelta(minutes=10, seconds=30), "10m", id="ten-minutes-drops-seconds"),
        pytest.param(timedelta(minutes=179), "179m", id="minutes-until-three-hours"),
        pytest.param(timedelta(hours=3), "3h", id="three-hours"),
        pytest.param(timedelta(hours=5, minutes=10), "5h10m", id="hours-and-minutes"),
        pytest.param(timedelta(hours=7, minutes=59), "7h59m", id="last-hour-with-minutes"),
        pytest.param(timedelta(hours=8, minutes=30), "8h", id="eight-hours-drops-minutes"),
        pytest.param(timedelta(hours=47), "47h", id="hours-until-two-days"),
        pytest.param(timedelta(days=2), "2d", id="two-days"),
        pytest.param(timedelta(days=2, hours=3), "2d3h", id="days-and-hours"),
        pytest.param(timedelta(days=7, hours=23), "7d23h", id="last-day-with-hours"),
        pytest.param(timedelta(days=10, hours=5), "10d", id="days"),
        pytest.param(timedelta(days=729), "729d", id="days-until-two-years"),
        pytest.param(timedelta(days=730), "2y", id="two-years"),
        pytest.param(timedelta(days=365 * 3 + 6), "3y6d", id="years-and-days"),
        pytest.param(timedelta(days=365 * 9 + 6), "9y", id="many-years"),
    ],
)
def test_human_duration_matches_apimachinery(delta: timedelta, expected: str) -> None:
    assert human_duration(delta) == expected


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        pytest.param(timedelta(seconds=-3), "<invalid>", id="future"),
        pytest.param(timedelta(seconds=59), "59s", id="seconds"),
        pytest.param(timedelta(seconds=60), "1m", id="minute"),
        pytest.param(timedelta(minutes=59, seconds=59), "59m", id="minutes"),
        pytest.param(timedelta(hours=23, minutes=59), "23h", id="hours"),
        pytest.param(timedelta(days=364), "364d", id="days"),
        pytest.param(timedelta(days=366), "1y", id="years"),
    ],
)
def test_short_human_duration_keeps_one_unit(delta: timedelta, expected: str) -> None:
    assert short_human_duration(delta) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, "<unknown>", id="unset"),
        pytest.param("", "<unknown>", id="empty"),
        pytest.param("0001-01-01T00:00:00Z", "<unknown>", id="go-zero-time"),
        pytest.param("not a time", "<unknown>", id="unparsable"),
        pytest.param(ago(minutes=5), "5m", id="rfc3339"),
        pytest.param("2025-03-01T11:59:30.123456Z", "29s", id="micro-time"),
        pytest.param("2025-03-01T13:00:00+02:00", "60m", id="offset"),
    ],
)
def test_since_translates_timestamps(value: str | None, expected: str) -> None:
    assert since(value, NOW) == expected


def test_parse_time_rejects_zero_time_only_exactly() -> None:
    assert parse_time("0001-01-01T00:00:01Z") is not None
