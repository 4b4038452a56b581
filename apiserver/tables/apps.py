"""Printers for apps/v1: Deployment, ReplicaSet, StatefulSet, DaemonSet, ControllerRevision.

READY for Deployments and StatefulSets is "ready/desired"; the others show plain
counts. Wide columns list the pod template's containers and images and the selector.
A missing `spec.replicas` counts as 1, the value API defaulting gives it.
Column descriptions Kubernetes takes from the long-removed extensions/v1beta1 types are
taken from the apps/v1 fields that replaced them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiserver.tables.cells import (
    container_cells,
    format_label_selector,
    format_labels,
    get,
    items,
    mapping,
    meta,
    selector_string,
)
from apiserver.tables.duration import since
from apiserver.tables.printer import (
    Printer,
    age_column,
    column,
    containers_column,
    doc,
    images_column,
    name_column,
)

_READY_DESCRIPTION = "Number of the pod with ready state"


def _template_containers(obj: dict[str, Any]) -> tuple[str, str]:
    return container_cells(items(obj, "spec", "template", "spec", "containers"))


def _deployment_cells(d: dict[str, Any], now: datetime) -> list[Any]:
    m, spec, status = meta(d), mapping(d, "spec"), mapping(d, "status")
    try:
        selector = selector_string(spec.get("selector"))
    except ValueError:
        selector = "<invalid>"
    names, images = _template_containers(d)
    return [
        m.get("name", ""),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        since(m.get("creationTimestamp"), now),
        names,
        images,
        selector,
    ]


def deployment_printer() -> Printer:
    spec, status = "apps.v1.DeploymentSpec", "apps.v1.DeploymentStatus"
    columns = [
        name_column(),
        column("Ready", "string", _READY_DESCRIPTION),
        column("Up-to-date", "string", doc(status, "updatedReplicas")),
        column("Available", "string", doc(status, "availableReplicas")),
        age_column(),
        containers_column(),
        images_column(),
        column("Selector", "string", doc(spec, "selector"), priority=1),
    ]
    return Printer(columns, _deployment_cells)


def _replicaset_cells(rs: dict[str, Any], now: datetime) -> list[Any]:
    m, spec, status = meta(rs), mapping(rs, "spec"), mapping(rs, "status")
    names, images = _template_containers(rs)
    return [
        m.get("name", ""),
        spec.get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        since(m.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def replicaset_printer() -> Printer:
    spec, status = "apps.v1.ReplicaSetSpec", "apps.v1.ReplicaSetStatus"
    columns = [
        name_column(),
        column("Desired", "integer", doc(spec, "replicas")),
        column("Current", "integer", doc(status, "replicas")),
        column("Ready", "integer", doc(status, "readyReplicas")),
        age_column(),
        containers_column(),
        images_column(),
        column("Selector", "string", doc(spec, "selector"), priority=1),
    ]
    return Printer(columns, _replicaset_cells)


def _statefulset_cells(sts: dict[str, Any], now: datetime) -> list[Any]:
    m = meta(sts)
    names, images = _template_containers(sts)
    ready = f"{get(sts, 'status', 'readyReplicas', default=0)}/{get(sts, 'spec', 'replicas', default=1)}"
    return [m.get("name", ""), ready, since(m.get("creationTimestamp"), now), names, images]


def statefulset_printer() -> Printer:
    columns = [
        name_column(),
        column("Ready", "string", _READY_DESCRIPTION),
        age_column(),
        containers_column(),
        images_column(),
    ]
    return Printer(columns, _statefulset_cells)


def _daemonset_cells(ds: dict[str, Any], now: datetime) -> list[Any]:
    m, status = meta(ds), mapping(ds, "status")
    counts = [
        status.get(f, 0)
        for f in (
            "desiredNumberScheduled",
            "currentNumberScheduled",
            "numberReady",
            "updatedNumberScheduled",
            "numberAvailable",
        )
    ]
    names, images = _template_containers(ds)
    return [
        m.get("name", ""),
        *counts,
        format_labels(get(ds, "spec", "template", "spec", "nodeSelector")),
        since(m.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(get(ds, "spec", "selector")),
    ]


def daemonset_printer() -> Printer:
    status = "apps.v1.DaemonSetStatus"
    columns = [
        name_column(),
        column("Desired", "integer", doc(status, "desiredNumberScheduled")),
        column("Current", "integer", doc(status, "currentNumberScheduled")),
        column("Ready", "integer", doc(status, "numberReady")),
        column("Up-to-date", "integer", doc(status, "updatedNumberScheduled")),
        column("Available", "integer", doc(status, "numberAvailable")),
        column("Node Selector", "string", doc("core.v1.PodSpec", "nodeSelector")),
        age_column(),
        containers_column(),
        images_column(),
        column("Selector", "string", doc("apps.v1.DaemonSetSpec", "selector"), priority=1),
    ]
    return Printer(columns, _daemonset_cells)


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """metav1.GetControllerOf: the ownerReference with controller: true."""
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def _controller_name(ref: dict[str, Any] | None) -> str:
    if ref is None:
        return "<none>"
    api_version = str(ref.get("apiVersion") or "")
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    kind = str(ref.get("kind") or "")
    if not group and not kind:
        return ref.get("name", "")
    group_kind = f"{kind}.{group}" if group else kind
    return f"{group_kind.lower()}/{ref.get('name', '')}"


def _controllerrevision_cells(cr: dict[str, Any], now: datetime) -> list[Any]:
    m = meta(cr)
    return [
        m.get("name", ""),
        _controller_name(controller_of(cr)),
        cr.get("revision", 0),
        since(m.get("creationTimestamp"), now),
    ]


def controllerrevision_printer() -> Printer:
    columns = [
        name_column(),
        column("Controller", "string", "Controller of the object"),
        column("Revision", "string", doc("apps.v1.ControllerRevision", "revision")),
        age_column(),
    ]
    return Printer(columns, _controllerrevision_cells)
