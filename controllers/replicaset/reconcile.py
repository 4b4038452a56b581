"""One sync of a ReplicaSet (ReplicaSetController.syncReplicaSet), as a pure function.

    claim pods -> (expectations satisfied and not being deleted?) manage replicas -> status

1. Claim: among the active pods of the namespace, keep those we control and that match
   the selector, adopt matching orphans, release ours that stopped matching.
2. Manage replicas, only when the expectations recorded by an earlier sync are met: too
   few pods -> expect N creations, then create N (at most `burst_replicas`); too many ->
   pick the pods to delete in deletion-preference order, expect their deletion, delete.
3. Status: write it when counts or the observed generation changed; ask to be requeued
   when a ready pod will turn available after minReadySeconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from controllers.common import expectations as exp
from controllers.common import labels, objects, ownership, pods
from controllers.common.actions import (
    Action,
    AdoptPod,
    CreatePods,
    DeletePods,
    ReleasePod,
    RequeueAfter,
    SetExpectations,
    UpdateStatus,
)
from controllers.replicaset.status import calculate_status, needs_update

API_VERSION = "apps/v1"
KIND = "ReplicaSet"
# kube-controller-manager's --replicaset burst: at most this many creates/deletes per sync.
BURST_REPLICAS = 500

Obj = dict[str, Any]


def reconcile_replicaset(
    rs: Obj,
    pods_in_namespace: Sequence[Obj],
    *,
    now: datetime,
    expectations: exp.ControlleeExpectations | None = None,
    related_pods: Sequence[Obj] | None = None,
    burst_replicas: int = BURST_REPLICAS,
    owner_kind: tuple[str, str] = (API_VERSION, KIND),
) -> list[Action]:
    """The actions of one sync of `rs`.

    `pods_in_namespace`: the pod informer's pods of the ReplicaSet's namespace (all of
    them, so pods that stopped matching can be released). `expectations`: this
    ReplicaSet's record from the runtime's ExpectationsStore. `related_pods`: pods of the
    ReplicaSets sharing this one's controller (used to prefer deleting doubled-up pods);
    defaults to the pods this ReplicaSet owns. `owner_kind`: the (apiVersion, kind) of the
    controller references it writes (a ReplicationController seen as a ReplicaSet).
    """
    selector = labels.parse_selector(objects.spec(rs).get("selector"))
    if selector is None:
        return []
    active = [p for p in pods_in_namespace if pods.is_active(p)]
    claimed = ownership.claim(rs, active, lambda p: selector.matches(objects.labels(p)))
    actions: list[Action] = claim_actions(rs, claimed, owner_kind)
    if exp.satisfied(expectations, now) and not objects.being_deleted(rs):
        related = related_pods if related_pods is not None else claimed.owned
        actions += manage_replicas(rs, claimed.owned, related, now, burst_replicas, owner_kind)
    new_status = calculate_status(rs, claimed.owned, now)
    if needs_update(rs, new_status):
        actions.append(UpdateStatus(new_status))
    requeue = availability_requeue(rs, claimed.owned, now)
    if requeue is not None:
        actions.append(requeue)
    return actions


def owner_reference(rs: Obj, owner_kind: tuple[str, str] = (API_VERSION, KIND)) -> dict[str, Any]:
    return ownership.controller_ref(rs, api_version=owner_kind[0], kind=owner_kind[1])


def claim_actions(rs: Obj, claimed: ownership.Claim, owner_kind: tuple[str, str] = (API_VERSION, KIND)) -> list[Action]:
    ref = owner_reference(rs, owner_kind)
    adopt: list[Action] = [AdoptPod(objects.name(p), ownership.adopt_patch(p, ref)) for p in claimed.adopt]
    release: list[Action] = [ReleasePod(objects.name(p), ownership.release_patch(p, rs)) for p in claimed.release]
    return adopt + release


def manage_replicas(rs: Obj, owned: Sequence[Obj], related: Sequence[Obj], now: datetime,
                    burst_replicas: int, owner_kind: tuple[str, str] = (API_VERSION, KIND)) -> list[Action]:
    """manageReplicas: expectations first, then the creates or deletes."""
    diff = len(owned) - objects.spec_replicas(rs)
    if diff < 0:
        count = min(-diff, burst_replicas)
        return [SetExpectations(add=count),
                CreatePods(objects.spec(rs).get("template") or {}, count, owner_reference(rs, owner_kind),
                           f"{objects.name(rs)}-", objects.namespace(rs))]
    if diff > 0:
        count = min(diff, burst_replicas)
        doomed = pods_to_delete(owned, related, count, now)
        keys = tuple(objects.key(p) for p in doomed)
        return [SetExpectations(deletes=frozenset(keys)),
                DeletePods(tuple(objects.name(p) for p in doomed), objects.namespace(rs), keys)]
    return []


def pods_to_delete(owned: Sequence[Obj], related: Sequence[Obj], count: int, now: datetime) -> list[Obj]:
    """getPodsToDelete: the `count` most deletable pods (no sorting when all of them go)."""
    if count >= len(owned):
        return list(owned)[:count]
    return pods.rank_for_deletion(owned, related=related, now=now)[:count]


def availability_requeue(rs: Obj, owned: Sequence[Obj], now: datetime) -> RequeueAfter | None:
    """Requeue when the first ready-but-not-yet-available pod crosses minReadySeconds.

    Kubernetes gets there two ways: the pod update handler enqueues the ReplicaSet
    minReadySeconds+1s after a pod turns ready, and a sync where all pods are ready but
    not all available requeues after minReadySeconds. A pure function sees no handler
    events, so it asks for the earliest moment a pod turns available, plus that second.
    """
    min_ready = int(objects.spec(rs).get("minReadySeconds") or 0)
    if min_ready <= 0:
        return None
    pending = [pods.available_at(p, min_ready) for p in owned
               if pods.is_ready(p) and not pods.is_available(p, min_ready, now)]
    moments = [m for m in pending if m is not None]
    if not moments:
        if any(pods.is_ready(p) and not pods.is_available(p, min_ready, now) for p in owned):
            return RequeueAfter(float(min_ready))
        return None
    wait = (min(moments) - now).total_seconds()
    return RequeueAfter(float(max(0, math.ceil(wait)) + 1))
