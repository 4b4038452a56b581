"""An in-memory cluster for driving the pure reconcilers the way the runtime will.

`World` holds Deployments, ReplicaSets and Pods as dicts, applies the actions the
reconcilers return as the API server would (uids, generations, generateName, ownerReference
patches), keeps the ReplicaSet expectations like the runtime, and plays a fake kubelet that
schedules pods and marks them ready. The informer is perfect here: every write is visible
to the next reconcile, and a deleted pod is gone at once (no graceful termination), so the
pod count equals what the ReplicaSets ask for after each ReplicaSet sync.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from controllers.common import objects, ownership, pods
from controllers.common.actions import (
    Action,
    AdoptPod,
    AdoptReplicaSet,
    CreatePods,
    CreateReplicaSet,
    DeletePods,
    DeleteReplicaSet,
    Event,
    ReleasePod,
    ReleaseReplicaSet,
    RequeueAfter,
    ScaleReplicaSet,
    SetExpectations,
    UpdateReplicaSet,
    UpdateStatus,
)
from controllers.common.expectations import ExpectationsStore
from controllers.common.hashing import SAFE_ALPHABET
from controllers.deployment import reconcile_deployment
from controllers.replicaset import reconcile_replicaset

Obj = dict[str, Any]
NS = "default"
START = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def deployment(name: str = "web", *, replicas: int = 3, image: str = "nginx:1.0", strategy: Obj | None = None,
               **spec: Any) -> Obj:
    """A Deployment as the API server stores it (defaults applied)."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": image}]}},
            "strategy": strategy or {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600, **spec,
        },
    }


