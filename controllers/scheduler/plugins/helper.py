"""Helpers shared by several plugins (pkg/scheduler/framework/plugins/helper)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers.scheduler.framework import MAX_NODE_SCORE, ClusterEvent

NODE_ADD = ClusterEvent("Node", "Add")
NODE_UPDATE = ClusterEvent("Node", "Update")
NODE_DELETE = ClusterEvent("Node", "Delete")
ASSIGNED_POD_ADD = ClusterEvent("Pod", "Add")
ASSIGNED_POD_UPDATE = ClusterEvent("Pod", "Update")
ASSIGNED_POD_DELETE = ClusterEvent("Pod", "Delete")
PVC_ADD = ClusterEvent("PersistentVolumeClaim", "Add")
PVC_UPDATE = ClusterEvent("PersistentVolumeClaim", "Update")
PV_ADD = ClusterEvent("PersistentVolume", "Add")
PV_UPDATE = ClusterEvent("PersistentVolume", "Update")
STORAGE_CLASS_ADD = ClusterEvent("StorageClass", "Add")
STORAGE_CLASS_UPDATE = ClusterEvent("StorageClass", "Update")
NAMESPACE_ADD = ClusterEvent("Namespace", "Add")
NAMESPACE_UPDATE = ClusterEvent("Namespace", "Update")
NODE_CHANGES = (NODE_ADD, NODE_UPDATE)


def default_normalize_score(scores: dict[str, int], *, reverse: bool,
                            max_priority: int = MAX_NODE_SCORE) -> None:
    """DefaultNormalizeScore: scale to 0..max by the highest score (integer division);
    `reverse` flips it, and all-zero scores become max when reversed."""
    highest = max(scores.values(), default=0)
    if highest <= 0:
        if reverse:
            for name in scores:
                scores[name] = max_priority
        return
    for name, score in scores.items():
        scaled = max_priority * score // highest
        scores[name] = max_priority - scaled if reverse else scaled


def pod_spec(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return pod.get("spec") or {}


def tolerations_of(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(pod_spec(pod).get("tolerations") or [])
