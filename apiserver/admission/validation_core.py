"""The rest of the core group: ConfigMap, Secret, Namespace, Node, ServiceAccount,
LimitRange, ResourceQuota, Event, PodTemplate and ReplicationController.

Mirrors pkg/apis/core/validation. ConfigMap and Secret keys must be config keys
(`[-._a-zA-Z0-9]+`) and the data may total at most 1 MiB; typed Secrets must carry
their type's keys (`tls.crt`/`tls.key`, `.dockerconfigjson` ...); `immutable: true`
freezes data. Core v1 Events keep their legacy, lenient validation.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from apiserver.admission.validation_meta import (
    validate_finalizers,
    validate_label_name,
    validate_object_meta,
    validate_object_meta_update,
)
from apiserver.admission.validation_names import (
    is_config_map_key,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    name_is_dns_label,
    name_is_dns_subdomain,
    name_is_path_segment,
)
from apiserver.admission.validation_pod import TAINT_EFFECTS, validate_pod_template_spec
from apiserver.admission.validation_resources import (
    quantity_or_error,
    validate_limit_range_item,
    validate_quantity_value,
    validate_quota_resource_name,
    validate_resource_list,
)
from apiserver.admission.validation_util import (
    as_dict,
    as_list,
    as_str,
    child,
    duplicate_go,
    go_string_map,
    go_string_slice,
    immutable,
    index,
    invalid_go,
    key,
    nonnegative,
)
from apiserver.errors import FieldError, duplicate, forbidden, invalid, not_supported, required, too_long

MAX_SECRET_SIZE = 1024 * 1024
_TYPE_KEYS = {"kubernetes.io/dockercfg": ".dockercfg", "kubernetes.io/dockerconfigjson": ".dockerconfigjson"}
QUOTA_SCOPES = ["BestEffort", "CrossNamespacePodAffinity", "NotBestEffort", "NotTerminating", "PriorityClass",
                "Terminating"]


def _decoded_len(value: Any) -> int:
    try:
        return len(base64.b64decode(as_str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(as_str(value))


def _decoded(value: Any) -> bytes:
    try:
        return base64.b64decode(as_str(value), validate=True)
    except (binascii.Error, ValueError):
        return as_str(value).encode()


def _json_error(raw: bytes) -> str | None:
    """Roughly what Go's json.Unmarshal into map[string]interface{} says."""
    text = raw.decode("utf-8", "replace")
    if not text.strip():
        return "unexpected end of JSON input"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        bad = text[err.pos] if err.pos < len(text) else ""
        return f"invalid character '{bad}' looking for beginning of value" if bad else "unexpected end of JSON input"
    if not isinstance(value, dict):
        kind = {list: "array", str: "string", bool: "bool", type(None): "null"}.get(type(value), "number")
        return f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
    return None


def _secret_type_rules(secret: dict[str, Any], data: dict[str, Any]) -> list[FieldError]:
    kind = as_str(secret.get("type"))
    if kind == "kubernetes.io/service-account-token":
        annotations = as_dict(as_dict(secret.get("metadata")).get("annotations"))
        if not as_str(annotations.get("kubernetes.io/service-account.name")):
            return [required("metadata.annotations[kubernetes.io/service-account.name]", "")]
    elif kind in _TYPE_KEYS:
        name = _TYPE_KEYS[kind]
        if name not in data:
            return [required(key("data", name), "")]
        problem = _json_error(_decoded(data[name]))
        return [invalid(key("data", name), "<secret contents redacted>", problem)] if problem else []
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            return [required("data[username]", ""), required("data[password]", "")]
    elif kind == "kubernetes.io/ssh-auth":
        if not _decoded_len(data.get("ssh-privatekey", "")):
            return [required("data[ssh-privatekey]", "")]
    elif kind == "kubernetes.io/tls":
        return [required(key("data", k), "") for k in ("tls.crt", "tls.key") if k not in data]
    return []