class World:
    """Objects by kind and name, a clock, events and the expectations store."""

    def __init__(self, now: datetime = START, seed: int = 0) -> None:
        self.now = now
        self.deployments: dict[str, Obj] = {}
        self.replica_sets: dict[str, Obj] = {}
        self.pods: dict[str, Obj] = {}
        self.events: list[tuple[str, str, Event]] = []
        self.requeues: list[tuple[str, float]] = []
        self.expectations = ExpectationsStore()
        self._rng = random.Random(seed)
        self._serial = 0

    # --- API-server side ------------------------------------------------------------
    def _stamp(self, obj: Obj, kind: str) -> Obj:
        self._serial += 1
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", NS)
        meta["uid"] = f"{kind.lower()}-uid-{self._serial:04d}"
        meta["creationTimestamp"] = objects.format_time(self.now)
        meta["generation"] = 1
        meta["resourceVersion"] = str(self._serial)
        obj["kind"] = kind
        return obj

    def _bump(self, obj: Obj, spec_changed: bool = False) -> None:
        self._serial += 1
        obj["metadata"]["resourceVersion"] = str(self._serial)
        if spec_changed:
            obj["metadata"]["generation"] += 1

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)

    def create_deployment(self, d: Obj) -> Obj:
        self.deployments[objects.name(d)] = self._stamp(copy.deepcopy(d), "Deployment")
        return self.deployments[objects.name(d)]

    def edit_deployment(self, name: str, change: Callable[[Obj], None]) -> None:
        """A user edit of the spec (kubectl set image / scale / rollout pause ...)."""
        d = self.deployments[name]
        change(d["spec"])
        self._bump(d, spec_changed=True)

    def add_pod(self, pod: Obj) -> Obj:
        self.pods[objects.name(pod)] = self._stamp(copy.deepcopy(pod), "Pod")
        return self.pods[objects.name(pod)]

    # --- controllers ------------------------------------------------------------------
    def sync_deployment(self, name: str) -> list[Action]:
        d = self.deployments[name]
        actions = reconcile_deployment(d, list(self.replica_sets.values()), list(self.pods.values()), now=self.now)
        for action in actions:
            self._apply_deployment_action(d, action)
        return actions

    def sync_replica_set(self, name: str) -> list[Action]:
        rs = self.replica_sets[name]
        rs_key = objects.key(rs)
        actions = reconcile_replicaset(rs, list(self.pods.values()), now=self.now,
                                       expectations=self.expectations.get(rs_key))
        for action in actions:
            self._apply_rs_action(rs, action)
        return actions

    def sync_replica_sets(self) -> None:
        for name in sorted(self.replica_sets):
            if name in self.replica_sets:
                self.sync_replica_set(name)

    def kubelet(self, *, ready: Callable[[Obj], bool] = lambda pod: True) -> None:
        """Schedule and start every pod; mark those `ready` allows as Ready now."""
        for pod in self.pods.values():
            pod["spec"]["nodeName"] = pod["spec"].get("nodeName") or "node-1"
            status = pod.setdefault("status", {})
            status["phase"] = "Running"
            if ready(pod) and not pods.is_ready(pod):
                status["conditions"] = [{"type": "Ready", "status": "True",
                                         "lastTransitionTime": objects.format_time(self.now)}]

    def step(self, name: str, *, ready: Callable[[Obj], bool] = lambda pod: True,
             check: Callable[[World], None] | None = None) -> None:
        """One round: Deployment sync, ReplicaSet syncs, kubelet, ReplicaSet status syncs."""
        self.tick()
        self.sync_deployment(name)
        self.sync_replica_sets()
        if check:
            check(self)
        self.kubelet(ready=ready)
        self.sync_replica_sets()
        if check:
            check(self)

    # --- applying actions -------------------------------------------------------------
    def _apply_deployment_action(self, d: Obj, action: Action) -> None:
        match action:
            case CreateReplicaSet(obj=obj):
                rs = self._stamp(copy.deepcopy(obj), "ReplicaSet")
                self.replica_sets[objects.name(rs)] = rs
            case ScaleReplicaSet(name=name, replicas=replicas, annotations=annotations):
                rs = self.replica_sets[name]
                changed = rs["spec"].get("replicas") != replicas
                rs["spec"]["replicas"] = replicas
                rs["metadata"]["annotations"] = dict(annotations)
                self._bump(rs, spec_changed=changed)
            case UpdateReplicaSet(obj=obj):
                rs = self.replica_sets[objects.name(obj)]
                changed = rs["spec"] != obj["spec"]
                rs["spec"] = copy.deepcopy(obj["spec"])
                rs["metadata"]["annotations"] = dict(objects.annotations(obj))
                self._bump(rs, spec_changed=changed)
            case DeleteReplicaSet(name=name):
                del self.replica_sets[name]
            case UpdateStatus(status=status, annotations=annotations):
                d["status"] = copy.deepcopy(status)
                if annotations is not None:
                    d["metadata"]["annotations"] = dict(annotations)
                self._bump(d)
            case AdoptReplicaSet(name=name, patch=patch) | ReleaseReplicaSet(name=name, patch=patch):
                self._patch_owner_refs(self.replica_sets[name], patch)
            case Event():
                self.events.append(("Deployment", objects.name(d), action))
            case RequeueAfter(seconds=seconds):
                self.requeues.append((objects.name(d), seconds))
            case _:
                raise AssertionError(f"unexpected action for a Deployment: {action!r}")

    def _apply_rs_action(self, rs: Obj, action: Action) -> None:
        rs_key = objects.key(rs)
        match action:
            case SetExpectations():
                self.expectations.apply(rs_key, action, self.now)
            case CreatePods(count=count):
                for _ in range(count):
                    pod = action.pod()
                    suffix = "".join(self._rng.choice(SAFE_ALPHABET) for _ in range(5))
                    pod["metadata"]["name"] = pod["metadata"].pop("generateName") + suffix
                    pod["status"] = {"phase": "Pending"}
                    self.add_pod(pod)
                    self.expectations.creation_observed(rs_key)
                    self.events.append(("ReplicaSet", objects.name(rs), action.success_event(objects.name(pod))))
            case DeletePods(names=names):
                for pod_name in names:
                    pod = self.pods.pop(pod_name)
                    self.expectations.deletion_observed(rs_key, objects.key(pod))
                    self.events.append(("ReplicaSet", objects.name(rs), action.success_event(pod_name)))
            case AdoptPod(name=name, patch=patch) | ReleasePod(name=name, patch=patch):
                self._patch_owner_refs(self.pods[name], patch)
            case UpdateStatus(status=status):
                rs["status"] = copy.deepcopy(status)
                self._bump(rs)
            case Event():
                self.events.append(("ReplicaSet", objects.name(rs), action))
            case RequeueAfter(seconds=seconds):
                self.requeues.append((objects.name(rs), seconds))
            case _:
                raise AssertionError(f"unexpected action for a ReplicaSet: {action!r}")

    @staticmethod
    def _patch_owner_refs(obj: Obj, patch: Obj) -> None:
        """The strategic merge of an adopt/release patch into metadata.ownerReferences."""
        assert patch["metadata"]["uid"] == objects.uid(obj), "uid precondition"
        refs = list(objects.metadata(obj).get("ownerReferences") or [])
        for ref in patch["metadata"]["ownerReferences"]:
            refs = [r for r in refs if r.get("uid") != ref["uid"]]
            if ref.get("$patch") != "delete":
                refs.append(dict(ref))
        obj["metadata"]["ownerReferences"] = refs

    # --- observations -----------------------------------------------------------------
    def pods_of(self, rs_name: str) -> list[Obj]:
        rs = self.replica_sets[rs_name]
        return [p for p in self.pods.values() if ownership.is_controlled_by(p, rs)]

    def available_pods(self) -> int:
        return sum(1 for p in self.pods.values() if pods.is_ready(p) and pods.is_active(p))

    def rs_for_image(self, image: str) -> Obj:
        found = [rs for rs in self.replica_sets.values()
                 if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image]
        assert len(found) == 1, f"{len(found)} ReplicaSets run {image}"
        return found[0]

    def event_messages(self, reason: str) -> list[str]:
        return [e.message for _, _, e in self.events if e.reason == reason]
