"""VolumeBinding (basic): a pod's PersistentVolumeClaims must be usable from the node.

PreFilter (the pod as a whole):
- a missing claim: `persistentvolumeclaim "NAME" not found`; a claim being deleted or
  Lost gets its own message; all UnschedulableAndUnresolvable, so the FitError reads
  "0/N nodes are available: persistentvolumeclaim "data" not found.";
- an unbound claim whose StorageClass binds Immediately (or that has no class) must wait
  for the PV controller: "pod has unbound immediate PersistentVolumeClaims".
  A claim counts as bound only with `spec.volumeName` *and* the
  `pv.kubernetes.io/bind-completed` annotation, as in Kubernetes.
Filter (per node):
- a bound claim's PV must exist ("node(s) unavailable due to one or more pvc(s) bound to
  non-existent pv(s)") and its `spec.nodeAffinity.required` must match the node
  ("node(s) had volume node affinity conflict") — how local volumes pin pods;
- a WaitForFirstConsumer claim needs an Available PV that fits it and the node, or a
  StorageClass that can provision there (provisioner set, allowedTopologies matching);
  otherwise "node(s) didn't find available persistent volumes to bind".
Reserve and PreBind (binding the claims once the node is chosen) are in volumes.py.
Not modelled: CSI storage capacity, volume limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controllers.scheduler.framework import SUCCESS, CycleState, Pod, PreFilterResult, Status
from controllers.scheduler.matching import node_selector_matches
from controllers.scheduler.nodeinfo import NodeInfo, Snapshot, meta, object_key, pod_namespace
from controllers.scheduler.plugins.helper import (
    NODE_CHANGES,
    PV_ADD,
    PV_UPDATE,
    PVC_ADD,
    PVC_UPDATE,
    STORAGE_CLASS_ADD,
    STORAGE_CLASS_UPDATE,
    pod_spec,
)
from controllers.scheduler.volumes import PodVolumes, find_pod_volumes
from minikube_py.api.quantity import parse_quantity

ERR_REASON_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_REASON_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_REASON_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
NOT_SUPPORTED_PROVISIONER = "kubernetes.io/no-provisioner"
Obj = Mapping[str, Any]


class _ClaimError(Exception):
    """A claim problem that makes the pod unschedulable everywhere (or an Error)."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.message())
        self.status = status


@dataclass
class _Claims:
    bound: list[Obj] = field(default_factory=list)
    delayed: list[Obj] = field(default_factory=list)
    immediate: list[Obj] = field(default_factory=list)


