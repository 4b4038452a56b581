"""Service validation (create and update) and the Endpoints object.

Mirrors ValidateService / ValidateServiceUpdate of the core group, in its order. Service
names are DNS-1035 labels (they become DNS names and env-var prefixes, so they must start
with a letter). Like the Service REST strategy, clusterIPs are derived from clusterIP
before checking, and on update a changed clusterIP shows up as
`spec.clusterIPs[0]: Invalid value: []string{...}: may not change once set`. The
nodePort range check (30000-32767) really lives in the port allocator; it is done here
with the allocator's message so every create path gets it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from apiserver.admission.validation_containers import PROTOCOLS, dns_label
from apiserver.admission.validation_meta import (
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from apiserver.admission.validation_names import (
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_port_num,
    name_is_dns1035_label,
    name_is_dns_subdomain,
)
from apiserver.admission.validation_probes import validate_port_num_or_name
from apiserver.admission.validation_util import (
    as_dict,
    as_int,
    as_list,
    as_str,
    child,
    duplicate_go,
    go_int_or_string,
    go_quote,
    go_string_slice,
    index,
    invalid_go,
)
from apiserver.errors import FieldError, duplicate, forbidden, invalid, not_supported, required

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
NODE_PORT_RANGE = (30000, 32767)
IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def valid_ip(value: str, path: str) -> list[FieldError]:
    try:
        ipaddress.ip_address(value)
        return []
    except ValueError:
        return [invalid(path, value, IP_ERROR)]


def cluster_ips(spec: dict[str, Any]) -> list[str]:
    """spec.clusterIPs as the create strategy normalizes it from spec.clusterIP."""
    ips = [as_str(ip) for ip in as_list(spec.get("clusterIPs"))]
    if not ips and as_str(spec.get("clusterIP")):
        return [spec["clusterIP"]]
    return ips


def _headless(spec: dict[str, Any]) -> bool:
    ips = cluster_ips(spec)
    return len(ips) == 1 and ips[0] == "None"


def _externally_accessible(spec: dict[str, Any]) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(as_list(spec.get("externalIPs"))))


def _go_service_port(port: dict[str, Any]) -> str:
    return ('core.ServicePort{Name:"", Protocol:' + go_quote(as_str(port.get("protocol")))
            + ", AppProtocol:(*string)(nil), Port:" + str(as_int(port.get("port")) or 0)
            + ", TargetPort:" + go_int_or_string(0) + ", NodePort:0}")


def _port(port: dict[str, Any], require_name: bool, names: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = as_str(port.get("name"))
    if require_name and not name:
        errs.append(required(child(path, "name"), ""))
    elif name:
        errs += dns_label(name, child(path, "name"))
        if name in names:
            errs.append(duplicate(child(path, "name"), name))
        names.add(name)
    number = as_int(port.get("port")) or 0
    errs += [invalid(child(path, "port"), number, msg) for msg in is_valid_port_num(number)]
    protocol = as_str(port.get("protocol"))
    if not protocol:
        errs.append(required(child(path, "protocol"), ""))
    elif protocol not in PROTOCOLS:
        errs.append(not_supported(child(path, "protocol"), protocol, PROTOCOLS))
    errs += validate_port_num_or_name(port.get("targetPort", 0), child(path, "targetPort"))
    if isinstance(port.get("appProtocol"), str):
        errs += [invalid(child(path, "appProtocol"), port["appProtocol"], m)
                 for m in is_qualified_name(port["appProtocol"])]
    return errs


def _type_rules(spec: dict[str, Any], ips: list[str]) -> list[FieldError]:
    kind, errs = spec.get("type"), []
    if kind in ("LoadBalancer", "NodePort") and _headless(spec):
        errs.append(invalid("spec.clusterIPs[0]", ips[0], f"may not be set to 'None' for {kind} services"))
    if kind == "ExternalName":
        if ips:
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if as_list(spec.get("ipFamilies")):
            errs.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = as_str(spec.get("externalName")).removesuffix(".")
        if cname:
            errs += [invalid("spec.externalName", cname, m) for m in is_dns1123_subdomain(cname)]
        else:
            errs.append(required("spec.externalName", ""))
    return errs


def _session_affinity(spec: dict[str, Any]) -> list[FieldError]:
    affinity, config = as_str(spec.get("sessionAffinity")), spec.get("sessionAffinityConfig")
    if not affinity:
        return [required("spec.sessionAffinity", "")]
    if affinity not in ("ClientIP", "None"):
        return [not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"])]
    path = "spec.sessionAffinityConfig"
    if affinity == "None":
        return [forbidden(path, "must not be set when session affinity is None")] if config is not None else []
    client = as_dict(config).get("clientIP")
    if not isinstance(config, dict) or not isinstance(client, dict) or client.get("timeoutSeconds") is None:
        missing = path if not isinstance(config, dict) else child(path, "clientIP") if not isinstance(
            client, dict) else child(path, "clientIP", "timeoutSeconds")
        return [required(missing, "when session affinity type is ClientIP")]
    timeout = as_int(client["timeoutSeconds"]) or 0
    if not 0 < timeout <= 86400:
        return [invalid(child(path, "clientIP", "timeoutSeconds"), timeout, "must be greater than 0 and less than 86400")]
    return []


def _cluster_ip_fields(spec: dict[str, Any], ips: list[str]) -> list[FieldError]:
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    cluster_ip = as_str(spec.get("clusterIP"))
    if cluster_ip and ips[0] != cluster_ip:
        errs.append(invalid_go("spec.clusterIPs", go_string_slice(ips), "first value must match `clusterIP`"))
    elif not cluster_ip and ips:
        errs.append(invalid_go("spec.clusterIPs", go_string_slice(ips), "must be empty when `clusterIP` is not specified"))
    seen: set[str] = set()
    for i, family in enumerate(as_list(spec.get("ipFamilies"))):
        if family not in ("IPv4", "IPv6"):
            errs.append(not_supported(index("spec.ipFamilies", i), family, ["IPv4", "IPv6"]))
        if family in seen:
            errs.append(duplicate(index("spec.ipFamilies", i), family))
        seen.add(family)
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        errs.append(not_supported("spec.ipFamilyPolicy", policy, ["PreferDualStack", "RequireDualStack", "SingleStack"]))
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                errs.append(invalid_go("spec.clusterIPs", go_string_slice(ips), "'None' must be the first and only value"))
            continue
        errs += valid_ip(ip, index("spec.clusterIPs", i))
    if len(ips) > 2:
        errs.append(invalid_go("spec.clusterIPs", go_string_slice(ips), "may only hold up to 2 values"))
    return errs


def _traffic_policies(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    policy = as_str(spec.get("externalTrafficPolicy"))
    if not _externally_accessible(spec):
        if policy:
            errs.append(invalid("spec.externalTrafficPolicy", policy, "may only be set for externally-accessible services"))
    elif not policy:
        errs.append(required("spec.externalTrafficPolicy", ""))
    elif policy not in ("Cluster", "Local"):
        errs.append(not_supported("spec.externalTrafficPolicy", policy, ["Cluster", "Local"]))
    internal = spec.get("internalTrafficPolicy")
    if internal is None and spec.get("type") in ("NodePort", "LoadBalancer", "ClusterIP"):
        errs.append(required("spec.internalTrafficPolicy", ""))
    elif internal is not None and internal not in ("Cluster", "Local"):
        errs.append(not_supported("spec.internalTrafficPolicy", internal, ["Cluster", "Local"]))
    return errs


def _port_collisions(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    ports = [as_dict(p) for p in as_list(spec.get("ports"))]
    if spec.get("type") == "ClusterIP":
        errs += [forbidden(child(index("spec.ports", i), "nodePort"), "may not be used when `type` is 'ClusterIP'")
                 for i, p in enumerate(ports) if as_int(p.get("nodePort"))]
    node_ports: set[tuple[str, int]] = set()
    for i, p in enumerate(ports):
        node_port = as_int(p.get("nodePort")) or 0
        if node_port:
            ident = (as_str(p.get("protocol")), node_port)
            if ident in node_ports:
                errs.append(duplicate(child(index("spec.ports", i), "nodePort"), node_port))
            node_ports.add(ident)
    seen: set[tuple[str, int]] = set()
    for i, p in enumerate(ports):
        ident = (as_str(p.get("protocol")), as_int(p.get("port")) or 0)
        if ident in seen:
            errs.append(duplicate_go(index("spec.ports", i), _go_service_port(p)))
        seen.add(ident)
    return errs


def _node_port_range(spec: dict[str, Any]) -> list[FieldError]:
    lo, hi = NODE_PORT_RANGE
    errs = []
    for i, p in enumerate(as_list(spec.get("ports"))):
        node_port = as_int(as_dict(p).get("nodePort")) or 0
        if node_port and not lo <= node_port <= hi and spec.get("type") in ("NodePort", "LoadBalancer"):
            errs.append(invalid(child(index("spec.ports", i), "nodePort"), node_port,
                                f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}"))
    return errs


def validate_service(svc: dict[str, Any]) -> list[FieldError]:
    spec = as_dict(svc.get("spec"))
    ips = cluster_ips(spec)
    errs = validate_object_meta(svc.get("metadata"), name_is_dns1035_label)
    if not as_list(spec.get("ports")) and not _headless(spec) and spec.get("type") != "ExternalName":
        errs.append(required("spec.ports", ""))
    errs += _type_rules(spec, ips)
    names: set[str] = set()
    ports = as_list(spec.get("ports"))
    for i, port in enumerate(ports):
        errs += _port(as_dict(port), len(ports) > 1, names, index("spec.ports", i))
    if isinstance(spec.get("selector"), dict):
        errs += validate_labels(spec["selector"], "spec.selector")
    errs += _session_affinity(spec) + _cluster_ip_fields(spec, ips)
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        errs += valid_ip(as_str(ip), index("spec.externalIPs", i))
    kind = as_str(spec.get("type"))
    if not kind:
        errs.append(required("spec.type", ""))
    elif kind not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", kind, SERVICE_TYPES))
    errs += _port_collisions(spec)
    if as_list(spec.get("loadBalancerSourceRanges")) and kind != "LoadBalancer":
        errs.append(forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"))
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        errs.append(forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"))
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts", ""))
    if spec.get("loadBalancerClass") is not None and kind != "LoadBalancer":
        errs.append(forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
    return errs + _traffic_policies(spec) + _node_port_range(spec)


def normalize_cluster_ips(new_spec: dict[str, Any], old_spec: dict[str, Any] | None) -> None:
    """normalizeClusterIPs of the Service strategy: keep clusterIP and clusterIPs in step."""
    cluster_ip, ips = as_str(new_spec.get("clusterIP")), as_list(new_spec.get("clusterIPs"))
    if old_spec is None:
        if cluster_ip and not ips:
            new_spec["clusterIPs"] = [cluster_ip]
        return
    old_ip, old_ips = as_str(old_spec.get("clusterIP")), as_list(old_spec.get("clusterIPs"))
    if old_ips and not ips and old_ip == cluster_ip:
        new_spec["clusterIPs"] = list(old_ips)
    if old_ip != cluster_ip and as_list(new_spec.get("clusterIPs")) == old_ips:
        if old_ip and not cluster_ip:
            new_spec.pop("clusterIPs", None)
        else:
            new_spec["clusterIPs"] = [cluster_ip]


def _upgrade_downgrade(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[FieldError]:
    if "ExternalName" in (spec.get("type"), old_spec.get("type")) or (_headless(spec) and _headless(old_spec)):
        return []
    ips, old_ips = cluster_ips(spec), cluster_ips(old_spec)
    rendered, errs = go_string_slice(ips if ips else None), []
    if len(ips) == len(old_ips):
        errs += [invalid_go(index("spec.clusterIPs", i), rendered, "may not change once set")
                 for i, ip in enumerate(old_ips) if ip != ips[i]]
    elif len(old_ips) > len(ips):
        if not ips:
            errs.append(invalid_go("spec.clusterIPs[0]", rendered, "primary clusterIP can not be unset"))
        elif ips[0] != old_ips[0]:
            errs.append(invalid_go("spec.clusterIPs[0]", rendered, "may not change once set"))
    elif old_ips and ips[0] != old_ips[0]:
        errs.append(invalid_go("spec.clusterIPs[0]", rendered, "may not change once set"))
    return errs


def validate_service_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    spec, old_spec = dict(as_dict(new.get("spec"))), as_dict(old.get("spec"))
    normalize_cluster_ips(spec, old_spec)
    normalized = {**new, "spec": spec}
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += _upgrade_downgrade(spec, old_spec)
    if (old_spec.get("type") == spec.get("type") == "LoadBalancer"
            and old_spec.get("loadBalancerClass") != spec.get("loadBalancerClass")):
        errs.append(invalid("spec.loadBalancerClass", spec.get("loadBalancerClass"), "may not change once set"))
    return errs + validate_service(normalized)


def validate_endpoints(ep: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(ep.get("metadata"), name_is_dns_subdomain)
    for i, subset in enumerate(as_list(ep.get("subsets"))):
        subset, path = as_dict(subset), index("subsets", i)
        if not as_list(subset.get("addresses")) and not as_list(subset.get("notReadyAddresses")):
            errs.append(required(path, "must specify `addresses` or `notReadyAddresses`"))
        for field in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate(as_list(subset.get(field))):
                errs += valid_ip(as_str(as_dict(addr).get("ip")), child(index(child(path, field), j), "ip"))
        ports = as_list(subset.get("ports"))
        for j, port in enumerate(ports):
            errs += _endpoint_port(as_dict(port), len(ports) > 1, index(child(path, "ports"), j))
    return errs


def _endpoint_port(port: dict[str, Any], require_name: bool, path: str) -> list[FieldError]:
    name, errs = as_str(port.get("name")), []
    if require_name and not name:
        errs.append(required(child(path, "name"), ""))
    elif name:
        errs += dns_label(name, child(path, "name"))
    number = as_int(port.get("port")) or 0
    errs += [invalid(child(path, "port"), number, msg) for msg in is_valid_port_num(number)]
    protocol = as_str(port.get("protocol"))
    if not protocol:
        errs.append(required(child(path, "protocol"), ""))
    elif protocol not in PROTOCOLS:
        errs.append(not_supported(child(path, "protocol"), protocol, PROTOCOLS))
    return errs


def validate_endpoints_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new.get("metadata"), old.get("metadata")) + validate_endpoints(new)
