"""One PodDisruptionBudget's status, as a pure function of the PDB, its pods and the
scale of their controllers (DisruptionController.trySync / getExpectedPodCount /
countHealthyPods / updatePdbStatus).

- minAvailable as a number: desiredHealthy is that number, expectedPods the pods found;
- minAvailable as a percentage, or maxUnavailable: expectedPods is the summed
  spec.replicas of the pods' controllers (a Deployment for its ReplicaSets' pods, a
  ReplicaSet, ReplicationController or StatefulSet), the percentage rounds up;
- currentHealthy: matching pods that are Ready and not being deleted;
- disruptionsAllowed: currentHealthy - desiredHealthy, never below 0 (0 without
  expected pods); condition DisruptionAllowed True SufficientPods / False InsufficientPods;
- disruptedPods: pods the eviction API charged to the budget; they count as unhealthy
  until they are seen being deleted (then dropped) or 2 minutes pass (NotDeleted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from controllers.common import objects, ownership, pods
from controllers.deployment.replicas import value_from_int_or_percent

Obj = dict[str, Any]
# (kind, namespace, name) of a pod's controller -> (its scale owner's uid, replicas), or None
ScaleOf = Callable[[str, str, str], tuple[str, int] | None]
UNMANAGED = ("Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. "
             "As a result, the status of the PDB cannot be calculated correctly, which may result in undefined "
             "behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an "
             "integer value.")


DELETION_TIMEOUT = timedelta(minutes=2)  # how long an eviction may take to show as a deletion


@dataclass
class Budget:
    expected: int = 0
    desired_healthy: int = 0
    current_healthy: int = 0
    events: list[tuple[str, str, str]] = field(default_factory=list)
    disrupted: dict[str, str] = field(default_factory=dict)  # evicted pods not yet seen deleted
    recheck_at: datetime | None = None  # when the oldest of them times out

    @property
    def disruptions_allowed(self) -> int:
        if self.expected <= 0:
            return 0
        return max(self.current_healthy - self.desired_healthy, 0)


def _is_percent(value: Any) -> bool:
    return isinstance(value, str) and value.endswith("%")


def _expected_scale(pdb: Obj, matching: Sequence[Obj], scale_of: ScaleOf, budget: Budget) -> int | None:
    """getExpectedScale: the replicas of the distinct controllers of the pods."""
    seen: dict[str, int] = {}
    unmanaged = []
    for pod in matching:
        ref = ownership.controller_of(pod)
        if ref is None:
            unmanaged.append(objects.name(pod))
            continue
        found = scale_of(str(ref.get("kind")), objects.namespace(pod), str(ref.get("name")))
        if found is None:
            budget.events.append(("Warning", "CalculateExpectedPodCountFailed",
                                  "Failed to calculate the number of expected pods: found no controllers for pod "
                                  f"\"{objects.name(pod)}\""))
            return None
        seen[found[0]] = found[1]
    if unmanaged:
        selector = objects.spec(pdb).get("selector")
        budget.events.append(("Warning", "UnmanagedPods", UNMANAGED.format(selector=_go_selector(selector))))
    return sum(seen.values())


def _go_selector(selector: Obj | None) -> str:
    """%v of a *metav1.LabelSelector, as the Event prints it (approximately)."""
    labels = " ".join(f"{k}:{v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items()))
    return f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{}},}}"


def _disrupted(pdb: Obj, matching: Sequence[Obj], now: datetime, budget: Budget) -> None:
    """buildDisruptedPodMap: pods the eviction API took a disruption for stay counted as
    gone until they are seen deleted, or until DELETION_TIMEOUT passes (then NotDeleted)."""
    by_name = {objects.name(p): p for p in matching}
    for name, when in (objects.status(pdb).get("disruptedPods") or {}).items():
        pod = by_name.get(name)
        if pod is None or objects.being_deleted(pod):
            continue
        try:
            at = objects.parse_time(when)
        except (TypeError, ValueError):
            continue  # not a time: the entry is dropped
        if at is None:
            continue
        expected = at + DELETION_TIMEOUT
        if expected < now:
            budget.events.append(("Warning", "NotDeleted", f"Pod {objects.namespace(pod)}/{name} was expected to "
                                  f"be deleted at {expected.strftime('%Y-%m-%d %H:%M:%S +0000 UTC')} but it wasn't, "
                                  "updating pdb"))
            continue
        budget.disrupted[name] = when
        budget.recheck_at = min(filter(None, (budget.recheck_at, expected)))


def compute(pdb: Obj, matching: Sequence[Obj], scale_of: ScaleOf, now: datetime | None = None) -> Budget:
    """The budget for `matching` pods; when the expected count cannot be known,
    Kubernetes fails safe: everything 0, so no disruption is allowed."""
    spec = objects.spec(pdb)
    budget = Budget()
    _disrupted(pdb, matching, now or datetime.now(UTC), budget)
    if not matching:
        budget.events.append(("Normal", "NoPods", "No matching pods found"))
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None or _is_percent(min_available):
        expected = _expected_scale(pdb, matching, scale_of, budget)
        if expected is None:
            return _failsafe(budget)
        budget.expected = expected
        if max_unavailable is not None:
            budget.desired_healthy = max(expected - value_from_int_or_percent(max_unavailable, expected, True), 0)
        else:
            budget.desired_healthy = value_from_int_or_percent(min_available, expected, True)
    elif min_available is not None:
        budget.desired_healthy, budget.expected = int(min_available), len(matching)
    budget.current_healthy = sum(1 for p in matching if pods.is_ready(p) and not objects.being_deleted(p)
                                 and objects.name(p) not in budget.disrupted)
    return budget


def _failsafe(budget: Budget) -> Budget:
    budget.expected = budget.desired_healthy = budget.current_healthy = 0
    return budget


def status(pdb: Obj, budget: Budget, now: str) -> Obj:
    """The PDB status updatePdbStatus writes (conditions as apimeta.SetStatusCondition)."""
    generation = objects.generation(pdb)
    allowed = budget.disruptions_allowed
    old = objects.status(pdb)
    value, reason = ("True", "SufficientPods") if allowed > 0 else ("False", "InsufficientPods")
    previous = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
    since = previous["lastTransitionTime"] if previous and previous.get("status") == value else now
    result: Obj = {"disruptionsAllowed": allowed, "currentHealthy": budget.current_healthy,
                   "desiredHealthy": budget.desired_healthy, "expectedPods": budget.expected,
                   "observedGeneration": generation,
                   "conditions": [{"type": "DisruptionAllowed", "status": value, "reason": reason, "message": "",
                                   "observedGeneration": generation, "lastTransitionTime": since}]}
    if budget.disrupted:
        result["disruptedPods"] = dict(budget.disrupted)
    return result
