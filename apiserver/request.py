"""RequestInfo: what a Kubernetes API URL and method mean.

Parses `/api/v1/namespaces/ns/pods/name/status` and `/apis/apps/v1/deployments` into
group, version, namespace, resource, name, subresource and the Kubernetes verb (get,
list, watch, create, update, patch, delete, deletecollection), the same decomposition
k8s.io/apiserver's RequestInfoFactory makes. Authorization and audit speak in these terms.
"""

from __future__ import annotations

from dataclasses import dataclass

_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass
class RequestInfo:
    is_resource: bool
    verb: str
    path: str
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    parts: tuple[str, ...] = ()


def parse_request(method: str, path: str, watch_param: bool) -> RequestInfo:
    """Decompose a request; non-resource paths (/healthz, /version, discovery roots)
    come back with is_resource False."""
    segments = [s for s in path.split("/") if s]
    if not segments or segments[0] not in ("api", "apis"):
        return RequestInfo(False, method.lower(), path)
    if segments[0] == "api":
        group, rest = "", segments[1:]
    else:
        if len(segments) < 2:
            return RequestInfo(False, method.lower(), path)
        group, rest = segments[1], segments[2:]
    if not rest:
        return RequestInfo(False, method.lower(), path, group=group)
    version, rest = rest[0], rest[1:]
    if not rest:
        return RequestInfo(False, method.lower(), path, group=group, version=version)
    info = RequestInfo(True, "", path, group=group, version=version)
    # Legacy watch paths: /api/v1/watch/namespaces/ns/pods
    if rest[0] == "watch":
        watch_param, rest = True, rest[1:]
    if rest and rest[0] == "namespaces" and len(rest) >= 2:
        if len(rest) == 2 or (len(rest) == 3 and rest[2] in ("status", "finalize")):
            rest = ["namespaces", *rest[1:]]  # the namespace object itself
        else:
            info.namespace, rest = rest[1], rest[2:]
    if rest:
        info.resource = rest[0]
        if len(rest) > 1:
            info.name = rest[1]
        if len(rest) > 2:
            info.subresource = rest[2]
        info.parts = tuple(rest)
    info.verb = _verb(method, bool(info.name), watch_param)
    return info


def _verb(method: str, has_name: bool, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        if watch:
            return "watch"
        return "get" if has_name else "list"
    if method == "DELETE" and not has_name:
        return "deletecollection"
    return _METHOD_VERBS.get(method, method.lower())
