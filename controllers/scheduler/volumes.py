"""Volume binding for WaitForFirstConsumer claims: Reserve and PreBind of VolumeBinding.

A claim whose StorageClass says `volumeBindingMode: WaitForFirstConsumer` stays unbound
until a pod using it is scheduled, so its volume can be placed where the pod runs. Once
the scheduling cycle has picked a node, kube-scheduler's VolumeBinding plugin
(pkg/scheduler/framework/plugins/volumebinding, SchedulerVolumeBinder) does:

- Reserve (`find_pod_volumes` + the cache's assume): for each such claim, smallest first,
  the smallest Available PV that fits it and the node is chosen (a static binding: the
  PV gets `spec.claimRef` and `pv.kubernetes.io/bound-by-controller: "yes"`); a claim
  with no such PV is to be provisioned (it gets the annotation
  `volume.kubernetes.io/selected-node: <node>`). The changed objects are assumed in the
  scheduler's cache at once, so the next cycle does not hand the same PV out again.
- PreBind (`VolumeBinder.bind_pod_volumes`), in the binding task, before the pod is
  bound: the PVs and claims are written with PUT (a conflict fails the binding), then
  it waits until every claim is fully bound (`spec.volumeName` and the
  `pv.kubernetes.io/bind-completed` annotation), watching the claims and volumes through
  the informer cache instead of polling the API every second. The PV controller binds
  static PVs; the provisioner, seeing selected-node, creates a volume on that node.
  A provisioner that gives up removes selected-node: "provisioning failed for PVC".
  After `bind_timeout` (kube-scheduler's --bind-timeout-seconds, 600 s) the binding
  fails with "context deadline exceeded", as Go's wait.PollUntilContextTimeout does.
A failure is reported as kube-scheduler reports it (`running PreBind plugin
"VolumeBinding": binding volumes: ...`): the assumed pod and volumes are forgotten and
the pod goes back to the queue with a FailedScheduling event.

Waiting happens inside the binding task, as in kube-scheduler, whose binding cycle runs
in its own goroutine: the scheduling loop goes on with other pods meanwhile.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controllers.scheduler.nodeinfo import NodeInfo, meta, object_key
from minikube_py.client import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, ApiClient, ApiError, Clock

Obj = Mapping[str, Any]
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
PLUGIN = "VolumeBinding"
DEFAULT_BIND_TIMEOUT = 600.0
DEADLINE_EXCEEDED = "context deadline exceeded"


class VolumeBindingError(Exception):
    """PreBind failed; `message` is what FailedScheduling and PodScheduled say."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class PodVolumes:
    """What Reserve decided for one pod on one node (volumebinding's PodVolumes).
    Each entry is (the object as the cache had it, the object as it is to be written)."""

    node: str
    static_bindings: list[tuple[Obj, dict[str, Any]]] = field(default_factory=list)
    dynamic_provisions: list[tuple[Obj, dict[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.static_bindings or self.dynamic_provisions)


def bind_volume_to_claim(pv: Obj, pvc: Obj) -> dict[str, Any]:
    """GetBindVolumeToClaim: the PV with claimRef pointing at the claim."""
    bound = copy.deepcopy(dict(pv))
    pvc_meta = meta(pvc)
    bound.setdefault("spec", {})["claimRef"] = {
        "kind": "PersistentVolumeClaim", "namespace": pvc_meta.get("namespace", ""), "name": pvc_meta.get("name", ""),
        "uid": pvc_meta.get("uid", ""), "apiVersion": "v1", "resourceVersion": pvc_meta.get("resourceVersion", "")}
    bound.setdefault("metadata", {}).setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = "yes"
    return bound


def claim_for_node(pvc: Obj, node: str) -> dict[str, Any]:
    """The claim with volume.kubernetes.io/selected-node set (AssumePodVolumes)."""
    claim = copy.deepcopy(dict(pvc))
    claim.setdefault("metadata", {}).setdefault("annotations", {})[ANN_SELECTED_NODE] = node
    return claim


def find_pod_volumes(delayed: list[Obj], pvs: Mapping[str, Obj], node: NodeInfo,
                     fits: Callable[[Obj, Obj, Obj], bool], requested: Callable[[Obj], int],
                     capacity: Callable[[Obj], int]) -> PodVolumes:
    """findMatchingVolumes + checkVolumeProvisions on the chosen node: claims by
    increasing request, each to the smallest fitting PV not chosen yet, else provisioned.
    (The Filter already checked that every claim can be satisfied on this node.)"""
    volumes = PodVolumes(node.name)
    chosen: set[str] = set()
    for pvc in sorted(delayed, key=requested):
        candidates = [pv for name, pv in pvs.items() if name not in chosen and fits(pv, pvc, node.node)]
        if candidates:
            pv = min(candidates, key=capacity)
            chosen.add(object_key(pv))
            volumes.static_bindings.append((pv, bind_volume_to_claim(pv, pvc)))
        else:
            volumes.dynamic_provisions.append((pvc, claim_for_node(pvc, node.name)))
    return volumes


def _newer(cached: Obj, written: Obj) -> bool:
    """Has the cache caught up with what we wrote (resourceVersion at least as new)?"""
    try:
        return int(meta(cached).get("resourceVersion") or 0) >= int(meta(written).get("resourceVersion") or 0)
    except ValueError:
        return meta(cached).get("resourceVersion") == meta(written).get("resourceVersion")


def _fully_bound(pvc: Obj) -> bool:
    return bool((pvc.get("spec") or {}).get("volumeName")) and ANN_BIND_COMPLETED in (meta(pvc).get("annotations") or {})


Lookup = Callable[[str], Obj | None]


class VolumeBinder:
    """BindPodVolumes: write the bindings, then wait for the claims to be bound."""

    def __init__(self, client: ApiClient, clock: Clock, *, pvcs: Lookup, pvs: Lookup, nodes: Lookup,
                 pod_exists: Callable[[str], bool], node_affinity_matches: Callable[[Obj, Obj], bool],
                 bind_timeout: float = DEFAULT_BIND_TIMEOUT) -> None:
        self.client = client
        self.clock = clock
        self.pvcs, self.pvs, self.nodes = pvcs, pvs, nodes
        self.pod_exists = pod_exists
        self.node_affinity_matches = node_affinity_matches
        self.bind_timeout = bind_timeout
        self._changed = asyncio.Event()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Bindings waiting for their claims now."""
        return self._waiting

    def notify(self) -> None:
        """Something a waiting binding may depend on changed (claims, volumes, pods)."""
        if self._waiting:
            self._changed.set()
            self._changed = asyncio.Event()

    async def bind_pod_volumes(self, pod_key: str, volumes: PodVolumes) -> None:
        """Raise VolumeBindingError with kube-scheduler's message when binding fails."""
        try:
            await self._write(volumes)
        except ApiError as exc:
            raise VolumeBindingError(f'running PreBind plugin "{PLUGIN}": {exc.message}') from exc
        self._waiting += 1
        try:
            await self._wait_bound(pod_key, volumes)
        except VolumeBindingError as exc:
            raise VolumeBindingError(f'running PreBind plugin "{PLUGIN}": binding volumes: {exc.message}') from exc
        finally:
            self._waiting -= 1

    async def _write(self, volumes: PodVolumes) -> None:
        """bindAPIUpdate: PUT each PV, then each claim; keep what the server returned."""
        for i, (original, pv) in enumerate(volumes.static_bindings):
            volumes.static_bindings[i] = (original, await self.client.update(PERSISTENTVOLUMES, pv))
        for i, (original, claim) in enumerate(volumes.dynamic_provisions):
            volumes.dynamic_provisions[i] = (original, await self.client.update(PERSISTENTVOLUMECLAIMS, claim))

    async def _wait_bound(self, pod_key: str, volumes: PodVolumes) -> None:
        deadline = self.clock.monotonic() + self.bind_timeout
        while True:
            changed = self._changed
            if self.check_bindings(pod_key, volumes):
                return
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise VolumeBindingError(DEADLINE_EXCEEDED)
            waiters = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(self.clock.sleep(remaining))]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)

    def check_bindings(self, pod_key: str, volumes: PodVolumes) -> bool:
        """checkBindings on the cache: True when all are bound, False to keep waiting,
        VolumeBindingError when the binding must be retried from scheduling."""
        node = self.nodes(volumes.node)
        if node is None:
            raise VolumeBindingError(f'failed to get node "{volumes.node}": node "{volumes.node}" not found')
        if not self.pod_exists(pod_key):
            name = pod_key.split("/", 1)[-1]
            raise VolumeBindingError(f'pod does not exist any more: pods "{name}" not found')
        for _, written_pv in volumes.static_bindings:
            if not self._static_bound(written_pv, node):
                return False
        for _, written_claim in volumes.dynamic_provisions:
            if not self._provisioned(written_claim, node):
                return False
        return True

    def _static_bound(self, written_pv: Obj, node: Obj) -> bool:
        name = meta(written_pv).get("name", "")
        pv = self.pvs(name)
        if pv is None:
            raise VolumeBindingError(f'failed to check binding: could not find v1.PersistentVolume "{name}"')
        ref = (written_pv.get("spec") or {}).get("claimRef") or {}
        claim_key = f"{ref.get('namespace', '')}/{ref.get('name', '')}"
        pvc = self.pvcs(claim_key)
        if pvc is None:
            raise VolumeBindingError(
                f'failed to check binding: could not find v1.PersistentVolumeClaim "{claim_key}"')
        if not _newer(pv, written_pv):
            return False
        if not self.node_affinity_matches(pv, node):
            raise VolumeBindingError(f'pv "{name}" node affinity doesn\'t match node "{meta(node).get("name", "")}": '
                                     "no matching NodeSelectorTerms")
        current_ref = (pv.get("spec") or {}).get("claimRef") or {}
        if not current_ref.get("uid") and not current_ref.get("name"):
            raise VolumeBindingError(f'ClaimRef got reset for pv "{name}"')
        return _fully_bound(pvc)

    def _provisioned(self, written_claim: Obj, node: Obj) -> bool:
        key = object_key(written_claim)
        pvc = self.pvcs(key)
        if pvc is None:
            raise VolumeBindingError(f'failed to check provisioning pvc: could not find v1.PersistentVolumeClaim "{key}"')
        if not _newer(pvc, written_claim):
            return False
        name = meta(pvc).get("name", "")
        annotations = meta(pvc).get("annotations")
        if annotations is None:
            raise VolumeBindingError(f'selectedNode annotation reset for PVC "{name}"')
        if annotations.get(ANN_SELECTED_NODE) != meta(node).get("name"):
            raise VolumeBindingError(f'provisioning failed for PVC "{name}"')
        volume = (pvc.get("spec") or {}).get("volumeName")
        if volume:
            pv = self.pvs(volume)
            if pv is None:
                return False   # not seen yet: the PV informer may lag behind the claim's
            if not self.node_affinity_matches(pv, node):
                raise VolumeBindingError(f'pv "{volume}" node affinity doesn\'t match node '
                                         f'"{meta(node).get("name", "")}": no matching NodeSelectorTerms')
        return _fully_bound(pvc)
