"""Service update rules that depend on the type: Kubernetes' dropTypeDependentFields.

When a Service changes type, fields only the old type uses (nodePorts, clusterIPs,
externalTrafficPolicy, healthCheckNodePort, allocateLoadBalancerNodePorts,
loadBalancerClass) are dropped, but only if the client left them as they were: a value
the client changed in the same request is kept, so validation can reject it.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def _needs_cluster_ip(spec: Obj) -> bool:
    return spec.get("type", "ClusterIP") != "ExternalName"


def _needs_node_ports(spec: Obj) -> bool:
    kind = spec.get("type", "ClusterIP")
    return kind == "NodePort" or (kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True))


def _externally_accessible(spec: Obj) -> bool:
    return spec.get("type") in ("NodePort", "LoadBalancer") or bool(spec.get("externalIPs"))


def _node_ports(spec: Obj) -> list[Any]:
    return [p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict)]


def drop_type_dependent_fields(new: Obj, old: Obj) -> None:
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if _needs_cluster_ip(old_spec) and not _needs_cluster_ip(spec):
        if spec.get("clusterIP") == old_spec.get("clusterIP") and spec.get("clusterIPs") == old_spec.get("clusterIPs"):
            for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
                spec.pop(field, None)
    if _needs_node_ports(old_spec) and not _needs_node_ports(spec) and _node_ports(spec) == _node_ports(old_spec):
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.pop("nodePort", None)
    if old_spec.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer":
        for field in ("allocateLoadBalancerNodePorts", "loadBalancerClass", "healthCheckNodePort"):
            if spec.get(field) == old_spec.get(field):
                spec.pop(field, None)
    if not _externally_accessible(spec) and spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)
