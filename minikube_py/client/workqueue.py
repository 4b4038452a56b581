"""The work queue of keys between informers and reconcilers, with client-go's semantics.

What makes it more than an `asyncio.Queue`:

- De-duplication. A key added ten times before a worker takes it is processed once:
  reconcile reads the current state, so one pass covers every change.
- One worker per key. A key being processed that is added again is not handed to a
  second worker; it is queued again when the first calls `done()`.
- Delays. `add_after(key, seconds)` (on the injectable clock) for "look again in 30 s";
  a key already waiting keeps the earlier of its two times.
- Per-key exponential backoff. `add_rate_limited(key)` waits 5 ms, 10 ms, 20 ms, ...
  up to 1000 s for a key that keeps failing (the item part of client-go's
  DefaultControllerRateLimiter); `forget(key)` after a success starts it over.

`get()` hands out keys in FIFO order and waits when there are none; after `shutdown()`
it still hands out what is queued, then raises `ShutDown`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from minikube_py.client.clock import Clock, RealClock

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down and has nothing left to hand out."""


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float:
        """Seconds to wait before `item` may be processed again (records a failure)."""
        ...

    def forget(self, item: Hashable) -> None: ...

    def num_requeues(self, item: Hashable) -> int: ...


class ItemExponentialFailureRateLimiter:
    """base * 2**failures, capped: 5 ms, 10 ms, 20 ms ... 1000 s by default."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exponent = self._failures.get(item, 0)
        self._failures[item] = exponent + 1
        if exponent > 64:  # 2**64 * base is beyond any cap, and floats would overflow later
            return self.max_delay
        return min(self.base_delay * 2 ** exponent, self.max_delay)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class WorkQueue(Generic[K]):
    """A de-duplicating, delaying, rate-limited queue of hashable keys."""

    def __init__(self, name: str = "", *, clock: Clock | None = None,
                 rate_limiter: RateLimiter | None = None) -> None:
        self.name = name
        self.clock = clock or RealClock()
        self.rate_limiter: RateLimiter = rate_limiter or ItemExponentialFailureRateLimiter()
        # Keys ready to hand out, in order. Invariant: every key in _queue is in _dirty,
        # none is in _processing, and none appears twice.
        self._queue: deque[K] = deque()
        # Keys that need processing: queued, or re-added while being processed.
        self._dirty: set[K] = set()
        # Keys handed out by get() and not yet done(). A key in _processing and _dirty
        # is not in _queue: done() queues it, so no two workers ever hold one key.
        self._processing: set[K] = set()
        # Keys waiting for add_after: the time they become ready and their timer task.
        self._waiting: dict[K, tuple[float, asyncio.Task[None]]] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._changed = asyncio.Event()  # set on done / delayed add / shutdown, for waiters

    # -- adding -----------------------------------------------------------------------

    def add(self, item: K) -> None:
        """Mark `item` as needing processing (no-op if it already is, or after shutdown)."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return  # done() will queue it
        self._queue.append(item)
        self._wake_one()

    def add_after(self, item: K, delay: float) -> None:
        """Add `item` once `delay` seconds have passed on the clock."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        ready_at = self.clock.monotonic() + delay
        waiting = self._waiting.get(item)
        if waiting is not None:
            if waiting[0] <= ready_at:
                return  # already due sooner
            waiting[1].cancel()
        task = asyncio.get_running_loop().create_task(self._add_when_ready(item, ready_at),
                                                      name=f"workqueue {self.name} add_after")
        self._waiting[item] = (ready_at, task)

    async def _add_when_ready(self, item: K, ready_at: float) -> None:
        # The deadline was fixed by add_after: the task may start running later.
        await self.clock.sleep(ready_at - self.clock.monotonic())
        self._waiting.pop(item, None)
        self.add(item)
        self._changed.set()

    def add_rate_limited(self, item: K) -> None:
        """Add `item` after its backoff delay (which grows with each call until forget)."""
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: K) -> None:
        """Stop tracking `item`'s failures: its next backoff starts from the base again."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: K) -> int:
        return self.rate_limiter.num_requeues(item)

    # -- taking -----------------------------------------------------------------------

    async def get(self) -> K:
        """The next key, waiting for one; raises ShutDown once shut down and empty.
        The caller must call `done(key)` when finished with it."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # Woken and cancelled at once: pass the wake-up on, or a key could sit unseen.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                elif waiter in self._getters:
                    self._getters.remove(waiter)
                raise
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item: K) -> None:
        """Finished with `item`; if it was added meanwhile, it is queued again now."""
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._wake_one()
        self._changed.set()

    # -- lifecycle and introspection ----------------------------------------------------

    def shutdown(self) -> None:
        """Stop accepting keys and cancel delayed ones; getters drain what is queued."""
        self._shutting_down = True
        for _, task in self._waiting.values():
            task.cancel()
        self._waiting.clear()
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        self._changed.set()

    async def shutdown_with_drain(self) -> None:
        """Shut down, then wait until every handed-out key is done."""
        self.shutdown()
        while self._processing:
            self._changed.clear()
            await self._changed.wait()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Keys ready to hand out (not those in processing or waiting for a delay)."""
        return len(self._queue)

    def is_processing(self, item: K) -> bool:
        return item in self._processing

    def is_waiting(self, item: K) -> bool:
        return item in self._waiting

    @property
    def processing(self) -> int:
        return len(self._processing)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def wait_idle(self) -> None:
        """Wait until nothing is queued, processing or waiting for a delay."""
        while self._queue or self._processing or self._waiting:
            self._changed.clear()
            await self._changed.wait()

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
