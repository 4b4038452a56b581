"""The EndpointSlice reconciler as a pure function (pkg/controller/endpointslice's reconciler).

`reconcile_slices(service, pods, slices, nodes, ...)` returns a `SlicePlan`: slices to
create (generateName `<service>-`), to update in place and to delete. The shape follows
Kubernetes:

1. Desired endpoints, grouped by the ports they resolve to: a named targetPort is looked
   up per pod, so pods without that container port land in a slice with other ports.
   Pods whose Node is not cached are left out (Kubernetes requeues and retries later).
2. Per port group, existing slices keep the endpoints still desired (replaced where a
   condition, the node or the zone changed) and drop the others; a slice left empty is
   deleted, a changed one updated.
3. New endpoints go first into slices being updated anyway (fullest first), then into one
   unchanged slice with room for all of them, then into new slices of at most
   `max_per_slice` endpoints: few writes, little churn.
4. A Service without endpoints keeps one placeholder slice (no endpoints, no ports).

Endpoint conditions: serving = pod Ready; terminating = deletionTimestamp set;
ready = publishNotReadyAddresses or (serving and not terminating).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers.common import objects, ownership, pods
from controllers.endpointslice.podendpoints import (
    HEADLESS_LABEL,
    TRIGGER_TIME_ANNOTATION,
    find_port,
    format_trigger_time,
    is_headless,
    pod_ip,
    should_pod_be_in_endpoints,
    should_set_hostname,
    target_ref,
)

Obj = dict[str, Any]
MAX_ENDPOINTS_PER_SLICE = 100  # --max-endpoints-per-slice
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
ADDRESS_TYPE = "IPv4"
RESERVED_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)


@dataclass
class SlicePlan:
    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


# -- desired state ----------------------------------------------------------------------


def endpoint_ports(service: Obj, pod: Obj) -> list[Obj]:
    """getEndpointPorts: the Service's ports as this pod serves them (unresolvable: left out)."""
    ports = []
    for service_port in objects.spec(service).get("ports") or []:
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: Obj = {"name": service_port.get("name", ""), "port": number,
                     "protocol": service_port.get("protocol") or "TCP"}
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def pod_endpoint(service: Obj, pod: Obj, node: Obj | None) -> Obj:
    """podToEndpoint."""
    serving = pods.is_ready(pod)
    terminating = objects.being_deleted(pod)
    ready = bool(objects.spec(service).get("publishNotReadyAddresses")) or (serving and not terminating)
    endpoint: Obj = {"addresses": [pod_ip(pod)],
                     "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    if should_set_hostname(pod, service):
        endpoint["hostname"] = objects.spec(pod)["hostname"]
    endpoint["targetRef"] = target_ref(pod)
    node_name = objects.spec(pod).get("nodeName")
    if node_name:
        endpoint["nodeName"] = node_name
    zone = objects.labels(node).get(ZONE_LABEL) if node else None
    if zone:
        endpoint["zone"] = zone
    return endpoint


def ports_key(ports: Iterable[Obj]) -> str:
    """The identity of a port set (endpointutil.NewPortMapKey: order does not matter)."""
    return json.dumps(sorted((p.get("name") or "", p.get("port"), p.get("protocol") or "TCP",
                              p.get("appProtocol") or "") for p in ports))


def endpoint_id(endpoint: Obj) -> tuple[Any, ...]:
    """What makes two endpoints the same one (addresses and the pod behind them)."""
    ref = endpoint.get("targetRef") or {}
    return (tuple(endpoint.get("addresses") or ()), ref.get("namespace"), ref.get("name"), ref.get("uid"))


@dataclass
class _Group:
    ports: list[Obj]
    endpoints: dict[tuple[Any, ...], Obj] = field(default_factory=dict)


def desired_groups(service: Obj, pod_objs: Iterable[Obj], nodes: Mapping[str, Obj]) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    for pod in sorted(pod_objs, key=objects.name):
        if not should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        node_name = objects.spec(pod).get("nodeName") or ""
        node = nodes.get(node_name)
        if node is None:
            continue
        ports = endpoint_ports(service, pod)
        group = groups.setdefault(ports_key(ports), _Group(ports))
        endpoint = pod_endpoint(service, pod, node)
        group.endpoints.setdefault(endpoint_id(endpoint), endpoint)
    return groups


# -- slice metadata ---------------------------------------------------------------------


def slice_labels(service: Obj) -> dict[str, str]:
    """setEndpointSliceLabels: the Service's labels plus the reserved ones."""
    labels = {k: v for k, v in objects.labels(service).items() if k not in RESERVED_LABELS}
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = objects.name(service)
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def new_slice(service: Obj, ports: list[Obj], endpoints: list[Obj]) -> Obj:
    """newEndpointSlice."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{objects.name(service)}-", "namespace": objects.namespace(service),
                         "labels": slice_labels(service),
                         "ownerReferences": [ownership.controller_ref(service, api_version="v1", kind="Service")]},
            "addressType": ADDRESS_TYPE, "endpoints": endpoints, "ports": copy.deepcopy(ports)}


def owned_by(slice_obj: Obj, service: Obj) -> bool:
    ref = ownership.controller_of(slice_obj)
    return ref is not None and ref.get("kind") == "Service" and ref.get("uid") == objects.uid(service)


def _meta_differs(slice_obj: Obj, service: Obj) -> bool:
    return objects.labels(slice_obj) != slice_labels(service)


def _with(slice_obj: Obj, service: Obj, endpoints: list[Obj]) -> Obj:
    updated = copy.deepcopy(slice_obj)
    updated["endpoints"] = endpoints
    updated["metadata"]["labels"] = slice_labels(service)
    return updated


# -- the reconcile ----------------------------------------------------------------------


def _reconcile_group(service: Obj, group: _Group, existing: list[Obj], max_per_slice: int, plan: SlicePlan) -> None:
    """reconcileByPortMapping for one port set."""
    desired = dict(group.endpoints)
    updating: list[Obj] = []
    unchanged: list[Obj] = []
    for slice_obj in existing:
        kept: list[Obj] = []
        changed = False
        for endpoint in slice_obj.get("endpoints") or []:
            want = desired.pop(endpoint_id(endpoint), None)
            if want is None:
                changed = True
                continue
            changed = changed or objects.drop_empty(want) != objects.drop_empty(endpoint)
            kept.append(want)
        if not kept:
            plan.delete.append(slice_obj)  # also an old placeholder: re-made at the end if needed
        elif not (changed or _meta_differs(slice_obj, service)):
            unchanged.append(slice_obj)
        else:
            updating.append(_with(slice_obj, service, kept))
    remaining = list(desired.values())
    for slice_obj in sorted(updating, key=lambda s: -len(s["endpoints"])):
        room = max_per_slice - len(slice_obj["endpoints"])
        if room > 0 and remaining:
            slice_obj["endpoints"].extend(remaining[:room])
            remaining = remaining[room:]
    if remaining:
        fits = [s for s in unchanged if max_per_slice - len(s.get("endpoints") or []) >= len(remaining)]
        if fits:
            chosen = max(fits, key=lambda s: len(s.get("endpoints") or []))
            unchanged.remove(chosen)
            updating.append(_with(chosen, service, [*(chosen.get("endpoints") or []), *remaining]))
            remaining = []
    plan.update.extend(updating)
    while remaining:
        plan.create.append(new_slice(service, group.ports, remaining[:max_per_slice]))
        remaining = remaining[max_per_slice:]


def _is_placeholder(slice_obj: Obj, service: Obj) -> bool:
    return (not slice_obj.get("endpoints") and not slice_obj.get("ports")
            and not _meta_differs(slice_obj, service))


def reconcile_slices(service: Obj, pod_objs: Iterable[Obj], slices: Iterable[Obj], nodes: Mapping[str, Obj], *,
                     max_per_slice: int = MAX_ENDPOINTS_PER_SLICE, trigger_time: datetime | None = None) -> SlicePlan:
    """The writes that make `slices` (this Service's, managed by us) match its pods."""
    plan = SlicePlan()
    groups = desired_groups(service, pod_objs, nodes)
    by_ports: dict[str, list[Obj]] = {}
    existing = sorted(slices, key=objects.name)
    for slice_obj in existing:
        if slice_obj.get("addressType") != ADDRESS_TYPE or not owned_by(slice_obj, service):
            plan.delete.append(slice_obj)
        else:
            by_ports.setdefault(ports_key(slice_obj.get("ports") or []), []).append(slice_obj)
    for key in sorted(set(groups) | set(by_ports)):
        group = groups.get(key) or _Group(list(by_ports[key][0].get("ports") or []))
        _reconcile_group(service, group, by_ports.get(key, []), max_per_slice, plan)
    if len(plan.delete) == len(existing) and not plan.create:
        placeholder = [s for s in plan.delete if _is_placeholder(s, service)]
        if len(plan.delete) == 1 and placeholder:
            plan.delete.clear()
        else:
            plan.create.append(new_slice(service, [], []))
    for slice_obj in [*plan.create, *plan.update]:
        meta = slice_obj["metadata"]
        annotations = meta.setdefault("annotations", {})
        if trigger_time is not None:
            annotations[TRIGGER_TIME_ANNOTATION] = format_trigger_time(trigger_time)
        else:
            annotations.pop(TRIGGER_TIME_ANNOTATION, None)
        if not annotations:  # Go's omitempty: no empty `annotations: {}` on the slice
            del meta["annotations"]
    return plan
