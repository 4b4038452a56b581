"""RollingUpdate for DaemonSets (pkg/controller/daemon/update.go rollingUpdate), as functions.

maxUnavailable and maxSurge are scaled against the number of nodes that should run a
pod, percentages rounded up; when both come out 0, maxUnavailable is taken as 1.

Without surge (maxSurge 0): every node counts as unavailable when it has no pod, two
pods, or an updated pod that is not yet available. An old pod that is not available may
be replaced at once; available old pods are deleted while fewer than maxUnavailable nodes
are unavailable. manage() then creates the new pod on the emptied node.

With surge: a node with an old pod and no new one is a candidate; an old pod that is
unavailable gets its new pod at once (or is deleted if its node no longer wants one),
otherwise at most maxSurge nodes get a new pod next to the old one. Once the new pod is
available the old one is deleted. Old pods on nodes that should no longer run them are
deleted only while more pods are available than desired (100% availability).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers.common import objects, pods
from controllers.common.actions import Event
from controllers.daemonset.eligibility import node_should_run
from controllers.daemonset.status import HASH_LABEL, is_pod_updated, template_generation

Obj = dict[str, Any]
ROLLING_UPDATE = "RollingUpdate"


@dataclass
class PodChanges:
    """What one manage or rolling-update pass wants: nodes to create on, pods to delete."""

    create_on: list[str] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after: list[float] = field(default_factory=list)

    def empty(self) -> bool:
        return not self.create_on and not self.delete


def _strategy(ds: Obj) -> Obj:
    return objects.spec(ds).get("updateStrategy") or {}


def is_rolling_update(ds: Obj) -> bool:
    return (_strategy(ds).get("type") or ROLLING_UPDATE) == ROLLING_UPDATE


def scaled_value(value: int | str | None, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent with round-up (None and junk count as 0)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        try:
            return math.ceil(int(text[:-1]) * total / 100)
        except ValueError:
            return 0
    try:
        return int(text)
    except ValueError:
        return 0


def _rolling(ds: Obj) -> Obj | None:
    if not is_rolling_update(ds):
        return None
    return _strategy(ds).get("rollingUpdate")


def surge_count(ds: Obj, desired: int) -> int:
    rolling = _rolling(ds)
    return 0 if rolling is None else scaled_value(rolling.get("maxSurge"), desired)


def unavailable_count(ds: Obj, desired: int) -> int:
    rolling = _rolling(ds)
    return 0 if rolling is None else scaled_value(rolling.get("maxUnavailable"), desired)


def allows_surge(ds: Obj) -> bool:
    """AllowsSurge: maxSurge scaled against one node is not 0."""
    return surge_count(ds, 1) != 0


def surge_excess(ds: Obj, running: Sequence[Obj], hash_value: str, now: datetime) -> list[Obj]:
    """podsShouldBeOnNode with surge: of several running pods (oldest first) keep the oldest
    new one and the oldest old one; the old one goes too when it is not ready, or when
    the new one is available."""
    oldest_new = oldest_old = None
    doomed: list[Obj] = []
    for pod in running:
        # Kubernetes compares the hash label alone here (not IsPodUpdated).
        if objects.labels(pod).get(HASH_LABEL) == hash_value:
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        doomed.append(pod)
    if oldest_new is not None and oldest_old is not None:
        min_ready = int(objects.spec(ds).get("minReadySeconds") or 0)
        if not pods.is_ready(oldest_old) or pods.is_available(oldest_new, min_ready, now):
            doomed.append(oldest_old)
    return doomed


def updated_pods_on_node(ds: Obj, node_pods: Sequence[Obj], hash_value: str) -> tuple[Obj | None, Obj | None, bool]:
    """findUpdatedPodsOnNode: (new pod, old pod, ok); not ok when there are two of a kind."""
    generation = template_generation(ds)
    new = old = None
    for pod in node_pods:
        if objects.being_deleted(pod):
            continue
        if is_pod_updated(pod, hash_value, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def desired_counts(ds: Obj, nodes: Sequence[Obj], by_node: dict[str, list[Obj]]) -> tuple[int, int, int]:
    """updatedDesiredNodeCounts: (maxSurge, maxUnavailable, desired); adds empty nodes to `by_node`."""
    desired = 0
    for node in nodes:
        if node_should_run(node, ds)[0]:
            desired += 1
            by_node.setdefault(objects.name(node), [])
    max_unavailable = unavailable_count(ds, desired)
    max_surge = surge_count(ds, desired)
    if desired > 0 and max_unavailable == 0 and max_surge == 0:
        max_unavailable = 1
    return max_surge, max_unavailable, desired


def rolling_update(ds: Obj, nodes: Sequence[Obj], by_node: Mapping[str, Sequence[Obj]], hash_value: str,
                   now: datetime) -> PodChanges:
    """rollingUpdate: the PodChanges (creates and deletes) of one step."""
    table = {name: list(node_pods) for name, node_pods in by_node.items()}
    max_surge, max_unavailable, desired = desired_counts(ds, nodes, table)
    min_ready = int(objects.spec(ds).get("minReadySeconds") or 0)
    if max_surge == 0:
        return PodChanges(delete=_replace_within_unavailable(ds, table, hash_value, now, max_unavailable, min_ready))
    create_on, delete = _surge(ds, nodes, table, hash_value, now, max_surge, desired, min_ready)
    return PodChanges(create_on=create_on, delete=delete)


def _replace_within_unavailable(ds: Obj, table: dict[str, list[Obj]], hash_value: str, now: datetime,
                                max_unavailable: int, min_ready: int) -> list[Obj]:
    unavailable = 0
    allowed: list[Obj] = []
    candidates: list[Obj] = []
    for node_name in sorted(table):
        new, old, ok = updated_pods_on_node(ds, table[node_name], hash_value)
        if not ok or (old is None) == (new is None):
            unavailable += 1  # excess pods, or nothing / both: manage will act on this node
        elif new is not None:
            if not pods.is_available(new, min_ready, now):
                unavailable += 1
        elif not pods.is_available(old, min_ready, now):  # type: ignore[arg-type]
            allowed.append(old)  # type: ignore[arg-type]
            unavailable += 1
        elif unavailable < max_unavailable:
            candidates.append(old)  # type: ignore[arg-type]
    remaining = min(max(max_unavailable - unavailable, 0), len(candidates))
    return allowed + candidates[:remaining]


def _surge(ds: Obj, nodes: Sequence[Obj], table: dict[str, list[Obj]], hash_value: str, now: datetime,
           max_surge: int, desired: int, min_ready: int) -> tuple[list[str], list[Obj]]:
    node_by_name = {objects.name(n): n for n in nodes}
    old_to_delete: list[Obj] = []
    should_not_run: list[Obj] = []
    candidates: list[str] = []
    allowed: list[str] = []
    surging = available = 0
    for node_name in sorted(table):
        new, old, ok = updated_pods_on_node(ds, table[node_name], hash_value)
        if not ok:
            surging += 1
            continue
        counted = old if old is not None else new
        if counted is not None and pods.is_available(counted, min_ready, now):
            available += 1
        if old is None:
            continue
        node = node_by_name.get(node_name)
        should_run = node is not None and node_should_run(node, ds)[0]
        if new is None:
            if not pods.is_available(old, min_ready, now):
                (allowed.append(node_name) if should_run else old_to_delete.append(old))
            elif not should_run:
                should_not_run.append(old)
            elif surging < max_surge:
                candidates.append(node_name)
            continue
        if not pods.is_available(new, min_ready, now):
            surging += 1
            continue
        old_to_delete.append(old)
    deletable = min(max(available - desired, 0), len(should_not_run))
    old_to_delete += should_not_run[:deletable]
    remaining = min(max(max_surge - surging, 0), len(candidates))
    return allowed + candidates[:remaining], old_to_delete
