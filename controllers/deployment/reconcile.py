"""One sync of a Deployment (DeploymentController.syncDeployment), as a pure function.

    selector {} ----------------------------> SelectingAll warning, observe generation
    claim ReplicaSets (adopt orphans, release strays)
    being deleted --------------------------> status only
    paused/resumed condition
    paused ---------------------------------> sync: scale, cleanup, plain status
    an active ReplicaSet sized for other
      spec.replicas (a scaling event) ------> sync: proportional scale, plain status
    strategy Recreate ----------------------> rollout_recreate
    strategy RollingUpdate -----------------> rollout_rolling

Every branch ends by writing the status (and the revision annotation) once, if changed:
where Kubernetes writes status several times within one sync (say DeploymentResumed, then
NewReplicaSetCreated), only the last state is written; the conditions' times are the same.
`kubectl rollout undo` needs nothing here: kubectl writes the old template back, and the
ReplicaSet whose template matches becomes the new one again with the next revision. The
apps/v1 `deprecated.deployment.rollback.to` annotation (extensions/v1beta1 rollbackTo) is
not supported.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from controllers.common import conditions, labels, objects, ownership
from controllers.common.actions import (
    WARNING,
    Action,
    AdoptReplicaSet,
    ReleaseReplicaSet,
    RequeueAfter,
    UpdateStatus,
)
from controllers.deployment import annotations as ann
from controllers.deployment import replicas as rep
from controllers.deployment import replicasets as rsu
from controllers.deployment import status as st
from controllers.deployment import sync
from controllers.deployment.context import AbortSync, SyncContext
from controllers.deployment.recreate import rollout_recreate
from controllers.deployment.rolling import rollout_rolling

Obj = dict[str, Any]


def reconcile_deployment(deployment: Obj, replica_sets: Sequence[Obj], pods: Sequence[Obj], *,
                         now: datetime) -> list[Action]:
    """The actions of one sync of `deployment`.

    `replica_sets`: the ReplicaSet informer's objects in the Deployment's namespace (all of
    them: orphans can be adopted and name collisions seen). `pods`: the pod informer's pods
    in that namespace (Recreate waits for the old ones to be gone). `now`: the clock.
    """
    ctx = SyncContext.start(deployment, now)
    selector = objects.spec(deployment).get("selector")
    if labels.selects_everything(selector):
        return _selecting_all(ctx)
    if labels.parse_selector(selector) is None:
        return []
    namespace_rss = [rs for rs in replica_sets if objects.namespace(rs) == objects.namespace(deployment)]
    claimed = ownership.claim(deployment, namespace_rss,
                              lambda rs: labels.matches(selector, objects.labels(rs)))
    ctx.actions += _claim_actions(deployment, claimed)
    try:
        _dispatch(ctx, claimed.owned, namespace_rss, pods)
    except AbortSync:
        return ctx.actions
    return _finish(ctx, deployment)


def replica_set_create_failed(deployment: Obj, replica_set_name: str, error: str, *,
                              now: datetime) -> list[Action]:
    """What to write when executing a CreateReplicaSet failed (other than AlreadyExists).

    The pure sync cannot know the API's answer; Kubernetes then sets Progressing False /
    ReplicaSetCreateError (with a progress deadline) and records a Warning event.
    """
    ctx = SyncContext.start(deployment, now)
    message = f'Failed to create new replica set "{replica_set_name}": {error}'
    if st.has_progress_deadline(ctx.deployment):
        cond = st.new_condition(st.PROGRESSING, "False", st.FAILED_RS_CREATE, message, ctx)
        conditions.set_condition(ctx.status, cond)
        ctx.actions.append(UpdateStatus(copy.deepcopy(ctx.status)))
    ctx.event(st.FAILED_RS_CREATE, message, WARNING)
    return ctx.actions


def _selecting_all(ctx: SyncContext) -> list[Action]:
    d = ctx.deployment
    ctx.event("SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.", WARNING)
    if objects.status_int(d, "observedGeneration") < objects.generation(d):
        ctx.actions.append(UpdateStatus({**objects.status(d), "observedGeneration": objects.generation(d)}))
    return ctx.actions


def _claim_actions(d: Obj, claimed: ownership.Claim) -> list[Action]:
    ref = rsu.owner_reference(d)
    return ([AdoptReplicaSet(objects.name(rs), ownership.adopt_patch(rs, ref)) for rs in claimed.adopt]
            + [ReleaseReplicaSet(objects.name(rs), ownership.release_patch(rs, d)) for rs in claimed.release])


def _dispatch(ctx: SyncContext, rs_list: list[Obj], namespace_rss: list[Obj], pods: Sequence[Obj]) -> None:
    """The state machine of syncDeployment (see the module docstring)."""
    d = ctx.deployment
    if objects.being_deleted(d):
        new_rs, old_rss = sync.get_all_replica_sets(ctx, rs_list, namespace_rss, create=False)
        return st.sync_deployment_status([*old_rss, new_rs], new_rs, ctx)
    sync.check_paused_conditions(ctx)
    if objects.spec(d).get("paused"):
        return sync.sync(ctx, rs_list, namespace_rss)
    if _is_scaling_event(ctx, rs_list, namespace_rss):
        return sync.sync(ctx, rs_list, namespace_rss)
    if rep.strategy_type(d) == rep.RECREATE:
        return rollout_recreate(ctx, rs_list, namespace_rss, pod_map(d, rs_list, pods))
    return rollout_rolling(ctx, rs_list, namespace_rss)


def _is_scaling_event(ctx: SyncContext, rs_list: list[Obj], namespace_rss: list[Obj]) -> bool:
    """isScalingEvent, on a throwaway context: its revision sync is redone by the next step."""
    probe = SyncContext(copy.deepcopy(ctx.deployment), ctx.now)
    new_rs, old_rss = sync.get_all_replica_sets(probe, rs_list, namespace_rss, create=False)
    return sync.is_scaling_event(probe, new_rs, old_rss)


def pod_map(d: Obj, rs_list: Sequence[Obj], pods: Sequence[Obj]) -> dict[str, list[Obj]]:
    """getPodMapForDeployment: ReplicaSet uid -> pods it controls (selected by the Deployment)."""
    selector = objects.spec(d).get("selector")
    result: dict[str, list[Obj]] = defaultdict(list)
    uids = {objects.uid(rs) for rs in rs_list}
    for pod in pods:
        ref = ownership.controller_of(pod)
        if objects.namespace(pod) != objects.namespace(d) or ref is None or ref.get("uid") not in uids:
            continue
        if labels.matches(selector, objects.labels(pod)):
            result[ref["uid"]].append(pod)
    return dict(result)


def _finish(ctx: SyncContext, original: Obj) -> list[Action]:
    """Write the scratch status and revision annotation once, if either changed."""
    new_status = ctx.status
    new_annotations = objects.annotations(ctx.deployment)
    annotations_changed = new_annotations.get(ann.REVISION, "") != objects.annotations(original).get(ann.REVISION, "")
    if st.same_status(new_status, objects.status(original)) and not annotations_changed:
        return ctx.actions
    update = UpdateStatus(copy.deepcopy(new_status), dict(new_annotations) if annotations_changed else None)
    # Requeues come last; the status write goes just before them.
    requeues = [a for a in ctx.actions if isinstance(a, RequeueAfter)]
    rest = [a for a in ctx.actions if not isinstance(a, RequeueAfter)]
    return [*rest, update, *requeues]
