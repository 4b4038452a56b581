"""The load-balancer controller (kube-controller-manager's service-lb-controller, with
the addresses `minikube tunnel` or k3s' servicelb would give): every `type: LoadBalancer`
Service without spec.loadBalancerClass gets an address from the loopback pool
(controllers.servicelb.allocation) in status.loadBalancer.ingress [{ip, ipMode: VIP}],
written through the status subresource. Node 1's service proxy listens on it.

What it does and records is the cloud service controller's (pkg/controller/service):

- ensuring: the finalizer `service.kubernetes.io/load-balancer-cleanup` first, then the
  status, with the Events EnsuringLoadBalancer "Ensuring load balancer" and
  EnsuredLoadBalancer "Ensured load balancer" (only when something has to change; the
  real controller likewise syncs only Services whose load-balancer fields changed);
- cleaning up, for a Service that carries the finalizer but no longer wants a load
  balancer (type changed, a class set) or is being deleted: DeletingLoadBalancer, the
  status cleared, the finalizer removed, DeletedLoadBalancer;
- failing (a loadBalancerIP outside the pool or taken, the pool exhausted): a Warning
  SyncLoadBalancerFailed "Error syncing load balancer: failed to ensure load balancer:
  ...", and another try after RETRY_SECONDS.

One worker, and the addresses it wrote but its cache may not show yet are remembered
(`pending`), so two Services never get the same address from a stale cache.
"""

from __future__ import annotations

import logging
from typing import Any

from cni.addressing import LOAD_BALANCER_CIDR
from controllers.servicelb.allocation import AllocationError, choose_address, ingress_ips, wants_load_balancer
from minikube_py.client import (
    NORMAL,
    SERVICES,
    WARNING,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    EventRecorder,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
    enqueue_object,
    key_of,
    split_key,
)

log = logging.getLogger("controllers.servicelb")

Obj = dict[str, Any]
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
RETRY_SECONDS = 30.0


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _finalizers(service: Obj) -> list[str]:
    return list(_meta(service).get("finalizers") or [])


class ServiceLBController:
    """Gives LoadBalancer Services a loopback address (see the module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 1, clock: Clock | None = None, pool: str = LOAD_BALANCER_CIDR) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.pool = pool
        self.services = informers.informer(SERVICES)
        self.queue: WorkQueue[str] = WorkQueue("service-lb", clock=self.clock)
        self.pending: dict[str, str] = {}  # Service key -> address written, until the cache shows it
        self.services.add_event_handler(enqueue_object(self.queue))
        # One worker on purpose: choosing an address reads every Service's, so two at once could collide.
        self.controller = Controller("service-lb", self.queue, self.reconcile, workers=1, wait_for=[self.services])

    async def run(self) -> None:
        await self.controller.run()

    def _taken(self, key: str) -> set[str]:
        """Addresses other Services hold (cache, plus writes it does not show yet)."""
        taken = {ip for s in self.services.lister.list() if key_of(s) != key for ip in ingress_ips(s)}
        for other, ip in list(self.pending.items()):
            namespace, name = split_key(other)
            cached = self.services.lister.get(name, namespace)
            if cached is None or ip in ingress_ips(cached) or not wants_load_balancer(cached):
                del self.pending[other]  # the cache caught up (or it is gone)
            elif other != key:
                taken.add(ip)
        return taken

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        service = self.services.lister.get(name, namespace)
        if service is None:
            self.pending.pop(key, None)
            return None
        deleting = bool(_meta(service).get("deletionTimestamp"))
        if deleting or not wants_load_balancer(service):
            if FINALIZER in _finalizers(service):
                await self._clean_up(service)
            self.pending.pop(key, None)
            return None
        try:
            ip = choose_address(service, self.pool, self._taken(key))
        except AllocationError as exc:
            self.recorder.event(service, WARNING, "SyncLoadBalancerFailed",
                                f"Error syncing load balancer: failed to ensure load balancer: {exc}")
            return Result(requeue_after=RETRY_SECONDS)
        desired = [{"ip": ip, "ipMode": "VIP"}]
        current = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if FINALIZER in _finalizers(service) and current == desired:
            return None
        self.recorder.event(service, NORMAL, "EnsuringLoadBalancer", "Ensuring load balancer")
        await self._add_finalizer(service)
        await self._patch_status(namespace, name, {"ingress": desired})
        self.pending[key] = ip
        log.info("service %s: load balancer at %s", key, ip)
        self.recorder.event(service, NORMAL, "EnsuredLoadBalancer", "Ensured load balancer")
        return None

    async def _clean_up(self, service: Obj) -> None:
        namespace, name = _meta(service).get("namespace", ""), _meta(service).get("name", "")
        if ingress_ips(service):
            self.recorder.event(service, NORMAL, "DeletingLoadBalancer", "Deleting load balancer")
            await self._patch_status(namespace, name, {"ingress": None})
        finalizers = [f for f in _finalizers(service) if f != FINALIZER]
        await self._write_finalizers(service, finalizers)
        log.info("service %s/%s: load balancer removed", namespace, name)
        self.recorder.event(service, NORMAL, "DeletedLoadBalancer", "Deleted load balancer")

    async def _add_finalizer(self, service: Obj) -> None:
        if FINALIZER not in _finalizers(service):
            await self._write_finalizers(service, [*_finalizers(service), FINALIZER])

    async def _write_finalizers(self, service: Obj, finalizers: list[str]) -> None:
        """A merge patch of the whole list, guarded by resourceVersion (a conflict is
        retried with a fresh cache, so nobody else's finalizer is lost)."""
        meta = _meta(service)
        patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": meta.get("resourceVersion")}}
        try:
            await self.client.patch(SERVICES, meta["name"], patch, meta.get("namespace"))
        except ApiError as exc:
            if not exc.is_not_found():
                raise

    async def _patch_status(self, namespace: str, name: str, load_balancer: Obj) -> None:
        try:
            await self.client.patch(SERVICES, name, {"status": {"loadBalancer": load_balancer}}, namespace,
                                    subresource="status")
        except ApiError as exc:
            if not exc.is_not_found():
                raise
