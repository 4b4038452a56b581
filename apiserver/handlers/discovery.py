"""API discovery, legacy and aggregated, derived from the registry.

kubectl 1.32 asks `/api` and `/apis` for aggregated discovery (apidiscovery.k8s.io/v2,
one document listing every group, version and resource); older clients walk the legacy
documents (`/api` APIVersions, `/apis` APIGroupList, `/api/v1` and `/apis/<g>/<v>`
APIResourceList). Both are served, and cached until the registry changes (a CRD
appears or goes).
"""

from __future__ import annotations

from typing import Any

from apiserver.registry.registry import Registry
from apiserver.registry.resource import ResourceInfo

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

# Subresource -> (group, version, kind of what it returns, verbs), as kube-apiserver reports.
_SUBRESOURCES: dict[str, tuple[str, str, str, list[str]]] = {
    "scale": ("autoscaling", "v1", "Scale", ["get", "patch", "update"]),
    "log": ("", "v1", "Pod", ["get"]),
    "exec": ("", "v1", "PodExecOptions", ["create", "get"]),
    "attach": ("", "v1", "PodAttachOptions", ["create", "get"]),
    "portforward": ("", "v1", "PodPortForwardOptions", ["create", "get"]),
    "binding": ("", "v1", "Binding", ["create"]),
    "eviction": ("policy", "v1", "Eviction", ["create"]),
    "token": ("authentication.k8s.io", "v1", "TokenRequest", ["create"]),
    "finalize": ("", "v1", "Namespace", ["update"]),
}
_PROXY_KINDS = {"pods": "PodProxyOptions", "nodes": "NodeProxyOptions", "services": "ServiceProxyOptions"}
_PROXY_VERBS = ["create", "delete", "get", "patch", "update"]
_SAME_KIND_VERBS = ["get", "patch", "update"]


def wants_aggregated(accept: str) -> bool:
    return "as=APIGroupDiscoveryList" in accept and "apidiscovery.k8s.io" in accept


def _sub_info(info: ResourceInfo, sub: str, version: str) -> tuple[str, str, str, list[str]]:
    if sub == "proxy":
        return ("", "v1", _PROXY_KINDS.get(info.plural, "ProxyOptions"), _PROXY_VERBS)
    if sub in _SUBRESOURCES:
        return _SUBRESOURCES[sub]
    return (info.group, version, info.kind, _SAME_KIND_VERBS)  # status, resize, ephemeralcontainers


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for info in registry.resources_in(group, version):
        entry: dict[str, Any] = {
            "name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
            "kind": info.kind, "verbs": sorted(info.verbs),
        }
        if info.short_names:
            entry["shortNames"] = info.short_names
        if info.categories:
            entry["categories"] = info.categories
        resources.append(entry)
        for sub in info.subresources:
            g, v, kind, verbs = _sub_info(info, sub, version)
            item: dict[str, Any] = {"name": f"{info.plural}/{sub}", "singularName": "", "namespaced": info.namespaced}
            if (g, v) != (info.group, version):
                item["group"], item["version"] = g, v
            item.update({"kind": kind, "verbs": verbs})
            resources.append(item)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group_entry(g, vs) for g, vs in registry.group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(group)
    if not versions or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


def _aggregated_resource(info: ResourceInfo, version: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": sorted(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = info.short_names
    if info.categories:
        entry["categories"] = info.categories
    subs = []
    for sub in info.subresources:
        g, v, kind, verbs = _sub_info(info, sub, version)
        subs.append({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": kind}, "verbs": verbs})
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(registry: Registry, core: bool) -> dict[str, Any]:
    """The APIGroupDiscoveryList for `/api` (core=True) or `/apis`."""
    items = []
    for group, versions in registry.group_versions().items():
        if bool(group) == core:
            continue
        item_versions = [
            {"version": v, "resources": [_aggregated_resource(i, v) for i in registry.resources_in(group, v)],
             "freshness": "Current"}
            for v in versions
        ]
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": item_versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}
