"""The five Namespace status conditions the namespace controller writes while it empties
a Terminating namespace (pkg/controller/namespace/deletion/status_condition_utils.go).

Each has a "bad" form (status True) and an "ok" form (status False), with Kubernetes'
reasons and messages, e.g.

    NamespaceContentRemaining  True  SomeResourcesRemain
        Some resources are remaining: pods. has 2 resource instances
    NamespaceFinalizersRemaining  True  SomeFinalizersRemain
        Some content in the namespace has finalizers remaining: example.com/x in 1 resource instances

All five are always present once the controller has run; lastTransitionTime changes
only when a condition's status does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from controllers.common.objects import format_time

Obj = dict[str, Any]

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GV_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
CONDITION_TYPES = (DISCOVERY_FAILURE, GV_PARSING_FAILURE, CONTENT_FAILURE, CONTENT_REMAINING, FINALIZERS_REMAINING)

OK: dict[str, tuple[str, str]] = {
    DISCOVERY_FAILURE: ("ResourcesDiscovered", "All resources successfully discovered"),
    GV_PARSING_FAILURE: ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    CONTENT_FAILURE: ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    CONTENT_REMAINING: ("ContentRemoved", "All content successfully removed"),
    FINALIZERS_REMAINING: ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


def discovery_failed(failed: Mapping[str, str]) -> tuple[str, str] | None:
    """(reason, message) for groups whose discovery failed, or None."""
    if not failed:
        return None
    parts = ", ".join(f"{gv}: {err}" for gv, err in sorted(failed.items()))
    return "DiscoveryFailed", f"Discovery failed for some groups, {len(failed)} failing: {parts}"


def content_failed(errors: Sequence[str]) -> tuple[str, str] | None:
    if not errors:
        return None
    joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return "ContentDeletionFailed", f"Failed to delete all resource types, {len(errors)} remaining: {joined}"


def content_remaining(remaining: Mapping[tuple[str, str], int]) -> tuple[str, str] | None:
    """`remaining` maps (group, plural) -> objects still there."""
    if not remaining:
        return None
    parts = sorted(f"{plural}.{group} has {n} resource instances" for (group, plural), n in remaining.items())
    return "SomeResourcesRemain", "Some resources are remaining: " + ", ".join(parts)


def finalizers_remaining(finalizers: Mapping[str, int]) -> tuple[str, str] | None:
    if not finalizers:
        return None
    parts = sorted(f"{name} in {n} resource instances" for name, n in finalizers.items())
    return "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: " + ", ".join(parts)


def updated_conditions(existing: Sequence[Obj], bad: Mapping[str, tuple[str, str] | None], now: datetime) -> list[Obj]:
    """All five conditions: `bad[type]` (reason, message) as status True, else the ok form.
    Conditions of other types are kept after them."""
    by_type = {c.get("type"): c for c in existing}
    out = []
    for cond_type in CONDITION_TYPES:
        found = bad.get(cond_type)
        status, (reason, message) = ("True", found) if found else ("False", OK[cond_type])
        old = by_type.get(cond_type)
        stamp = old.get("lastTransitionTime") if old and old.get("status") == status else format_time(now)
        out.append({"type": cond_type, "status": status, "lastTransitionTime": stamp, "reason": reason,
                    "message": message})
    out.extend(c for c in existing if c.get("type") not in CONDITION_TYPES)
    return out
