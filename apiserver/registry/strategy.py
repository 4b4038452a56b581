"""Per-kind create/update rules that are about metadata and status, not about fields.

What Kubernetes' REST strategies do in PrepareForCreate / PrepareForUpdate and the
generic registry's BeforeCreate / BeforeUpdate: server-owned metadata (uid,
creationTimestamp, generation, resourceVersion), generateName, status reset on create
for kinds with a status subresource, status preserved on spec writes and spec preserved
on status writes, generation bumped only when the spec changes.
"""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from typing import Any

from apiserver.objcopy import deep_copy
from apiserver.registry.resource import ResourceInfo

Obj = dict[str, Any]

# Kinds whose objects carry metadata.generation (their strategies set it to 1 on create
# and bump it on spec changes). Custom resources always do.
GENERATION_KINDS = {
    ("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"), ("apps", "DaemonSet"),
    ("batch", "Job"), ("batch", "CronJob"), ("autoscaling", "HorizontalPodAutoscaler"),
    ("networking.k8s.io", "Ingress"), ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "NetworkPolicy"), ("policy", "PodDisruptionBudget"),
    ("", "ReplicationController"), ("apiextensions.k8s.io", "CustomResourceDefinition"),
}

# Status a new object starts with, for kinds whose create drops client-sent status.
_INITIAL_STATUS: dict[tuple[str, str], Obj] = {
    ("apps", "Deployment"): {}, ("apps", "ReplicaSet"): {"replicas": 0},
    ("apps", "StatefulSet"): {"replicas": 0, "availableReplicas": 0},
    ("apps", "DaemonSet"): {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                            "desiredNumberScheduled": 0, "numberReady": 0},
    ("batch", "Job"): {}, ("batch", "CronJob"): {},
    ("autoscaling", "HorizontalPodAutoscaler"): {"currentReplicas": 0, "desiredReplicas": 0},
    ("networking.k8s.io", "Ingress"): {"loadBalancer": {}},
    ("", "Service"): {"loadBalancer": {}},
    ("", "PersistentVolumeClaim"): {"phase": "Pending"},
    ("", "PersistentVolume"): {"phase": "Pending"},
    ("", "ReplicationController"): {"replicas": 0},
    ("policy", "PodDisruptionBudget"): {"disruptionsAllowed": 0, "currentHealthy": 0,
                                        "desiredHealthy": 0, "expectedPods": 0},
    ("", "ResourceQuota"): {},
}

CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


_last_second: tuple[int, str] = (-1, "")


def now_rfc3339() -> str:
    """The current UTC time to the second (metav1.Time): formatted once per second, as
    every write stamps one or more of these."""
    global _last_second
    second = int(time.time())
    if second != _last_second[0]:
        _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _last_second[1]


def generate_name(prefix: str) -> str:
    """generateName + 5 random characters, as names.SimpleNameGenerator does (the prefix
    is cut so the result fits 63 characters)."""
    suffix = "".join(secrets.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5))
    return prefix[: 63 - 5] + suffix


def has_generation(info: ResourceInfo) -> bool:
    return info.crd is not None or (info.group, info.kind) in GENERATION_KINDS


def has_status_subresource(info: ResourceInfo) -> bool:
    return "status" in info.subresources


