"""The kube-dns Service and its EndpointSlice, kept as `mkp dns` needs them.

kubeadm's CoreDNS addon creates Service kube-system/kube-dns (labels k8s-app=kube-dns,
kubernetes.io/cluster-service, kubernetes.io/name=CoreDNS; ports dns 53/UDP, dns-tcp
53/TCP, metrics 9153/TCP; clusterIP the tenth address of the Service range) selecting
the CoreDNS pods. Our server is a host process, not a pod, so the Service has no
selector and its endpoint is written by hand, as for any Service in front of something
outside the cluster: an EndpointSlice `kube-dns-mkp`, labelled with the Service's name
and `endpointslice.kubernetes.io/managed-by: mkp-dns` (the EndpointSlice controller
leaves slices it does not manage, and Services without a selector, alone), and the
legacy Endpoints `kube-dns` with the same address (`kubectl get endpoints`). The
endpoint is the first --listen address; its port names match the Service's, so the
service proxy forwards <cluster IP>:53 to the listener. The metrics port is in the
slice only when the metrics listener serves on that address too.

Level-triggered: any change to either object (or their absence) enqueues one key, and
`reconcile` writes the difference from the cached objects. A Service with another
clusterIP is deleted and created again (the field is immutable). On a clean stop the
endpoint is marked terminating and not ready, so proxies stop sending queries to it.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from cni.dns.server import Listen
from minikube_py.client import (
    ENDPOINTS,
    ENDPOINTSLICES,
    SERVICES,
    ApiClient,
    ApiError,
    Controller,
    Result,
    SharedInformerFactory,
    WorkQueue,
    deep_copy,
    enqueue_mapped,
)

log = logging.getLogger("cni.dns")

NAMESPACE = "kube-system"
SERVICE = "kube-dns"
SLICE = "kube-dns-mkp"
MANAGER = "mkp-dns"
KEY = f"{NAMESPACE}/{SERVICE}"
SERVICE_LABELS = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}
SERVICE_ANNOTATIONS = {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}
ENDPOINTS_SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
SLICE_LABELS = {"kubernetes.io/service-name": SERVICE, "endpointslice.kubernetes.io/managed-by": MANAGER}

Obj = dict[str, Any]


@dataclass(frozen=True)
class KubeDns:
    """What the objects must say: the Service address, the DNS endpoint, the metrics one."""

    service_ip: str
    endpoint: Listen
    metrics: Listen | None = None

    def __post_init__(self) -> None:
        ipaddress.ip_address(self.service_ip)  # ValueError for a bad --service-ip
        if ipaddress.ip_address(self.endpoint.host).is_unspecified:
            raise ValueError(f"the first --listen address ({self.endpoint.host}) becomes the kube-dns endpoint: "
                             "give a specific address, not a wildcard")

    def service_ports(self) -> list[Obj]:
        metrics_port = self.metrics.port if self.metrics else 9153
        return [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": self.endpoint.port},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": self.endpoint.port},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": metrics_port}]

    def service(self) -> Obj:
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": dict(SERVICE_LABELS),
                             "annotations": dict(SERVICE_ANNOTATIONS)},
                "spec": {"type": "ClusterIP", "clusterIP": self.service_ip, "clusterIPs": [self.service_ip],
                         "ports": self.service_ports()}}

    def slice_ports(self) -> list[Obj]:
        ports = [{"name": "dns", "port": self.endpoint.port, "protocol": "UDP"},
                 {"name": "dns-tcp", "port": self.endpoint.port, "protocol": "TCP"}]
        if self.metrics is not None and (self.metrics.host == self.endpoint.host
                                         or ipaddress.ip_address(self.metrics.host).is_unspecified):
            ports.append({"name": "metrics", "port": self.metrics.port, "protocol": "TCP"})
        return ports

    def endpoints(self, *, ready: bool = True) -> Obj:
        """The legacy Endpoints object (what `kubectl get endpoints -n kube-system` shows),
        written by hand like the slice; `skip-mirror` keeps an EndpointSlice mirroring
        controller from making a second slice of it."""
        subset: Obj = {"addresses" if ready else "notReadyAddresses": [{"ip": self.endpoint.host}],
                       "ports": [{k: p[k] for k in ("name", "port", "protocol")} for p in self.slice_ports()]}
        return {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": SERVICE, "namespace": NAMESPACE,
                             "labels": {**SERVICE_LABELS, ENDPOINTS_SKIP_MIRROR: "true"}},
                "subsets": [subset]}

    def slice(self, service_uid: str | None, *, ready: bool = True) -> Obj:
        meta: Obj = {"name": SLICE, "namespace": NAMESPACE, "labels": dict(SLICE_LABELS)}
        if service_uid:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Service", "name": SERVICE, "uid": service_uid,
                                        "controller": True, "blockOwnerDeletion": True}]
        family = ipaddress.ip_address(self.endpoint.host).version
        conditions = {"ready": ready, "serving": ready, "terminating": not ready}
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta,
                "addressType": "IPv4" if family == 4 else "IPv6",
                "endpoints": [{"addresses": [self.endpoint.host], "conditions": conditions}],
                "ports": self.slice_ports()}


def _port_set(ports: list[Obj] | None) -> list[tuple[Any, ...]]:
    return sorted((p.get("name") or "", p.get("port"), p.get("protocol") or "TCP", p.get("targetPort"))
                  for p in ports or [])


def service_drift(current: Obj, want: Obj) -> Obj | None:
    """`current` corrected to `want` (labels, annotations, no selector, ports), or None
    when nothing needs writing."""
    meta, spec = current.get("metadata") or {}, current.get("spec") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    ok = (all(labels.get(k) == v for k, v in want["metadata"]["labels"].items())
          and all(annotations.get(k) == v for k, v in want["metadata"]["annotations"].items())
          and not spec.get("selector") and spec.get("type", "ClusterIP") == "ClusterIP"
          and _port_set(spec.get("ports")) == _port_set(want["spec"]["ports"]))
    if ok:
        return None
    fixed = deep_copy(current)
    fixed["metadata"].setdefault("labels", {}).update(want["metadata"]["labels"])
    fixed["metadata"].setdefault("annotations", {}).update(want["metadata"]["annotations"])
    fixed["spec"].pop("selector", None)
    fixed["spec"]["type"] = "ClusterIP"
    fixed["spec"]["ports"] = want["spec"]["ports"]
    return fixed


def slice_drift(current: Obj, want: Obj) -> Obj | None:
    meta = current.get("metadata") or {}
    labels = meta.get("labels") or {}
    same = (all(labels.get(k) == v for k, v in want["metadata"]["labels"].items())
            and meta.get("ownerReferences") == want["metadata"].get("ownerReferences")
            and current.get("addressType") == want["addressType"]
            and current.get("endpoints") == want["endpoints"]
            and _port_set(current.get("ports")) == _port_set(want["ports"]))
    if same:
        return None
    fixed = deep_copy(current)
    fixed["metadata"].setdefault("labels", {}).update(want["metadata"]["labels"])
    fixed["metadata"]["ownerReferences"] = want["metadata"].get("ownerReferences")
    for field_name in ("addressType", "endpoints", "ports"):
        fixed[field_name] = want[field_name]
    return fixed


def endpoints_drift(current: Obj, want: Obj) -> Obj | None:
    labels = (current.get("metadata") or {}).get("labels") or {}
    if (all(labels.get(k) == v for k, v in want["metadata"]["labels"].items())
            and current.get("subsets") == want["subsets"]):
        return None
    fixed = deep_copy(current)
    fixed["metadata"].setdefault("labels", {}).update(want["metadata"]["labels"])
    fixed["subsets"] = want["subsets"]
    return fixed


def _is_ours(obj: Obj) -> list[str]:
    meta = obj.get("metadata") or {}
    if meta.get("namespace") == NAMESPACE and meta.get("name") in (SERVICE, SLICE):
        return [KEY]
    return []


class KubeDnsController:
    """Ensures the kube-dns Service and the kube-dns-mkp slice (one key, KEY)."""

    def __init__(self, client: ApiClient, factory: SharedInformerFactory, want: KubeDns) -> None:
        self.client = client
        self.want = want
        self.queue: WorkQueue[str] = WorkQueue("kube-dns")
        self.services = factory.informer(SERVICES)
        self.slices = factory.informer(ENDPOINTSLICES)
        self.endpoints = factory.informer(ENDPOINTS)
        for informer in (self.services, self.slices, self.endpoints):
            informer.add_event_handler(enqueue_mapped(self.queue, _is_ours))
        self.controller = Controller("kube-dns", self.queue, self.reconcile,
                                     wait_for=[self.services, self.slices, self.endpoints])

    async def run(self) -> None:
        self.queue.add(KEY)  # absent objects send no event: look once at the start
        await self.controller.run()

    async def reconcile(self, key: str) -> Result | None:
        want = self.want.service()
        service = self.services.lister.get(SERVICE, NAMESPACE)
        if service is None:
            await self._create(SERVICES, want)
            return None
        if (service.get("spec") or {}).get("clusterIP") != self.want.service_ip:
            log.warning("Service %s has clusterIP %s, not %s: creating it again", KEY,
                        service["spec"].get("clusterIP"), self.want.service_ip)
            await self.client.delete(SERVICES, SERVICE, NAMESPACE,
                                     preconditions={"uid": service["metadata"]["uid"]})
            return None
        fixed = service_drift(service, want)
        if fixed is not None:
            await self.client.update(SERVICES, fixed)
            return None
        slice_want = self.want.slice(service["metadata"].get("uid"))
        current = self.slices.lister.get(SLICE, NAMESPACE)
        if current is None:
            await self._create(ENDPOINTSLICES, slice_want)
        elif (fixed := slice_drift(current, slice_want)) is not None:
            await self.client.update(ENDPOINTSLICES, fixed)
        endpoints_want = self.want.endpoints()
        endpoints = self.endpoints.lister.get(SERVICE, NAMESPACE)
        if endpoints is None:
            await self._create(ENDPOINTS, endpoints_want)
        elif (fixed := endpoints_drift(endpoints, endpoints_want)) is not None:
            await self.client.update(ENDPOINTS, fixed)
        return None

    async def _create(self, resource: Any, obj: Obj) -> None:
        try:
            await self.client.create(resource, obj)
        except ApiError as exc:
            if not exc.is_already_exists():  # our cache is behind: its event will come
                raise

    async def mark_terminating(self) -> None:
        """On a clean stop: the endpoint not ready and terminating (best effort)."""
        current = self.slices.lister.get(SLICE, NAMESPACE)
        service = self.services.lister.get(SERVICE, NAMESPACE)
        if current is None or service is None:
            return
        fixed = slice_drift(current, self.want.slice(service["metadata"].get("uid"), ready=False))
        if fixed is not None:
            await self.client.update(ENDPOINTSLICES, fixed)
        endpoints = self.endpoints.lister.get(SERVICE, NAMESPACE)
        if endpoints is not None and (fixed := endpoints_drift(endpoints, self.want.endpoints(ready=False))):
            await self.client.update(ENDPOINTS, fixed)
