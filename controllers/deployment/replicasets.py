"""Which ReplicaSets a Deployment has, which one is new, and how a new one looks.

The "new" ReplicaSet is the oldest one whose pod template equals the Deployment's,
ignoring the pod-template-hash label (EqualIgnoreHash: the hash itself changes between
Kubernetes versions, so it is never used to match). All the others are "old". A new
ReplicaSet is named `<deployment>-<hash>`; its template, labels and selector carry
`pod-template-hash: <hash>` so its pods never overlap another ReplicaSet's.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Sequence
from typing import Any

from controllers.common import objects, ownership
from controllers.common.hashing import compute_hash
from controllers.deployment import annotations as ann

POD_TEMPLATE_HASH = "pod-template-hash"
API_VERSION = "apps/v1"
KIND = "Deployment"

Obj = dict[str, Any]


def _without_hash_label(template: Obj | None) -> Obj:
    stripped = copy.deepcopy(template or {})
    labels = (stripped.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH, None)
    return objects.drop_empty(stripped)


def equal_ignore_hash(template_a: Obj | None, template_b: Obj | None) -> bool:
    """EqualIgnoreHash: semantic equality of two pod templates, pod-template-hash aside."""
    return _without_hash_label(template_a) == _without_hash_label(template_b)


def template(obj: Obj) -> Obj:
    return objects.spec(obj).get("template") or {}


def find_new_replica_set(d: Obj, rs_list: Sequence[Obj]) -> Obj | None:
    """FindNewReplicaSet: the oldest ReplicaSet whose template is the Deployment's."""
    for rs in objects.by_creation(rs_list):
        if equal_ignore_hash(template(rs), template(d)):
            return rs
    return None


def find_old_replica_sets(d: Obj, rs_list: Sequence[Obj]) -> list[Obj]:
    """FindOldReplicaSets (all of them, in creation order): every ReplicaSet but the new one."""
    new_rs = find_new_replica_set(d, rs_list)
    return [rs for rs in objects.by_creation(rs_list) if new_rs is None or rs is not new_rs]


def filter_active(replica_sets: Iterable[Obj | None]) -> list[Obj]:
    """FilterActiveReplicaSets: those that have (or should have) pods."""
    return [rs for rs in replica_sets if rs is not None and objects.spec_replicas(rs) > 0]


def _compare_size(a: Obj, b: Obj, newer_first: bool) -> int:
    size_a, size_b = objects.spec_replicas(a), objects.spec_replicas(b)
    if size_a != size_b:
        return -1 if size_a > size_b else 1
    older = (objects.creation_time(a), objects.name(a)) < (objects.creation_time(b), objects.name(b))
    first = (not older) if newer_first else older
    return -1 if first else 1


def by_size(replica_sets: Iterable[Obj], *, newer_first: bool) -> list[Obj]:
    """ReplicaSetsBySizeNewer / BySizeOlder: largest first, then newer (or older) first."""
    return sorted(replica_sets, key=functools.cmp_to_key(lambda a, b: _compare_size(a, b, newer_first)))


def by_revision(replica_sets: Iterable[Obj]) -> list[Obj]:
    """ReplicaSetsByRevision: lowest revision first; creation order breaks ties or bad values."""
    def compare(a: Obj, b: Obj) -> int:
        rev_a, rev_b = ann.revision(a), ann.revision(b)
        if rev_a is None or rev_b is None or rev_a == rev_b:
            key_a = (objects.creation_time(a), objects.name(a))
            key_b = (objects.creation_time(b), objects.name(b))
            return (key_a > key_b) - (key_a < key_b)
        return -1 if rev_a < rev_b else 1
    return sorted(replica_sets, key=functools.cmp_to_key(compare))


def find_active_or_latest(new_rs: Obj | None, old_rss: Sequence[Obj]) -> tuple[Obj | None, list[Obj]]:
    """FindActiveOrLatest, and the old ReplicaSets newest first (Kubernetes sorts them in place).

    The one active ReplicaSet if there is at most one; with none active, the new one or
    else the newest old one; with several active, None (time for proportional scaling).
    """
    newest_first = list(reversed(objects.by_creation(old_rss)))
    if new_rs is None and not newest_first:
        return None, newest_first
    active = filter_active([*newest_first, new_rs])
    if not active:
        return (new_rs if new_rs is not None else newest_first[0]), newest_first
    return (active[0] if len(active) == 1 else None), newest_first


def owner_reference(d: Obj) -> dict[str, Any]:
    return ownership.controller_ref(d, api_version=API_VERSION, kind=KIND)


def pod_template_hash(d: Obj) -> str:
    collision_count = objects.status(d).get("collisionCount")
    return compute_hash(template(d), None if collision_count is None else int(collision_count))


def new_replica_set(d: Obj, replicas: int = 0) -> Obj:
    """The ReplicaSet getNewReplicaSet would create (before sizing and annotations)."""
    hash_value = pod_template_hash(d)
    rs_template = copy.deepcopy(template(d))
    rs_labels = {**(rs_template.get("metadata") or {}).get("labels", {}), POD_TEMPLATE_HASH: hash_value}
    rs_template.setdefault("metadata", {})["labels"] = rs_labels
    selector = copy.deepcopy(objects.spec(d).get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), POD_TEMPLATE_HASH: hash_value}
    metadata: Obj = {"name": f"{objects.name(d)}-{hash_value}", "labels": dict(rs_labels),
                     "ownerReferences": [owner_reference(d)]}
    if objects.namespace(d):
        metadata["namespace"] = objects.namespace(d)
    spec: Obj = {"replicas": replicas, "selector": selector, "template": rs_template}
    min_ready = int(objects.spec(d).get("minReadySeconds") or 0)
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {"apiVersion": API_VERSION, "kind": "ReplicaSet", "metadata": metadata, "spec": spec}
