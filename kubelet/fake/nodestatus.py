"""What a fake node writes about itself: the Node it registers, its status, its Lease.

Pure functions of (configuration, what the API server last said, the time), so the
shapes can be tested without a server. They follow the kubelet's own:

- Registration (kubelet `initialNode`): labels kubernetes.io/hostname, kubernetes.io/os,
  kubernetes.io/arch and their beta.* twins; the attach-detach annotation; status with
  capacity, allocatable, addresses, daemonEndpoints, nodeInfo and the conditions.
- Conditions in the kubelet's order (MemoryPressure, DiskPressure, PIDPressure, Ready)
  with its reasons and messages. lastHeartbeatTime moves on every status report,
  lastTransitionTime only when a condition's status changes, e.g. when the node
  lifecycle controller had set Ready to Unknown while the fake node was down.
- Allocatable is capacity minus the default hard eviction thresholds.
- The Lease kube-node-lease/<node>: holderIdentity = node name, leaseDurationSeconds
  40, renewTime (MicroTime), owned by the Node so it goes when the Node goes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubelet.fake import ipam
from kubelet.fake.config import (
    CONTAINER_RUNTIME_VERSION,
    EVICTION_MEMORY,
    EVICTION_NODEFS_FRACTION,
    FAKE_NODE_LABEL,
    KUBELET_PORT,
    NODE_LEASE_DURATION_SECONDS,
    NODE_LEASE_NAMESPACE,
    FakeNodeConfig,
    micro_time,
    rfc3339,
)
from minikube_py.api import Quantity, QuantityError, canonical, parse_quantity

Obj = dict[str, Any]

# (type, status, reason, message) of a healthy node, in the kubelet's order.
HEALTHY_CONDITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)
# Event reasons the kubelet records when a condition turns healthy ("Node X status is now: R").
CONDITION_EVENTS = {"MemoryPressure": "NodeHasSufficientMemory", "DiskPressure": "NodeHasNoDiskPressure",
                    "PIDPressure": "NodeHasSufficientPID", "Ready": "NodeReady"}
# Status fields a fake node owns besides conditions (written when they differ).
_STATIC_FIELDS = ("capacity", "allocatable", "addresses", "daemonEndpoints", "nodeInfo", "images")
MAX_IMAGES = 50  # the kubelet's --node-status-max-images


@dataclass(frozen=True)
class NodeProfile:
    """What tells one kind of node agent's Node from another's: the fake nodes here,
    the process kubelet (`kubelet.agent`) with its own values."""

    fake: bool = True  # label mkp.dev/fake-node=true
    kubelet_port: int = KUBELET_PORT  # status.daemonEndpoints.kubeletEndpoint.Port
    os_image: str = "mkp fake node"
    runtime_version: str = CONTAINER_RUNTIME_VERSION
    cidr_for_index: Callable[[int], str] = ipam.cidr_for_index  # spec.podCIDR of node number i
    pod_cidr: str | None = None  # fixed spec.podCIDR (the kubelet's --pod-cidr), else by index
    node_ip: str | None = None  # fixed InternalIP (the kubelet's --node-ip), else by index
    images: Callable[[], list[Obj]] | None = None  # status.images: what the node has pulled


FAKE = NodeProfile()


def node_labels(name: str, architecture: str, profile: NodeProfile = FAKE) -> dict[str, str]:
    labels = {
        "beta.kubernetes.io/arch": architecture,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": architecture,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }
    if profile.fake:
        labels[FAKE_NODE_LABEL] = "true"
    return labels


def allocatable(capacity: Mapping[str, str]) -> dict[str, str]:
    """Capacity minus the default eviction thresholds (memory 100Mi, nodefs 10%)."""
    result = {k: canonical(v) for k, v in capacity.items()}
    try:
        if "memory" in capacity:
            memory = parse_quantity(capacity["memory"]) - parse_quantity(EVICTION_MEMORY)
            result["memory"] = canonical(memory if memory.sign() > 0 else Quantity(0))
        if "ephemeral-storage" in capacity:
            storage = parse_quantity(capacity["ephemeral-storage"]).int_value()
            result["ephemeral-storage"] = str(int(storage * (1 - EVICTION_NODEFS_FRACTION)))
    except QuantityError:
        pass  # the API server will reject the quantity with its own message
    return result


def node_info(name: str, config: FakeNodeConfig, profile: NodeProfile = FAKE) -> dict[str, str]:
    """status.nodeInfo; the ids are stable per node name, so restarts do not change them."""
    ident = uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{'fake.' if profile.fake else ''}mkp.dev")
    return {
        "architecture": config.architecture,
        "bootID": str(uuid.uuid5(ident, "boot")),
        "containerRuntimeVersion": profile.runtime_version,
        "kernelVersion": os.uname().release,
        "kubeProxyVersion": config.kubelet_version,  # DisableNodeKubeProxyVersion is off in 1.32
        "kubeletVersion": config.kubelet_version,
        "machineID": ident.hex,
        "operatingSystem": "linux",
        "osImage": profile.os_image,
        "systemUUID": str(ident),
    }


def static_status(name: str, internal_ip: str, config: FakeNodeConfig, profile: NodeProfile = FAKE) -> Obj:
    """Every status field of the node but its conditions."""
    status = {
        "capacity": {k: canonical(v) for k, v in config.capacity.items()},
        "allocatable": allocatable(config.capacity),
        "addresses": [{"address": internal_ip, "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": profile.kubelet_port}},
        "nodeInfo": node_info(name, config, profile),
    }
    if profile.images is not None:
        status["images"] = profile.images()[:MAX_IMAGES]
    return status


def conditions(previous: list[Obj] | None, now: datetime) -> list[Obj]:
    """The healthy conditions with lastHeartbeatTime now; lastTransitionTime kept from
    `previous` for conditions whose status did not change."""
    before = {c.get("type"): c for c in previous or []}
    stamp = rfc3339(now)
    result = []
    for ctype, status, reason, message in HEALTHY_CONDITIONS:
        old = before.get(ctype) or {}
        transition = old.get("lastTransitionTime") if old.get("status") == status else None
        result.append({"type": ctype, "status": status, "lastHeartbeatTime": stamp,
                       "lastTransitionTime": transition or stamp, "reason": reason, "message": message})
    return result


def registration(name: str, *, pod_cidr: str, internal_ip: str, config: FakeNodeConfig, now: datetime,
                 profile: NodeProfile = FAKE) -> Obj:
    """The Node a fake node creates when it does not exist yet."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels(name, config.architecture, profile),
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
        "status": {**static_status(name, internal_ip, config, profile), "conditions": conditions(None, now)},
    }


