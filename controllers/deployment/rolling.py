"""The RollingUpdate strategy (rolling.go): surge the new ReplicaSet, drain the old ones.

Each sync does one of: scale the new ReplicaSet up (never beyond spec.replicas + maxSurge
pods in total), or scale old ones down (never below spec.replicas - maxUnavailable
available pods), or, when the rollout is complete, clean up history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controllers.common import objects
from controllers.deployment import progress
from controllers.deployment import replicas as rep
from controllers.deployment import replicasets as rsu
from controllers.deployment import status as st
from controllers.deployment.context import SyncContext
from controllers.deployment.sync import cleanup, get_all_replica_sets

Obj = dict[str, Any]


def rollout_rolling(ctx: SyncContext, rs_list: Sequence[Obj], namespace_rss: Sequence[Obj]) -> None:
    """rolloutRolling."""
    new_rs, old_rss = get_all_replica_sets(ctx, rs_list, namespace_rss, create=True)
    assert new_rs is not None
    all_rss = [*old_rss, new_rs]
    if reconcile_new_replica_set(ctx, all_rss, new_rs):
        return progress.sync_rollout_status(all_rss, new_rs, ctx)
    if reconcile_old_replica_sets(ctx, all_rss, rsu.filter_active(old_rss), new_rs):
        return progress.sync_rollout_status(all_rss, new_rs, ctx)
    if st.deployment_complete(ctx.deployment, ctx.status):
        cleanup(ctx, old_rss)
    progress.sync_rollout_status(all_rss, new_rs, ctx)


def reconcile_new_replica_set(ctx: SyncContext, all_rss: Sequence[Obj], new_rs: Obj) -> bool:
    """Scale the new ReplicaSet toward spec.replicas within maxSurge; True if scaled."""
    current = objects.spec_replicas(new_rs)
    if current == ctx.replicas:
        return False
    if current > ctx.replicas:
        return ctx.scale_and_record(new_rs, ctx.replicas)[0]
    return ctx.scale_and_record(new_rs, rep.new_rs_new_replicas(ctx.deployment, all_rss, new_rs))[0]


def reconcile_old_replica_sets(ctx: SyncContext, all_rss: Sequence[Obj], old_rss: list[Obj],
                               new_rs: Obj) -> bool:
    """Scale old ReplicaSets down as far as availability allows; True if any was scaled.

    maxScaledDown = all pods - minAvailable - unavailable pods of the new ReplicaSet, so
    crash-looping new pods never make the controller remove healthy old ones.
    """
    if rep.replica_count(old_rss) == 0:
        return False
    min_available = ctx.replicas - rep.max_unavailable(ctx.deployment)
    new_unavailable = objects.spec_replicas(new_rs) - objects.status_int(new_rs, "availableReplicas")
    max_scaled_down = rep.replica_count(all_rss) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return False
    cleaned = cleanup_unhealthy_replicas(ctx, old_rss, max_scaled_down)
    if cleaned is None:
        return False
    old_rss, cleanup_count = cleaned
    scaled_down = scale_down_old_for_rolling_update(ctx, [*old_rss, new_rs], old_rss)
    return cleanup_count + scaled_down > 0


def cleanup_unhealthy_replicas(ctx: SyncContext, old_rss: list[Obj],
                               max_cleanup: int) -> tuple[list[Obj], int] | None:
    """Remove unavailable old replicas first (they cost no availability).

    None mirrors Kubernetes' error path: a ReplicaSet reporting more available pods than
    its (just lowered) spec would be "scaled down" upward; Kubernetes gives up this step.
    """
    old_rss = objects.by_creation(old_rss)
    total = 0
    for i, rs in enumerate(old_rss):
        if total >= max_cleanup:
            break
        replicas, available = objects.spec_replicas(rs), objects.status_int(rs, "availableReplicas")
        if replicas == 0 or replicas == available:
            continue
        count = min(max_cleanup - total, replicas - available)
        if replicas - count > replicas:
            return None
        old_rss[i] = ctx.scale_and_record(rs, replicas - count)[1]
        total += count
    return old_rss, total


def scale_down_old_for_rolling_update(ctx: SyncContext, all_rss: Sequence[Obj], old_rss: Sequence[Obj]) -> int:
    """scaleDownOldReplicaSetsForRollingUpdate: oldest first, down to minAvailable."""
    min_available = ctx.replicas - rep.max_unavailable(ctx.deployment)
    available = rep.status_count(all_rss, "availableReplicas")
    if available <= min_available:
        return 0
    budget, total = available - min_available, 0
    for rs in objects.by_creation(old_rss):
        if total >= budget:
            break
        replicas = objects.spec_replicas(rs)
        if replicas == 0:
            continue
        count = min(replicas, budget - total)
        ctx.scale_and_record(rs, replicas - count)
        total += count
    return total
