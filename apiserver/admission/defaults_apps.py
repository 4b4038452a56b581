"""Defaulting of apps/v1 workloads: Deployment, ReplicaSet, StatefulSet, DaemonSet.

Mirrors pkg/apis/apps/v1/defaults.go (replicas 1, RollingUpdate 25%/25% for
Deployments, maxUnavailable 1 / maxSurge 0 for DaemonSets, OrderedReady and partition 0
for StatefulSets, revisionHistoryLimit 10, progressDeadlineSeconds 600), applies the pod
template defaults, and adds what the apps conversions and strategies make visible:
`apiVersion`/`kind`/`status.phase` on StatefulSet volumeClaimTemplates, the
`deprecated.daemonset.template.generation` annotation of a new DaemonSet, and the status
structs Go always serializes.
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.defaults_pod import (
    _dict,
    _dicts,
    default_pod_template,
    default_pvc_spec,
    default_template_metadata,
)
from apiserver.registry.strategy import DS_TEMPLATE_GENERATION


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = _dict(obj, "spec")
    if spec is None:
        spec = obj["spec"] = {}
    return spec


def _status(obj: dict[str, Any], **zeros: int) -> None:
    status = _dict(obj, "status")
    if status is None:
        status = obj["status"] = {}
    for field, value in zeros.items():
        status.setdefault(field, value)


def default_deployment(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _dict(spec, "strategy")
    if strategy is None:
        strategy = spec["strategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        if rolling is None:
            rolling = strategy["rollingUpdate"] = {}
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
        for field in ("maxUnavailable", "maxSurge"):
            if rolling[field] is None:
                rolling[field] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    default_pod_template(_dict(spec, "template"))
    _status(obj)


def default_replica_set(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(_dict(spec, "template"))
    _status(obj, replicas=0)


def default_stateful_set(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _dict(spec, "updateStrategy")
    if strategy is None:
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if _dict(strategy, "rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    rolling = _dict(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and rolling is not None and rolling.get("partition") is None:
        rolling["partition"] = 0
    policy = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    if policy is None:
        policy = spec["persistentVolumeClaimRetentionPolicy"] = {}
    for field in ("whenDeleted", "whenScaled"):
        if not policy.get(field):
            policy[field] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(_dict(spec, "template"))
    for claim in _dicts(spec, "volumeClaimTemplates"):
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        default_template_metadata(claim)
        claim_spec = _dict(claim, "spec")
        if claim_spec is None:
            claim_spec = claim["spec"] = {}
        default_pvc_spec(claim_spec)
        _status(claim)
        if not claim["status"].get("phase"):
            claim["status"]["phase"] = "Pending"
    _status(obj, replicas=0, availableReplicas=0)


def default_daemon_set(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    strategy = _dict(spec, "updateStrategy")
    if strategy is None:
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        if rolling is None:
            rolling = strategy["rollingUpdate"] = {}
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(_dict(spec, "template"))
    meta = obj.setdefault("metadata", {})
    if not meta.get("resourceVersion"):
        annotations = _dict(meta, "annotations")
        if annotations is None:
            annotations = meta["annotations"] = {}
        annotations.setdefault(DS_TEMPLATE_GENERATION, "1")
    _status(obj, currentNumberScheduled=0, desiredNumberScheduled=0, numberMisscheduled=0, numberReady=0)
