"""Defaulting of core/v1 kinds other than the pod machinery.

Mirrors pkg/apis/core/v1/defaults.go for Service, Secret, Namespace, PV/PVC, Node,
Endpoints, LimitRange, ReplicationController and ResourceQuota, plus the bits of the
core REST strategies and conversions that show up in every real object:

- Secret `stringData` is merged into base64 `data` and dropped (v1 conversion).
- Namespaces get `spec.finalizers: [kubernetes]` when created, `status.phase: Active`
  and the `kubernetes.io/metadata.name` label.
- Services get `clusterIPs` mirrored from `clusterIP` and the IP-family fields the
  allocator would set on a single-stack IPv4 cluster. Allocating the clusterIP and
  nodePorts themselves is the caller's job (see `prepare_service_update` for updates).
- Go serializes some empty status structs; so do we (`status: {loadBalancer: {}}`).
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

from apiserver.admission.defaults_pod import (
    _dict,
    _dicts,
    canonicalize_resource_list,
    default_pod_template,
    default_pvc_spec,
)
from apiserver.admission.validation_service import normalize_cluster_ips


def _is_create(obj: dict[str, Any]) -> bool:
    """Create-time strategy defaults apply to objects not yet stored (no resourceVersion)."""
    return not (_dict(obj, "metadata") or {}).get("resourceVersion")


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    status = _dict(obj, "status")
    if status is None:
        status = obj["status"] = {}
    return status


def _family(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return "IPv4"


def _service_ip_families(spec: dict[str, Any]) -> None:
    """initIPFamilyFields of the service allocator, for a single-stack IPv4 cluster."""
    if spec.get("type") not in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec.pop("ipFamilies", None)
        spec.pop("ipFamilyPolicy", None)
        return
    ips = [ip for ip in spec.get("clusterIPs") or [] if ip and ip != "None"]
    if spec.get("clusterIP") == "None" and not spec.get("selector"):
        # Headless without selector: Kubernetes asks for every family the cluster has.
        spec.setdefault("ipFamilyPolicy", "RequireDualStack")
    else:
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = [_family(ip) for ip in ips] or ["IPv4"]


def default_service(svc: dict[str, Any]) -> None:
    spec = _dict(svc, "spec")
    if spec is None:
        spec = svc["spec"] = {}
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client = _dict(_dict(spec, "sessionAffinityConfig") or {}, "clientIP")
        if client is None or client.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in _dicts(spec, "ports"):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    kind = spec["type"]
    if (kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and spec.get("externalIPs"))) \
            and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    _service_ip_families(spec)
    status = _status(svc)
    balancer = _dict(status, "loadBalancer")
    if balancer is None:
        balancer = status["loadBalancer"] = {}
    if kind == "LoadBalancer":
        for ingress in _dicts(balancer, "ingress"):
            if ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"


def prepare_service_update(new: dict[str, Any], old: dict[str, Any]) -> None:
    """The Service strategy's PrepareForUpdate: keep allocated clusterIPs, nodePorts and
    healthCheckNodePort the client left out (as `kubectl replace` does), and keep
    clusterIP/clusterIPs in step. Call before defaulting and validating an update."""
    spec, old_spec = new.setdefault("spec", {}), _dict(old, "spec") or {}
    uses_ip = {"ClusterIP", "NodePort", "LoadBalancer"}
    if spec.get("type", "ClusterIP") in uses_ip and old_spec.get("type") in uses_ip:
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP", "")
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if spec.get("type") in ("NodePort", "LoadBalancer") and old_spec.get("type") in ("NodePort", "LoadBalancer"):
        used = {p.get("nodePort") for p in _dicts(spec, "ports")}
        by_name = {p.get("name", ""): p.get("nodePort") for p in _dicts(old_spec, "ports")}
        for port in _dicts(spec, "ports"):
            if not port.get("nodePort") and by_name.get(port.get("name", "")) not in used:
                port["nodePort"] = by_name.get(port.get("name", ""))
    if spec.get("healthCheckNodePort") in (None, 0) and old_spec.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]
    normalize_cluster_ips(spec, old_spec)


def default_secret(secret: dict[str, Any]) -> None:
    if not secret.get("type"):
        secret["type"] = "Opaque"
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _dict(secret, "data")
        if data is None:
            data = secret["data"] = {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def default_namespace(ns: dict[str, Any]) -> None:
    meta = _dict(ns, "metadata")
    if meta is None:
        meta = ns["metadata"] = {}
    if meta.get("name"):
        labels = _dict(meta, "labels")
        if labels is None:
            labels = meta["labels"] = {}
        labels["kubernetes.io/metadata.name"] = meta["name"]
    if _is_create(ns):
        spec = _dict(ns, "spec")
        if spec is None:
            spec = ns["spec"] = {}
        finalizers = spec.get("finalizers") if isinstance(spec.get("finalizers"), list) else []
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
        spec["finalizers"] = finalizers
    status = _status(ns)
    if not status.get("phase"):
        status["phase"] = "Active"


def default_pvc(pvc: dict[str, Any]) -> None:
    spec = _dict(pvc, "spec")
    if spec is None:
        spec = pvc["spec"] = {}
    default_pvc_spec(spec)
    status = _status(pvc)
    if not status.get("phase"):
        status["phase"] = "Pending"
    canonicalize_resource_list(status, "capacity")
    canonicalize_resource_list(status, "allocatedResources")


def default_pv(pv: dict[str, Any]) -> None:
    spec = _dict(pv, "spec")
    if spec is None:
        spec = pv["spec"] = {}
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    host_path = _dict(spec, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    canonicalize_resource_list(spec, "capacity")
    status = _status(pv)
    if not status.get("phase"):
        status["phase"] = "Pending"


def default_node(node: dict[str, Any]) -> None:
    status = _dict(node, "status")
    if status is None:
        return
    canonicalize_resource_list(status, "capacity")
    canonicalize_resource_list(status, "allocatable")
    if status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def default_endpoints(ep: dict[str, Any]) -> None:
    for subset in _dicts(ep, "subsets"):
        for port in _dicts(subset, "ports"):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def default_limit_range(lr: dict[str, Any]) -> None:
    for item in _dicts(_dict(lr, "spec") or {}, "limits"):
        for field in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            canonicalize_resource_list(item, field)
        if item.get("type") != "Container":
            continue
        default = dict(_dict(item, "default") or {})
        request = dict(_dict(item, "defaultRequest") or {})
        for name, value in (_dict(item, "max") or {}).items():
            default.setdefault(name, value)
        for source in (default, _dict(item, "min") or {}):
            for name, value in source.items():
                request.setdefault(name, value)
        if default:
            item["default"] = default
        if request:
            item["defaultRequest"] = request


def default_resource_quota(rq: dict[str, Any]) -> None:
    canonicalize_resource_list(_dict(rq, "spec"), "hard")
    status = _dict(rq, "status")
    canonicalize_resource_list(status, "hard")
    canonicalize_resource_list(status, "used")
    _status(rq)


def default_replication_controller(rc: dict[str, Any]) -> None:
    spec = _dict(rc, "spec")
    if spec is None:
        spec = rc["spec"] = {}
    template = _dict(spec, "template")
    labels = (_dict(template, "metadata") or {}).get("labels") if template is not None else None
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = rc.setdefault("metadata", {})
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(template)
    _status(rc).setdefault("replicas", 0)


def default_pod_template_object(pt: dict[str, Any]) -> None:
    default_pod_template(_dict(pt, "template"))
