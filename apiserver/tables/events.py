"""The Event printer, for core/v1 and events.k8s.io/v1 Events alike.

Both APIs are views of one stored Event, and Kubernetes prints both with the same
`printEvent` over the internal type; an events.k8s.io object is first mapped back to the
core field names (`regarding` -> `involvedObject`, `note` -> `message`,
`deprecatedCount` -> `count`...). LAST SEEN falls back from lastTimestamp to
firstTimestamp to eventTime, and an event series reports its own count and last
observation, which is what `kubectl get events` shows for a recurring event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiserver.tables.cells import get, mapping, meta
from apiserver.tables.duration import parse_time, since
from apiserver.tables.printer import Printer, column, doc, name_column

_FROM_EVENTS_V1 = {
    "regarding": "involvedObject",
    "related": "related",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}


def as_core_event(event: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event with the core/v1 field names the printer reads."""
    if not str(event.get("apiVersion", "")).startswith("events.k8s.io/") and "regarding" not in event:
        return event
    out = {k: v for k, v in event.items() if k not in _FROM_EVENTS_V1}
    for new, old in _FROM_EVENTS_V1.items():
        if new in event:
            out[old] = event[new]
    return out


def _source(event: dict[str, Any]) -> str:
    """formatEventSource: "component, host", falling back to reportingController/Instance."""
    component = get(event, "source", "component") or event.get("reportingController") or ""
    host = get(event, "source", "host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


def _event_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    event = as_core_event(obj)
    if parse_time(event.get("firstTimestamp")) is None:
        first = since(event.get("eventTime"), now)
    else:
        first = since(event.get("firstTimestamp"), now)
    last = first if parse_time(event.get("lastTimestamp")) is None else since(event.get("lastTimestamp"), now)
    count = event.get("count") or 0
    series = event.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    involved = mapping(event, "involvedObject")
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [
        last,
        event.get("type") or "",
        event.get("reason") or "",
        target,
        involved.get("fieldPath") or "",
        _source(event),
        str(event.get("message") or "").strip(),
        first,
        count,
        meta(event).get("name", ""),
    ]


def event_printer() -> Printer:
    ev, ref = "core.v1.Event", "core.v1.ObjectReference"
    columns = [
        column("Last Seen", "string", doc(ev, "lastTimestamp")),
        column("Type", "string", doc(ev, "type")),
        column("Reason", "string", doc(ev, "reason")),
        column("Object", "string", doc(ev, "involvedObject")),
        column("Subobject", "string", doc(ref, "fieldPath"), priority=1),
        column("Source", "string", doc(ev, "source"), priority=1),
        column("Message", "string", doc(ev, "message")),
        column("First Seen", "string", doc(ev, "firstTimestamp"), priority=1),
        column("Count", "string", doc(ev, "count"), priority=1),
        name_column(priority=1),
    ]
    return Printer(columns, _event_cells)
