"""Keeps the ClusterZone in step with the API server: the DNS server's controller.

Informers (shared): Services, EndpointSlices, Namespaces, and Pods in `pods verified`
mode. Keys on the work queue:

    Service added / updated / deleted          -> namespace/name
    EndpointSlice (any event)                  -> namespace/<kubernetes.io/service-name>
    Namespace (any event)                      -> NAMESPACES_KEY

`reconcile(key)` reads the caches only and swaps the Service's names in the zone whole
(cni/dns/records.py builds them), so the answer after any burst of events is the one the
current objects give, whatever order the events came in. Pods are not copied: in
verified mode a query asks the pod cache's by-IP index directly.
"""

from __future__ import annotations

from typing import Any

from cni.dns.records import service_records
from cni.dns.zone import ClusterZone
from minikube_py.client import (
    ENDPOINTSLICES,
    NAMESPACES,
    PODS,
    SERVICES,
    Controller,
    EventHandler,
    Result,
    SharedInformerFactory,
    WorkQueue,
    enqueue_mapped,
    enqueue_object,
    split_key,
)

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICES_BY_SERVICE = "dns/slices-by-service"
PODS_BY_IP = "dns/pods-by-ip"
NAMESPACES_KEY = "@namespaces"  # not a namespace/name: cannot clash with a Service key


def slice_service_key(obj: Obj) -> list[str]:
    meta = obj.get("metadata") or {}
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace')}/{service}"] if service else []


def pod_ip_keys(obj: Obj) -> list[str]:
    """namespace/ip for each of a running pod's addresses (a finished pod has none)."""
    status = obj.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return []
    namespace = (obj.get("metadata") or {}).get("namespace")
    ips = [p.get("ip") for p in status.get("podIPs") or []] or [status.get("podIP")]
    return [f"{namespace}/{ip}" for ip in ips if ip]


class ZoneSync:
    """The controller that fills `zone` from the informers of `factory`."""

    def __init__(self, factory: SharedInformerFactory, zone: ClusterZone) -> None:
        self.zone = zone
        self.queue: WorkQueue[str] = WorkQueue("dns")
        self.services = factory.informer(SERVICES)
        self.slices = factory.informer(ENDPOINTSLICES)
        self.namespaces = factory.informer(NAMESPACES)
        self.slices.add_indexer(SLICES_BY_SERVICE, slice_service_key)
        self.services.add_event_handler(enqueue_object(self.queue))
        self.slices.add_event_handler(enqueue_mapped(self.queue, slice_service_key))
        mark = EventHandler(on_add=self._namespaces_changed, on_update=lambda old, new: self._namespaces_changed(new),
                            on_delete=self._namespaces_changed)
        self.namespaces.add_event_handler(mark)
        self.informers = [self.services, self.slices, self.namespaces]
        if zone.pods == "verified":
            pods = factory.informer(PODS)
            pods.add_indexer(PODS_BY_IP, pod_ip_keys)
            zone.pod_exists = lambda namespace, ip: bool(pods.store.index_keys(PODS_BY_IP, f"{namespace}/{ip}"))
            self.informers.append(pods)
        self.controller = Controller("dns", self.queue, self.reconcile, workers=1, wait_for=self.informers)

    def _namespaces_changed(self, _: object) -> None:
        self.queue.add(NAMESPACES_KEY)

    async def reconcile(self, key: str) -> Result | None:
        if key == NAMESPACES_KEY:
            self.zone.set_namespaces({split_key(k)[1] for k in self.namespaces.store.keys()})
            return None
        namespace, name = split_key(key)
        service = self.services.lister.get(name, namespace)
        if service is None:
            self.zone.set_service(key, None)
            return None
        slices = self.slices.lister.by_index(SLICES_BY_SERVICE, key)
        self.zone.set_service(key, service_records(service, slices, self.zone.domain))
        return None

    async def wait_synced(self) -> None:
        """Until every informer has listed; then the zone is filled from the caches in one
        pass (the queue repeats that work harmlessly) and may say NXDOMAIN. Waiting for
        the queue to drain instead could take long on a busy cluster."""
        for informer in self.informers:
            await informer.wait_synced()
        for key in [NAMESPACES_KEY, *self.services.store.keys()]:
            await self.reconcile(key)
        self.zone.synced = True

    async def run(self) -> None:
        await self.controller.run()
