"""The Endpoints controller's sync as a pure function (pkg/controller/endpoint syncService).

`desired_endpoints(service, pods, current, trigger_time)` returns the Endpoints object to
write (create when `current` is None, update otherwise) or None when `current` already
says it all. Every pod that should be in the endpoints (terminating pods only with
publishNotReadyAddresses) contributes one address per Service port it resolves: ready
when the pod is Ready or the Service publishes not-ready addresses, else not ready. A
headless Service without ports still lists its pods, portless. The subsets are repacked
as Kubernetes does, cut to 1000 addresses (`endpoints.kubernetes.io/over-capacity:
truncated`), and labelled with the Service's labels (+ `service.kubernetes.io/headless`).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from controllers.common import objects, pods
from controllers.endpoints.subsets import MAX_CAPACITY, OVER_CAPACITY_ANNOTATION, repack_subsets, truncate
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


def pod_address(pod: Obj, service: Obj) -> Obj:
    """podToEndpointAddressForService."""
    address: Obj = {"ip": pod_ip(pod)}
    if should_set_hostname(pod, service):
        address["hostname"] = objects.spec(pod)["hostname"]
    if objects.spec(pod).get("nodeName"):
        address["nodeName"] = objects.spec(pod)["nodeName"]
    address["targetRef"] = target_ref(pod)
    return address


def _subset(address: Obj, port: Obj | None, ready: bool) -> Obj:
    subset: Obj = {"addresses" if ready else "notReadyAddresses": [address]}
    if port is not None:
        subset["ports"] = [port]
    return subset


def endpoint_port(service_port: Obj, number: int) -> Obj:
    port: Obj = {}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    port["port"] = number
    port["protocol"] = service_port.get("protocol") or "TCP"
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def desired_subsets(service: Obj, pod_objs: list[Obj]) -> list[Obj]:
    tolerate_unready = bool(objects.spec(service).get("publishNotReadyAddresses"))
    service_ports = objects.spec(service).get("ports") or []
    subsets: list[Obj] = []
    for pod in sorted(pod_objs, key=objects.name):
        if not should_pod_be_in_endpoints(pod, include_terminating=tolerate_unready):
            continue
        address = pod_address(pod, service)
        ready = tolerate_unready or pods.is_ready(pod)
        if not service_ports:
            if is_headless(service):
                subsets.append(_subset(address, None, ready))
            continue
        for service_port in service_ports:
            number = find_port(pod, service_port)
            if number is not None:
                subsets.append(_subset(address, endpoint_port(service_port, number), ready))
    return repack_subsets(subsets)


def endpoints_labels(service: Obj) -> dict[str, str]:
    labels = {k: v for k, v in objects.labels(service).items() if k != HEADLESS_LABEL}
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    return labels


def desired_endpoints(service: Obj, pod_objs: list[Obj], current: Obj | None, *,
                      trigger_time: datetime | None = None, capacity: int = MAX_CAPACITY) -> Obj | None:
    """The Endpoints to write for `service`, or None when `current` needs no change."""
    subsets = desired_subsets(service, pod_objs)
    truncated = truncate(subsets, capacity)
    labels = endpoints_labels(service)
    if current is not None:
        annotations = objects.annotations(current)
        capacity_ok = (annotations.get(OVER_CAPACITY_ANNOTATION) == "truncated") == truncated
        if (objects.drop_empty(current.get("subsets") or []) == objects.drop_empty(subsets)
                and objects.labels(current) == labels and capacity_ok):
            return None
    body = copy.deepcopy(current) if current is not None else {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": objects.name(service), "namespace": objects.namespace(service)}}
    metadata = body["metadata"]
    annotations = dict(metadata.get("annotations") or {})
    if trigger_time is not None:
        annotations[TRIGGER_TIME_ANNOTATION] = format_trigger_time(trigger_time)
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    if truncated:
        annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
    # Go's omitempty: an Endpoints with no annotations has no `annotations` key at all.
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    metadata["labels"] = labels
    body["subsets"] = subsets
    return body
