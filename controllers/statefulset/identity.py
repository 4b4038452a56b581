"""A StatefulSet pod's stable identity and storage (stateful_set_utils.go), as pure functions.

Each replica has an ordinal; its pod is `<set>-<ordinal>` with
  - labels `statefulset.kubernetes.io/pod-name: <pod>` and `apps.kubernetes.io/pod-index:
    <ordinal>` (the PodIndexLabel feature, on by default since 1.28), plus
    `controller-revision-hash: <revision name>` saying which template it was made from;
  - spec.hostname = the pod name and spec.subdomain = spec.serviceName, so the headless
    Service gives it the DNS name `<pod>.<service>.<namespace>.svc`;
  - one volume per volumeClaimTemplate, named after the template and bound to the claim
    `<template>-<set>-<ordinal>` (e.g. `www-web-0`), which outlives the pod.
Ordinals run from spec.ordinals.start (default 0) for spec.replicas pods.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from controllers.common import objects, ownership

Obj = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
API_VERSION = "apps/v1"
KIND = "StatefulSet"
ORDERED_READY = "OrderedReady"
PARALLEL = "Parallel"
ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"

_STATEFUL_POD = re.compile(r"^(.*)-([0-9]+)$")


def parent_name_and_ordinal(pod: Obj) -> tuple[str, int]:
    """getParentNameAndOrdinal: ("", -1) for a name that is not `<parent>-<number>`."""
    match = _STATEFUL_POD.match(objects.name(pod))
    if match is None:
        return "", -1
    return match.group(1), int(match.group(2))


def ordinal_of(pod: Obj) -> int:
    return parent_name_and_ordinal(pod)[1]


def is_member_of(sts: Obj, pod: Obj) -> bool:
    """isMemberOf: the pod's name says it belongs to `sts` (the claim filter)."""
    return parent_name_and_ordinal(pod)[0] == objects.name(sts)


def replicas(sts: Obj) -> int:
    return objects.spec_replicas(sts)


def start_ordinal(sts: Obj) -> int:
    ordinals = objects.spec(sts).get("ordinals") or {}
    return int(ordinals.get("start") or 0)


def end_ordinal(sts: Obj) -> int:
    return start_ordinal(sts) + replicas(sts) - 1


def in_ordinal_range(pod: Obj, sts: Obj) -> bool:
    """podInOrdinalRange: the pod is one of the set's current replicas."""
    ordinal = ordinal_of(pod)
    return start_ordinal(sts) <= ordinal <= end_ordinal(sts)


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{objects.name(sts)}-{ordinal}"


def pod_revision(pod: Obj | None) -> str:
    return objects.labels(pod).get(REVISION_LABEL, "")


def pod_management_policy(sts: Obj) -> str:
    return objects.spec(sts).get("podManagementPolicy") or ORDERED_READY


def allows_burst(sts: Obj) -> bool:
    return pod_management_policy(sts) == PARALLEL


def update_strategy(sts: Obj) -> dict[str, Any]:
    return objects.spec(sts).get("updateStrategy") or {"type": ROLLING_UPDATE}


def partition(sts: Obj) -> int:
    rolling = update_strategy(sts).get("rollingUpdate")
    return int((rolling or {}).get("partition") or 0)


def claim_name(sts: Obj, template: Obj, ordinal: int) -> str:
    """getPersistentVolumeClaimName: `<template>-<set>-<ordinal>`."""
    return f"{objects.name(template)}-{objects.name(sts)}-{ordinal}"


def claims_for(sts: Obj, ordinal: int) -> list[Obj]:
    """getPersistentVolumeClaims: the claims the pod with `ordinal` uses, in template order.

    Each is the template with its name made unique, the set's namespace, and the set's
    selector matchLabels added to (or, with none, as) its labels.
    """
    selector_labels = (objects.spec(sts).get("selector") or {}).get("matchLabels") or {}
    claims = []
    for template in objects.spec(sts).get("volumeClaimTemplates") or []:
        claim = copy.deepcopy(template)
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        meta = claim.setdefault("metadata", {})
        meta["name"] = claim_name(sts, template, ordinal)
        meta["namespace"] = objects.namespace(sts)
        meta["labels"] = {**(meta.get("labels") or {}), **selector_labels}
        claim.pop("status", None)
        claims.append(claim)
    return claims


