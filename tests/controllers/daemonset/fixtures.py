"""Builders for DaemonSet unit tests: nodes, DaemonSets and daemon pods as the API serves them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controllers.common import objects
from controllers.daemonset.eligibility import node_affinity_for

Obj = dict[str, Any]
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
DS_UID = "ds-uid"


def node(name: str, *, labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
         unschedulable: bool = False) -> Obj:
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}}, "spec": spec}


def taint(key: str, effect: str, value: str = "") -> Obj:
    body = {"key": key, "effect": effect}
    if value:
        body["value"] = value
    return body


def daemon_set(name: str = "agent", *, pod_spec: Obj | None = None, strategy: Obj | None = None,
               generation: int = 1, status: Obj | None = None, min_ready: int = 0, **spec: Any) -> Obj:
    template_spec = {"containers": [{"name": "agent", "image": "busybox:1.36"}], **(pod_spec or {})}
    body: Obj = {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": template_spec},
                 "updateStrategy": strategy or {"type": "RollingUpdate",
                                                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                 "revisionHistoryLimit": 10, **spec}
    if min_ready:
        body["minReadySeconds"] = min_ready
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": "default", "uid": DS_UID, "generation": generation,
                         "annotations": {"deprecated.daemonset.template.generation": "1"}},
            "spec": body, "status": status or {}}


def daemon_pod(name: str, node_name: str, *, hash_value: str = "h1", ready: bool = True, phase: str = "Running",
               bound: bool = True, age: int = 600, ready_for: int = 300, owner_uid: str = DS_UID,
               deleting: bool = False, labels: dict[str, str] | None = None) -> Obj:
    created = NOW - timedelta(seconds=age)
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}",
                 "creationTimestamp": objects.format_time(created),
                 "labels": labels if labels is not None else {"app": "agent", "controller-revision-hash": hash_value},
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                      "uid": owner_uid, "controller": True, "blockOwnerDeletion": True}]}
    if deleting:
        meta["deletionTimestamp"] = objects.format_time(NOW)
    spec: Obj = {"containers": [{"name": "agent", "image": "busybox:1.36"}],
                 "affinity": node_affinity_for(None, node_name)}
    if bound:
        spec["nodeName"] = node_name
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": objects.format_time(NOW - timedelta(seconds=ready_for))}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"phase": phase, "conditions": conditions}}
