"""persistentVolumeClaimRetentionPolicy: which owner references a replica's claims carry.

Kubernetes (StatefulSetAutoDeletePVC, on by default) expresses the policy purely through
ownerReferences and lets the garbage collector do the deleting:
  whenDeleted: Delete  -> the claim has an ownerReference to the StatefulSet, so deleting
                          the set deletes the claim;
  whenScaled:  Delete  -> a claim of a pod that was scaled away (ordinal out of range)
                          gets an ownerReference to that pod, so deleting the pod
                          deletes the claim (and a set ref is dropped for such claims).
Retain/Retain (the default) means neither reference. The references are plain (not
controller) references: apiVersion, kind, name and uid. A claim controlled by something
else entirely is left alone.
"""

from __future__ import annotations

import copy
from typing import Any

from controllers.common import objects, ownership
from controllers.statefulset.identity import API_VERSION, KIND, in_ordinal_range

Obj = dict[str, Any]
RETAIN = "Retain"
DELETE = "Delete"


def policy(sts: Obj) -> tuple[str, str]:
    """(whenDeleted, whenScaled); Retain for anything unset or unknown (as Kubernetes treats it)."""
    raw = objects.spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    when_deleted = raw.get("whenDeleted") if raw.get("whenDeleted") in (RETAIN, DELETE) else RETAIN
    when_scaled = raw.get("whenScaled") if raw.get("whenScaled") in (RETAIN, DELETE) else RETAIN
    return when_deleted, when_scaled


def has_owner_ref(target: Obj, owner: Obj) -> bool:
    return any(ref.get("uid") == objects.uid(owner) for ref in objects.metadata(target).get("ownerReferences") or [])


def has_stale_owner_ref(target: Obj, owner: Obj) -> bool:
    """A reference to an owner of the same name but another uid (an earlier incarnation)."""
    return any(ref.get("name") == objects.name(owner) and ref.get("uid") != objects.uid(owner)
               for ref in objects.metadata(target).get("ownerReferences") or [])


def _foreign_controller(claim: Obj, sts: Obj, pod: Obj) -> bool:
    ref = ownership.controller_of(claim)
    return ref is not None and ref.get("uid") not in (objects.uid(sts), objects.uid(pod))


def desired_refs(sts: Obj, pod: Obj) -> tuple[bool, bool]:
    """(claim should reference the set, claim should reference the pod) under the policy."""
    when_deleted, when_scaled = policy(sts)
    scaled_down = not in_ordinal_range(pod, sts)
    if when_scaled == RETAIN:
        return when_deleted == DELETE, False
    if when_deleted == RETAIN:
        return False, scaled_down
    return not scaled_down, scaled_down


def claim_matches_policy(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """claimOwnerMatchesSetAndPod."""
    if _foreign_controller(claim, sts, pod):
        return True
    want_set, want_pod = desired_refs(sts, pod)
    return has_owner_ref(claim, sts) == want_set and has_owner_ref(claim, pod) == want_pod


def _plain_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": objects.name(owner), "uid": objects.uid(owner)}


def updated_claim(claim: Obj, sts: Obj, pod: Obj) -> Obj | None:
    """updateClaimOwnerRefForSetAndPod: the claim with the references the policy wants,
    or None when it already has them."""
    if claim_matches_policy(claim, sts, pod):
        return None
    want_set, want_pod = desired_refs(sts, pod)
    result = copy.deepcopy(claim)
    refs = [r for r in objects.metadata(result).get("ownerReferences") or []
            if r.get("uid") not in (objects.uid(sts), objects.uid(pod))]
    kept = {r.get("uid"): r for r in objects.metadata(claim).get("ownerReferences") or []}
    if want_set:
        refs.append(kept.get(objects.uid(sts)) or _plain_ref(sts, API_VERSION, KIND))
    if want_pod:
        refs.append(kept.get(objects.uid(pod)) or _plain_ref(pod, "v1", "Pod"))
    result["metadata"]["ownerReferences"] = refs
    if not refs:
        result["metadata"].pop("ownerReferences")
    return result
