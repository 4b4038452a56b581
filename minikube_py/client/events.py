"""`EventRecorder`: core/v1 Events the way client-go's tools/record writes them.

`kubectl describe` and `kubectl get events` show what controllers record here, so the
objects look like a real cluster's:

- name `<involved object name>.<hex nanoseconds>`, in the object's namespace
  ("default" for cluster-scoped objects such as Nodes);
- involvedObject (kind, namespace, name, uid, apiVersion, resourceVersion, fieldPath),
  reason, message, type Normal | Warning, source {component, host},
  firstTimestamp / lastTimestamp, count, reportingComponent / reportingInstance.

Correlation, as client-go's EventCorrelator:
- Dedup: the same (source, object, type, reason, message) seen again within 10 minutes
  PATCHes the existing Event's count and lastTimestamp instead of creating another
  (`kubectl describe` shows "x5 over 3m").
- Similar-message aggregation: more than 10 different messages for the same (source,
  object, type, reason) within 10 minutes are folded into one Event whose message says
  "(combined from similar events): <latest message>".

Recording never blocks the caller: `event()` puts the event on a bounded queue (1000)
drained by one background task; when the queue is full the event is dropped and
logged, as client-go does. A failed write is logged and dropped; Events are best effort.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from minikube_py.client.clock import Clock, RealClock
from minikube_py.client.errors import ApiError
from minikube_py.client.resources import EVENTS
from minikube_py.client.rest import ApiClient

log = logging.getLogger("minikube_py.client.events")

Obj = dict[str, Any]
NORMAL, WARNING = "Normal", "Warning"
AGGREGATION_WINDOW = timedelta(minutes=10)
MAX_SIMILAR = 10  # distinct messages per (object, reason) before they are combined
COMBINED_PREFIX = "(combined from similar events): "
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_time(when: datetime) -> str:
    """metav1.Time: RFC 3339 in UTC with second precision."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: Obj, field_path: str | None = None) -> Obj:
    """An ObjectReference to `obj` (an object with metadata, or already a reference)."""
    if "metadata" not in obj:
        ref = {k: v for k, v in obj.items() if v}
    else:
        meta = obj.get("metadata") or {}
        ref = {"kind": obj.get("kind"), "namespace": meta.get("namespace"), "name": meta.get("name"),
               "uid": meta.get("uid"), "apiVersion": obj.get("apiVersion"),
               "resourceVersion": meta.get("resourceVersion")}
        ref = {k: v for k, v in ref.items() if v}
    if field_path:
        ref["fieldPath"] = field_path
    if not ref.get("name"):
        raise ValueError("an event needs an involved object with a name")
    return ref


@dataclass
class _Seen:
    """What the dedup cache remembers of an Event it wrote."""

    name: str
    namespace: str
    count: int
    first_timestamp: str
    last_seen: datetime


@dataclass
class _Similar:
    messages: set[str]
    window_start: datetime


