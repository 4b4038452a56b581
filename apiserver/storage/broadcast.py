"""Fan-out of committed writes to live watchers, without touching the database.

Every write is published once, synchronously, right after its commit and in revision
order (all writes happen on the event-loop thread). Subscriptions are grouped by prefix,
so one write costs one `startswith` per distinct prefix plus one deque append per
matching watcher; the Event object is built once and shared (it is immutable).

Each subscription has a bounded buffer. A subscriber that lets it fill up is dropped on
the spot: it stops receiving, keeps what is already buffered, and its consumer gets
`WatchDroppedError` once that is drained. So one slow consumer neither holds up the
writer nor the other watchers, and memory per watcher stays bounded.
"""

from __future__ import annotations

import asyncio
from collections import deque

from apiserver.storage.interface import Event, WatchDroppedError


class Subscription:
    """One watcher's live buffer. The consumer calls `next()`; the broadcaster `push()`es."""

    __slots__ = ("prefix", "limit", "buffer", "waiter", "dropped", "closed")

    def __init__(self, prefix: str, limit: int) -> None:
        self.prefix = prefix
        self.limit = limit
        self.buffer: deque[Event] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.dropped = False
        self.closed = False

    def push(self, event: Event) -> bool:
        """Buffer one event; False when the buffer is full (the caller drops us)."""
        if len(self.buffer) >= self.limit:
            self.dropped = True
            self._wake()
            return False
        self.buffer.append(event)
        self._wake()
        return True

    def end(self) -> None:
        """Stop the stream: the consumer's next() returns None once awake."""
        self.closed = True
        self.buffer.clear()
        self._wake()

    async def next(self) -> Event | None:
        """The next buffered event; None when closed. Raises WatchDroppedError after a
        drop, once the events buffered before it are consumed."""
        while not self.buffer:
            if self.closed:
                return None
            if self.dropped:
                raise WatchDroppedError(f"watch on {self.prefix!r} fell more than {self.limit} events behind")
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return None if self.closed else self.buffer.popleft()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Broadcaster:
    """Subscriptions by prefix; `publish` delivers an event to every matching one."""

    def __init__(self) -> None:
        self._by_prefix: dict[str, set[Subscription]] = {}

    def __len__(self) -> int:
        return sum(len(subs) for subs in self._by_prefix.values())

    def subscribe(self, prefix: str, limit: int) -> Subscription:
        sub = Subscription(prefix, limit)
        self._by_prefix.setdefault(prefix, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._by_prefix.get(sub.prefix)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_prefix[sub.prefix]

    def publish(self, event: Event) -> None:
        if not self._by_prefix:
            return
        key = event.kv.key
        full: list[Subscription] = []
        for prefix, subs in self._by_prefix.items():
            if key.startswith(prefix):
                for sub in subs:
                    if not sub.push(event):
                        full.append(sub)
        for sub in full:
            self.unsubscribe(sub)

    def close(self) -> None:
        """End every subscription (the store is closing)."""
        for subs in list(self._by_prefix.values()):
            for sub in subs:
                sub.end()
        self._by_prefix.clear()
