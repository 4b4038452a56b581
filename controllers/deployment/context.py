"""The working state of one Deployment sync: a scratch copy of the Deployment plus actions.

Kubernetes' sync calls the API as it goes and keeps using what the calls return. Here each
step appends the action it would have taken and gets back the object as the API would
have returned it (a scaled ReplicaSet is a new dict; lists held by the caller keep the old
one, exactly as Go's slices of pointers do). Status and the revision annotation are
changed on `deployment`, the scratch copy, and written once, at the end of the sync.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers.common import objects
from controllers.common.actions import (
    NORMAL,
    Action,
    CreateReplicaSet,
    DeleteReplicaSet,
    Event,
    ScaleReplicaSet,
    UpdateReplicaSet,
)
from controllers.deployment import annotations as ann
from controllers.deployment import replicas as rep

Obj = dict[str, Any]


class AbortSync(Exception):
    """Stop the sync here; the actions so far still apply (Kubernetes returned an error)."""


@dataclass
class SyncContext:
    """One sync's scratch Deployment, clock and the actions taken so far."""

    deployment: Obj
    now: datetime
    actions: list[Action] = field(default_factory=list)

    @classmethod
    def start(cls, deployment: Obj, now: datetime) -> SyncContext:
        return cls(copy.deepcopy(deployment), now)

    @property
    def replicas(self) -> int:
        return objects.spec_replicas(self.deployment)

    @property
    def status(self) -> Obj:
        return self.deployment.setdefault("status", {})

    def event(self, reason: str, message: str, type_: str = NORMAL) -> None:
        self.actions.append(Event(type_, reason, message))

    def timestamp(self) -> str:
        return objects.format_time(self.now)

    def create_replica_set(self, rs: Obj) -> None:
        self.actions.append(CreateReplicaSet(copy.deepcopy(rs)))

    def update_replica_set(self, rs: Obj) -> Obj:
        self.actions.append(UpdateReplicaSet(copy.deepcopy(rs)))
        return _written(rs)

    def delete_replica_set(self, rs: Obj) -> None:
        self.actions.append(DeleteReplicaSet(objects.name(rs)))

    def scale_and_record(self, rs: Obj, new_scale: int) -> tuple[bool, Obj]:
        """scaleReplicaSetAndRecordEvent: nothing when the size is already right."""
        current = objects.spec_replicas(rs)
        if current == new_scale:
            return False, rs
        return self.scale(rs, new_scale, "up" if current < new_scale else "down")

    def scale(self, rs: Obj, new_scale: int, operation: str) -> tuple[bool, Obj]:
        """scaleReplicaSet: resize and refresh the replica annotations; event if resized."""
        old_scale = objects.spec_replicas(rs)
        d = self.deployment
        maximum = self.replicas + rep.max_surge(d)
        size_changed = old_scale != new_scale
        if not size_changed and not ann.replicas_annotations_need_update(rs, self.replicas, maximum):
            return False, rs
        updated = copy.deepcopy(rs)
        updated.setdefault("spec", {})["replicas"] = new_scale
        new_annotations = ann.with_replicas_annotations(dict(objects.annotations(rs)), d)
        updated.setdefault("metadata", {})["annotations"] = new_annotations
        self.actions.append(ScaleReplicaSet(objects.name(rs), new_scale, dict(new_annotations),
                                            objects.metadata(rs).get("resourceVersion")))
        if size_changed:
            self.event("ScalingReplicaSet",
                       f"Scaled {operation} replica set {objects.name(rs)} from {old_scale} to {new_scale}")
        return size_changed, _written(updated)


def _written(rs: Obj) -> Obj:
    """The object as the API would return it after a write: its cached resourceVersion is
    stale now, so a later write of it in the same sync carries none (no precondition)."""
    rs.get("metadata", {}).pop("resourceVersion", None)
    return rs
