"""networking.k8s.io/v1: Ingress, IngressClass and NetworkPolicy validation.

Mirrors pkg/apis/networking/validation as of Kubernetes 1.32: every Ingress path needs a
`pathType` (Exact, Prefix or ImplementationSpecific), Exact/Prefix paths must be absolute
and free of `//`, `/./`, `/../`; a backend names a Service (a DNS-1035 label) and a port
by name or number, never both.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from apiserver.admission.validation_meta import (
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from apiserver.admission.validation_names import (
    is_dns1123_subdomain,
    is_valid_port_name,
    is_valid_port_num,
    is_wildcard_dns1123_subdomain,
    name_is_dns1035_label,
    name_is_dns_subdomain,
    name_is_path_segment,
)
from apiserver.admission.validation_util import (
    as_dict,
    as_int,
    as_list,
    as_str,
    child,
    immutable,
    index,
    invalid_go,
)
from apiserver.errors import FieldError, forbidden, invalid, not_supported, required, too_long

PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]
_INVALID_SEQUENCES = ["//", "/./", "/../", "%2f", "%2F"]
_INVALID_SUFFIXES = ["/..", "/."]


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _backend(backend: dict[str, Any], path: str) -> list[FieldError]:
    resource, service = backend.get("resource"), backend.get("service")
    if isinstance(resource, dict) and isinstance(service, dict):
        return [invalid(path, "", "cannot set both resource and service backends")]
    if isinstance(resource, dict):
        errs = []
        for field in ("kind", "name"):
            value = as_str(resource.get(field))
            if not value:
                errs.append(required(child(path, "resource", field), ""))
            else:
                errs += [invalid(child(path, "resource", field), value, m) for m in name_is_path_segment(value, False)]
        return errs
    if not isinstance(service, dict):
        return [invalid(path, "", "resource or service backend is required")]
    errs: list[FieldError] = []
    name = as_str(service.get("name"))
    if not name:
        errs.append(required(child(path, "service", "name"), ""))
    else:
        errs += [invalid(child(path, "service", "name"), name, m) for m in name_is_dns1035_label(name, False)]
    port = as_dict(service.get("port"))
    port_name, number = as_str(port.get("name")), as_int(port.get("number")) or 0
    if port_name and number:
        errs.append(invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        errs += [invalid(child(path, "service", "port", "name"), port_name, m) for m in is_valid_port_name(port_name)]
    elif number:
        errs += [invalid(child(path, "service", "port", "number"), number, m) for m in is_valid_port_num(number)]
    else:
        errs.append(required(path, "port name or number is required"))
    return errs


def _http_path(item: dict[str, Any], path: str) -> list[FieldError]:
    path_type = item.get("pathType")
    if path_type is None:
        return [required(child(path, "pathType"), "pathType must be specified")]
    text, errs = as_str(item.get("path")), []
    if path_type in ("Exact", "Prefix"):
        if not text.startswith("/"):
            errs.append(invalid(child(path, "path"), text, "must be an absolute path"))
        if text:
            errs += [invalid(child(path, "path"), text, f"must not contain '{seq}'")
                     for seq in _INVALID_SEQUENCES if seq in text]
            errs += [invalid(child(path, "path"), text, f"cannot end with '{suffix}'")
                     for suffix in _INVALID_SUFFIXES if text.endswith(suffix)]
    elif path_type == "ImplementationSpecific":
        if text and not text.startswith("/"):
            errs.append(invalid(child(path, "path"), text, "must be an absolute path"))
    else:
        errs.append(not_supported(child(path, "pathType"), path_type, PATH_TYPES))
    return errs + _backend(as_dict(item.get("backend")), child(path, "backend"))


def _rules(rules: list[Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, rule in enumerate(rules):
        rule, item = as_dict(rule), index(path, i)
        host = as_str(rule.get("host"))
        if host:
            if _is_ip(host):
                errs.append(invalid(child(item, "host"), host, "must be a DNS name, not an IP address"))
            checker = is_wildcard_dns1123_subdomain if "*" in host else is_dns1123_subdomain
            errs += [invalid(child(item, "host"), host, m) for m in checker(host)]
        http = rule.get("http")
        if isinstance(http, dict):
            paths = as_list(http.get("paths"))
            if not paths:
                errs.append(required(child(item, "http", "paths"), ""))
            for j, entry in enumerate(paths):
                errs += _http_path(as_dict(entry), index(child(item, "http", "paths"), j))
    return errs


def _tls(tls: list[Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, entry in enumerate(tls):
        entry = as_dict(entry)
        for j, host in enumerate(as_list(entry.get("hosts"))):
            host = as_str(host)
            checker = is_wildcard_dns1123_subdomain if "*" in host else is_dns1123_subdomain
            errs += [invalid(index(child(index(path, i), "hosts"), j), host, m) for m in checker(host)]
        secret = as_str(entry.get("secretName"))
        if secret:
            errs += [invalid(child(index(path, i), "secretName"), secret, m) for m in name_is_dns_subdomain(secret, False)]
    return errs


def validate_ingress(ing: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(ing.get("metadata"), name_is_dns_subdomain)
    spec = as_dict(ing.get("spec"))
    rules = as_list(spec.get("rules"))
    if not rules and not isinstance(spec.get("defaultBackend"), dict):
        rendered = "[]networking.IngressRule(nil)" if spec.get("rules") is None else "[]networking.IngressRule{}"
        errs.append(invalid_go("spec", rendered, "either `defaultBackend` or `rules` must be specified"))
    if isinstance(spec.get("defaultBackend"), dict):
        errs += _backend(spec["defaultBackend"], "spec.defaultBackend")
    errs += _rules(rules, "spec.rules") + _tls(as_list(spec.get("tls")), "spec.tls")
    class_name = spec.get("ingressClassName")
    if isinstance(class_name, str):
        errs += [invalid("spec.ingressClassName", class_name, m) for m in name_is_dns_subdomain(class_name, False)]
    annotation = as_dict(as_dict(ing.get("metadata")).get("annotations")).get("kubernetes.io/ingress.class")
    if annotation is not None and isinstance(class_name, str) and annotation != class_name:
        errs.append(invalid("annotations.kubernetes.io/ingress.class", annotation,
                            "must match `ingressClassName` when both are specified"))
    return errs


def validate_ingress_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + [e for e in validate_ingress(new) if e.field != "annotations.kubernetes.io/ingress.class"]


def validate_ingress_class(ic: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(ic.get("metadata"), name_is_dns_subdomain)
    spec = as_dict(ic.get("spec"))
    controller = as_str(spec.get("controller"))
    if not controller:
        errs.append(required("spec.controller", ""))
    else:
        if len(controller) > 250:
            errs.append(too_long("spec.controller", 250))
        parts = controller.split("/", 1)
        if len(parts) != 2 or not parts[0] or not parts[1]:
            errs.append(invalid("spec.controller", controller, 'must be a domain-prefixed path (such as "acme.io/foo")'))
        else:
            errs += [invalid("spec.controller", parts[0], m) for m in is_dns1123_subdomain(parts[0])]
    params = spec.get("parameters")
    if isinstance(params, dict):
        errs += _ingress_class_parameters(params)
    return errs


def _ingress_class_parameters(params: dict[str, Any]) -> list[FieldError]:
    path, errs = "spec.parameters", []
    for field in ("kind", "name"):
        value = as_str(params.get(field))
        if not value:
            errs.append(required(child(path, field), ""))
        else:
            errs += [invalid(child(path, field), value, m) for m in name_is_path_segment(value, False)]
    scope = params.get("scope")
    if scope is None:
        return errs + [required(child(path, "scope"), "")]
    if scope not in ("Cluster", "Namespace"):
        errs.append(not_supported(child(path, "scope"), scope, ["Cluster", "Namespace"]))
    elif scope == "Namespace" and params.get("namespace") is None:
        errs.append(required(child(path, "namespace"), "`parameters.scope` is set to 'Namespace'"))
    elif scope == "Cluster" and params.get("namespace") is not None:
        errs.append(forbidden(child(path, "namespace"), "`parameters.scope` is set to 'Cluster'"))
    return errs


def validate_ingress_class_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += immutable(as_dict(new.get("spec")).get("controller"), as_dict(old.get("spec")).get("controller"),
                      "spec.controller")
    return errs + validate_ingress_class(new)


def _np_port(port: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    protocol = port.get("protocol")
    if protocol is not None and protocol not in ("TCP", "UDP", "SCTP"):
        errs.append(not_supported(child(path, "protocol"), protocol, ["TCP", "UDP", "SCTP"]))
    number, end = port.get("port"), as_int(port.get("endPort"))
    if isinstance(number, str):
        if end is not None:
            errs.append(invalid(child(path, "endPort"), end, "may not be specified when `port` is non-numeric"))
        errs += [invalid(child(path, "port"), number, m) for m in is_valid_port_name(number)]
    elif as_int(number) is not None:
        errs += [invalid(child(path, "port"), number, m) for m in is_valid_port_num(number)]
        if end is not None:
            if end < number:
                errs.append(invalid(child(path, "endPort"), end, "must be greater than or equal to `port`"))
            errs += [invalid(child(path, "endPort"), end, m) for m in is_valid_port_num(end)]
    elif end is not None:
        errs.append(invalid(child(path, "endPort"), end, "may not be specified when `port` is not specified"))
    return errs


def _np_peer(peer: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    present = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if isinstance(peer.get(k), dict)]
    for selector in ("podSelector", "namespaceSelector"):
        if selector in present:
            errs += validate_label_selector(peer[selector], child(path, selector))
    if "ipBlock" in present:
        cidr = as_str(peer["ipBlock"].get("cidr"))
        if not cidr:
            errs.append(required(child(path, "ipBlock", "cidr"), ""))
        else:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                errs.append(invalid(child(path, "ipBlock", "cidr"), cidr,
                                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    if not present:
        errs.append(required(path, "must specify a peer"))
    elif len(present) > 1 and "ipBlock" in present:
        errs.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def validate_network_policy(np: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(np.get("metadata"), name_is_dns_subdomain) + _network_policy_spec(
        as_dict(np.get("spec")))


def _network_policy_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs = validate_label_selector(as_dict(spec.get("podSelector")), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(as_list(spec.get(direction))):
            rule, item = as_dict(rule), index(f"spec.{direction}", i)
            for j, port in enumerate(as_list(rule.get("ports"))):
                errs += _np_port(as_dict(port), index(child(item, "ports"), j))
            for j, peer in enumerate(as_list(rule.get(peers))):
                errs += _np_peer(as_dict(peer), index(child(item, peers), j))
    types = as_list(spec.get("policyTypes"))
    if len(types) > 2:
        return errs + [invalid_go("spec.policyTypes", "&[]networking.PolicyType{...}",
                                  "may not specify more than two policyTypes")]
    for i, kind in enumerate(types):
        if kind not in ("Ingress", "Egress"):
            errs.append(not_supported(index("spec.policyTypes", i), kind, ["Ingress", "Egress"]))
    return errs


def validate_network_policy_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + _network_policy_spec(as_dict(new.get("spec")))
