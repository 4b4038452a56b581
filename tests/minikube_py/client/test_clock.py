"""FakeClock: time moves only when the test says, and sleepers wake in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from minikube_py.client import Clock, FakeClock, RealClock, settle


async def test_sleepers_wake_in_order_when_time_advances() -> None:
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.ensure_future(sleeper(n, s)) for n, s in (("late", 10), ("early", 1), ("mid", 5))]
    await clock.wait_for_sleepers(3)
    assert clock.next_wakeup() == 1
    clock.advance(0.5)
    await settle()
    assert woke == []
    clock.advance(5)
    await settle()
    assert woke == ["early", "mid"] and clock.sleepers == 1
    clock.advance(100)
    await asyncio.gather(*tasks)
    assert woke == ["early", "mid", "late"] and clock.next_wakeup() is None


async def test_now_and_monotonic_move_together() -> None:
    clock = FakeClock(datetime(2030, 5, 1, tzinfo=UTC))
    clock.advance(90)
    assert clock.now() == datetime(2030, 5, 1, 0, 1, 30, tzinfo=UTC) and clock.monotonic() == 90
    clock.set_wall_time(datetime(2031, 1, 1, tzinfo=UTC))
    assert clock.now().year == 2031 and clock.monotonic() == 90
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_cancelled_sleeper_is_forgotten() -> None:
    clock = FakeClock()
    task = asyncio.ensure_future(clock.sleep(5))
    await clock.wait_for_sleepers(1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert clock.sleepers == 0
    clock.advance(10)  # popping a cancelled sleeper is harmless


async def test_zero_sleep_only_yields_and_wait_for_sleepers_times_out() -> None:
    clock = FakeClock()
    await clock.sleep(0)
    with pytest.raises(TimeoutError):
        await clock.wait_for_sleepers(1, timeout=0.01)


async def test_real_clock_is_a_clock() -> None:
    real = RealClock()
    assert isinstance(real, Clock) and isinstance(FakeClock(), Clock)
    assert real.now().tzinfo is UTC
    before = real.monotonic()
    await real.sleep(0)
    assert real.monotonic() >= before
