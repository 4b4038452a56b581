"""One StatefulSet sync (defaultStatefulSetControl.UpdateStatefulSet, 1.32), over the caches.

    revisions -> (current, update) revision -> replicas/condemned -> pods -> status -> history

1. Revisions: the set's template as a revision; equal to the newest one: unchanged; equal
   to an older one (a rollback): that one is renumbered as the newest; else a new one is
   created (collisions raise status.collisionCount). The current revision is the one
   named by status.currentRevision (the update revision on the first sync).
2. Pods with ordinals in [start, start+replicas) are the replicas; other ordinals are
   condemned. Missing replicas are made from the current revision below the partition,
   from the update revision otherwise.
3. Replicas, lowest ordinal first: a Failed/Succeeded pod is deleted (recreated on a later
   sync); a missing one is created (claims first). OrderedReady ("monotonic") stops at
   the first pod created, terminating, not Running+Ready or not yet available
   (minReadySeconds); Parallel carries on. Then condemned pods go, highest ordinal
   first, in OrderedReady one at a time and only while the others are healthy.
4. RollingUpdate: the highest-ordinal replica at or above the partition whose revision is
   not the update revision is deleted (it comes back at the update revision), one at a
   time, each waiting for the ones above it to be healthy again. OnDelete: nothing.
5. Status (replicas, ready, available, current, updated, revisions, collisionCount,
   observedGeneration) is written when it changed; a finished rolling update makes the
   update revision current. Then revisions beyond revisionHistoryLimit that no pod uses
   are deleted, oldest first.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controllers.common import objects, pods
from controllers.history import (
    create_revision,
    delete_revision,
    equal_revision,
    find_equal_revisions,
    next_revision,
    sort_revisions,
    update_revision_number,
)
from controllers.statefulset import identity
from controllers.statefulset.podcontrol import AggregateError, StatefulPodControl
from controllers.statefulset.revisions import apply_revision, revision_for
from minikube_py.client import STATEFULSETS, ApiClient, ApiError

Obj = dict[str, Any]
DEFAULT_HISTORY_LIMIT = 10
STATUS_FIELDS = ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas",
                 "currentRevision", "updateRevision")


def is_created(pod: Obj | None) -> bool:
    return bool(objects.status(pod).get("phase"))


def is_running_and_ready(pod: Obj) -> bool:
    return pods.phase(pod) == "Running" and pods.is_ready(pod)


def is_healthy(pod: Obj) -> bool:
    return is_running_and_ready(pod) and not objects.being_deleted(pod)


@dataclass
class Revisions:
    current: Obj
    update: Obj
    collision_count: int


def replica_status(status: Obj, min_ready: int, revs: Revisions, now: datetime, *pod_lists: Sequence[Obj]) -> Obj:
    """updateStatus/computeReplicaStatus: the counts over the given pods."""
    counts = dict.fromkeys(("replicas", "readyReplicas", "availableReplicas", "currentReplicas", "updatedReplicas"), 0)
    current, update = objects.name(revs.current), objects.name(revs.update)
    for pod in (p for pod_list in pod_lists for p in pod_list):
        if is_created(pod):
            counts["replicas"] += 1
        if is_running_and_ready(pod):
            counts["readyReplicas"] += 1
            if pods.is_available(pod, min_ready, now):
                counts["availableReplicas"] += 1
        if is_created(pod) and not objects.being_deleted(pod):
            counts["currentReplicas"] += identity.pod_revision(pod) == current
            counts["updatedReplicas"] += identity.pod_revision(pod) == update
    return {**status, **counts}


def complete_rolling_update(sts: Obj, status: Obj) -> Obj:
    """completeRollingUpdate: all pods updated and ready -> the update revision is current."""
    if (identity.update_strategy(sts).get("type") == identity.ROLLING_UPDATE
            and status["updatedReplicas"] == status["replicas"] and status["readyReplicas"] == status["replicas"]):
        return {**status, "currentReplicas": status["updatedReplicas"], "currentRevision": status["updateRevision"]}
    return status


def inconsistent_status(sts: Obj, status: Obj) -> bool:
    """inconsistentStatus: a newer generation was observed, or a count or revision changed."""
    old = objects.status(sts)
    if int(status.get("observedGeneration") or 0) > int(old.get("observedGeneration") or 0):
        return True
    return any((old.get(f) or (0 if f.endswith("Replicas") or f == "replicas" else "")) != status.get(f)
               for f in STATUS_FIELDS)


async def run_for_all(items: Sequence[Obj], fn: Callable[[int], Awaitable[bool]], monotonic: bool) -> bool:
    """runForAll: in order, stopping at the first `True` (monotonic), or in slow-start
    batches (1, 2, 4, ...) stopping at the first batch with an error (burst)."""
    if monotonic:
        for i in range(len(items)):
            if await fn(i):
                return True
        return False
    start, batch = 0, 1
    while start < len(items):
        chunk = range(start, min(start + batch, len(items)))
        results = await asyncio.gather(*(fn(i) for i in chunk), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            if len(failures) == 1:
                raise failures[0]
            raise AggregateError([str(f) for f in failures])
        start, batch = start + len(chunk), batch * 2
    return False


class StatefulSetControl:
    """The sync of one StatefulSet with its claimed pods (see the module docstring)."""

    def __init__(self, client: ApiClient, pod_control: StatefulPodControl) -> None:
        self.client = client
        self.pod_control = pod_control

    async def update_stateful_set(self, sts: Obj, set_pods: Sequence[Obj], revisions: Sequence[Obj],
                                  now: datetime) -> Obj | None:
        """UpdateStatefulSet: returns the status written (or computed), None if it failed early."""
        revisions = sort_revisions(revisions)
        revs: Revisions | None = None
        try:
            revs = await self.stateful_set_revisions(sts, revisions)
            status, error = await self.update_pods(sts, revs, set_pods, now)
            status_error: BaseException | None = None
            try:
                status = await self.update_status(sts, status)
            except ApiError as exc:
                status_error = exc
            if error is not None:
                raise error
            if status_error is not None:
                raise status_error
        finally:
            await self.truncate_history(sts, set_pods, revisions, revs)
        return status

    # -- 1. revisions -------------------------------------------------------------------

    async def stateful_set_revisions(self, sts: Obj, revisions: list[Obj]) -> Revisions:
        """getStatefulSetRevisions."""
        collision_count = int(objects.status(sts).get("collisionCount") or 0)
        candidate = revision_for(sts, next_revision(revisions), collision_count)
        equal = find_equal_revisions(revisions, candidate)
        if equal and equal_revision(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            update = await update_revision_number(self.client, equal[-1], int(candidate["revision"]))
        else:
            update, collision_count = await create_revision(self.client, sts, candidate, collision_count)
        current_name = objects.status(sts).get("currentRevision")
        current = next((r for r in revisions if objects.name(r) == current_name), None) or update
        return Revisions(current, update, collision_count)

    # -- 2-4. pods ----------------------------------------------------------------------

    async def update_pods(self, sts: Obj, revs: Revisions, set_pods: Sequence[Obj],
                          now: datetime) -> tuple[Obj, BaseException | None]:
        """updateStatefulSet: (status, error of the pod work or None)."""
        status: Obj = {"observedGeneration": objects.generation(sts), "currentRevision": objects.name(revs.current),
                       "updateRevision": objects.name(revs.update), "collisionCount": revs.collision_count}
        min_ready = int(objects.spec(sts).get("minReadySeconds") or 0)
        current_set, update_set = apply_revision(sts, revs.current), apply_revision(sts, revs.update)
        start = identity.start_ordinal(sts)
        replicas: list[Obj | None] = [None] * identity.replicas(sts)
        condemned: list[Obj] = []
        for pod in set_pods:
            if identity.in_ordinal_range(pod, sts):
                replicas[identity.ordinal_of(pod) - start] = pod
            elif identity.ordinal_of(pod) >= 0:
                condemned.append(pod)
        filled = [pod or identity.new_versioned_pod(current_set, update_set, objects.name(revs.current),
                                                    objects.name(revs.update), start + i)
                  for i, pod in enumerate(replicas)]
        condemned.sort(key=identity.ordinal_of, reverse=True)
        unhealthy = [p for p in filled if not is_healthy(p)] + [p for p in reversed(condemned) if not is_healthy(p)]
        first_unhealthy = unhealthy[0] if unhealthy else None

        def finish() -> Obj:
            return replica_status(status, min_ready, revs, now, filled, condemned)

        if objects.being_deleted(sts):
            return replica_status(status, min_ready, revs, now, set_pods), None
        monotonic = not identity.allows_burst(sts)
        try:
            if await run_for_all(filled, lambda i: self.process_replica(sts, update_set, monotonic, filled, i, now),
                                 monotonic):
                return finish(), None
            if await run_for_all(condemned, lambda i: self.fix_condemned_claims(update_set, condemned[i]), monotonic):
                return finish(), None
            if await run_for_all(condemned, lambda i: self.process_condemned(sts, first_unhealthy, monotonic,
                                                                              condemned[i], now), monotonic):
                return finish(), None
        except Exception as exc:  # the status is still written, then the error requeues
            return finish(), exc
        status = finish()
        if identity.update_strategy(sts).get("type") == identity.ON_DELETE:
            return status, None
        try:
            return await self.rolling_update(sts, revs, filled, status), None
        except Exception as exc:
            return status, exc

    async def process_replica(self, sts: Obj, update_set: Obj, monotonic: bool, replicas: list[Obj], i: int,
                              now: datetime) -> bool:
        """processReplica: True means stop here (monotonic) for now."""
        pod = replicas[i]
        if pods.phase(pod) in ("Failed", "Succeeded"):
            if not objects.being_deleted(pod):
                await self.pod_control.delete_pod(sts, pod)
            return True  # a new pod is made once this one is gone
        if not is_created(pod):
            if self.pod_control.pod_claim_is_stale(sts, pod):
                return True
            await self.pod_control.create_pod(sts, pod)
            return monotonic
        if pods.phase(pod) == "Pending":
            await self.pod_control.create_missing_claims(sts, pod)
        if monotonic and (objects.being_deleted(pod) or not is_running_and_ready(pod)
                          or not pods.is_available(pod, int(objects.spec(sts).get("minReadySeconds") or 0), now)):
            return True
        if (identity.identity_matches(sts, pod) and identity.storage_matches(sts, pod)
                and self.pod_control.claims_match_policy(update_set, pod)):
            return False
        await self.pod_control.update_pod(update_set, pod)
        return False

    async def fix_condemned_claims(self, update_set: Obj, pod: Obj) -> bool:
        """Condemned pods' claims get the owner references of the whenScaled policy."""
        if not self.pod_control.claims_match_policy(update_set, pod):
            await self.pod_control.update_claims_for_policy(update_set, pod)
        return False

    async def process_condemned(self, sts: Obj, first_unhealthy: Obj | None, monotonic: bool, pod: Obj,
                                now: datetime) -> bool:
        """processCondemned: delete one condemned pod (OrderedReady waits for health)."""
        if objects.being_deleted(pod):
            return monotonic
        min_ready = int(objects.spec(sts).get("minReadySeconds") or 0)
        if monotonic and pod is not first_unhealthy and (
                not is_running_and_ready(pod) or not pods.is_available(pod, min_ready, now)):
            return True
        await self.pod_control.delete_pod(sts, pod)
        return True

    async def rolling_update(self, sts: Obj, revs: Revisions, replicas: list[Obj], status: Obj) -> Obj:
        """Delete the highest replica at or above the partition not at the update revision."""
        for target in range(len(replicas) - 1, identity.partition(sts) - 1, -1):
            pod = replicas[target]
            if identity.pod_revision(pod) != objects.name(revs.update) and not objects.being_deleted(pod):
                try:
                    await self.pod_control.delete_pod(sts, pod)
                except ApiError as exc:
                    if not exc.is_not_found():
                        raise
                return {**status, "currentReplicas": status["currentReplicas"] - 1}
            if not is_healthy(pod):
                return status
        return status

    # -- 5. status and history ----------------------------------------------------------

    async def update_status(self, sts: Obj, status: Obj) -> Obj:
        """updateStatefulSetStatus: PUT the status when it changed; retry conflicts on a fresh copy."""
        status = complete_rolling_update(sts, status)
        if not inconsistent_status(sts, status):
            return status
        current = copy.deepcopy(sts)
        for attempt in range(5):
            current["status"] = dict(status)
            try:
                await self.client.update_status(STATEFULSETS, current, objects.namespace(sts))
                return status
            except ApiError as exc:
                if not exc.is_conflict() or attempt == 4:
                    raise
            current = await self.client.get(STATEFULSETS, objects.name(sts), objects.namespace(sts))
        return status

    async def truncate_history(self, sts: Obj, set_pods: Sequence[Obj], revisions: Sequence[Obj],
                               revs: Revisions | None) -> None:
        """truncateHistory: delete the oldest revisions no pod uses beyond revisionHistoryLimit."""
        live = {identity.pod_revision(p) for p in set_pods}
        if revs is not None:
            live |= {objects.name(revs.current), objects.name(revs.update)}
        history = [r for r in revisions if objects.name(r) not in live]
        limit = objects.spec(sts).get("revisionHistoryLimit")
        limit = DEFAULT_HISTORY_LIMIT if limit is None else int(limit)
        for revision in history[:max(0, len(history) - limit)]:
            await delete_revision(self.client, revision)
