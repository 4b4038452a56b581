"""A watch stream: replay history from the log, then hand over to live events.

The order of operations is what makes it gap-free and duplicate-free:

1. subscribe to live events first (done by the store when `watch()` is called), noting
   the store revision S at that moment: every live event will have a revision > S;
2. replay rows with revision in (R, S] from the database, a page at a time;
3. stream the live buffer, skipping anything at or below the last revision delivered
   (a safety net; with step 1 done synchronously there are none).

Replay reads the log lazily, so a watch from far back costs memory for one page, not
for the whole backlog; live events that arrive meanwhile wait in the bounded buffer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from apiserver.storage.broadcast import Subscription
from apiserver.storage.interface import Event

# (after, upto) -> (events, done): the next page of events with after < revision <= upto
# in revision order, and whether that was the last page. Raises CompactedError if `after`
# was compacted away meanwhile.
ReplayFn = Callable[[int, int], tuple[list[Event], bool]]


class LogWatcher:
    """Implements the `Watcher` protocol of interface.py."""

    def __init__(self, sub: Subscription, *, after: int, upto: int, replay: ReplayFn,
                 on_close: Callable[[Subscription], None]) -> None:
        self._sub = sub
        self._last = after  # revision of the last event delivered (or the start)
        self._upto = upto
        self._replay: ReplayFn | None = replay if after < upto else None
        self._page: deque[Event] = deque()
        self._on_close = on_close
        self._closed = False

    def __aiter__(self) -> LogWatcher:
        return self

    async def __anext__(self) -> Event:
        if self._closed:
            raise StopAsyncIteration
        if self._replay is not None or self._page:
            event = self._next_replayed()
            if event is not None:
                return event
        while True:
            event = await self._sub.next()
            if event is None or self._closed:
                raise StopAsyncIteration
            if event.kv.mod_revision > self._last:
                self._last = event.kv.mod_revision
                return event

    def _next_replayed(self) -> Event | None:
        if not self._page and self._replay is not None:
            try:
                events, done = self._replay(self._last, self._upto)
            except BaseException:
                self.close()
                raise
            self._page.extend(events)
            if done:
                self._replay = None
            if not self._page:
                return None
        event = self._page.popleft()
        self._last = event.kv.mod_revision
        return event

    def close(self) -> None:
        """Stop the stream; a pending or later `__anext__` ends the iteration."""
        if not self._closed:
            self._closed = True
            self._replay = None
            self._page.clear()
            self._on_close(self._sub)
            self._sub.end()
