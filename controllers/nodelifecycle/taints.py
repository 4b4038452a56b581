"""Taints the node lifecycle controller owns, and how pods tolerate taints (pure).

NoSchedule (TaintNodesByCondition, doNoScheduleTaintingPass): Ready False ->
`node.kubernetes.io/not-ready`, Ready Unknown -> `node.kubernetes.io/unreachable`,
MemoryPressure / DiskPressure / PIDPressure / NetworkUnavailable True ->
`node.kubernetes.io/{memory,disk,pid}-pressure`, `node.kubernetes.io/network-unavailable`,
spec.unschedulable -> `node.kubernetes.io/unschedulable`.

NoExecute (taint-based eviction, doNoExecuteTaintingPass): Ready False -> not-ready,
Ready Unknown -> unreachable, Ready True -> neither. A NoExecute taint carries the time
it was added (timeAdded); a taint already on the node keeps its own.
Taints with other keys or effects are the user's and are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from controllers.common import objects
from controllers.nodelifecycle.health import condition

Obj = dict[str, Any]
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
CONDITION_TAINTS: dict[str, dict[str, str]] = {
    "Ready": {"False": NOT_READY, "Unknown": UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
NO_SCHEDULE_KEYS = frozenset([*(k for m in CONDITION_TAINTS.values() for k in m.values()), UNSCHEDULABLE])
NO_EXECUTE_KEYS = frozenset([NOT_READY, UNREACHABLE])


def _managed(taint: Obj) -> bool:
    effect, key = taint.get("effect"), taint.get("key")
    return ((effect == "NoSchedule" and key in NO_SCHEDULE_KEYS)
            or (effect == "NoExecute" and key in NO_EXECUTE_KEYS))


def no_schedule_taints(node: Obj) -> list[Obj]:
    taints = []
    for cond in objects.status(node).get("conditions") or []:
        key = CONDITION_TAINTS.get(cond.get("type", ""), {}).get(cond.get("status", ""))
        if key:
            taints.append({"key": key, "effect": "NoSchedule"})
    if objects.spec(node).get("unschedulable"):
        taints.append({"key": UNSCHEDULABLE, "effect": "NoSchedule"})
    return taints


def no_execute_taint_key(node: Obj) -> str | None:
    """not-ready / unreachable for Ready False / Unknown; None for Ready True and for a node
    that has not posted a Ready condition yet (it gets one, Unknown, once its startup grace
    period is over)."""
    ready = condition(node, "Ready")
    return CONDITION_TAINTS["Ready"].get(str(ready.get("status"))) if ready else None


def has_taint(node: Obj, key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect for t in objects.spec(node).get("taints") or [])


def desired_taints(node: Obj, now: datetime, no_execute: str = "allow") -> list[Obj]:
    """spec.taints as they should be: the user's, then ours (existing ones kept as they are).

    `no_execute`: "allow" sets the NoExecute taint the Ready condition implies; "hold"
    keeps our NoExecute taints as they are (the zone's rate limit says not yet); "lift"
    removes them (every zone fully disrupted)."""
    current = list(objects.spec(node).get("taints") or [])
    ours = no_schedule_taints(node)
    key = no_execute_taint_key(node)
    if no_execute == "hold":
        ours.extend(t for t in current if t.get("effect") == "NoExecute" and _managed(t))
    elif key and no_execute == "allow":
        ours.append({"key": key, "effect": "NoExecute", "timeAdded": objects.format_time(now)})
    result = [t for t in current if not _managed(t)]
    for taint in ours:
        existing = next((t for t in current if t.get("key") == taint["key"] and t.get("effect") == taint["effect"]),
                        None)
        result.append(existing if existing is not None else taint)
    return result


def same_taints(a: Sequence[Obj], b: Sequence[Obj]) -> bool:
    def norm(taints: Sequence[Obj]) -> list[tuple[str, str, str, str]]:
        return sorted((t.get("key", ""), t.get("value", ""), t.get("effect", ""), t.get("timeAdded", ""))
                      for t in taints)
    return norm(a) == norm(b)


def no_execute_taints(node: Obj | None) -> list[Obj]:
    return [t for t in objects.spec(node).get("taints") or [] if t.get("effect") == "NoExecute"]


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Toleration.ToleratesTaint."""
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def matching_tolerations(taints: Iterable[Obj], tolerations: Sequence[Obj]) -> list[Obj] | None:
    """GetMatchingTolerations: the tolerations used, or None if some taint is not tolerated."""
    used: list[Obj] = []
    for taint in taints:
        match = [t for t in tolerations if tolerates(t, taint)]
        if not match:
            return None
        used.extend(match)
    return used


def min_toleration_seconds(tolerations: Sequence[Obj]) -> float | None:
    """getMinTolerationTime: the shortest tolerationSeconds (<0 counts as 0); None: forever."""
    seconds = [max(0.0, float(t["tolerationSeconds"])) for t in tolerations if t.get("tolerationSeconds") is not None]
    return min(seconds) if seconds else None
