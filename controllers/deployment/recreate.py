"""The Recreate strategy (recreate.go): all old pods go before any new pod starts.

Scale every old ReplicaSet to 0; wait until no old pod is left running (the ReplicaSets
report none and no non-terminal pod of theirs remains); only then create the new
ReplicaSet at full size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.common import objects, pods
from controllers.deployment import progress
from controllers.deployment import replicas as rep
from controllers.deployment import replicasets as rsu
from controllers.deployment import status as st
from controllers.deployment.context import SyncContext
from controllers.deployment.sync import cleanup, get_all_replica_sets

Obj = dict[str, Any]


def rollout_recreate(ctx: SyncContext, rs_list: Sequence[Obj], namespace_rss: Sequence[Obj],
                     pod_map: Mapping[str, Sequence[Obj]]) -> None:
    """rolloutRecreate; `pod_map` maps ReplicaSet uid -> its pods."""
    new_rs, old_rss = get_all_replica_sets(ctx, rs_list, namespace_rss, create=False)
    all_rss = [*old_rss, new_rs]
    scaled_down = False
    for rs in rsu.filter_active(old_rss):
        scaled_down = ctx.scale_and_record(rs, 0)[0] or scaled_down
    if scaled_down or old_pods_running(new_rs, old_rss, pod_map):
        return progress.sync_rollout_status(all_rss, new_rs, ctx)
    if new_rs is None:
        new_rs, old_rss = get_all_replica_sets(ctx, rs_list, namespace_rss, create=True)
        all_rss = [*old_rss, new_rs]
    assert new_rs is not None
    ctx.scale_and_record(new_rs, ctx.replicas)
    if st.deployment_complete(ctx.deployment, ctx.status):
        cleanup(ctx, old_rss)
    progress.sync_rollout_status(all_rss, new_rs, ctx)


def old_pods_running(new_rs: Obj | None, old_rss: Sequence[Obj], pod_map: Mapping[str, Sequence[Obj]]) -> bool:
    """oldPodsRunning: old ReplicaSets still report pods, or a non-terminal old pod exists."""
    if rep.status_count(old_rss, "replicas") > 0:
        return True
    new_uid = objects.uid(new_rs) if new_rs is not None else None
    return any(not pods.is_terminal(pod)
               for rs_uid, rs_pods in pod_map.items() if rs_uid != new_uid
               for pod in rs_pods)
