"""Cluster plumbing kinds: PodDisruptionBudget (policy/v1), EndpointSlice (discovery/v1),
Lease (coordination/v1) and Event (events.k8s.io/v1).

Mirrors their validation packages. Note that Kubernetes validates a PDB's metadata only
with the generic rule every object gets (a name usable as a URL path segment); its spec
must not set both minAvailable and maxUnavailable.
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.validation_apps import not_more_than_100_percent, validate_positive_int_or_percent
from apiserver.admission.validation_containers import PROTOCOLS, dns_label
from apiserver.admission.validation_meta import (
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from apiserver.admission.validation_names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    name_is_dns_subdomain,
    name_is_path_segment,
)
from apiserver.admission.validation_service import valid_ip
from apiserver.admission.validation_util import (
    as_dict,
    as_int,
    as_list,
    as_str,
    child,
    immutable,
    index,
    invalid_go,
    too_many,
)
from apiserver.errors import FieldError, duplicate, invalid, not_supported, required

ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]


def _pdb_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(invalid_go("spec", "policy.PodDisruptionBudgetSpec{...}", "minAvailable and maxUnavailable cannot be both set"))
    for field in ("minAvailable", "maxUnavailable"):
        if spec.get(field) is not None:
            errs += validate_positive_int_or_percent(spec[field], f"spec.{field}")
            errs += not_more_than_100_percent(spec[field], f"spec.{field}")
    errs += validate_label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        errs.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, ["AlwaysAllow", "IfHealthyBudget"]))
    return errs


def validate_pdb(pdb: dict[str, Any]) -> list[FieldError]:
    errs = _pdb_spec(as_dict(pdb.get("spec")))
    if errs:
        return errs
    return validate_object_meta(pdb.get("metadata"), name_is_path_segment, core=False)


def validate_pdb_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return _pdb_spec(as_dict(new.get("spec")))


def _slice_endpoint(endpoint: dict[str, Any], address_type: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    addresses = as_list(endpoint.get("addresses"))
    if not addresses:
        errs.append(required(child(path, "addresses"), "must contain at least 1 address"))
    elif len(addresses) > 100:
        errs.append(too_many(child(path, "addresses"), len(addresses), 100))
    for i, address in enumerate(addresses):
        address, item = as_str(address), index(child(path, "addresses"), i)
        if address_type in ("IPv4", "IPv6"):
            errs += valid_ip(address, item)
        elif address_type == "FQDN":
            errs += [invalid(item, address, m) for m in is_dns1123_subdomain(address.removesuffix("."))]
    node = endpoint.get("nodeName")
    if isinstance(node, str):
        errs += [invalid(child(path, "nodeName"), node, m) for m in name_is_dns_subdomain(node, False)]
    errs += validate_labels(endpoint.get("deprecatedTopology"), child(path, "deprecatedTopology"))
    if isinstance(endpoint.get("hostname"), str):
        errs += [invalid(child(path, "hostname"), endpoint["hostname"], m) for m in is_dns1123_label(endpoint["hostname"])]
    return errs


def _slice_ports(ports: list[Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        port, item = as_dict(port), index("ports", i)
        name = as_str(port.get("name"))
        if name:
            errs += dns_label(name, child(item, "name"))
        if name in names:
            errs.append(duplicate(child(item, "name"), name))
        names.add(name)
        protocol = port.get("protocol")
        if protocol is None:
            errs.append(required(child(item, "protocol"), ""))
        elif protocol not in PROTOCOLS:
            errs.append(not_supported(child(item, "protocol"), protocol, PROTOCOLS))
        if isinstance(port.get("appProtocol"), str):
            errs += [invalid(child(item, "appProtocol"), port["appProtocol"], m) for m in is_qualified_name(port["appProtocol"])]
    return errs


def validate_endpoint_slice(eps: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(eps.get("metadata"), name_is_dns_subdomain)
    address_type = as_str(eps.get("addressType"))
    if not address_type:
        errs.append(required("addressType", ""))
    elif address_type not in ADDRESS_TYPES:
        errs.append(not_supported("addressType", address_type, ADDRESS_TYPES))
    endpoints = as_list(eps.get("endpoints"))
    if len(endpoints) > 1000:
        errs.append(too_many("endpoints", len(endpoints), 1000))
    else:
        for i, endpoint in enumerate(endpoints):
            errs += _slice_endpoint(as_dict(endpoint), address_type, index("endpoints", i))
    return errs + _slice_ports(as_list(eps.get("ports")))


def validate_endpoint_slice_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata")) + validate_endpoint_slice(new)
    return errs + immutable(new.get("addressType"), old.get("addressType"), "addressType")


def _lease_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    duration, transitions = as_int(spec.get("leaseDurationSeconds")), as_int(spec.get("leaseTransitions"))
    if duration is not None and duration <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    if transitions is not None and transitions < 0:
        errs.append(invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    return errs


def validate_lease(lease: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(lease.get("metadata"), name_is_dns_subdomain) + _lease_spec(as_dict(lease.get("spec")))


def validate_lease_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new.get("metadata"), old.get("metadata")) + _lease_spec(as_dict(new.get("spec")))


_EVENT_LIMITS = (("reportingInstance", "reportingInstance", 128), ("action", "action", 128),
                 ("reason", "reason", 128))


def validate_events_event(event: dict[str, Any]) -> list[FieldError]:
    """events.k8s.io/v1 Event, strict validation (errors use the internal field names)."""
    errs = validate_object_meta(event.get("metadata"), name_is_dns_subdomain)
    if not event.get("eventTime"):
        errs.append(required("eventTime", ""))
    kind = as_str(event.get("type"))
    if kind not in ("Normal", "Warning"):
        errs.append(invalid("type", "", f"has invalid value: {kind}"))
    controller = as_str(event.get("reportingController"))
    if not controller:
        errs.append(required("reportingController", ""))
    errs += [invalid("reportingController", controller, m) for m in is_qualified_name(controller)]
    for json_field, error_field, limit in _EVENT_LIMITS:
        value = as_str(event.get(json_field))
        if not value:
            errs.append(required(error_field, ""))
        if len(value) > limit:
            errs.append(invalid(error_field, "", f"can have at most {limit} characters"))
    if len(as_str(event.get("note"))) > 1024:
        errs.append(invalid("message", "", "can have at most 1024 characters"))
    return errs