def validate_secret(secret: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(secret.get("metadata"), name_is_dns_subdomain)
    data = as_dict(secret.get("data"))
    for name in sorted(data):
        errs += [invalid(key("data", name), name, msg) for msg in is_config_map_key(name)]
    if sum(_decoded_len(v) for v in data.values()) > MAX_SECRET_SIZE:
        errs.append(too_long("data", MAX_SECRET_SIZE))
    return errs + _secret_type_rules(secret, data)


def _immutable_data(new: dict[str, Any], old: dict[str, Any], fields: tuple[str, ...]) -> list[FieldError]:
    if old.get("immutable") is not True:
        return []
    errs = [] if new.get("immutable") is True else [forbidden("immutable", "field is immutable when `immutable` is set")]
    for field in fields:
        if as_dict(new.get(field)) != as_dict(old.get(field)):
            errs.append(forbidden(field, "field is immutable when `immutable` is set"))
    return errs


def validate_secret_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += immutable(new.get("type", ""), old.get("type", ""), "type")
    return errs + _immutable_data(new, old, ("data",)) + validate_secret(new)


def validate_config_map(cm: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(cm.get("metadata"), name_is_dns_subdomain)
    data, binary = as_dict(cm.get("data")), as_dict(cm.get("binaryData"))
    for name in sorted(data):
        errs += [invalid(key("data", name), name, msg) for msg in is_config_map_key(name)]
        if name in binary:
            errs.append(invalid(key("data", name), name, "duplicate of key present in binaryData"))
    for name in sorted(binary):
        errs += [invalid(key("binaryData", name), name, msg) for msg in is_config_map_key(name)]
    size = sum(len(as_str(v).encode()) for v in data.values()) + sum(_decoded_len(v) for v in binary.values())
    if size > MAX_SECRET_SIZE:
        errs.append(too_long("", MAX_SECRET_SIZE))
    return errs


def validate_config_map_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + _immutable_data(new, old, ("data", "binaryData")) + validate_config_map(new)


def validate_namespace(ns: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(ns.get("metadata"), name_is_dns_label)
    for name in as_list(as_dict(ns.get("spec")).get("finalizers")):
        errs += validate_finalizers([name], "spec.finalizers", core=False)
        if "/" not in as_str(name) and name not in ("kubernetes", "orphan", "foregroundDeletion"):
            errs.append(invalid("spec.finalizers", as_str(name),
                                "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def validate_namespace_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new.get("metadata"), old.get("metadata"))


def _taints(taints: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(as_list(taints)):
        taint, item = as_dict(taint), index(path, i)
        taint_key, effect = as_str(taint.get("key")), as_str(taint.get("effect"))
        errs += validate_label_name(taint_key, child(item, "key"))
        msgs = is_label_value(as_str(taint.get("value")))
        if msgs:
            errs.append(invalid(child(item, "value"), as_str(taint.get("value")), ";".join(msgs)))
        if not effect:
            errs.append(required(child(item, "effect"), ""))
        elif effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(item, "effect"), effect, TAINT_EFFECTS))
        if (taint_key, effect) in seen:
            err = duplicate_go(item, "core.Taint{...}")
            err.detail = "taints must be unique by key and effect pair"
            errs.append(err)
            continue
        seen.add((taint_key, effect))
    return errs


def _node_resources(node: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    for field in ("capacity", "allocatable"):
        for name, raw in sorted(as_dict(as_dict(node.get("status")).get(field)).items()):
            quantity, q_errs = quantity_or_error(raw, child("status", field, name))
            errs += q_errs
            if quantity is not None:
                errs += validate_quantity_value(name, quantity, child("status", field, name))
    return errs


def validate_node(node: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(node.get("metadata"), name_is_dns_subdomain)
    return errs + _taints(as_dict(node.get("spec")).get("taints"), "metadata.taints") + _node_resources(node)


def validate_node_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata")) + _node_resources(new)
    spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    old_cidrs = as_list(old_spec.get("podCIDRs"))
    if old_cidrs and old_cidrs != as_list(spec.get("podCIDRs")):
        errs.append(forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
    if as_str(old_spec.get("providerID")) and old_spec.get("providerID") != spec.get("providerID"):
        errs.append(forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid'))
    return errs + _taints(spec.get("taints"), "metadata.taints")


def validate_service_account(sa: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(sa.get("metadata"), name_is_dns_subdomain)


def validate_limit_range(lr: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(lr.get("metadata"), name_is_dns_subdomain)
    seen: set[str] = set()
    for i, item in enumerate(as_list(as_dict(lr.get("spec")).get("limits"))):
        item, path = as_dict(item), index("spec.limits", i)
        kind = as_str(item.get("type"))
        msgs = is_qualified_name(kind)
        errs += [invalid(child(path, "type"), kind, m) for m in msgs]
        if not msgs and "/" not in kind and kind not in ("Pod", "Container", "PersistentVolumeClaim"):
            errs.append(invalid(child(path, "type"), kind, "must be a standard limit type or fully qualified"))
        if kind in seen:
            errs.append(duplicate(child(path, "type"), kind))
        seen.add(kind)
        errs += validate_limit_range_item(item, path)
    return errs


def validate_resource_quota(rq: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(rq.get("metadata"), name_is_dns_subdomain)
    return errs + _quota_spec(as_dict(rq.get("spec")))


def _quota_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs = validate_resource_list(spec.get("hard"), "spec.hard", validate_quota_resource_name)
    scopes = [as_str(s) for s in as_list(spec.get("scopes"))]
    rendered = go_string_slice(scopes, "[]core.ResourceQuotaScope")
    for scope in scopes:
        if scope not in QUOTA_SCOPES:
            errs.append(invalid_go("spec.scopes", rendered, "unsupported scope"))
    if {"BestEffort", "NotBestEffort"} <= set(scopes) or {"Terminating", "NotTerminating"} <= set(scopes):
        errs.append(invalid_go("spec.scopes", rendered, "conflicting scopes"))
    return errs


def validate_resource_quota_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata")) + _quota_spec(as_dict(new.get("spec")))
    new_scopes = set(map(str, as_list(as_dict(new.get("spec")).get("scopes"))))
    if new_scopes != set(map(str, as_list(as_dict(old.get("spec")).get("scopes")))):
        errs.append(invalid_go("spec.scopes", go_string_slice(as_list(as_dict(new.get("spec")).get("scopes")),
                                                             "[]core.ResourceQuotaScope"), "field is immutable"))
    return errs


def validate_core_event(event: dict[str, Any]) -> list[FieldError]:
    """legacyValidateEvent: core/v1 Events predate strict metadata rules."""
    meta, involved = as_dict(event.get("metadata")), as_dict(event.get("involvedObject"))
    namespace, involved_ns = as_str(meta.get("namespace")), as_str(involved.get("namespace"))
    errs = [invalid("metadata.name", as_str(meta.get("name")), m)
            for m in name_is_path_segment(as_str(meta.get("name")), False)]
    if not event.get("eventTime"):
        if (not involved_ns and namespace not in ("", "default")) or (involved_ns and namespace != involved_ns):
            errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        controller = as_str(event.get("reportingComponent"))
        if not controller:
            errs.append(required("source", ""))
        errs += [invalid("source", controller, m) for m in is_qualified_name(controller)]
    errs += [invalid("namespace", namespace, m) for m in is_dns1123_subdomain(namespace)]
    return errs


def validate_pod_template(pt: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(pt.get("metadata"), name_is_dns_subdomain) + validate_pod_template_spec(
        pt.get("template"), "template")


def validate_replication_controller(rc: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(rc.get("metadata"), name_is_dns_subdomain)
    spec = as_dict(rc.get("spec"))
    errs += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    selector = as_dict(spec.get("selector"))
    if not selector:
        errs.append(required("spec.selector", ""))
    errs += nonnegative(spec.get("replicas"), "spec.replicas")
    template = spec.get("template")
    if not isinstance(template, dict):
        return errs + [required("spec.template", "")]
    labels = as_dict(template.get("metadata")).get("labels")
    if selector and any(as_dict(labels).get(k) != v for k, v in selector.items()):
        errs.append(invalid_go("spec.template.metadata.labels", go_string_map(labels),
                               "`selector` does not match template `labels`"))
    errs += validate_pod_template_spec(template, "spec.template")
    policy = as_str(as_dict(template.get("spec")).get("restartPolicy"))
    if policy != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy", policy, ["Always"]))
    return errs