class EventRecorder:
    """Records Events about objects for one component (and host, e.g. a kubelet's node)."""

    def __init__(self, client: ApiClient, component: str, host: str | None = None, *,
                 clock: Clock | None = None, max_queue: int = 1000, cache_size: int = 4096) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.clock = clock or RealClock()
        self.cache_size = cache_size
        self.dropped = 0
        self._queue: asyncio.Queue[Obj] = asyncio.Queue(maxsize=max_queue)
        self._seen: OrderedDict[tuple[str, ...], _Seen] = OrderedDict()
        self._similar: OrderedDict[tuple[str, ...], _Similar] = OrderedDict()
        self._writer: asyncio.Task[None] | None = None
        self._last_nanos = 0

    # -- recording (never blocks) -----------------------------------------------------

    def event(self, obj: Obj, event_type: str, reason: str, message: str, *,
              field_path: str | None = None) -> None:
        """Record an Event about `obj`: type Normal or Warning, a CamelCase reason and a
        human message. Returns at once; the write happens in the background."""
        if event_type not in (NORMAL, WARNING):
            log.error("unsupported event type %r (reason %s): dropped", event_type, reason)
            return
        try:
            ref = object_reference(obj, field_path)
        except ValueError as exc:
            log.error("cannot record event %s: %s", reason, exc)
            return
        record = self._make_event(ref, event_type, reason, message)
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event queue full, dropping event %s %s on %s", event_type, reason, ref.get("name"))
            return
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._drain(), name=f"events {self.component}")

    def eventf(self, obj: Obj, event_type: str, reason: str, fmt: str, *args: Any) -> None:
        """`event` with a %-format message."""
        self.event(obj, event_type, reason, fmt % args if args else fmt)

    def _make_event(self, ref: Obj, event_type: str, reason: str, message: str) -> Obj:
        now = self.clock.now()
        # Names must be unique: never reuse a timestamp (a coarse or fake clock repeats).
        nanos = max((now - _EPOCH) // timedelta(microseconds=1) * 1000, self._last_nanos + 1)
        self._last_nanos = nanos
        source: Obj = {"component": self.component}
        if self.host:
            source["host"] = self.host
        stamp = event_time(now)
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{ref['name']}.{nanos:x}", "namespace": ref.get("namespace") or "default"},
            "involvedObject": ref, "reason": reason, "message": message, "source": source,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "type": event_type,
            "eventTime": None, "reportingComponent": self.component, "reportingInstance": self.host or "",
        }

    # -- writing (one background task) ---------------------------------------------------

    async def _drain(self) -> None:
        while True:
            try:
                record = await asyncio.wait_for(self._queue.get(), timeout=60)
            except TimeoutError:
                if self._queue.empty():
                    return  # idle for a minute: the next event() starts a new writer
                continue
            try:
                await self._write(record)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - events are best effort
                log.exception("writing event %s failed", record["metadata"]["name"])
            finally:
                self._queue.task_done()

    @staticmethod
    def _similar_key(record: Obj) -> tuple[str, ...]:
        """Everything that identifies an Event except its message."""
        ref, source = record["involvedObject"], record["source"]
        return (source.get("component", ""), source.get("host", ""), ref.get("kind", ""),
                ref.get("namespace", ""), ref.get("name", ""), ref.get("fieldPath", ""), ref.get("uid", ""),
                ref.get("apiVersion", ""), record["type"], record["reason"])

    def _aggregate(self, record: Obj, similar_key: tuple[str, ...], now: datetime) -> tuple[str, ...]:
        """Fold the 11th+ distinct message for one (object, reason) into a combined
        event; returns the dedup key to use."""
        entry = self._similar.get(similar_key)
        if entry is None or now - entry.window_start > AGGREGATION_WINDOW:
            entry = _Similar(set(), now)
        entry.messages.add(record["message"])
        self._remember(self._similar, similar_key, entry)
        if len(entry.messages) <= MAX_SIMILAR:
            return (*similar_key, record["message"])
        record["message"] = COMBINED_PREFIX + record["message"]
        return (*similar_key, COMBINED_PREFIX)

    async def _write(self, record: Obj) -> None:
        now = self.clock.now()
        key = self._aggregate(record, self._similar_key(record), now)
        seen = self._seen.get(key)
        if seen is not None and now - seen.last_seen <= AGGREGATION_WINDOW:
            seen.count += 1
            seen.last_seen = now
            patch = {"count": seen.count, "lastTimestamp": record["lastTimestamp"], "message": record["message"]}
            try:
                await self.client.patch(EVENTS, seen.name, patch, seen.namespace, patch_type="merge")
                self._remember(self._seen, key, seen)
                return
            except ApiError as exc:
                if not exc.is_not_found():
                    raise
            # The Event expired or was deleted: write it anew, keeping the count.
            record["metadata"]["name"], record["count"] = seen.name, seen.count
            record["firstTimestamp"] = seen.first_timestamp
        try:
            created = await self.client.create(EVENTS, record)
        except ApiError as exc:
            if not exc.is_already_exists():
                raise
            # Another recorder used this name (same object, same nanosecond): a new one.
            base, _, stamp = record["metadata"]["name"].rpartition(".")
            record["metadata"]["name"] = f"{base}.{int(stamp, 16) + 1 + (id(self) & 0xFFFF):x}"
            created = await self.client.create(EVENTS, record)
        meta = created.get("metadata") or {}
        self._remember(self._seen, key, _Seen(meta.get("name", record["metadata"]["name"]),
                                              meta.get("namespace", record["metadata"]["namespace"]),
                                              int(created.get("count") or record["count"]),
                                              record["firstTimestamp"], now))

    def _remember(self, cache: OrderedDict[tuple[str, ...], Any], key: tuple[str, ...], value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self.cache_size:
            cache.popitem(last=False)

    # -- lifecycle ----------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until every recorded event has been written (or failed)."""
        await self._queue.join()

    async def close(self) -> None:
        """Flush, then stop the writer."""
        if self._writer is not None and not self._writer.done():
            await self.flush()
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        self._writer = None
