"""A container's environment, built the way the kubelet's makeEnvironmentVariables does.

The pieces, lowest precedence first:

1. Service links (`getServiceEnvVarMap` + `envvars.FromServices`): for every Service with
   a cluster IP in the pod's namespace when `enableServiceLinks` is true, and always for
   `kubernetes` in `default`, `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT`,
   `<NAME>_SERVICE_PORT_<PORTNAME>` and the Docker-link variables `<NAME>_PORT`,
   `<NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]`. They are only *added* when nothing
   else set the same name, but `$(VAR)` can refer to them.
2. `envFrom` (configMapRef / secretRef, with `prefix`, `optional`), in order.
3. `env` in declared order: `value` with `$(VAR)` expanded against what is defined so far
   and the service variables (`expand`, the rules of the kubelet's forked
   `golang/expansion`: `$$` escapes, unknown references stay literal), or `valueFrom`
   (configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef).

The result keeps that order (the kubelet's is a Go map's: unordered). Errors raise
`ConfigError` with the kubelet's texts (`configmap "x" not found`, `couldn't find key k in
Secret ns/x`); the pod worker shows them as the container's CreateContainerConfigError.

Since Kubernetes 1.30 (relaxed environment variable validation, kubernetes#130099) the
kubelet no longer skips envFrom keys that are not C identifiers, and neither do we.

`source.get(kind, namespace, name)` is the lead's object getter (informer cache or GET).
The field and resource helpers here are shared with the downwardAPI volume.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from minikube_py.api.gostrings import go_quote
from minikube_py.api.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]


class ConfigError(Exception):
    """The container cannot be configured (reason CreateContainerConfigError)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ObjectSource(Protocol):
    async def get(self, kind: str, namespace: str | None, name: str) -> Obj | None: ...


# -- $(VAR) expansion (third_party/forked/golang/expansion) ---------------------------------


def mapping_for(*contexts: Mapping[str, str]):  # noqa: ANN201 - a small closure
    """MappingFuncFor: look `name` up in each context in turn; unknown names stay `$(name)`."""

    def mapping(name: str) -> str:
        for context in contexts:
            if name in context:
                return context[name]
        return f"$({name})"

    return mapping


def _read_reference(rest: str) -> tuple[str, bool, int]:
    """(text, is a variable name, characters consumed after the `$`)."""
    if rest[0] == "$":
        return "$", False, 1
    if rest[0] == "(":
        close = rest.find(")", 1)
        if close != -1:
            return rest[1:close], True, close + 1
        return "$(", False, 1  # incomplete: the rest is copied as is
    return "$" + rest[0], False, 1


