"""The failed-daemon-pod backoff (flowcontrol.Backoff as the DaemonSet controller uses it).

A kubelet may reject a daemon pod again and again (say, a port conflict on the node); the
controller deletes each failed pod and creates a new one, and without a limit the two would
fight in a hot loop. Kubernetes keys a backoff per DaemonSet and node: the first failure is
acted on at once and starts a 1 s window; a failure inside the window waits for it to end
(the DaemonSet is requeued after the window); each failure acted on doubles the window, up to
15 minutes. An entry untouched for twice the maximum starts over. Times come from the caller
(the controller's clock), so tests drive it with a FakeClock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

INITIAL = timedelta(seconds=1)
MAXIMUM = timedelta(minutes=15)


@dataclass
class _Entry:
    backoff: timedelta
    last_update: datetime


class FailedPodsBackoff:
    """Per-key exponential backoff: `in_backoff`, `delay` and `next` as in flowcontrol.Backoff."""

    def __init__(self, initial: timedelta = INITIAL, maximum: timedelta = MAXIMUM) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, _Entry] = {}

    def delay(self, key: str) -> timedelta:
        """Get: the current window for `key` (zero when none)."""
        entry = self._entries.get(key)
        return entry.backoff if entry is not None else timedelta(0)

    def in_backoff(self, key: str, now: datetime) -> bool:
        """IsInBackOffSinceUpdate: `now` is inside the window opened by the last `next`."""
        entry = self._entries.get(key)
        return entry is not None and now - entry.last_update < entry.backoff

    def next(self, key: str, now: datetime) -> None:
        """Next: open (or double) the window for `key` starting at `now`."""
        entry = self._entries.get(key)
        if entry is None or now - entry.last_update > 2 * self.maximum:
            self._entries[key] = _Entry(self.initial, now)
            return
        entry.backoff = min(entry.backoff * 2, self.maximum)
        entry.last_update = now

    def gc(self, now: datetime) -> None:
        """GC: forget entries untouched for twice the maximum."""
        for key in [k for k, e in self._entries.items() if now - e.last_update > 2 * self.maximum]:
            del self._entries[key]
