"""The shared steps of a Deployment sync (sync.go): find or create the new ReplicaSet,
proportional scaling, history cleanup, and the scaling / paused sync itself.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from controllers.common import conditions, objects
from controllers.common.actions import UpdateStatus
from controllers.deployment import annotations as ann
from controllers.deployment import replicas as rep
from controllers.deployment import replicasets as rsu
from controllers.deployment import status as st
from controllers.deployment.context import AbortSync, SyncContext

Obj = dict[str, Any]


def get_all_replica_sets(ctx: SyncContext, rs_list: Sequence[Obj], namespace_rss: Sequence[Obj],
                         create: bool) -> tuple[Obj | None, list[Obj]]:
    """getAllReplicaSetsAndSyncRevision: (new ReplicaSet or None, all old ReplicaSets)."""
    old_rss = rsu.find_old_replica_sets(ctx.deployment, rs_list)
    return get_new_replica_set(ctx, rs_list, old_rss, namespace_rss, create), old_rss


def get_new_replica_set(ctx: SyncContext, rs_list: Sequence[Obj], old_rss: Sequence[Obj],
                        namespace_rss: Sequence[Obj], create: bool) -> Obj | None:
    """getNewReplicaSet: sync the existing new ReplicaSet's revision, or create it."""
    d = ctx.deployment
    new_revision = ann.max_revision(old_rss) + 1
    existing = rsu.find_new_replica_set(d, rs_list)
    if existing is not None:
        return _sync_existing(ctx, existing, new_revision)
    if not create:
        return None
    return _create(ctx, old_rss, namespace_rss, new_revision)


def _sync_existing(ctx: SyncContext, existing: Obj, new_revision: int) -> Obj:
    d = ctx.deployment
    rs = copy.deepcopy(existing)
    annotations_changed = ann.set_new_replica_set_annotations(d, rs, new_revision, exists=True)
    min_ready = int(objects.spec(d).get("minReadySeconds") or 0)
    if annotations_changed or int(objects.spec(rs).get("minReadySeconds") or 0) != min_ready:
        rs.setdefault("spec", {})["minReadySeconds"] = min_ready
        # Kubernetes returns right after this update; the Deployment catches up next sync.
        return ctx.update_replica_set(rs)
    ann.set_deployment_revision(d, objects.annotations(rs).get(ann.REVISION))
    if st.has_progress_deadline(d) and conditions.get_condition(ctx.status, st.PROGRESSING) is None:
        message = f'Found new replica set "{objects.name(rs)}"'
        conditions.set_condition(ctx.status, st.new_condition(st.PROGRESSING, "True", st.FOUND_NEW_RS, message, ctx))
    return rs


def _create(ctx: SyncContext, old_rss: Sequence[Obj], namespace_rss: Sequence[Obj], new_revision: int) -> Obj:
    d = ctx.deployment
    rs = rsu.new_replica_set(d)
    already = _check_collision(ctx, rs, namespace_rss)
    if already is not None:
        return already
    replicas = rep.new_rs_new_replicas(d, [*old_rss, rs], rs)
    rs["spec"]["replicas"] = replicas
    ann.set_new_replica_set_annotations(d, rs, new_revision, exists=False)
    ctx.create_replica_set(rs)
    if replicas > 0:
        ctx.event("ScalingReplicaSet", f"Scaled up replica set {objects.name(rs)} from 0 to {replicas}")
    ann.set_deployment_revision(d, str(new_revision))
    if st.has_progress_deadline(d):
        message = f'Created new replica set "{objects.name(rs)}"'
        conditions.set_condition(ctx.status, st.new_condition(st.PROGRESSING, "True", st.NEW_REPLICA_SET, message, ctx))
    return rs


def _check_collision(ctx: SyncContext, rs: Obj, namespace_rss: Sequence[Obj]) -> Obj | None:
    """The ReplicaSet already holding that name, when it is ours with our template.

    If it is someone else's or has another template, that is a hash collision: bump
    collisionCount and stop. Kubernetes learns this from the create's AlreadyExists; we see
    it in the cache first. The status write triggers the next sync, which hashes anew.
    """
    d = ctx.deployment
    for other in namespace_rss:
        if objects.name(other) != objects.name(rs):
            continue
        ref = objects.metadata(other).get("ownerReferences") or []
        ours = any(r.get("controller") and r.get("uid") == objects.uid(d) for r in ref)
        if ours and rsu.equal_ignore_hash(rsu.template(d), rsu.template(other)):
            return other
        status = copy.deepcopy(ctx.status)
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        ctx.actions.append(UpdateStatus(status))
        raise AbortSync(f'replicasets.apps "{objects.name(rs)}" already exists')
    return None