def expand(text: str, mapping) -> str:  # noqa: ANN001 - str -> str callable
    """Expand `$(VAR)` references in `text`; `$$` is a literal `$`."""
    out: list[str] = []
    checkpoint = cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_var, advance = _read_reference(text[cursor + 1:])
            out.append(mapping(read) if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


# -- service links (pkg/kubelet/envvars) -----------------------------------------------------


def _env_name(name: str) -> str:
    return name.replace("-", "_").upper()


def _has_cluster_ip(service: Obj) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def service_variables(service: Obj) -> dict[str, str]:
    """FromServices for one Service (with a cluster IP)."""
    spec = service.get("spec") or {}
    prefix, ip, ports = _env_name(service["metadata"]["name"]), spec["clusterIP"], spec.get("ports") or []
    out = {f"{prefix}_SERVICE_HOST": ip}
    if ports:
        out[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
    for port in ports:
        if port.get("name"):
            out[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port["port"])
    for i, port in enumerate(ports):
        protocol = port.get("protocol") or "TCP"
        url = f"{protocol.lower()}://{_host_port(ip, port['port'])}"
        if i == 0:
            out[f"{prefix}_PORT"] = url  # Docker special-cases the first port
        port_prefix = f"{prefix}_PORT_{port['port']}_{protocol.upper()}"
        out[port_prefix] = url
        out[f"{port_prefix}_PROTO"] = protocol.lower()
        out[f"{port_prefix}_PORT"] = str(port["port"])
        out[f"{port_prefix}_ADDR"] = ip
    return out


def service_env(services: Iterable[Obj], namespace: str, enable_service_links: bool) -> dict[str, str]:
    """getServiceEnvVarMap: the `kubernetes` Service of `default` always (the pod's own
    namespace's Service of that name wins), the namespace's other Services when service
    links are enabled. Services without a cluster IP (headless, ExternalName) give none."""
    chosen: dict[str, Obj] = {}
    for service in services:
        if not _has_cluster_ip(service):
            continue
        meta = service.get("metadata") or {}
        name, ns = meta.get("name"), meta.get("namespace") or "default"
        if ns == "default" and name == "kubernetes":
            chosen.setdefault(name, service)
        elif ns == namespace and enable_service_links:
            chosen[name] = service
    out: dict[str, str] = {}
    for name in sorted(chosen):
        out.update(service_variables(chosen[name]))
    return out


# -- downward API: fields (pkg/fieldpath, ConvertDownwardAPIFieldLabel) ------------------------

_ENV_FIELDS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
               "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName",
               "status.phase", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def split_subscript(path: str) -> tuple[str, str] | None:
    """SplitMaybeSubscriptedPath: "metadata.labels['k']" -> ("metadata.labels", "k")."""
    if not path.endswith("']"):
        return None
    parts = path[:-2].split("['", 1)
    if len(parts) < 2 or not parts[0]:
        return None
    return parts[0], parts[1]


def _qualified_name_errors(key: str) -> list[str]:
    """IsQualifiedName, with shorter messages than apimachinery's."""
    prefix, _, name = key.rpartition("/")
    errors = []
    if "/" in key and (not prefix or len(prefix) > 253 or not _SUBDOMAIN_RE.match(prefix)):
        errors.append("prefix part must be a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not _NAME_RE.match(name):
        errors.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                      "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
                      "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
    return errors


def format_map(values: Mapping[str, str]) -> str:
    """FormatMap: `key="value"` lines, keys sorted (metadata.labels as a whole)."""
    return "\n".join(f"{key}={go_quote(str(values[key]))}" for key in sorted(values))


def extract_field(pod: Obj, path: str) -> str:
    """ExtractFieldPathAsString: the metadata fields (what a downwardAPI volume offers)."""
    meta = pod.get("metadata") or {}
    subscripted = split_subscript(path)
    if subscripted is not None:
        field, key = subscripted
        if field not in ("metadata.annotations", "metadata.labels"):
            raise ConfigError(f'fieldPath "{path}" does not support subscript')
        errors = _qualified_name_errors(key.lower() if field == "metadata.annotations" else key)
        if errors:
            raise ConfigError(f"invalid key subscript in {path}: {';'.join(errors)}")
        return str((meta.get(field.split(".")[1]) or {}).get(key, ""))
    if path in ("metadata.annotations", "metadata.labels"):
        return format_map(meta.get(path.split(".")[1]) or {})
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return str(meta.get(path.split(".")[1]) or "")
    raise ConfigError(f"unsupported fieldPath: {path}")


def _ips(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [ip for ip in value if ip]


def field_ref_value(ref: Obj, pod: Obj, *, node_ip: str | Sequence[str] | None,
                    pod_ip: str | Sequence[str] | None) -> str:
    """podFieldSelectorRuntimeValue: an env var's fieldRef."""
    version, path = ref.get("apiVersion") or "v1", ref.get("fieldPath") or ""
    if version != "v1":
        raise ConfigError(f"unsupported pod version: {version}")
    subscripted = split_subscript(path)
    if subscripted is not None and subscripted[0] not in ("metadata.annotations", "metadata.labels"):
        raise ConfigError(f"field label does not support subscript: {path}")
    if path == "spec.host":
        path = "spec.nodeName"
    elif subscripted is None and path not in _ENV_FIELDS:
        raise ConfigError(f"field label not supported: {path}")
    spec, pod_ips, host_ips = pod.get("spec") or {}, _ips(pod_ip), _ips(node_ip)
    if path == "spec.nodeName":
        return str(spec.get("nodeName") or "")
    if path == "spec.serviceAccountName":
        return str(spec.get("serviceAccountName") or "")
    if path in ("status.hostIP", "status.hostIPs"):
        if not host_ips:
            raise ConfigError("failed to get host IPs: the node has no address")
        return host_ips[0] if path == "status.hostIP" else ",".join(host_ips)
    if path == "status.podIP":
        return pod_ips[0] if pod_ips else ""
    if path == "status.podIPs":
        return ",".join(pod_ips)
    return extract_field(pod, path)


# -- downward API: resources (pkg/api/v1/resource) ------------------------------------------------

_DEFAULTED = ("cpu", "memory", "ephemeral-storage")


def _find_container(pod: Obj, name: str) -> Obj:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if container.get("name") == name:
            return container
    raise ConfigError(f"container {name} not found")


def _limits_with_allocatable(container: Obj, allocatable: Mapping[str, Any] | None) -> dict[str, Any]:
    """MergeContainerResourceLimits: cpu, memory and ephemeral-storage limits that are
    unset or zero become the node's allocatable."""
    limits = dict((container.get("resources") or {}).get("limits") or {})
    for name in _DEFAULTED:
        if (name not in limits or parse_quantity(limits[name]).is_zero()) and allocatable and name in allocatable:
            limits[name] = allocatable[name]
    return limits


def resource_field_value(ref: Obj, pod: Obj, container: Obj | None, allocatable: Mapping[str, Any] | None) -> str:
    """ExtractContainerResourceValue (after defaulting limits to the node's allocatable):
    cpu in units of the divisor rounded up from millicores, the others from whole units."""
    if ref.get("containerName"):
        container = _find_container(pod, ref["containerName"])
    if container is None:
        raise ConfigError("resourceFieldRef needs a containerName")
    try:
        divisor = parse_quantity(ref.get("divisor"))
        if divisor.is_zero():
            divisor = parse_quantity("1")
        resource = str(ref.get("resource") or "")
        kind, _, name = resource.partition(".")
        if kind == "limits":
            values = _limits_with_allocatable(container, allocatable)
        elif kind == "requests":
            values = (container.get("resources") or {}).get("requests") or {}
        else:
            values = None
        if values is None or not (name in _DEFAULTED or name.startswith("hugepages-")):
            raise ConfigError(f"unsupported container resource : {resource}")
        amount = parse_quantity(values.get(name))
        if name == "cpu":
            return str(math.ceil(amount.milli_value() / divisor.milli_value()))
        return str(math.ceil(amount.int_value() / divisor.int_value()))
    except QuantityError as exc:
        raise ConfigError(str(exc)) from None


# -- config maps and secrets -------------------------------------------------------------------------


def secret_data(secret: Obj) -> dict[str, bytes]:
    """A Secret's data, base64-decoded (the API serves it encoded)."""
    return {k: base64.b64decode(v or "") for k, v in (secret.get("data") or {}).items()}


class _Objects:
    """Each ConfigMap and Secret fetched once per call, as the kubelet's local maps."""

    def __init__(self, source: ObjectSource, namespace: str) -> None:
        self.source, self.namespace = source, namespace
        self.cache: dict[tuple[str, str], Obj | None] = {}

    async def get(self, kind: str, name: str, optional: bool) -> Obj | None:
        """The object, None when it is missing and optional, else ConfigError."""
        if (kind, name) not in self.cache:
            self.cache[(kind, name)] = await self.source.get(kind, self.namespace, name)
        obj = self.cache[(kind, name)]
        if obj is None and not optional:
            raise ConfigError(f'{"configmap" if kind == "configmaps" else "secret"} "{name}" not found')
        return obj


def _string_data(kind: str, obj: Obj) -> dict[str, str]:
    if kind == "configmaps":
        return {k: str(v) for k, v in (obj.get("data") or {}).items()}
    return {k: v.decode("utf-8", "surrogateescape") for k, v in secret_data(obj).items()}


async def _from_sources(container: Obj, objects: _Objects) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for field, kind in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
            ref = source.get(field)
            if not isinstance(ref, dict):
                continue
            obj = await objects.get(kind, ref.get("name") or "", bool(ref.get("optional")))
            if obj is None:
                continue
            prefix = source.get("prefix") or ""
            for key, value in _string_data(kind, obj).items():
                env[prefix + key] = value
    return env


async def _key_ref(value_from: Obj, objects: _Objects) -> str | None:
    """A configMapKeyRef / secretKeyRef value; None = optional and missing (skip the var)."""
    for field, kind, title in (("configMapKeyRef", "configmaps", "ConfigMap"), ("secretKeyRef", "secrets", "Secret")):
        ref = value_from.get(field)
        if not isinstance(ref, dict):
            continue
        name, key, optional = ref.get("name") or "", ref.get("key") or "", bool(ref.get("optional"))
        obj = await objects.get(kind, name, optional)
        if obj is None:
            return None
        data = _string_data(kind, obj)
        if key not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {key} in {title} {objects.namespace}/{name}")
        return data[key]
    return ""


async def container_env(pod: Obj, container: Obj, *, source: ObjectSource, node_ip: str | Sequence[str] | None,
                        pod_ip: str | Sequence[str] | None, services: Iterable[Obj] = (),
                        node_allocatable: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The container's environment (see the module docstring); raises ConfigError."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    namespace = meta.get("namespace") or "default"
    links = spec.get("enableServiceLinks")
    services_env = service_env(services, namespace, True if links is None else bool(links))
    objects = _Objects(source, namespace)
    env = await _from_sources(container, objects)
    mapping = mapping_for(env, services_env)
    for var in container.get("env") or []:
        value: str | None = var.get("value") or ""
        value_from = var.get("valueFrom")
        if value:
            value = expand(value, mapping)
        elif isinstance(value_from, dict):
            if isinstance(value_from.get("fieldRef"), dict):
                value = field_ref_value(value_from["fieldRef"], pod, node_ip=node_ip, pod_ip=pod_ip)
            elif isinstance(value_from.get("resourceFieldRef"), dict):
                value = resource_field_value(value_from["resourceFieldRef"], pod, container, node_allocatable)
            else:
                value = await _key_ref(value_from, objects)
        if value is not None:
            env[var["name"]] = value
    for name, value in services_env.items():
        env.setdefault(name, value)
    return env
