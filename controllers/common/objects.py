"""Small accessors for objects as JSON dicts, and Kubernetes timestamps.

Objects come from informer caches as the API serves them, so fields Kubernetes omits when
empty (`omitempty`) may be missing; these helpers give the Go zero value instead. Times are
metav1.Time: RFC 3339 in UTC with second precision (`2024-05-01T10:00:00Z`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

# metav1.Time's zero value sorts before every real time, as in Go.
ZERO_TIME = datetime.min.replace(tzinfo=UTC)


def metadata(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("metadata") or {}


def name(obj: dict[str, Any] | None) -> str:
    return metadata(obj).get("name") or ""


def namespace(obj: dict[str, Any] | None) -> str:
    return metadata(obj).get("namespace") or ""


def uid(obj: dict[str, Any] | None) -> str:
    return metadata(obj).get("uid") or ""


def labels(obj: dict[str, Any] | None) -> dict[str, str]:
    return metadata(obj).get("labels") or {}


def annotations(obj: dict[str, Any] | None) -> dict[str, str]:
    return metadata(obj).get("annotations") or {}


def generation(obj: dict[str, Any] | None) -> int:
    return int(metadata(obj).get("generation") or 0)


def being_deleted(obj: dict[str, Any] | None) -> bool:
    return bool(metadata(obj).get("deletionTimestamp"))


def spec(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("spec") or {}


def status(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("status") or {}


def spec_replicas(obj: dict[str, Any] | None) -> int:
    """spec.replicas, 1 when unset (the API server's default for Deployments and ReplicaSets)."""
    value = spec(obj).get("replicas")
    return 1 if value is None else int(value)


def status_int(obj: dict[str, Any] | None, field: str) -> int:
    return int(status(obj).get(field) or 0)


def key(obj: dict[str, Any]) -> str:
    """The work-queue key `namespace/name` (cache.MetaNamespaceKeyFunc)."""
    ns = namespace(obj)
    return f"{ns}/{name(obj)}" if ns else name(obj)


def parse_time(value: str | None) -> datetime | None:
    """A metav1.Time string as an aware datetime; None for a missing or empty value."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(moment: datetime) -> str:
    """metav1.Time's wire form: UTC, seconds precision, `Z` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def creation_time(obj: dict[str, Any] | None) -> datetime:
    return parse_time(metadata(obj).get("creationTimestamp")) or ZERO_TIME


def by_creation(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Oldest first, name as the tie breaker (controller.ReplicaSetsByCreationTimestamp)."""
    return sorted(objects, key=lambda o: (creation_time(o), name(o)))


def drop_empty(value: Any) -> Any:
    """A copy without None values and empty lists/maps, recursively.

    apimachinery's semantic DeepEqual treats nil and empty slices and maps as equal; JSON
    drops omitempty fields. Normalising both ways lets dicts compare like Go structs.
    """
    if isinstance(value, dict):
        cleaned = {k: drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [drop_empty(v) for v in value]
    return value
