"""DaemonSet status (updateDaemonSetStatus / storeDaemonSetStatus) and pod bookkeeping.

For every node where a daemon pod should run: desiredNumberScheduled; if it has one,
currentNumberScheduled; its oldest pod (bound pods first) counts for numberReady,
numberAvailable (ready for minReadySeconds) and updatedNumberScheduled (from the current
revision). Nodes where no daemon pod should run but one does: numberMisscheduled.
numberUnavailable = desired - available. observedGeneration moves only when the sync was
allowed to act (expectations satisfied); collisionCount and conditions are kept.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from controllers.common import objects, pods
from controllers.daemonset.eligibility import node_should_run, target_node_name

Obj = dict[str, Any]

TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
HASH_LABEL = "controller-revision-hash"
COUNTS = ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
          "updatedNumberScheduled", "numberAvailable", "numberUnavailable")
# Fields Go leaves out of the JSON when zero (omitempty); the others are always written.
OMIT_WHEN_ZERO = frozenset({"updatedNumberScheduled", "numberAvailable", "numberUnavailable"})


def template_generation(ds: Obj) -> str | None:
    """GetTemplateGeneration: the annotation the API server keeps on the DaemonSet."""
    value = objects.annotations(ds).get(TEMPLATE_GENERATION_ANNOTATION)
    return None if value is None else str(value)


def is_pod_updated(pod: Obj, hash_value: str, generation: str | None) -> bool:
    """IsPodUpdated: the pod comes from the current revision.

    Kubernetes accepts a matching controller-revision-hash or a matching
    pod-template-generation. The generation label is only trusted on a pod without a hash
    label (pods of the pre-ControllerRevision era, its reason to exist): that is the same
    answer whenever the API server bumps the template-generation annotation with every
    template change, and it keeps rollouts correct where the annotation stays put.
    """
    pod_labels = objects.labels(pod)
    pod_hash = pod_labels.get(HASH_LABEL)
    if pod_hash:
        return bool(hash_value) and pod_hash == hash_value
    return generation is not None and pod_labels.get(TEMPLATE_GENERATION_LABEL) == generation


def _by_creation_and_phase(a: Obj, b: Obj) -> int:
    """podByCreationTimestampAndPhase: bound pods first, then oldest, then by name."""
    bound_a, bound_b = bool(objects.spec(a).get("nodeName")), bool(objects.spec(b).get("nodeName"))
    if bound_a != bound_b:
        return -1 if bound_a else 1
    key_a, key_b = (objects.creation_time(a), objects.name(a)), (objects.creation_time(b), objects.name(b))
    return (key_a > key_b) - (key_a < key_b)


def sort_pods(daemon_pods: Sequence[Obj]) -> list[Obj]:
    return sorted(daemon_pods, key=functools.cmp_to_key(_by_creation_and_phase))


def nodes_to_daemon_pods(owned: Sequence[Obj], *, include_deleted_terminal: bool = False) -> dict[str, list[Obj]]:
    """getNodesToDaemonPods: the DaemonSet's pods by target node (bound or pinned)."""
    result: dict[str, list[Obj]] = {}
    for pod in owned:
        if not include_deleted_terminal and pods.is_terminal(pod) and objects.being_deleted(pod):
            continue
        node = target_node_name(pod)
        if node is None:
            continue
        result.setdefault(node, []).append(pod)
    return result


def calculate_status(ds: Obj, nodes: Sequence[Obj], by_node: Mapping[str, Sequence[Obj]], hash_value: str,
                     now: datetime) -> dict[str, int]:
    """The seven counts of updateDaemonSetStatus."""
    counts = dict.fromkeys(COUNTS, 0)
    min_ready = int(objects.spec(ds).get("minReadySeconds") or 0)
    generation = template_generation(ds)
    for node in nodes:
        should_run, _ = node_should_run(node, ds)
        daemon_pods = by_node.get(objects.name(node)) or []
        if not should_run:
            if daemon_pods:
                counts["numberMisscheduled"] += 1
            continue
        counts["desiredNumberScheduled"] += 1
        if not daemon_pods:
            continue
        counts["currentNumberScheduled"] += 1
        pod = sort_pods(daemon_pods)[0]
        if pods.is_ready(pod):
            counts["numberReady"] += 1
            if pods.is_available(pod, min_ready, now):
                counts["numberAvailable"] += 1
        if is_pod_updated(pod, hash_value, generation):
            counts["updatedNumberScheduled"] += 1
    counts["numberUnavailable"] = counts["desiredNumberScheduled"] - counts["numberAvailable"]
    return counts


def new_status(ds: Obj, counts: Mapping[str, int], update_observed_generation: bool) -> Obj | None:
    """storeDaemonSetStatus: the status to write, or None when nothing changed."""
    current = objects.status(ds)
    unchanged = all(int(current.get(k) or 0) == counts[k] for k in COUNTS)
    if unchanged and int(current.get("observedGeneration") or 0) >= objects.generation(ds):
        return None
    status = {k: v for k, v in current.items() if k not in COUNTS}
    for key in COUNTS:
        if counts[key] or key not in OMIT_WHEN_ZERO:
            status[key] = counts[key]
    if update_observed_generation:
        status["observedGeneration"] = objects.generation(ds)
    return status