def scale(ctx: SyncContext, new_rs: Obj | None, old_rss: Sequence[Obj]) -> None:
    """scale: resize on a scaling event, proportionally across ReplicaSets mid-rollout."""
    d = ctx.deployment
    active_or_latest, newest_first = rsu.find_active_or_latest(new_rs, old_rss)
    if active_or_latest is not None:
        if objects.spec_replicas(active_or_latest) != ctx.replicas:
            ctx.scale_and_record(active_or_latest, ctx.replicas)
        return
    if is_saturated(d, new_rs):
        for old in rsu.filter_active(newest_first):
            ctx.scale_and_record(old, 0)
        return
    if rep.is_rolling_update(d):
        _scale_proportionally(ctx, rsu.filter_active([*newest_first, new_rs]))


def _scale_proportionally(ctx: SyncContext, active: list[Obj]) -> None:
    d = ctx.deployment
    allowed = ctx.replicas + rep.max_surge(d) if ctx.replicas > 0 else 0
    to_add = allowed - rep.replica_count(active)
    operation = ""
    if to_add > 0:
        active, operation = rsu.by_size(active, newer_first=True), "up"
    elif to_add < 0:
        active, operation = rsu.by_size(active, newer_first=False), "down"
    added, sizes = 0, []
    for rs in active:
        delta = rep.proportion(rs, d, to_add, added, ann.int_annotation(rs, ann.MAX_REPLICAS)) if to_add else 0
        sizes.append(objects.spec_replicas(rs) + delta)
        added += delta
    if active and to_add:
        # Leftovers from rounding go to the largest ReplicaSet.
        sizes[0] = max(0, sizes[0] + to_add - added)
    for rs, size in zip(active, sizes, strict=True):
        ctx.scale(rs, size, operation)


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """IsSaturated: the new ReplicaSet has, wants and runs every replica the Deployment wants."""
    if rs is None:
        return False
    desired = ann.int_annotation(rs, ann.DESIRED_REPLICAS)
    replicas = objects.spec_replicas(d)
    return (desired is not None and objects.spec_replicas(rs) == replicas and desired == replicas
            and objects.status_int(rs, "availableReplicas") == replicas)


def cleanup(ctx: SyncContext, old_rss: Sequence[Obj]) -> None:
    """cleanupDeployment: delete the oldest ReplicaSets beyond revisionHistoryLimit.

    Only ReplicaSets scaled to zero, with no pods left and their spec observed, go.
    """
    limit = objects.spec(ctx.deployment).get("revisionHistoryLimit", 10)
    if limit is None or int(limit) == rep.MAX_INT32:
        return
    cleanable = [rs for rs in old_rss if not objects.being_deleted(rs)]
    excess = len(cleanable) - int(limit)
    for rs in rsu.by_revision(cleanable)[:max(0, excess)]:
        if objects.status_int(rs, "replicas") != 0 or objects.spec_replicas(rs) != 0:
            continue
        if objects.generation(rs) > objects.status_int(rs, "observedGeneration"):
            continue
        ctx.delete_replica_set(rs)


def is_scaling_event(ctx: SyncContext, new_rs: Obj | None, old_rss: Sequence[Obj]) -> bool:
    """isScalingEvent: an active ReplicaSet was sized for a different spec.replicas."""
    for rs in rsu.filter_active([*old_rss, new_rs]):
        desired = ann.int_annotation(rs, ann.DESIRED_REPLICAS)
        if desired is not None and desired != ctx.replicas:
            return True
    return False


def check_paused_conditions(ctx: SyncContext) -> None:
    """checkPausedConditions: Progressing Unknown DeploymentPaused / DeploymentResumed."""
    d = ctx.deployment
    if not st.has_progress_deadline(d):
        return
    cond = conditions.get_condition(ctx.status, st.PROGRESSING)
    if cond is not None and cond.get("reason") == st.TIMED_OUT:
        return
    paused_cond = cond is not None and cond.get("reason") == st.PAUSED
    paused = bool(objects.spec(d).get("paused"))
    if paused and not paused_cond:
        new = st.new_condition(st.PROGRESSING, "Unknown", st.PAUSED, "Deployment is paused", ctx)
    elif not paused and paused_cond:
        new = st.new_condition(st.PROGRESSING, "Unknown", st.RESUMED, "Deployment is resumed", ctx)
    else:
        return
    conditions.set_condition(ctx.status, new)


def sync(ctx: SyncContext, rs_list: Sequence[Obj], namespace_rss: Sequence[Obj]) -> None:
    """sync: the scaling-event / paused path (no new ReplicaSet is created here)."""
    new_rs, old_rss = get_all_replica_sets(ctx, rs_list, namespace_rss, create=False)
    scale(ctx, new_rs, old_rss)
    if objects.spec(ctx.deployment).get("paused"):
        cleanup(ctx, old_rss)
    st.sync_deployment_status([*old_rss, new_rs], new_rs, ctx)