def _same_quantities(a: Any, b: Any) -> bool:
    if not isinstance(a, dict) or not isinstance(b, dict) or a.keys() != b.keys():
        return False
    try:
        return all(parse_quantity(a[k]) == parse_quantity(b[k]) for k in a)
    except QuantityError:
        return a == b


def _field_differs(name: str, current: Any, desired: Any) -> bool:
    if name in ("capacity", "allocatable"):
        return not _same_quantities(current, desired)
    return current != desired


def conditions_differ(current: list[Obj] | None) -> bool:
    """True when a condition's status, reason or message is not the healthy one."""
    seen = {c.get("type"): c for c in current or []}
    for ctype, status, reason, message in HEALTHY_CONDITIONS:
        c = seen.get(ctype) or {}
        if (c.get("status"), c.get("reason"), c.get("message")) != (status, reason, message):
            return True
    return False


def transitions(current: list[Obj] | None) -> list[str]:
    """Event reasons for the conditions whose status the healthy one changes."""
    seen = {c.get("type"): c.get("status") for c in current or []}
    return [CONDITION_EVENTS[ctype] for ctype, status, _, _ in HEALTHY_CONDITIONS if seen.get(ctype) != status]


def status_patch(node: Obj, desired_static: Obj, now: datetime, *, report_due: bool) -> Obj | None:
    """The strategic merge patch for nodes/<name>/status, or None when nothing needs
    writing: fields that differ, plus the conditions when they changed or a periodic
    report is due (which moves every lastHeartbeatTime, as the kubelet does)."""
    status = node.get("status") or {}
    patch: Obj = {k: v for k, v in desired_static.items() if _field_differs(k, status.get(k), v)}
    if patch or report_due or conditions_differ(status.get("conditions")):
        patch["conditions"] = conditions(status.get("conditions"), now)
        order = [{"type": c["type"]} for c in patch["conditions"]]
        order += [{"type": c["type"]} for c in status.get("conditions") or []
                  if c.get("type") not in {o["type"] for o in order}]
        patch["$setElementOrder/conditions"] = order
        return {"status": patch}
    return None


def lease(name: str, node_uid: str | None, now: datetime) -> Obj:
    """A new node Lease."""
    metadata: Obj = {"name": name, "namespace": NODE_LEASE_NAMESPACE}
    if node_uid:
        metadata["ownerReferences"] = [owner_reference(name, node_uid)]
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
            "spec": {"holderIdentity": name, "leaseDurationSeconds": NODE_LEASE_DURATION_SECONDS,
                     "renewTime": micro_time(now)}}


def owner_reference(name: str, node_uid: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}


def renewed(current: Obj, name: str, node_uid: str | None, now: datetime) -> Obj:
    """`current` (as last read or written) with renewTime now, our holder and duration,
    and the Node as owner (the kubelet sets it when missing)."""
    updated = {**current, "metadata": dict(current.get("metadata") or {}), "spec": dict(current.get("spec") or {})}
    updated["spec"].update({"holderIdentity": name, "leaseDurationSeconds": NODE_LEASE_DURATION_SECONDS,
                            "renewTime": micro_time(now)})
    refs = list(updated["metadata"].get("ownerReferences") or [])
    if node_uid and not any(r.get("uid") == node_uid for r in refs):
        refs = [r for r in refs if r.get("kind") != "Node"] + [owner_reference(name, node_uid)]
        updated["metadata"]["ownerReferences"] = refs
    return updated