def identity_matches(sts: Obj, pod: Obj) -> bool:
    """identityMatches: name, namespace and identity labels are what the ordinal says."""
    parent, ordinal = parent_name_and_ordinal(pod)
    labels = objects.labels(pod)
    return (ordinal >= 0 and parent == objects.name(sts) and objects.name(pod) == pod_name(sts, ordinal)
            and objects.namespace(pod) == objects.namespace(sts) and labels.get(POD_NAME_LABEL) == objects.name(pod)
            and labels.get(POD_INDEX_LABEL) == str(ordinal))


def storage_matches(sts: Obj, pod: Obj) -> bool:
    """storageMatches: every claim template is mounted from this ordinal's claim."""
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {v.get("name"): v for v in objects.spec(pod).get("volumes") or []}
    for template in objects.spec(sts).get("volumeClaimTemplates") or []:
        source = (volumes.get(objects.name(template)) or {}).get("persistentVolumeClaim")
        if not source or source.get("claimName") != claim_name(sts, template, ordinal):
            return False
    return True


def update_identity(sts: Obj, pod: Obj) -> None:
    """updateIdentity (in place): namespace and the pod-name / pod-index labels."""
    ordinal = ordinal_of(pod)
    meta = pod.setdefault("metadata", {})
    meta["namespace"] = objects.namespace(sts)
    labels = meta.setdefault("labels", {})
    labels[POD_NAME_LABEL] = objects.name(pod)
    labels[POD_INDEX_LABEL] = str(ordinal)


def update_storage(sts: Obj, pod: Obj) -> None:
    """updateStorage (in place): claim volumes first, then the pod's other volumes."""
    claims = claims_for(sts, ordinal_of(pod))
    templates = [objects.name(t) for t in objects.spec(sts).get("volumeClaimTemplates") or []]
    if not templates:
        return
    spec = pod.setdefault("spec", {})
    volumes = [{"name": name, "persistentVolumeClaim": {"claimName": objects.name(claim)}}
               for name, claim in zip(templates, claims, strict=True)]
    volumes += [v for v in spec.get("volumes") or [] if v.get("name") not in templates]
    spec["volumes"] = volumes


def new_pod(sts: Obj, ordinal: int) -> Obj:
    """newStatefulSetPod: the pod for `ordinal` from the set's template (GetPodFromTemplate)."""
    template = objects.spec(sts).get("template") or {}
    tmeta = template.get("metadata") or {}
    meta: Obj = {"name": pod_name(sts, ordinal), "namespace": objects.namespace(sts),
                 "labels": copy.deepcopy(tmeta.get("labels") or {})}
    for key in ("annotations", "finalizers"):
        if tmeta.get(key):
            meta[key] = copy.deepcopy(tmeta[key])
    meta["ownerReferences"] = [ownership.controller_ref(sts, api_version=API_VERSION, kind=KIND)]
    pod: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}
    update_identity(sts, pod)
    # initIdentity: hostname and subdomain are set at creation only (they are immutable).
    pod["spec"]["hostname"] = objects.name(pod)
    if objects.spec(sts).get("serviceName"):
        pod["spec"]["subdomain"] = objects.spec(sts)["serviceName"]
    update_storage(sts, pod)
    return pod


def set_pod_revision(pod: Obj, revision_name: str) -> Obj:
    pod.setdefault("metadata", {}).setdefault("labels", {})[REVISION_LABEL] = revision_name
    return pod


def new_versioned_pod(current_set: Obj, update_set: Obj, current_revision: str, update_revision: str,
                      ordinal: int) -> Obj:
    """newVersionedStatefulSetPod: below the partition, pods are made at the current revision."""
    strategy = update_strategy(current_set)
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == ROLLING_UPDATE and (
            (rolling is None and ordinal < start_ordinal(current_set))
            or (rolling is not None and ordinal < start_ordinal(current_set) + partition(current_set))):
        return set_pod_revision(new_pod(current_set, ordinal), current_revision)
    return set_pod_revision(new_pod(update_set, ordinal), update_revision)
