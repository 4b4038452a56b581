"""The deployment.kubernetes.io annotations on ReplicaSets and the Deployment.

- `deployment.kubernetes.io/revision`: the rollout sequence number. The ReplicaSet matching
  the current template gets max(revision of the other ReplicaSets) + 1, so going back to an
  old template (`kubectl rollout undo`) gives that old ReplicaSet a new, highest revision;
  the Deployment carries the revision of its current ReplicaSet.
- `deployment.kubernetes.io/revision-history`: the revisions a reused ReplicaSet had before,
  comma separated (kept under 2000 characters, oldest dropped first).
- `deployment.kubernetes.io/desired-replicas` and `max-replicas`: spec.replicas and
  spec.replicas + maxSurge when the ReplicaSet was last sized; they tell scaling events
  apart from rollouts and drive proportional scaling.
The Deployment's other annotations are copied to its new ReplicaSet, except these and
kubectl's last-applied-configuration.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from controllers.common import objects
from controllers.deployment import replicas as rep

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
DEPRECATED_ROLLBACK_TO = "deprecated.deployment.rollback.to"
MAX_REVISION_HISTORY_CHARS = 2000

_NOT_COPIED = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, DEPRECATED_ROLLBACK_TO}

Obj = dict[str, Any]


def revision(obj: Obj | None) -> int | None:
    """The revision annotation as an int: 0 when absent, None when it does not parse."""
    raw = objects.annotations(obj).get(REVISION)
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        return None


def max_revision(replica_sets: Iterable[Obj]) -> int:
    """MaxRevision: the highest parseable revision (0 if none)."""
    return max((r for r in (revision(rs) for rs in replica_sets) if r is not None), default=0)


def int_annotation(rs: Obj, key: str) -> int | None:
    try:
        return int(objects.annotations(rs)[key])
    except (KeyError, ValueError):
        return None


def replicas_annotations_need_update(rs: Obj, desired: int, maximum: int) -> bool:
    found = objects.annotations(rs)
    return found.get(DESIRED_REPLICAS) != str(desired) or found.get(MAX_REPLICAS) != str(maximum)


def with_replicas_annotations(found: dict[str, str], d: Obj) -> dict[str, str]:
    """SetReplicasAnnotations: desired-replicas and max-replicas for the Deployment now."""
    desired = objects.spec_replicas(d)
    return {**found, DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(desired + rep.max_surge(d))}


def _copy_from_deployment(d: Obj, found: dict[str, str]) -> bool:
    changed = False
    for key, value in objects.annotations(d).items():
        if key in _NOT_COPIED or found.get(key) == value:
            continue
        found[key] = value
        changed = True
    return changed


def _append_history(history: str, old_revision: str) -> str | None:
    """The revision-history with `old_revision` appended, or None when it cannot fit."""
    if not history:
        return old_revision
    parts = history.split(",")
    total = len(history) + len(old_revision) + 1
    start = 0
    while total > MAX_REVISION_HISTORY_CHARS and start < len(parts):
        total -= len(parts[start]) + 1
        start += 1
    if total > MAX_REVISION_HISTORY_CHARS:
        return None
    return ",".join([*parts[start:], old_revision])


def set_new_replica_set_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """SetNewReplicaSetAnnotations on `rs` (in place); True when an annotation changed."""
    found = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = _copy_from_deployment(d, found)
    old_raw = found.get(REVISION)
    try:
        old_revision = int(old_raw) if old_raw else 0
    except ValueError:
        return False
    if old_revision < new_revision:
        found[REVISION] = str(new_revision)
        changed = True
        if old_raw is not None:
            history = _append_history(found.get(REVISION_HISTORY, ""), old_raw)
            if history is not None:
                found[REVISION_HISTORY] = history
    if not exists and replicas_annotations_need_update(rs, objects.spec_replicas(d),
                                                       objects.spec_replicas(d) + rep.max_surge(d)):
        found.update(with_replicas_annotations(found, d))
        changed = True
    return changed


def set_deployment_revision(d: Obj, value: str | None) -> bool:
    """SetDeploymentRevision on the working Deployment; True when it changed."""
    found = d.setdefault("metadata", {}).setdefault("annotations", {})
    value = value or ""
    if found.get(REVISION, "") == value:
        return False
    found[REVISION] = value
    return True
