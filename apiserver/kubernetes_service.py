"""The `kubernetes` Service in `default`, which every cluster has.

kube-apiserver keeps a Service `default/kubernetes` (the first address of the service
range, port 443 named `https`) and its Endpoints and EndpointSlice pointing at itself,
so in-cluster clients find the API. We do the same at start-up, and fix the endpoints
when a resumed cluster comes back on another port.
"""

from __future__ import annotations

from typing import Any

from apiserver import errors
from apiserver.admission.defaults import default_object
from apiserver.context import Server
from apiserver.patch.managedfields import track_update
from apiserver.registry import strategy

Obj = dict[str, Any]
MANAGER = "kube-apiserver"


def _service(cluster_ip: str, port: int) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "type": "ClusterIP",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                 "sessionAffinity": "None"},
    }


def _endpoints(host: str, port: int) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": host}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    }


def _endpoint_slice(host: str, port: int) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }


async def _ensure(server: Server, group: str, version: str, plural: str, desired: Obj, fields: tuple[str, ...]) -> None:
    """Create `desired`, or bring the listed top-level fields of the stored one in line."""
    info = server.registry.lookup(group, version, plural)
    assert info is not None
    kind = desired["kind"]
    default_object(group, version, kind, desired)

    async def update(current: Obj | None) -> Obj | None:
        if current is None:
            strategy.prepare_for_create(info, desired)
            track_update(None, desired, schema=info.schema(), manager=MANAGER, api_version=desired["apiVersion"],
                         now=strategy.now_rfc3339())
            return desired
        new = {**current, **{f: desired[f] for f in fields}}
        if kind == "Service":
            new["spec"] = {**current["spec"], "ports": desired["spec"]["ports"]}
        if new == current:
            return None
        track_update(current, new, schema=info.schema(), manager=MANAGER, api_version=desired["apiVersion"],
                     now=strategy.now_rfc3339())
        return new

    await server.store.guaranteed_update(info, "default", "kubernetes", update, allow_create=True)


async def ensure_kubernetes_service(server: Server, host: str, port: int) -> None:
    ip = server.allocator.config.first_ip
    try:
        await server.allocator.allocate_ip(ip, "default/kubernetes", "spec.clusterIPs")
    except errors.StatusError:
        pass  # already held by the kubernetes Service (a resumed cluster)
    await _ensure(server, "", "v1", "services", _service(ip, port), ())
    await _ensure(server, "", "v1", "endpoints", _endpoints(host, port), ("subsets",))
    await _ensure(server, "discovery.k8s.io", "v1", "endpointslices", _endpoint_slice(host, port), ("endpoints", "ports"))
