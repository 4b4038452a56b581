"""Container validation: names, images, ports, env, mounts, probes, lifecycle hooks.

Mirrors validateContainerCommon / validateContainers / validateInitContainers of
k8s.io/kubernetes/pkg/apis/core/validation in the same order, so a manifest with several
mistakes lists them the way `kubectl apply` would. `volumes` maps the names of the pod's
valid volumes to their sources; mounts of anything else are "Not found".
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.validation_names import (
    is_config_map_key,
    is_dns1123_label,
    is_qualified_name,
    is_relaxed_env_var_name,
    is_valid_id,
    is_valid_port_name,
    is_valid_port_num,
    name_is_dns_subdomain,
)
from apiserver.admission.validation_probes import validate_lifecycle, validate_probe
from apiserver.admission.validation_resources import validate_resource_requirements
from apiserver.admission.validation_util import (
    as_dict,
    as_int,
    as_list,
    as_str,
    child,
    index,
    invalid_go,
    not_found,
    validate_local_descending_path,
)
from apiserver.errors import FieldError, duplicate, forbidden, invalid, not_supported, required

PROTOCOLS = ["SCTP", "TCP", "UDP"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_ENV_FIELD_PATHS = ["metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                    "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"]
_DOWNWARD_LABELS = {"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
                    "metadata.uid", "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName",
                    "spec.schedulerName", "status.phase", "status.hostIP", "status.hostIPs", "status.podIP",
                    "status.podIPs", "spec.host"}
_RESOURCE_FIELD_PATHS = ["limits.cpu", "limits.ephemeral-storage", "limits.memory",
                         "requests.cpu", "requests.ephemeral-storage", "requests.memory"]


def dns_label(value: str, path: str) -> list[FieldError]:
    return [invalid(path, value, msg) for msg in is_dns1123_label(value)]


def validate_container_ports(ports: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(as_list(ports)):
        port, item = as_dict(port), index(path, i)
        name = as_str(port.get("name"))
        if name:
            msgs = is_valid_port_name(name)
            if msgs:
                errs += [invalid(child(item, "name"), name, msg) for msg in msgs]
            elif name in names:
                errs.append(duplicate(child(item, "name"), name))
            names.add(name)
        number = as_int(port.get("containerPort")) or 0
        if number == 0:
            errs.append(required(child(item, "containerPort"), ""))
        else:
            errs += [invalid(child(item, "containerPort"), number, m) for m in is_valid_port_num(number)]
        host_port = as_int(port.get("hostPort")) or 0
        if host_port:
            errs += [invalid(child(item, "hostPort"), host_port, m) for m in is_valid_port_num(host_port)]
        protocol = as_str(port.get("protocol"))
        if not protocol:
            errs.append(required(child(item, "protocol"), ""))
        elif protocol not in PROTOCOLS:
            errs.append(not_supported(child(item, "protocol"), protocol, PROTOCOLS))
    return errs


def _split_subscript(field_path: str) -> tuple[str, str] | None:
    """fieldpath.SplitMaybeSubscriptedPath: `metadata.labels['app']`."""
    if not field_path.endswith("']"):
        return None
    base, sep, subscript = field_path[:-2].partition("['")
    return (base, subscript) if sep and base else None


def _field_ref(ref: dict[str, Any], path: str, allowed: list[str]) -> list[FieldError]:
    if not as_str(ref.get("apiVersion")):
        return [required(child(path, "apiVersion"), "")]
    field_path = as_str(ref.get("fieldPath"))
    if not field_path:
        return [required(child(path, "fieldPath"), "")]
    split = _split_subscript(field_path)
    if split is not None:
        base, subscript = split
        if base not in ("metadata.annotations", "metadata.labels"):
            return [invalid(child(path, "fieldPath"), field_path,
                            f"error converting fieldPath: field label does not support subscript: {field_path}")]
        name = subscript.lower() if base == "metadata.annotations" else subscript
        return [invalid(path, name, msg) for msg in is_qualified_name(name)]
    if field_path not in _DOWNWARD_LABELS:
        return [invalid(child(path, "fieldPath"), field_path,
                        f"error converting fieldPath: field label not supported: {field_path}")]
    internal = "spec.nodeName" if field_path == "spec.host" else field_path
    if internal not in allowed:
        return [not_supported(child(path, "fieldPath"), internal, allowed)]
    return []


def _resource_field_ref(ref: dict[str, Any], path: str, volume: bool) -> list[FieldError]:
    resource = as_str(ref.get("resource"))
    if volume and not as_str(ref.get("containerName")):
        return [required(child(path, "containerName"), "")]
    if not resource:
        return [required(child(path, "resource"), "")]
    if resource not in _RESOURCE_FIELD_PATHS and not resource.startswith(("requests.hugepages-", "limits.hugepages-")):
        return [not_supported(child(path, "resource"), resource, _RESOURCE_FIELD_PATHS)]
    return []


def _key_selector(ref: dict[str, Any], path: str) -> list[FieldError]:
    name, key_name = as_str(ref.get("name")), as_str(ref.get("key"))
    errs = [invalid(child(path, "name"), name, msg) for msg in name_is_dns_subdomain(name, False)]
    if not key_name:
        errs.append(required(child(path, "key"), ""))
    else:
        errs += [invalid(child(path, "key"), key_name, msg) for msg in is_config_map_key(key_name)]
    return errs


def _env_value_from(var: dict[str, Any], path: str) -> list[FieldError]:
    source = var.get("valueFrom")
    if not isinstance(source, dict):
        return []
    errs: list[FieldError] = []
    count = 0
    for field, check in (("fieldRef", lambda r, p: _field_ref(r, p, _ENV_FIELD_PATHS)),
                         ("resourceFieldRef", lambda r, p: _resource_field_ref(r, p, False)),
                         ("configMapKeyRef", _key_selector), ("secretKeyRef", _key_selector)):
        if isinstance(source.get(field), dict):
            count += 1
            errs += check(source[field], child(path, field))
    if count == 0:
        errs.append(invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                      "`configMapKeyRef` or `secretKeyRef`"))
    elif as_str(var.get("value")):
        errs.append(invalid(path, "", "may not be specified when `value` is not empty"))
    elif count > 1:
        errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def validate_env(env: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, var in enumerate(as_list(env)):
        var, item = as_dict(var), index(path, i)
        name = as_str(var.get("name"))
        if not name:
            errs.append(required(child(item, "name"), ""))
        else:
            errs += [invalid(child(item, "name"), name, msg) for msg in is_relaxed_env_var_name(name)]
        errs += _env_value_from(var, child(item, "valueFrom"))
    return errs


def validate_env_from(sources: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, source in enumerate(as_list(sources)):
        source, item = as_dict(source), index(path, i)
        prefix = as_str(source.get("prefix"))
        if prefix:
            errs += [invalid(child(item, "prefix"), prefix, msg) for msg in is_relaxed_env_var_name(prefix)]
        count = 0
        for field in ("configMapRef", "secretRef"):
            if isinstance(source.get(field), dict):
                count += 1
                name = as_str(source[field].get("name"))
                if not name:
                    errs.append(required(child(item, field, "name"), ""))
                else:
                    errs += [invalid(child(item, field, "name"), name, m) for m in name_is_dns_subdomain(name, True)]
        if count == 0:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def validate_volume_mounts(mounts: Any, volumes: dict[str, dict[str, Any]], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, mount in enumerate(as_list(mounts)):
        mount, item = as_dict(mount), index(path, i)
        name, mount_path = as_str(mount.get("name")), as_str(mount.get("mountPath"))
        if not name:
            errs.append(required(child(item, "name"), ""))
        if name not in volumes:
            errs.append(not_found(child(item, "name"), name))
        if not mount_path:
            errs.append(required(child(item, "mountPath"), ""))
        if mount_path in seen:
            errs.append(invalid(child(item, "mountPath"), mount_path, "must be unique"))
        seen.add(mount_path)
        sub_path, sub_expr = as_str(mount.get("subPath")), as_str(mount.get("subPathExpr"))
        if sub_path:
            errs += validate_local_descending_path(sub_path, child(path, "subPath"))
        if sub_expr:
            if sub_path:
                errs.append(invalid(child(item, "subPathExpr"), sub_expr, "subPathExpr and subPath are mutually exclusive"))
            errs += validate_local_descending_path(sub_expr, child(path, "subPathExpr"))
        propagation = mount.get("mountPropagation")
        if propagation is not None and propagation not in ("Bidirectional", "HostToContainer", "None"):
            errs.append(not_supported(child(path, "mountPropagation"), propagation,
                                      ["Bidirectional", "HostToContainer", "None"]))
    return errs


def validate_security_context(sc: Any, path: str) -> list[FieldError]:
    if not isinstance(sc, dict):
        return []
    errs: list[FieldError] = []
    for field in ("runAsUser", "runAsGroup"):
        value = as_int(sc.get(field))
        if value is not None:
            errs += [invalid(child(path, field), value, msg) for msg in is_valid_id(value)]
    proc_mount = sc.get("procMount")
    if proc_mount is not None and proc_mount not in ("Default", "Unmasked"):
        errs.append(not_supported(child(path, "procMount"), proc_mount, ["Default", "Unmasked"]))
    if sc.get("allowPrivilegeEscalation") is False and sc.get("privileged") is True:
        errs.append(invalid_go(path, "core.SecurityContext{...}",
                               "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
    return errs


def validate_container_common(ctr: dict[str, Any], volumes: dict[str, dict[str, Any]], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = as_str(ctr.get("name"))
    if not name:
        errs.append(required(child(path, "name"), ""))
    else:
        errs += dns_label(name, child(path, "name"))
    if not as_str(ctr.get("image")):
        errs.append(required(child(path, "image"), ""))
    policy = as_str(ctr.get("terminationMessagePolicy"))
    if not policy:
        errs.append(required(child(path, "terminationMessagePolicy"), ""))
    elif policy not in ("File", "FallbackToLogsOnError"):
        errs.append(not_supported(child(path, "terminationMessagePolicy"), policy, ["File", "FallbackToLogsOnError"]))
    errs += validate_container_ports(ctr.get("ports"), child(path, "ports"))
    errs += validate_env(ctr.get("env"), child(path, "env"))
    errs += validate_env_from(ctr.get("envFrom"), child(path, "envFrom"))
    errs += validate_volume_mounts(ctr.get("volumeMounts"), volumes, child(path, "volumeMounts"))
    pull = as_str(ctr.get("imagePullPolicy"))
    if not pull:
        errs.append(required(child(path, "imagePullPolicy"), ""))
    elif pull not in PULL_POLICIES:
        errs.append(not_supported(child(path, "imagePullPolicy"), pull, PULL_POLICIES))
    errs += validate_resource_requirements(ctr.get("resources"), child(path, "resources"))
    errs += validate_security_context(ctr.get("securityContext"), child(path, "securityContext"))
    return errs


def _host_port_conflicts(containers: list[Any], path: str, seen: set[str]) -> list[FieldError]:
    errs: list[FieldError] = []
    for ci, ctr in enumerate(containers):
        for pi, port in enumerate(as_list(as_dict(ctr).get("ports"))):
            port = as_dict(port)
            host_port = as_int(port.get("hostPort")) or 0
            if not host_port:
                continue
            ident = f"{as_str(port.get('protocol'))}/{as_str(port.get('hostIP'))}/{host_port}"
            if ident in seen:
                errs.append(duplicate(child(index(child(index(path, ci), "ports"), pi), "hostPort"), ident))
            seen.add(ident)
    return errs


def validate_containers(containers: Any, volumes: dict[str, dict[str, Any]], path: str,
                        grace: int | None) -> list[FieldError]:
    items = as_list(containers)
    if not items:
        return [required(path, "")]
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, ctr in enumerate(items):
        ctr, item = as_dict(ctr), index(path, i)
        errs += validate_container_common(ctr, volumes, item)
        name = as_str(ctr.get("name"))
        if name in names:
            errs.append(duplicate(child(item, "name"), name))
        names.add(name)
        if isinstance(ctr.get("lifecycle"), dict):
            errs += validate_lifecycle(ctr["lifecycle"], grace, child(item, "lifecycle"))
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            errs += validate_probe(ctr.get(probe), grace, child(item, probe), probe)
        if ctr.get("restartPolicy") is not None:
            errs.append(forbidden(child(item, "restartPolicy"), "may not be set for non-init containers"))
    return errs + _host_port_conflicts(items, path, set())


def validate_init_containers(init: Any, regular: Any, volumes: dict[str, dict[str, Any]], path: str,
                             grace: int | None) -> list[FieldError]:
    errs: list[FieldError] = []
    names = {as_str(as_dict(c).get("name")) for c in as_list(regular)}
    for i, ctr in enumerate(as_list(init)):
        ctr, item = as_dict(ctr), index(path, i)
        errs += validate_container_common(ctr, volumes, item)
        policy = ctr.get("restartPolicy")
        if policy is not None and policy != "Always":
            errs.append(not_supported(child(item, "restartPolicy"), policy, ["Always"]))
        name = as_str(ctr.get("name"))
        if name in names:
            errs.append(duplicate(child(item, "name"), name))
        elif name:
            names.add(name)
        errs += _host_port_conflicts([ctr], path, set())
        if policy == "Always":
            if isinstance(ctr.get("lifecycle"), dict):
                errs += validate_lifecycle(ctr["lifecycle"], grace, child(item, "lifecycle"))
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                errs += validate_probe(ctr.get(probe), grace, child(item, probe), probe)
        else:
            for field in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if ctr.get(field) is not None:
                    errs.append(forbidden(child(item, field),
                                          "may not be set for init containers without restartPolicy=Always"))
    return errs
