"""Time, injectable: every timer in the client runtime goes through a `Clock`.

Controllers, work queues, leader election and the event recorder never call
`asyncio.sleep` or `time` directly; they ask the clock they were given. Production code
uses `RealClock`; tests use `FakeClock`, whose time moves only when the test calls
`advance()`, so a test of "requeue after 30 s" or "the lease expires after 15 s" runs in
microseconds and is deterministic.

`now()` is wall-clock time (aware UTC, for timestamps written to objects); `monotonic()`
measures intervals (it never jumps). A `FakeClock` moves both together.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What the runtime needs to know about time."""

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (only differences matter)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller for `seconds` of this clock's time (<= 0: just yield)."""
        ...


class RealClock:
    """The system's clocks and `asyncio.sleep`."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class FakeClock:
    """A clock that stands still until the test advances it.

    Sleepers are kept in a heap by wake-up time; `advance(s)` moves time forward and
    wakes (in wake-up order) every sleeper whose time has come. Woken tasks run at the
    event loop's next turns, so a test usually advances and then awaits something
    (`settle()`, a queue item, a condition) to let them act.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2025, 1, 1, tzinfo=UTC)
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._changed: asyncio.Event | None = None

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._seq), future))
        self._notify()
        try:
            await future
        finally:
            if not future.done():  # cancelled: the heap entry is skipped when popped
                future.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` and wake every sleeper that is now due."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._elapsed += seconds
        while self._sleepers and self._sleepers[0][0] <= self._elapsed:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def set_wall_time(self, when: datetime) -> None:
        """Jump the wall clock (not the monotonic one) to `when`, e.g. to test skew."""
        self._start = when - timedelta(seconds=self._elapsed)

    @property
    def sleepers(self) -> int:
        """How many tasks are currently sleeping on this clock."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_wakeup(self) -> float | None:
        """Seconds until the earliest sleeper is due (None when nobody sleeps)."""
        due = [at for at, _, f in self._sleepers if not f.done()]
        return max(min(due) - self._elapsed, 0.0) if due else None

    async def wait_for_sleepers(self, count: int = 1, *, timeout: float = 5.0) -> None:
        """Wait (in real time, at most `timeout`) until `count` tasks sleep on the clock."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.sleepers < count:
            self._changed = self._changed or asyncio.Event()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.sleepers} sleepers on the fake clock, expected {count}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
            self._changed.clear()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()


async def settle(rounds: int = 20) -> None:
    """Let ready tasks run for a few event-loop turns (tests: after `advance`)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
