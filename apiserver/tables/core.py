"""Printers for the core/v1 kinds other than Pod and Event.

Each `*_printer()` builds the columns Kubernetes 1.32 registers for the kind and a cell
function porting its `print<Kind>`. Services and nodes carry most of the logic users
notice: EXTERNAL-IP's `<none>`/`<pending>`, PORT(S) "80:30080/TCP", node STATUS
"Ready,SchedulingDisabled" and ROLES from `node-role.kubernetes.io/<role>` labels.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiserver.tables.cells import (
    NONE,
    container_cells,
    format_labels,
    get,
    items,
    mapping,
    meta,
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
from apiserver.tables.quantity import zero_or


def _name_age(obj: dict[str, Any], now: datetime, *middle: Any) -> list[Any]:
    m = meta(obj)
    return [m.get("name", ""), *middle, since(m.get("creationTimestamp"), now)]


def namespace_printer() -> Printer:
    columns = [name_column(), column("Status", "string", "The status of the namespace"), age_column()]
    return Printer(columns, lambda o, now: _name_age(o, now, get(o, "status", "phase", default="")))


def configmap_printer() -> Printer:
    columns = [name_column(), column("Data", "string", doc("core.v1.ConfigMap", "data")), age_column()]

    def cells(o: dict[str, Any], now: datetime) -> list[Any]:
        return _name_age(o, now, len(mapping(o, "data")) + len(mapping(o, "binaryData")))

    return Printer(columns, cells)


def secret_printer() -> Printer:
    columns = [
        name_column(),
        column("Type", "string", doc("core.v1.Secret", "type")),
        column("Data", "string", doc("core.v1.Secret", "data")),
        age_column(),
    ]
    return Printer(
        columns, lambda o, now: _name_age(o, now, o.get("type") or "Opaque", len(mapping(o, "data")))
    )


def serviceaccount_printer() -> Printer:
    columns = [
        name_column(),
        column("Secrets", "string", doc("core.v1.ServiceAccount", "secrets")),
        age_column(),
    ]
    return Printer(columns, lambda o, now: _name_age(o, now, len(items(o, "secrets"))))


def _lb_ingress(status: dict[str, Any]) -> list[str]:
    """loadBalancerStatusStringer with wide=true: sorted unique IPs/hostnames."""
    found = {i.get("ip") or i.get("hostname") for i in items(status, "ingress") if isinstance(i, dict)}
    return sorted(x for x in found if x)


def _external_ip(svc: dict[str, Any], svc_type: str) -> str:
    external = [str(x) for x in items(svc, "spec", "externalIPs")]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if svc_type == "LoadBalancer":
        lb = _lb_ingress(mapping(svc, "status", "loadBalancer"))
        if external:
            return ",".join(lb + external)
        return ",".join(lb) if lb else "<pending>"
    if svc_type == "ExternalName":
        return get(svc, "spec", "externalName", default="")
    return "<unknown>"


def _ports(ports: list[Any]) -> str:
    pieces = []
    for p in ports:
        proto = p.get("protocol") or "TCP"
        node_port = p.get("nodePort") or 0
        pieces.append(
            f"{p.get('port', 0)}:{node_port}/{proto}" if node_port > 0 else f"{p.get('port', 0)}/{proto}"
        )
    return ",".join(pieces)


def _service_cells(svc: dict[str, Any], now: datetime) -> list[Any]:
    svc_type = get(svc, "spec", "type") or "ClusterIP"
    cluster_ips = items(svc, "spec", "clusterIPs") or [get(svc, "spec", "clusterIP", default="")]
    internal = cluster_ips[0] or NONE
    row = _name_age(
        svc, now, svc_type, internal, _external_ip(svc, svc_type), _ports(items(svc, "spec", "ports")) or NONE
    )
    return [*row, format_labels(mapping(svc, "spec", "selector"))]


def service_printer() -> Printer:
    spec = "core.v1.ServiceSpec"
    columns = [
        name_column(),
        column("Type", "string", doc(spec, "type")),
        column("Cluster-IP", "string", doc(spec, "clusterIP")),
        column("External-IP", "string", doc(spec, "externalIPs")),
        column("Port(s)", "string", doc(spec, "ports")),
        age_column(),
        column("Selector", "string", doc(spec, "selector"), priority=1),
    ]
    return Printer(columns, _service_cells)


def _join_host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(endpoints: dict[str, Any]) -> str:
    """formatEndpoints(ep, nil): up to three "ip:port", then " + N more..."."""
    subsets = items(endpoints, "subsets")
    if not subsets:
        return NONE
    shown: list[str] = []
    count = 0
    for ss in subsets:
        addresses = items(ss, "addresses")
        ports = items(ss, "ports") or [None]
        for port in ports:
            count += len(addresses)
            for addr in addresses:
                if len(shown) == 3:
                    break
                ip = addr.get("ip", "")
                shown.append(ip if port is None else _join_host_port(ip, port.get("port", 0)))
    joined = ",".join(shown)
    return f"{joined} + {count - 3} more..." if count > 3 else joined


def endpoints_printer() -> Printer:
    columns = [
        name_column(),
        column("Endpoints", "string", doc("core.v1.Endpoints", "subsets")),
        age_column(),
    ]
    return Printer(columns, lambda o, now: _name_age(o, now, format_endpoints(o)))


def _node_status(node: dict[str, Any]) -> str:
    status = []
    for c in items(node, "status", "conditions"):
        if isinstance(c, dict) and c.get("type") == "Ready":
            status = ["Ready" if c.get("status") == "True" else "NotReady"]
    status = status or ["Unknown"]
    if get(node, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    return ",".join(status)


def node_roles(labels: dict[str, Any]) -> list[str]:
    """findNodeRoles: `node-role.kubernetes.io/<role>` keys and `kubernetes.io/role` values."""
    roles = set()
    for k, v in labels.items():
        if k.startswith("node-role.kubernetes.io/") and k[len("node-role.kubernetes.io/") :]:
            roles.add(k[len("node-role.kubernetes.io/") :])
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return sorted(roles)


def _node_address(node: dict[str, Any], type_: str) -> str:
    for a in items(node, "status", "addresses"):
        if isinstance(a, dict) and a.get("type") == type_:
            return a.get("address", "")
    return NONE


def _node_cells(node: dict[str, Any], now: datetime) -> list[Any]:
    info = mapping(node, "status", "nodeInfo")
    roles = ",".join(node_roles(meta(node).get("labels") or {})) or NONE
    row = _name_age(node, now, _node_status(node), roles)
    return [
        *row,
        info.get("kubeletVersion", ""),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def node_printer() -> Printer:
    info, status = "core.v1.NodeSystemInfo", "core.v1.NodeStatus"
    columns = [
        name_column(),
        column("Status", "string", "The status of the node"),
        column("Roles", "string", "The roles of the node"),
        age_column(),
        column("Version", "string", doc(info, "kubeletVersion")),
        column("Internal-IP", "string", doc(status, "addresses"), priority=1),
        column("External-IP", "string", doc(status, "addresses"), priority=1),
        column("OS-Image", "string", doc(info, "osImage"), priority=1),
        column("Kernel-Version", "string", doc(info, "kernelVersion"), priority=1),
        column("Container-Runtime", "string", doc(info, "containerRuntimeVersion"), priority=1),
    ]
    return Printer(columns, _node_cells)


def _quota_cells(quota: dict[str, Any], now: datetime) -> list[Any]:
    hard, used = mapping(quota, "status", "hard"), mapping(quota, "status", "used")
    requests, limits = [], []
    for resource in sorted(hard):
        pieces = resource.split(".")
        target = limits if len(pieces) > 1 and pieces[0] == "limits" else requests
        target.append(f"{resource}: {zero_or(used.get(resource))}/{zero_or(hard[resource])}")
    return _name_age(quota, now, ", ".join(requests), ", ".join(limits))


def resourcequota_printer() -> Printer:
    columns = [
        name_column(),
        column(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        column(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        age_column(),
    ]
    return Printer(columns, _quota_cells)


def _rc_cells(rc: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = mapping(rc, "spec"), mapping(rc, "status")
    desired = spec.get("replicas", 1)  # v1 defaulting: replicas 1
    row = _name_age(rc, now, desired, status.get("replicas", 0), status.get("readyReplicas", 0))
    names, images = container_cells(items(spec, "template", "spec", "containers"))
    return [*row, names, images, format_labels(spec.get("selector"))]


def replicationcontroller_printer() -> Printer:
    spec, status = "core.v1.ReplicationControllerSpec", "core.v1.ReplicationControllerStatus"
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
    return Printer(columns, _rc_cells)


def podtemplate_printer() -> Printer:
    columns = [
        name_column(),
        column("Containers", "string", "Names of each container in the template."),
        column("Images", "string", "Images referenced by each container in the template."),
        column("Pod Labels", "string", "The labels for the pod template."),
    ]

    def cells(o: dict[str, Any], now: datetime) -> list[Any]:
        names, images = container_cells(items(o, "template", "spec", "containers"))
        return [
            meta(o).get("name", ""),
            names,
            images,
            format_labels(get(o, "template", "metadata", "labels")),
        ]

    return Printer(columns, cells)


def _componentstatus_cells(cs: dict[str, Any], now: datetime) -> list[Any]:
    status, message, error = "Unknown", "", ""
    for c in items(cs, "conditions"):
        if isinstance(c, dict) and c.get("type") == "Healthy":
            status = "Healthy" if c.get("status") == "True" else "Unhealthy"
            message, error = c.get("message", ""), c.get("error", "")
            break
    return [meta(cs).get("name", ""), status, message, error]


def componentstatus_printer() -> Printer:
    columns = [
        name_column(),
        column("Status", "string", "Status of the component conditions"),
        column("Message", "string", "Message of the component conditions"),
        column("Error", "string", "Error of the component conditions"),
    ]
    return Printer(columns, _componentstatus_cells)
