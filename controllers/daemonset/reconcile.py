"""One sync of a DaemonSet's pods (syncDaemonSet after constructHistory), as a function.

    claim pods -> (expectations met?) manage -> (nothing to do?) rolling update -> status

- Claim: pods the DaemonSet controls and matching orphans (adopted), as ClaimPods does.
- manage (podsShouldBeOnNode per node): a node that should run a pod and has none gets
  one; on a node where pods may continue running, failed pods are deleted (rate limited
  by a per-node backoff, with a FailedDaemonPod event), succeeded pods are deleted (SucceededDaemonPod event), and
  excess pods are pruned (oldest kept; with maxSurge, one old and one new may coexist);
  a node where the pod may not continue loses all of its pods. Pods pinned to a node that
  no longer exists and not yet bound are deleted too.
- rollingUpdate runs only when manage had nothing to do (Kubernetes checks the
  expectations that manage has just set): without surge, old pods are deleted within
  maxUnavailable and manage recreates them next sync; with surge, new pods are created
  next to old ones within maxSurge and the old one goes once the new one is available.
- Status: always written when a count or the observed generation changed.

Creates and deletes go out as one SetExpectations then `CreateDaemonPods` (one pod per
node, slow-start batches) and `DeletePods`, at most `burst_replicas` each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers.common import expectations as exp
from controllers.common import labels, objects, ownership, pods
from controllers.common.actions import (
    NORMAL,
    WARNING,
    Action,
    AdoptPod,
    CreatePods,
    DeletePods,
    Event,
    ReleasePod,
    RequeueAfter,
    SetExpectations,
    UpdateStatus,
)
from controllers.daemonset import eligibility, rolling
from controllers.daemonset.backoff import FailedPodsBackoff
from controllers.daemonset.rolling import PodChanges
from controllers.daemonset.status import (
    HASH_LABEL,
    TEMPLATE_GENERATION_LABEL,
    calculate_status,
    new_status,
    nodes_to_daemon_pods,
    sort_pods,
    template_generation,
)

API_VERSION = "apps/v1"
KIND = "DaemonSet"
BURST_REPLICAS = 250  # daemon.BurstReplicas
SELECTING_ALL = "SelectingAll"
FAILED_DAEMON_POD = "FailedDaemonPod"
SUCCEEDED_DAEMON_POD = "SucceededDaemonPod"

Obj = dict[str, Any]


@dataclass(frozen=True)
class CreateDaemonPods(CreatePods):
    """CreatePods with one pod per node: the n-th pod built is pinned to `node_names[n]`.

    The executor calls `pod()` once per pod it creates (in slow-start batches); each call
    takes the next node, so `count == len(node_names)` pods cover every node once.
    """

    node_names: tuple[str, ...] = ()
    _taken: list[int] = field(default_factory=list, compare=False, repr=False)

    def pod(self) -> dict[str, Any]:
        body = super().pod()
        node = self.node_names[len(self._taken)]
        self._taken.append(1)
        body["spec"]["affinity"] = eligibility.node_affinity_for(body["spec"].get("affinity"), node)
        return body


def owner_reference(ds: Obj) -> dict[str, Any]:
    return ownership.controller_ref(ds, api_version=API_VERSION, kind=KIND)


def pod_template(ds: Obj, hash_value: str) -> Obj:
    """CreatePodTemplate: the template with daemon tolerations and the revision labels."""
    template = objects.spec(ds).get("template") or {}
    metadata = dict(template.get("metadata") or {})
    pod_labels = dict(metadata.get("labels") or {})
    generation = template_generation(ds)
    if generation is not None:
        pod_labels[TEMPLATE_GENERATION_LABEL] = generation
    if hash_value:
        pod_labels[HASH_LABEL] = hash_value
    metadata["labels"] = pod_labels
    return {"metadata": metadata, "spec": eligibility.add_daemon_tolerations(template.get("spec") or {})}


def reconcile_daemonset(ds: Obj, nodes: Sequence[Obj], candidates: Sequence[Obj], *, hash_value: str,
                        now: datetime, backoff: FailedPodsBackoff,
                        expectations: exp.ControlleeExpectations | None = None,
                        burst_replicas: int = BURST_REPLICAS) -> list[Action]:
    """The actions of one sync; `candidates`: pods the DaemonSet controls plus orphans.

    `backoff` is the controller's failed-pod backoff; a failed pod that is deleted opens
    or widens its node's window (the one piece of state a sync changes in memory).
    """
    selector_spec = objects.spec(ds).get("selector")
    if labels.selects_everything(selector_spec):
        return [Event(WARNING, SELECTING_ALL, "This daemon set is selecting all pods. A non-empty selector is required.")]
    selector = labels.parse_selector(selector_spec)
    if selector is None or objects.being_deleted(ds):
        return []
    nodes = sorted(nodes, key=objects.name)
    claimed = ownership.claim(ds, candidates, lambda p: selector.matches(objects.labels(p)))
    ref = owner_reference(ds)
    actions: list[Action] = [AdoptPod(objects.name(p), ownership.adopt_patch(p, ref)) for p in claimed.adopt]
    actions += [ReleasePod(objects.name(p), ownership.release_patch(p, ds)) for p in claimed.release]
    satisfied = exp.satisfied(expectations, now)
    if satisfied:
        changes = manage(ds, nodes, claimed.owned, hash_value, now, backoff)
        if changes.empty() and rolling.is_rolling_update(ds):
            step = rolling.rolling_update(ds, nodes, nodes_to_daemon_pods(claimed.owned), hash_value, now)
            changes.create_on, changes.delete = step.create_on, step.delete
        actions += sync_nodes(ds, changes, hash_value, burst_replicas)
    counts = calculate_status(ds, nodes, nodes_to_daemon_pods(claimed.owned), hash_value, now)
    status = new_status(ds, counts, update_observed_generation=satisfied)
    if status is not None:
        actions.append(UpdateStatus(status))
    min_ready = int(objects.spec(ds).get("minReadySeconds") or 0)
    if min_ready > 0 and counts["numberReady"] != counts["numberAvailable"]:
        actions.append(RequeueAfter(float(min_ready)))
    return actions


def manage(ds: Obj, nodes: Sequence[Obj], owned: Sequence[Obj], hash_value: str, now: datetime,
           backoff: FailedPodsBackoff) -> PodChanges:
    """manage: podsShouldBeOnNode for every node, then unbound pods of vanished nodes."""
    by_node = nodes_to_daemon_pods(owned)
    changes = PodChanges()
    for node in nodes:
        pods_should_be_on_node(ds, node, by_node.get(objects.name(node)), hash_value, now, backoff, changes)
    node_names = {objects.name(n) for n in nodes}
    for node_name, daemon_pods in by_node.items():
        if node_name not in node_names:
            changes.delete += [p for p in daemon_pods if not objects.spec(p).get("nodeName")]
    return changes


def pods_should_be_on_node(ds: Obj, node: Obj, daemon_pods: Sequence[Obj] | None, hash_value: str,
                           now: datetime, backoff: FailedPodsBackoff, changes: PodChanges) -> None:
    """podsShouldBeOnNode: add this node's creates and deletes to `changes`."""
    node_name = objects.name(node)
    should_run, should_continue = eligibility.node_should_run(node, ds)
    if should_run and daemon_pods is None:
        changes.create_on.append(node_name)
        return
    if daemon_pods is None:
        return
    if not should_continue:
        changes.delete += [p for p in daemon_pods if not objects.being_deleted(p)]
        return
    running = []
    for pod in daemon_pods:
        if objects.being_deleted(pod):
            continue
        if pods.phase(pod) == "Failed":
            _delete_failed_pod(ds, node_name, pod, now, backoff, changes)
        elif pods.phase(pod) == "Succeeded":
            message = (f"Found succeeded daemon pod {objects.namespace(pod)}/{objects.name(pod)} on node "
                       f"{node_name}, will try to delete it")
            changes.events.append(Event(NORMAL, SUCCEEDED_DAEMON_POD, message))
            changes.delete.append(pod)
        else:
            running.append(pod)
    if not rolling.allows_surge(ds):
        changes.delete += sort_pods(running)[1:]
        return
    if not running:
        if should_run:
            changes.create_on.append(node_name)
        return
    changes.delete += rolling.surge_excess(ds, sort_pods(running), hash_value, now)


