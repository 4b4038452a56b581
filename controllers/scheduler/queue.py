"""The scheduling queue: which pending pod to try next, and when to try again.

kube-scheduler's PriorityQueue (internal/queue/scheduling_queue.go) keeps three places:
- activeQ: pods ready to be tried, highest spec.priority first, then the earliest time
  they entered the queue (the PrioritySort plugin; Kubernetes orders by queue
  timestamp, not creationTimestamp, so a pod re-queued after a failure goes behind pods
  that were waiting).
- backoffQ: pods that failed recently and wait out a per-pod exponential backoff:
  1s after the first attempt, doubling per attempt, at most 10s.
- unschedulablePods: pods no node could take. They stay until a cluster event that
  could help one of the plugins that rejected them (a node added or updated, an
  assigned pod deleted, a PVC bound ...) moves them back, to backoffQ if their backoff
  has not expired yet, else to activeQ; or until they have waited 5 minutes, when a
  periodic flush (every 30s) moves them anyway.
A pod whose failure was not a plain "does not fit" (no rejecting plugin, e.g. an API
error), or that failed while a cluster event happened during its own cycle, goes to
backoffQ straight away so the event is not missed.

Time comes from an injected `Clock` (anything with `monotonic()`), so tests step time
instead of sleeping. Nothing here blocks: `pop()` returns None when no pod is ready,
and `next_wakeup()` says how long until one might be.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import time
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any, Protocol

from controllers.scheduler.framework import ClusterEvent
from controllers.scheduler.nodeinfo import object_key, pod_priority

Pod = Mapping[str, Any]
DEFAULT_POD_INITIAL_BACKOFF = 1.0
DEFAULT_POD_MAX_BACKOFF = 10.0
DEFAULT_POD_MAX_IN_UNSCHEDULABLE = 300.0
UNSCHEDULABLE_FLUSH_INTERVAL = 30.0
UNSCHEDULABLE_TIMEOUT = ClusterEvent("*", "UnschedulableTimeout")
FORCE_ACTIVATE = ClusterEvent("*", "ForceActivate")


class Clock(Protocol):
    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class QueuedPodInfo:
    """A pod in the queue, with its scheduling history."""

    pod: Pod
    key: str
    timestamp: float
    attempts: int = 0
    initial_attempt_timestamp: float | None = None
    unschedulable_plugins: frozenset[str] = frozenset()

    @property
    def priority(self) -> int:
        return pod_priority(self.pod)


def is_pod_updated(old: Pod, new: Pod) -> bool:
    """isPodUpdated: did anything but status, resourceVersion, generation, managedFields
    or finalizers change?"""
    def strip(pod: Pod) -> dict[str, Any]:
        stripped = copy.deepcopy(dict(pod))
        stripped.pop("status", None)
        meta = dict(stripped.get("metadata") or {})
        for name in ("resourceVersion", "generation", "managedFields", "finalizers"):
            meta.pop(name, None)
        stripped["metadata"] = meta
        return stripped
    return strip(old) != strip(new)


class SchedulingQueue:
    """activeQ, backoffQ and unschedulablePods (see module docstring)."""

    def __init__(self, clock: Clock | None = None, *,
                 cluster_event_map: Mapping[ClusterEvent, Set[str]] | None = None,
                 initial_backoff: float = DEFAULT_POD_INITIAL_BACKOFF,
                 max_backoff: float = DEFAULT_POD_MAX_BACKOFF,
                 max_in_unschedulable: float = DEFAULT_POD_MAX_IN_UNSCHEDULABLE) -> None:
        self.clock = clock or SystemClock()
        self.cluster_event_map = dict(cluster_event_map or {})
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_in_unschedulable = max_in_unschedulable
        self.scheduling_cycle = 0
        self._move_request_cycle = -1
        self._seq = itertools.count()
        self._active: dict[str, tuple[int, QueuedPodInfo]] = {}
        self._active_heap: list[tuple[int, float, int, str]] = []
        self._backoff: dict[str, tuple[int, QueuedPodInfo]] = {}
        self._backoff_heap: list[tuple[float, int, str]] = []
        self._unschedulable: dict[str, QueuedPodInfo] = {}
        self._in_flight: set[str] = set()
        self._last_leftover_flush = self.clock.monotonic()

    # --- placing pods -----------------------------------------------------------------
    def _to_active(self, info: QueuedPodInfo) -> None:
        self._backoff.pop(info.key, None)
        self._unschedulable.pop(info.key, None)
        seq = next(self._seq)
        self._active[info.key] = (seq, info)
        heapq.heappush(self._active_heap, (-info.priority, info.timestamp, seq, info.key))

    def _to_backoff(self, info: QueuedPodInfo) -> None:
        self._active.pop(info.key, None)
        self._unschedulable.pop(info.key, None)
        seq = next(self._seq)
        self._backoff[info.key] = (seq, info)
        heapq.heappush(self._backoff_heap, (self.backoff_expiry(info), seq, info.key))

    def _to_unschedulable(self, info: QueuedPodInfo) -> None:
        self._active.pop(info.key, None)
        self._backoff.pop(info.key, None)
        self._unschedulable[info.key] = info

    def _requeue(self, info: QueuedPodInfo) -> None:
        """requeuePodViaQueueingHint(queueAfterBackoff): backoffQ while backing off."""
        if self.is_backing_off(info):
            self._to_backoff(info)
        else:
            self._to_active(info)

    # --- backoff ------------------------------------------------------------------------
    def backoff_duration(self, info: QueuedPodInfo) -> float:
        """calculateBackoffDuration: 0 before any attempt, then 1s, 2s, 4s ... capped."""
        if info.attempts == 0:
            return 0.0
        duration = self.initial_backoff
        for _ in range(1, info.attempts):
            if duration > self.max_backoff - duration:
                return self.max_backoff
            duration += duration
        return duration

    def backoff_expiry(self, info: QueuedPodInfo) -> float:
        return info.timestamp + self.backoff_duration(info)

    def is_backing_off(self, info: QueuedPodInfo) -> bool:
        return self.backoff_expiry(info) > self.clock.monotonic()

    # --- informer-driven changes ----------------------------------------------------------
    def add(self, pod: Pod) -> None:
        """A new pending pod: straight to activeQ."""
        self._to_active(QueuedPodInfo(pod, object_key(pod), self.clock.monotonic()))

    def update(self, old: Pod | None, new: Pod) -> None:
        """A pending pod changed. In activeQ/backoffQ it is updated in place; in
        unschedulablePods a real spec change moves it back (it may fit now)."""
        key = object_key(new)
        for place in (self._active, self._backoff):
            if key in place:
                place[key][1].pod = new
                if place is self._active:
                    self._to_active(place[key][1])
                return
        info = self._unschedulable.get(key)
        if info is None:
            # Not queued: new to us, or being scheduled right now. Like Kubernetes, a
            # changed in-flight pod is queued again, and its failure then discarded.
            if key not in self._in_flight or old is None or is_pod_updated(old, new):
                self.add(new)
            return
        changed = is_pod_updated(old if old is not None else info.pod, new)
        info.pod = new
        if changed:
            self._requeue(info)

    def delete(self, pod: Pod) -> None:
        key = object_key(pod)
        self._active.pop(key, None)
        self._backoff.pop(key, None)
        self._unschedulable.pop(key, None)
        self._in_flight.discard(key)

    # --- the scheduling loop's side ----------------------------------------------------------
    def pop(self) -> QueuedPodInfo | None:
        """The next pod to schedule, or None. Starts a new scheduling cycle."""
        self.flush_backoff_completed()
        if self.clock.monotonic() - self._last_leftover_flush >= UNSCHEDULABLE_FLUSH_INTERVAL:
            self.flush_unschedulable_leftover()
        while self._active_heap:
            _, _, seq, key = heapq.heappop(self._active_heap)
            entry = self._active.get(key)
            if entry is None or entry[0] != seq:
                continue
            del self._active[key]
            info = entry[1]
            info.attempts += 1
            if info.initial_attempt_timestamp is None:
                info.initial_attempt_timestamp = self.clock.monotonic()
            self.scheduling_cycle += 1
            self._in_flight.add(key)
            return info
        return None

    def done(self, key: str) -> None:
        """The cycle of pod `key` is over (bound, or handed back)."""
        self._in_flight.discard(key)

    def add_unschedulable_if_not_present(self, info: QueuedPodInfo, pod_scheduling_cycle: int, *,
                                         unschedulable_plugins: Set[str] = frozenset()) -> None:
        """AddUnschedulableIfNotPresent: after a failed cycle. Rejected by plugins goes
        to unschedulablePods, unless a move request came during the cycle; anything else
        to backoffQ. A pod re-added meanwhile (an update) stays where it is."""
        self._in_flight.discard(info.key)
        if info.key in self._active or info.key in self._backoff or info.key in self._unschedulable:
            return
        info.timestamp = self.clock.monotonic()
        info.unschedulable_plugins = frozenset(unschedulable_plugins)
        if self._move_request_cycle >= pod_scheduling_cycle or not info.unschedulable_plugins:
            self._to_backoff(info)
        else:
            self._to_unschedulable(info)

    def move_all_to_active_or_backoff(self, event: ClusterEvent) -> int:
        """MoveAllToActiveOrBackoffQueue: requeue the unschedulable pods `event` may
        help. Returns how many moved."""
        wildcard = event.resource == "*"
        if not wildcard and not any(r.matches(event) for r in self.cluster_event_map):
            return 0
        moved = 0
        for info in list(self._unschedulable.values()):
            if wildcard or self._worth_requeuing(info, event):
                self._requeue(info)
                moved += 1
        self._move_request_cycle = self.scheduling_cycle
        return moved

    def _worth_requeuing(self, info: QueuedPodInfo, event: ClusterEvent) -> bool:
        if not info.unschedulable_plugins:
            return True
        return any(registered.matches(event) and plugins & info.unschedulable_plugins
                   for registered, plugins in self.cluster_event_map.items())

    def flush_backoff_completed(self) -> int:
        """Move pods whose backoff expired to activeQ; returns how many."""
        now, moved = self.clock.monotonic(), 0
        while self._backoff_heap and self._backoff_heap[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff_heap)
            entry = self._backoff.get(key)
            if entry is not None and entry[0] == seq:
                self._to_active(entry[1])
                moved += 1
        return moved

    def flush_unschedulable_leftover(self) -> int:
        """Requeue pods unschedulable for longer than 5 minutes; returns how many."""
        now = self._last_leftover_flush = self.clock.monotonic()
        stale = [i for i in self._unschedulable.values() if now - i.timestamp > self.max_in_unschedulable]
        for info in stale:
            self._requeue(info)
        return len(stale)

    # --- inspection ------------------------------------------------------------------------
    def next_wakeup(self) -> float | None:
        """Seconds until a backing-off or long-unschedulable pod may become ready."""
        now = self.clock.monotonic()
        times = [expiry for expiry, seq, key in self._backoff_heap
                 if key in self._backoff and self._backoff[key][0] == seq]
        if self._unschedulable:
            times.append(self._last_leftover_flush + UNSCHEDULABLE_FLUSH_INTERVAL)
        return max(0.0, min(times) - now) if times else None

    def pending_pods(self) -> dict[str, list[str]]:
        """Keys per place, activeQ in pop order (for debugging and `mkp` output)."""
        active = sorted(self._active.values(), key=lambda e: (-e[1].priority, e[1].timestamp, e[0]))
        return {"active": [info.key for _, info in active],
                "backoff": sorted(self._backoff, key=lambda k: self.backoff_expiry(self._backoff[k][1])),
                "unschedulable": sorted(self._unschedulable)}

    def __len__(self) -> int:
        return len(self._active) + len(self._backoff) + len(self._unschedulable)
