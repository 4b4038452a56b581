"""ReplicaSet status: counts over the pods the ReplicaSet owns (replica_set_utils.go).

`replicas` counts the active pods owned; `fullyLabeledReplicas` those carrying every label
of the pod template; `readyReplicas` the ready ones; `availableReplicas` those ready for
minReadySeconds. `observedGeneration` is the generation acted on. Zero counts are omitted
as the API's `omitempty` JSON does, except `replicas`, which Kubernetes always sends.
A ReplicaFailure condition reports a failed create or delete; it is removed by the next
sync that does not fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from controllers.common import conditions, objects, pods

REPLICA_FAILURE = "ReplicaFailure"
_COUNTS = ("fullyLabeledReplicas", "readyReplicas", "availableReplicas")


def calculate_status(rs: dict[str, Any], owned: Sequence[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The status the ReplicaSet should have for its active, owned pods (no failure this sync)."""
    template_labels = objects.labels(objects.spec(rs).get("template"))
    min_ready = int(objects.spec(rs).get("minReadySeconds") or 0)
    labeled = sum(1 for p in owned if template_labels.items() <= objects.labels(p).items())
    ready = [p for p in owned if pods.is_ready(p)]
    available = sum(1 for p in ready if pods.is_available(p, min_ready, now))
    new_status: dict[str, Any] = {"replicas": len(owned)}
    for field, value in zip(_COUNTS, (labeled, len(ready), available), strict=True):
        if value:
            new_status[field] = value
    if objects.generation(rs):
        new_status["observedGeneration"] = objects.generation(rs)
    kept = [c for c in objects.status(rs).get("conditions") or [] if c.get("type") != REPLICA_FAILURE]
    if kept:
        new_status["conditions"] = kept
    return new_status


def needs_update(rs: dict[str, Any], new_status: dict[str, Any]) -> bool:
    """updateReplicaSetStatus's test: counts, conditions, or an unobserved generation differ."""
    old = objects.status(rs)
    fields = ("replicas", *_COUNTS)
    if any(int(old.get(f) or 0) != int(new_status.get(f) or 0) for f in fields):
        return True
    if objects.generation(rs) != int(old.get("observedGeneration") or 0):
        return True
    return (old.get("conditions") or []) != (new_status.get("conditions") or [])


def with_replica_failure(rs: dict[str, Any], new_status: dict[str, Any], error: str,
                         now: datetime) -> dict[str, Any]:
    """The status after a failed create/delete: the runtime writes this when an action fails.

    As Kubernetes: the condition is only added when none is present, reason FailedCreate
    when pods were missing and FailedDelete when there were too many.
    """
    if conditions.get_condition(objects.status(rs), REPLICA_FAILURE) is not None:
        return new_status
    diff = int(new_status.get("replicas") or 0) - objects.spec_replicas(rs)
    reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
    updated = {**new_status, "conditions": list(new_status.get("conditions") or [])}
    conditions.set_condition(updated, {"type": REPLICA_FAILURE, "status": "True",
                                       "lastTransitionTime": objects.format_time(now),
                                       "reason": reason, "message": error}, keep_transition_time=False)
    return updated
