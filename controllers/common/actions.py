"""The actions a reconcile function returns, for the controller runtime to execute.

A reconcile reads the informer caches it was handed and returns an ordered list of these
dataclasses; it never talks to the API itself. The runtime executes them in order against
the API and stops at the first failure (then requeues the key with backoff), which is what
Kubernetes' controllers do when a call inside a sync returns an error. Actions that name no
object act on the object being reconciled (its status, its events).

Events are listed right after the action they report; where Kubernetes only records an
event once the API call succeeded and the pure function cannot know the outcome (pod names
come from `generateName`), the action offers `success_event` / `failure_event` so the
runtime records the exact Kubernetes wording.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True)
class Event:
    """An Event on the reconciled object (`type` is Normal or Warning)."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class RequeueAfter:
    """Reconcile this key again after `seconds` (0: now, rate limited)."""

    seconds: float


@dataclass(frozen=True)
class UpdateStatus:
    """PUT the reconciled object's status subresource with this `status`.

    `annotations`, when not None, are the object's full new metadata.annotations: the
    Deployment controller sets `deployment.kubernetes.io/revision` through the same status
    update (Kubernetes' status strategy resets only spec and labels, so annotations pass).
    """

    status: dict[str, Any]
    annotations: dict[str, str] | None = None


@dataclass(frozen=True)
class CreateReplicaSet:
    """POST this ReplicaSet (name is deterministic: `<deployment>-<pod-template-hash>`)."""

    obj: dict[str, Any]


@dataclass(frozen=True)
class UpdateReplicaSet:
    """PUT this ReplicaSet (annotations or minReadySeconds changed); a conflict requeues."""

    obj: dict[str, Any]


@dataclass(frozen=True)
class ScaleReplicaSet:
    """Set spec.replicas and replace metadata.annotations of ReplicaSet `name`.

    Kubernetes does this as a full update of its cached copy, so `resource_version` (the
    cached one) is given for an optimistic-concurrency PUT or a patch precondition. It is
    None when the same sync already wrote this ReplicaSet (Kubernetes would be holding the
    object that write returned): then apply it without a precondition.
    """

    name: str
    replicas: int
    annotations: dict[str, str]
    resource_version: str | None = None


@dataclass(frozen=True)
class DeleteReplicaSet:
    """DELETE ReplicaSet `name` (history cleanup; its pods are already gone)."""

    name: str


@dataclass(frozen=True)
class AdoptReplicaSet:
    """Strategic-merge PATCH making the Deployment the controller of ReplicaSet `name`."""

    name: str
    patch: dict[str, Any]


@dataclass(frozen=True)
class ReleaseReplicaSet:
    """Strategic-merge PATCH removing the Deployment's ownerReference from `name`.

    Kubernetes ignores 404 and 422 (already gone or already released) for releases.
    """

    name: str
    patch: dict[str, Any]


@dataclass(frozen=True)
class AdoptPod:
    """Strategic-merge PATCH making the ReplicaSet the controller of pod `name`."""

    name: str
    patch: dict[str, Any]


@dataclass(frozen=True)
class ReleasePod:
    """Strategic-merge PATCH removing the ReplicaSet's ownerReference from pod `name`.

    Kubernetes ignores 404 and 422 (already gone or already released) for releases.
    """

    name: str
    patch: dict[str, Any]


@dataclass(frozen=True)
class SetExpectations:
    """Record, before creating or deleting pods, what the informer should report back.

    Replaces the ReplicaSet's previous expectations (see `common/expectations.py`): `add`
    pod creations and the deletions of `deletes` (pod keys `namespace/name`).
    """

    add: int = 0
    deletes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CreatePods:
    """Create `count` pods from `template`, controlled by `owner_ref`.

    Each pod is `pod()`: `metadata.generateName` is `<owner>-`, so the API server names it
    `<owner>-<5 random characters>`. After each create the runtime records
    `success_event(name)` (SuccessfulCreate) or `failure_event(error)` (FailedCreate), and
    for a create it did not make or that failed it lowers the expectations by one.
    """

    template: dict[str, Any]
    count: int
    owner_ref: dict[str, Any]
    generate_name: str
    namespace: str = ""

    def pod(self) -> dict[str, Any]:
        """The pod to POST: template labels/annotations/finalizers/spec plus the owner (GetPodFromTemplate)."""
        metadata = self.template.get("metadata") or {}
        meta: dict[str, Any] = {"generateName": self.generate_name}
        if self.namespace:
            meta["namespace"] = self.namespace
        for key in ("labels", "annotations", "finalizers"):
            if metadata.get(key):
                meta[key] = copy.deepcopy(metadata[key])
        meta["ownerReferences"] = [dict(self.owner_ref)]
        spec = copy.deepcopy(self.template.get("spec") or {})
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}

    @staticmethod
    def success_event(pod_name: str) -> Event:
        return Event(NORMAL, "SuccessfulCreate", f"Created pod: {pod_name}")

    @staticmethod
    def failure_event(error: str) -> Event:
        return Event(WARNING, "FailedCreate", f"Error creating: {error}")


@dataclass(frozen=True)
class DeletePods:
    """Delete these pods (in this order: the first is the most preferred to go).

    After each delete the runtime records `success_event(name)` (SuccessfulDelete) or, on
    an error other than 404, `failure_event(error)` (FailedDelete); for a delete that
    failed it marks the deletion observed so the expectations do not wait for it.
    """

    names: tuple[str, ...]
    namespace: str = ""
    keys: tuple[str, ...] = field(default=())

    @staticmethod
    def success_event(pod_name: str) -> Event:
        return Event(NORMAL, "SuccessfulDelete", f"Deleted pod: {pod_name}")

    @staticmethod
    def failure_event(error: str) -> Event:
        return Event(WARNING, "FailedDelete", f"Error deleting: {error}")


Action = (
    Event | RequeueAfter | UpdateStatus | CreateReplicaSet | UpdateReplicaSet | ScaleReplicaSet
    | DeleteReplicaSet | AdoptReplicaSet | ReleaseReplicaSet | AdoptPod | ReleasePod
    | SetExpectations | CreatePods | DeletePods
)
