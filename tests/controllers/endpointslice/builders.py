"""Objects for the endpoint controllers' unit tests: Services, pods with IPs, nodes."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
NS = "default"
STAMP = "2026-01-01T00:00:00Z"


def service(name: str = "web", *, selector: dict[str, str] | None = None, ports: list[Obj] | None = None,
            cluster_ip: str = "10.96.0.10", labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "labels": labels or {},
                         "creationTimestamp": STAMP},
            "spec": {"selector": {"app": name} if selector is None else selector, "clusterIP": cluster_ip,
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
                     if ports is None else ports, **spec}}


def pod(name: str, ip: str, *, app: str = "web", node: str = "node-1", ready: bool = True,
        container_ports: list[Obj] | None = None, deleting: bool = False, phase: str = "Running",
        ready_at: str = STAMP, **spec: Any) -> Obj:
    metadata: Obj = {"name": name, "namespace": NS, "uid": f"uid-{name}", "labels": {"app": app},
                     "creationTimestamp": STAMP}
    if deleting:
        metadata["deletionTimestamp"] = STAMP
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx",
                                                       "ports": container_ports or []}], **spec},
            "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": ready_at}]}}


def node(name: str = "node-1", zone: str | None = None) -> Obj:
    labels = {"kubernetes.io/hostname": name}
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": f"uid-{name}", "labels": labels}}


def nodes(*names: str, zone: str | None = None) -> dict[str, Obj]:
    return {n: node(n, zone) for n in names or ("node-1",)}