def prepare_for_create(info: ResourceInfo, obj: Obj) -> None:
    """Server-owned metadata and initial status of a new object (name already set)."""
    meta = obj.setdefault("metadata", {})
    for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        meta.pop(field, None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now_rfc3339()
    if has_generation(info):
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    if (info.group, info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        finalizers = meta.setdefault("finalizers", [])
        if CRD_CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CRD_CLEANUP_FINALIZER)
    if not has_status_subresource(info) or (info.group, info.kind) == ("", "Node"):
        return
    if info.crd is not None:
        obj.pop("status", None)
    elif (info.group, info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        # Conditions and acceptedNames come from the CRD loop; storedVersions from defaulting.
        stored = (obj.get("status") or {}).get("storedVersions")
        obj["status"] = {"storedVersions": stored} if stored else {}
    elif (info.group, info.kind) == ("", "Pod"):
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
        if (obj.get("spec") or {}).get("schedulingGates"):
            obj["status"]["conditions"] = [{
                "type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
                "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}]
    elif (info.group, info.kind) == ("", "Namespace"):
        obj["status"] = {"phase": "Active"}
    elif (info.group, info.kind) in _INITIAL_STATUS:
        obj["status"] = copy.deepcopy(_INITIAL_STATUS[(info.group, info.kind)])
    else:
        obj.pop("status", None)


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def prepare_for_update(info: ResourceInfo, new: Obj, old: Obj) -> None:
    """A write to the main resource: server-owned metadata comes from the stored object,
    status is kept when the kind has a status subresource, generation bumps on spec change."""
    meta, old_meta = new.setdefault("metadata", {}), old["metadata"]
    if not meta.get("uid"):
        meta["uid"] = old_meta.get("uid")  # a different uid stays, and validation rejects it
    for field in ("creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)
    if has_status_subresource(info):
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    if has_generation(info) and _spec_part(new) != _spec_part(old):
        meta["generation"] = old_meta.get("generation", 0) + 1
    if (info.group, info.kind) == ("apps", "DaemonSet"):
        _daemonset_template_generation(new, old)


DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def _daemonset_template_generation(new: Obj, old: Obj) -> None:
    """apps/v1 carries the DaemonSet's spec.templateGeneration in an annotation: it is the
    server's, one more than before when the pod template changes, else unchanged."""
    def template(obj: Obj) -> Any:
        return (obj.get("spec") or {}).get("template")

    old_annotations = old["metadata"].get("annotations") or {}
    try:
        generation = int(old_annotations.get(DS_TEMPLATE_GENERATION, "0"))
    except ValueError:
        generation = 0
    if template(new) != template(old):
        generation += 1
    if generation:
        annotations = new["metadata"].get("annotations")
        if not isinstance(annotations, dict):
            annotations = new["metadata"]["annotations"] = {}
        annotations[DS_TEMPLATE_GENERATION] = str(generation)


# Status strategies that only pin the spec, so a /status write may also change
# metadata (the Deployment controller writes deployment.kubernetes.io/revision that
# way); Deployment additionally pins labels. Every other kind resets all metadata to
# the stored object's (ResetObjectMetaForStatus).
_STATUS_KEEPS_METADATA = {
    ("apps", "Deployment"): ("labels",), ("apps", "ReplicaSet"): (), ("apps", "StatefulSet"): (),
    ("apps", "DaemonSet"): (), ("batch", "Job"): (), ("batch", "CronJob"): (), ("", "ReplicationController"): (),
}
_SERVER_OWNED_META = ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "resourceVersion")


def prepare_for_status_update(info: ResourceInfo, new: Obj, old: Obj) -> Obj:
    """A write to /status: status comes from the request, the rest from the stored
    object, except metadata where the kind's status strategy lets it through."""
    result = deep_copy(old)
    if "status" in new:
        result["status"] = new["status"]
    else:
        result.pop("status", None)
    new_meta = new.get("metadata") or {}
    pinned = _STATUS_KEEPS_METADATA.get((info.group, info.kind))
    if pinned is not None:
        meta = {k: v for k, v in new_meta.items() if k not in _SERVER_OWNED_META and k not in pinned}
        meta.update({k: old["metadata"][k] for k in (*_SERVER_OWNED_META, *pinned) if k in old["metadata"]})
        result["metadata"] = meta
    if new_meta.get("uid") and new_meta["uid"] != old["metadata"].get("uid"):
        result["metadata"]["uid"] = new_meta["uid"]  # a guard that failed: validation rejects it
    result["metadata"]["managedFields"] = new_meta.get("managedFields", old["metadata"].get("managedFields"))
    if result["metadata"]["managedFields"] is None:
        result["metadata"].pop("managedFields")
    return result


def unchanged(new: Obj, old: Obj) -> bool:
    """True when a write would change nothing but resourceVersion and managedFields
    timestamps: Kubernetes then skips the write and keeps the resourceVersion."""
    def strip(o: Obj) -> Obj:
        meta = {k: v for k, v in o.get("metadata", {}).items() if k not in ("resourceVersion", "managedFields")}
        return {**o, "metadata": meta}

    return strip(new) == strip(old)


def qos_class(spec: Obj) -> str:
    """The pod's QoS class, as the API server computes it on create."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    requests_any = limits_any = False
    guaranteed = bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        requests_any |= any(k in ("cpu", "memory") for k in requests)
        limits_any |= any(k in ("cpu", "memory") for k in limits)
        for resource in ("cpu", "memory"):
            if resource not in limits or requests.get(resource, limits[resource]) != limits[resource]:
                guaranteed = False
    if guaranteed:
        return "Guaranteed"
    if requests_any or limits_any:
        return "Burstable"
    return "BestEffort"


# ObjectMeta's maps and lists are `omitempty` in Go: an empty one is not stored (a client
# that sends `labels: {}` reads back no `labels` at all).
_OMITEMPTY_METADATA = ("labels", "annotations", "finalizers", "ownerReferences")


def drop_empty_metadata(obj: Obj) -> None:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for field in _OMITEMPTY_METADATA:
            if field in meta and (meta[field] == {} or meta[field] == [] or meta[field] is None):
                del meta[field]