def claim_class(pvc: Obj) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation wins over spec.storageClassName."""
    annotations = meta(pvc).get("annotations") or {}
    if ANN_STORAGE_CLASS in annotations:
        return annotations[ANN_STORAGE_CLASS]
    return (pvc.get("spec") or {}).get("storageClassName") or ""


def _claim_names(pod: Pod) -> list[tuple[str, bool]]:
    """(claim name, is generic ephemeral) for each PVC-backed volume of the pod."""
    names = []
    for volume in pod_spec(pod).get("volumes") or []:
        if volume.get("persistentVolumeClaim") is not None:
            names.append((volume["persistentVolumeClaim"].get("claimName", ""), False))
        elif volume.get("ephemeral") is not None:
            names.append((f"{meta(pod).get('name', '')}-{volume.get('name', '')}", True))
    return names


def _get_claim(snapshot: Snapshot, pod: Pod, name: str, ephemeral: bool) -> Obj:
    pvc = snapshot.pvcs.get(f"{pod_namespace(pod)}/{name}")
    if pvc is None:
        if ephemeral:
            raise _ClaimError(Status.unresolvable(
                f'waiting for ephemeral volume controller to create the persistentvolumeclaim "{name}"'))
        raise _ClaimError(Status.unresolvable(f'persistentvolumeclaim "{name}" not found'))
    if (pvc.get("status") or {}).get("phase") == "Lost":
        volume = (pvc.get("spec") or {}).get("volumeName", "")
        raise _ClaimError(Status.unresolvable(
            f'persistentvolumeclaim "{name}" bound to non-existent persistentvolume "{volume}"'))
    if meta(pvc).get("deletionTimestamp") is not None:
        raise _ClaimError(Status.unresolvable(f'persistentvolumeclaim "{name}" is being deleted'))
    return pvc


def _delay_binding(snapshot: Snapshot, pvc: Obj) -> bool:
    """IsDelayBindingMode: WaitForFirstConsumer; a missing class is a scheduler Error."""
    name = claim_class(pvc)
    if not name:
        return False
    storage_class = snapshot.storage_classes.get(name)
    if storage_class is None:
        raise _ClaimError(Status.error(f'storageclass.storage.k8s.io "{name}" not found'))
    mode = storage_class.get("volumeBindingMode")
    if not mode:
        raise _ClaimError(Status.error(f'VolumeBindingMode not set for StorageClass "{name}"'))
    return mode == "WaitForFirstConsumer"


def _classify(snapshot: Snapshot, pod: Pod, names: list[tuple[str, bool]]) -> _Claims:
    claims = _Claims()
    for name, ephemeral in names:
        pvc = _get_claim(snapshot, pod, name, ephemeral)
        volume_name = (pvc.get("spec") or {}).get("volumeName") or ""
        if volume_name and ANN_BIND_COMPLETED in (meta(pvc).get("annotations") or {}):
            claims.bound.append(pvc)
        elif _delay_binding(snapshot, pvc) and not volume_name:
            claims.delayed.append(pvc)
        else:
            claims.immediate.append(pvc)
    return claims


def pv_node_affinity_matches(pv: Obj, node: Obj) -> bool:
    """CheckNodeAffinity: no required node affinity means any node."""
    required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    return required is None or node_selector_matches(required, node)


def _requested_storage(pvc: Obj) -> int:
    value = (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    return parse_quantity(value).int_value()


def _pv_capacity(pv: Obj) -> int:
    return parse_quantity(((pv.get("spec") or {}).get("capacity") or {}).get("storage")).int_value()


def _pv_fits(pv: Obj, pvc: Obj, node: Obj) -> bool:
    """A static PV this delayed claim could bind to on this node."""
    spec, claim_spec = pv.get("spec") or {}, pvc.get("spec") or {}
    ref = spec.get("claimRef")
    if ref and (ref.get("namespace"), ref.get("name")) != (meta(pvc).get("namespace"), meta(pvc).get("name")):
        return False
    if not ref and ((pv.get("status") or {}).get("phase") or "Available") != "Available":
        return False
    if (spec.get("storageClassName") or "") != claim_class(pvc):
        return False
    if (spec.get("volumeMode") or "Filesystem") != (claim_spec.get("volumeMode") or "Filesystem"):
        return False
    if not set(claim_spec.get("accessModes") or ()) <= set(spec.get("accessModes") or ()):
        return False
    return _pv_capacity(pv) >= _requested_storage(pvc) and pv_node_affinity_matches(pv, node)


def _topology_allows(storage_class: Obj, labels: Mapping[str, str]) -> bool:
    """MatchTopologySelectorTerms: no terms allow every node; terms are ORed."""
    terms = storage_class.get("allowedTopologies") or []
    if not terms:
        return True
    return any(all(labels.get(e.get("key")) in (e.get("values") or ())
                   for e in term.get("matchLabelExpressions") or ()) for term in terms)


def _can_provision(snapshot: Snapshot, pvc: Obj, node: NodeInfo) -> bool:
    storage_class = snapshot.storage_classes.get(claim_class(pvc)) or {}
    provisioner = storage_class.get("provisioner") or ""
    if not provisioner or provisioner == NOT_SUPPORTED_PROVISIONER:
        return False
    return _topology_allows(storage_class, node.labels)


class VolumeBinding:
    """PVC existence and binding mode at PreFilter; PV node affinity at Filter."""

    name = "VolumeBinding"
    events = (PVC_ADD, PVC_UPDATE, PV_ADD, PV_UPDATE, STORAGE_CLASS_ADD, STORAGE_CLASS_UPDATE, *NODE_CHANGES)
    state_key = "PreFilterVolumeBinding"

    def pre_filter(self, state: CycleState, pod: Pod) -> tuple[PreFilterResult | None, Status]:
        names = _claim_names(pod)
        if not names:
            return None, Status.skip()
        try:
            claims = _classify(state.snapshot, pod, names)
        except _ClaimError as exc:
            return None, exc.status
        if claims.immediate:
            return None, Status.unresolvable(ERR_UNBOUND_IMMEDIATE)
        state.write(self.state_key, claims)
        return None, SUCCESS

    def filter(self, state: CycleState, pod: Pod, node: NodeInfo) -> Status:
        claims: _Claims = state.read(self.state_key)
        snapshot = state.snapshot
        node_conflict = pv_missing = bind_conflict = False
        for pvc in claims.bound:
            pv = snapshot.pvs.get((pvc.get("spec") or {}).get("volumeName", ""))
            if pv is None:
                pv_missing = True
            elif not pv_node_affinity_matches(pv, node.node):
                node_conflict = True
        for pvc in claims.delayed:
            if not any(_pv_fits(pv, pvc, node.node) for pv in snapshot.pvs.values()) \
                    and not _can_provision(snapshot, pvc, node):
                bind_conflict = True
        reasons = [reason for flag, reason in ((node_conflict, ERR_REASON_NODE_CONFLICT),
                                               (bind_conflict, ERR_REASON_BIND_CONFLICT),
                                               (pv_missing, ERR_REASON_PV_NOT_EXIST)) if flag]
        return Status.unresolvable(*reasons) if reasons else SUCCESS

    @staticmethod
    def claims_to_bind(state: CycleState) -> list[str]:
        """Keys of the pod's unbound WaitForFirstConsumer claims, which Reserve binds to
        a PV or marks for provisioning (see controllers/scheduler/volumes.py)."""
        try:
            claims: _Claims = state.read(VolumeBinding.state_key)
        except KeyError:
            return []
        return [object_key(pvc) for pvc in claims.delayed]

    @staticmethod
    def find_pod_volumes(state: CycleState, node: NodeInfo) -> PodVolumes | None:
        """Reserve's decision for the chosen node: which delayed claims bind to which
        static PV and which are provisioned there; None when there is nothing to bind."""
        try:
            claims: _Claims = state.read(VolumeBinding.state_key)
        except KeyError:
            return None
        if not claims.delayed:
            return None
        return find_pod_volumes(claims.delayed, state.snapshot.pvs, node, _pv_fits, _requested_storage,
                                _pv_capacity)
