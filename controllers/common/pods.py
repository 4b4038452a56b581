"""Pod state as controllers see it: active, ready, available, and the order to delete in.

Ready is the pod's `Ready` condition being True (podutil.IsPodReady). Available is ready
for at least minReadySeconds, measured from that condition's lastTransitionTime and
strictly before `now` (podutil.IsPodAvailable). Active means not Succeeded/Failed and not
being deleted (controller.IsPodActive).

`rank_for_deletion` is controller.ActivePodsWithRanks as of Kubernetes 1.32, where the
PodDeletionCost and LogarithmicScaleDown features are on by default. Pods that should go
first come first:
  1. unassigned before assigned (no spec.nodeName);
  2. Pending before Unknown before Running;
  3. not ready before ready;
  4. lower `controller.kubernetes.io/pod-deletion-cost` first;
  5. higher rank first (rank = active related pods on the same node: doubled-up pods go);
  6. both ready: ready for less time first;
  7. more container restarts first;
  8. newer first (created later; a missing creationTimestamp counts as newest).
With `now` given, 6 and 8 compare times on a log2 scale of their age, and pods in the same
bucket are ordered by uid, which spreads scale-down across equally old pods.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from controllers.common import objects

Pod = dict[str, Any]

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def phase(pod: Pod) -> str:
    return objects.status(pod).get("phase") or ""


def ready_condition(pod: Pod) -> dict[str, Any] | None:
    for condition in objects.status(pod).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition
    return None


def is_ready(pod: Pod) -> bool:
    condition = ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def ready_since(pod: Pod) -> datetime | None:
    """When the pod last became ready (None when not ready or the time is unknown)."""
    if not is_ready(pod):
        return None
    return objects.parse_time(ready_condition(pod).get("lastTransitionTime"))  # type: ignore[union-attr]


def is_available(pod: Pod, min_ready_seconds: int, now: datetime) -> bool:
    if not is_ready(pod):
        return False
    if min_ready_seconds == 0:
        return True
    since = ready_since(pod)
    return since is not None and since + timedelta(seconds=min_ready_seconds) < now


def available_at(pod: Pod, min_ready_seconds: int) -> datetime | None:
    """When a ready pod turns available (None if not ready or its ready time is unknown)."""
    since = ready_since(pod)
    return None if since is None else since + timedelta(seconds=min_ready_seconds)


def is_active(pod: Pod) -> bool:
    return phase(pod) not in ("Succeeded", "Failed") and not objects.being_deleted(pod)


def is_terminal(pod: Pod) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def max_restarts(pod: Pod) -> int:
    statuses = objects.status(pod).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def deletion_cost(pod: Pod) -> int:
    """The pod-deletion-cost annotation; 0 when absent or not a valid int32 (as Kubernetes)."""
    raw = objects.annotations(pod).get(DELETION_COST_ANNOTATION)
    try:
        value = int(raw) if raw is not None else 0
    except ValueError:
        return 0
    return value if -(2**31) <= value < 2**31 else 0


def node_ranks(pods: Sequence[Pod], related: Sequence[Pod]) -> list[int]:
    """getPodsRankedByRelatedPodsOnSameNode: active related pods sharing each pod's node."""
    on_node = Counter(objects.spec(p).get("nodeName") or "" for p in related if is_active(p))
    return [on_node[objects.spec(p).get("nodeName") or ""] for p in pods]


def _log_rank(moment: datetime, now: datetime) -> int:
    nanos = (now - moment) // timedelta(microseconds=1) * 1000
    return int(math.log2(nanos)) if nanos > 0 else -1


def _compare_times(a: datetime | None, b: datetime | None, now: datetime | None,
                   uid_a: str, uid_b: str) -> int:
    """Negative when `a` should be deleted first: later (or zero) time first."""
    if now is None or a is None or b is None:
        if a is None or b is None:
            return -1 if a is None else 1
        return -1 if a > b else 1
    diff = _log_rank(a, now) - _log_rank(b, now)
    if diff == 0:
        return (uid_a > uid_b) - (uid_a < uid_b)
    return -1 if diff < 0 else 1


def _compare(a: tuple[Pod, int], b: tuple[Pod, int], now: datetime | None) -> int:
    (pa, rank_a), (pb, rank_b) = a, b
    node_a, node_b = objects.spec(pa).get("nodeName") or "", objects.spec(pb).get("nodeName") or ""
    if node_a != node_b and (not node_a or not node_b):
        return -1 if not node_a else 1
    phase_a, phase_b = _PHASE_ORDINAL.get(phase(pa), 0), _PHASE_ORDINAL.get(phase(pb), 0)
    if phase_a != phase_b:
        return -1 if phase_a < phase_b else 1
    if is_ready(pa) != is_ready(pb):
        return -1 if not is_ready(pa) else 1
    if deletion_cost(pa) != deletion_cost(pb):
        return -1 if deletion_cost(pa) < deletion_cost(pb) else 1
    if rank_a != rank_b:
        return -1 if rank_a > rank_b else 1
    if is_ready(pa) and is_ready(pb) and ready_since(pa) != ready_since(pb):
        return _compare_times(ready_since(pa), ready_since(pb), now, objects.uid(pa), objects.uid(pb))
    if max_restarts(pa) != max_restarts(pb):
        return -1 if max_restarts(pa) > max_restarts(pb) else 1
    created_a, created_b = objects.parse_time(objects.metadata(pa).get("creationTimestamp")), \
        objects.parse_time(objects.metadata(pb).get("creationTimestamp"))
    if created_a != created_b:
        return _compare_times(created_a, created_b, now, objects.uid(pa), objects.uid(pb))
    return 0


def rank_for_deletion(pods: Sequence[Pod], *, related: Sequence[Pod] | None = None,
                      now: datetime | None = None) -> list[Pod]:
    """`pods` sorted so the ones to delete first come first (see the module docstring)."""
    ranks = node_ranks(pods, related if related is not None else pods)
    paired = list(zip(pods, ranks, strict=True))
    paired.sort(key=functools.cmp_to_key(lambda a, b: _compare(a, b, now)))
    return [pod for pod, _ in paired]