def _delete_failed_pod(ds: Obj, node_name: str, pod: Obj, now: datetime, backoff: FailedPodsBackoff,
                       changes: PodChanges) -> None:
    """A failed daemon pod is deleted unless its node's backoff window is open."""
    key = f"{objects.uid(ds)}/{objects.status(ds).get('observedGeneration') or 0}/{node_name}"
    if backoff.in_backoff(key, now):
        changes.requeue_after.append(backoff.delay(key).total_seconds())
        return
    backoff.next(key, now)
    message = (f"Found failed daemon pod {objects.namespace(pod)}/{objects.name(pod)} on node {node_name}, "
               "will try to kill it")
    changes.events.append(Event(WARNING, FAILED_DAEMON_POD, message))
    changes.delete.append(pod)


def sync_nodes(ds: Obj, changes: PodChanges, hash_value: str, burst_replicas: int) -> list[Action]:
    """syncNodes: expectations, then at most `burst_replicas` creates and deletes."""
    actions: list[Action] = list(changes.events)
    actions += [RequeueAfter(max(0.0, math.ceil(s))) for s in changes.requeue_after]
    if changes.empty():
        return actions
    create_on = changes.create_on[:burst_replicas]
    doomed = changes.delete[:burst_replicas]
    keys = tuple(objects.key(p) for p in doomed)
    actions.append(SetExpectations(add=len(create_on), deletes=frozenset(keys)))
    if create_on:
        actions.append(CreateDaemonPods(pod_template(ds, hash_value), len(create_on), owner_reference(ds),
                                        f"{objects.name(ds)}-", objects.namespace(ds), node_names=tuple(create_on)))
    if doomed:
        actions.append(DeletePods(tuple(objects.name(p) for p in doomed), objects.namespace(ds), keys))
    return actions
