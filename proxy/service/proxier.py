"""One node's service proxy: informers on Services, EndpointSlices and its own Node, a
work queue of Service keys, and a reconcile that makes the open listeners and the
endpoint lists match what the caches say (kube-proxy's role, in userspace).

Level-triggered like every controller here: an event only enqueues a key (a slice's
`kubernetes.io/service-name`, a Service's own key, every Service when the Node's labels
change); `reconcile(key)` reads the caches, plans (proxy.service.model) and applies:

- endpoint lists of the Service's groups are replaced, so the next new connection
  already follows a readiness change (within a watch event's latency);
- a frontend is open while its Service port has a usable endpoint anywhere; with none
  the socket is closed, so the kernel refuses the connection (RST, or ICMP port
  unreachable for UDP) exactly where kube-proxy's REJECT rule would;
- a frontend another Service already holds, or that cannot be bound (a port below 1024
  without root, an address not local), is logged and retried every RETRY_SECONDS;
  an externalIP that is not local is simply not served here (logged once).

Every listener opened or closed is logged with the reason. Closing a listener leaves
its established TCP connections alone, as removing a kube-proxy rule leaves conntrack's
established flows.

Services and slices labelled `service.kubernetes.io/service-proxy-name` belong to
another proxy, and slices of headless Services are not watched, as in kube-proxy.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import time
from datetime import UTC, datetime
from typing import Any

from minikube_py.client import (
    ENDPOINTSLICES,
    NODES,
    SERVICES,
    Clock,
    Controller,
    DeletedFinalStateUnknown,
    EventHandler,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
    key_of,
    split_key,
)
from proxy.service.balancer import Balancer
from proxy.service.healthcheck import HealthCheck
from proxy.service.listeners import ConnectionPolicy, Listener, Target, bind_socket
from proxy.service.metrics import ProxyMetrics
from proxy.service.model import EXTERNAL, EXTERNAL_IP, Frontend, ProxyConfig, Route, ServicePlan, plan_service
from proxy.service.udp import DEFAULT_IDLE_TIMEOUT

log = logging.getLogger("proxy.service")

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SERVICE_SELECTOR = "!service.kubernetes.io/service-proxy-name"
SLICE_SELECTOR = "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name"
SLICES_BY_SERVICE = "proxy/slices-by-service"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
RETRY_SECONDS = 10.0
NOT_LOCAL = "not local"
Group = tuple[Any, str, str]


def slice_service_key(obj: Obj) -> list[str]:
    meta = obj.get("metadata") or {}
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace')}/{service}"] if service else []


def parse_time(value: str) -> float | None:
    """RFC 3339 (nanoseconds allowed) as Unix seconds; None if it does not parse."""
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # fromisoformat takes at most microseconds
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _unwrap(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


class ServiceProxy:
    """Serves one node's ClusterIPs, NodePorts, load-balancer and external IPs."""

    def __init__(self, informers: SharedInformerFactory, config: ProxyConfig, *,
                 policy: ConnectionPolicy | None = None, metrics: ProxyMetrics | None = None,
                 clock: Clock | None = None, udp_idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.informers = informers
        self.config = config
        self.policy = policy
        self.metrics = metrics or ProxyMetrics()
        self.clock = clock or RealClock()
        self.udp_idle_timeout = udp_idle_timeout
        self.services = informers.informer(SERVICES, label_selector=SERVICE_SELECTOR)
        self.slices = informers.informer(ENDPOINTSLICES, label_selector=SLICE_SELECTOR)
        self.nodes = informers.informer(NODES, field_selector=f"metadata.name={config.node_name}")
        if not self.slices.store.has_indexer(SLICES_BY_SERVICE):
            self.slices.add_indexer(SLICES_BY_SERVICE, slice_service_key)
        self.queue: WorkQueue[str] = WorkQueue("service-proxy", clock=self.clock)
        self.listeners: dict[Frontend, Listener] = {}
        self.owned: dict[str, set[Frontend]] = {}  # Service key -> frontends it holds
        self.targets: dict[Group, Target] = {}
        self.groups_of: dict[str, set[Group]] = {}
        self.failed: dict[Frontend, str] = {}  # frontend -> last bind error logged
        self.wanted: dict[str, set[Frontend]] = {}  # Service key -> frontends it asked for last
        self.health: dict[Frontend, tuple[str, asyncio.AbstractServer]] = {}  # healthCheckNodePort servers
        self.triggers: dict[str, dict[str, str]] = {}  # Service key -> slice name -> trigger time seen
        self.started = time.time()
        self.services.add_event_handler(EventHandler(
            on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new), on_delete=self._enqueue))
        self.slices.add_event_handler(EventHandler(
            on_add=self._slice_changed, on_update=lambda old, new: self._slice_changed(old, new),
            on_delete=self._slice_changed))
        self.nodes.add_event_handler(EventHandler(on_add=self._node_changed, on_update=self._node_updated))
        self.controller = Controller("service-proxy", self.queue, self.reconcile, workers=1,
                                     wait_for=[self.services, self.slices, self.nodes])

    # -- lifecycle -------------------------------------------------------------------------
    async def run(self) -> None:
        """Start the informers, serve until cancelled, then close every listener."""
        self.informers.start()
        try:
            await self.informers.wait_for_cache_sync()
            self.metrics.synced(0.0)  # caches synced: healthy even with no Service at all
            await self.controller.run()
        finally:
            self.close()

    def synced(self) -> bool:
        return all(i.has_synced() for i in (self.services, self.slices, self.nodes))

    def close(self) -> None:
        for frontend in list(self.listeners):
            self._close(frontend, "proxy stopping")
        for frontend in list(self.health):
            self._close_health_check(frontend)

    # -- events -> keys --------------------------------------------------------------------
    def _enqueue(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.queue.add(key_of(obj))

    def _slice_changed(self, *objs: Obj | DeletedFinalStateUnknown) -> None:
        for obj in objs:
            for key in slice_service_key(_unwrap(obj)):
                self.queue.add(key)

    def _node_changed(self, node: Obj) -> None:
        for service in self.services.lister.list():
            self.queue.add(key_of(service))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            self._node_changed(new)

    # -- reconcile -------------------------------------------------------------------------
    def plan(self, key: str) -> ServicePlan:
        namespace, name = split_key(key)
        service = self.services.lister.get(name, namespace)
        if service is None:
            return ServicePlan()
        node = self.nodes.lister.get(self.config.node_name)
        labels = ((node or {}).get("metadata") or {}).get("labels") or {}
        return plan_service(service, self.slices.lister.by_index(SLICES_BY_SERVICE, key), self.config, labels)

    async def reconcile(self, key: str) -> Result | None:
        started = time.monotonic()
        plan = self.plan(key)
        self._observe_programming(key)
        self.metrics.service_changes += 1
        self._update_groups(key, plan)
        wanted = {f: r for f, r in plan.frontends.items() if plan.groups[r.group].selection.has_any}
        namespace, name = split_key(key)
        gone = "Service deleted" if self.services.lister.get(name, namespace) is None else None
        for frontend in sorted(self.owned.get(key, set()) - set(wanted)):
            reason = gone or ("no endpoints" if frontend in plan.frontends else "no longer in the Service")
            self._close(frontend, reason)
        retry = False
        for frontend, route in sorted(wanted.items()):
            retry |= not await self._ensure(key, frontend, route)
        for frontend in self.wanted.pop(key, set()) - set(wanted):
            self.failed.pop(frontend, None)  # no longer wanted: forget why it could not be
        if wanted:
            self.wanted[key] = set(wanted)
        retry |= not await self._sync_health_checks(key, plan)
        for line in plan.skipped:
            log.debug("%s", line)
        self.metrics.synced(time.monotonic() - started)
        return Result(requeue_after=RETRY_SECONDS) if retry else None

    def _observe_programming(self, key: str) -> None:
        """Network programming latency: each slice's new last-change-trigger-time, as
        of now (only changes made after the proxy started, as kube-proxy counts)."""
        seen = self.triggers.setdefault(key, {})
        current: dict[str, str] = {}
        now = time.time()
        for slice_obj in self.slices.lister.by_index(SLICES_BY_SERVICE, key):
            meta = slice_obj.get("metadata") or {}
            value = (meta.get("annotations") or {}).get(TRIGGER_TIME_ANNOTATION)
            if not value:
                continue
            current[meta.get("name", "")] = value
            if seen.get(meta.get("name", "")) == value:
                continue
            moment = parse_time(value)
            if moment is not None and moment >= self.started:
                self.metrics.programming.observe(max(0.0, now - moment))
        if current:
            self.triggers[key] = current
        else:
            del self.triggers[key]

    def _update_groups(self, key: str, plan: ServicePlan) -> None:
        for group in self.groups_of.get(key, set()) - set(plan.groups):
            self.targets.pop(group, None)
        self.groups_of[key] = set(plan.groups)
        routes = {r.group: r for r in plan.frontends.values()}
        for group, group_plan in plan.groups.items():
            target = self.targets.get(group)
            if target is None:
                target = Target(routes[group], Balancer(clock=self.clock), self.metrics, self.policy)
                self.targets[group] = target
            if target.balancer.update(group_plan.selection.endpoints, group_plan.affinity_timeout):
                self.metrics.endpoint_changes += 1
                endpoints = ", ".join(map(str, target.balancer.endpoints)) or "none"
                log.info("%s (%s traffic): endpoints %s", group[0], group[1], endpoints)
        if not self.groups_of[key]:
            del self.groups_of[key]

    async def _ensure(self, key: str, frontend: Frontend, route: Route) -> bool:
        """Make `frontend` an open listener of `key`'s route; False to retry later."""
        listener = self.listeners.get(frontend)
        target = self.targets[route.group]
        if listener is not None and listener.owner != key:
            self._failed(frontend, f"already served for {listener.owner}", route)
            return False
        if listener is not None and (listener.route != route or listener.target is not target):
            self._close(frontend, "its Service port changed")
            listener = None
        if listener is not None:
            listener.endpoints_changed(target.balancer.endpoints)
            return True
        try:
            listener = await Listener.open(frontend, route, key, target, udp_idle_timeout=self.udp_idle_timeout)
        except OSError as exc:
            if route.kind == EXTERNAL_IP and exc.errno == errno.EADDRNOTAVAIL:
                # externalIPs are served only where they are local: elsewhere they are
                # someone else's (a router's, another host's), not an error.
                if self.failed.get(frontend) != NOT_LOCAL:
                    log.info("not serving %s for %s: the externalIP is not local", frontend, route.service_port)
                self.failed[frontend] = NOT_LOCAL
                return True
            self.metrics.listener_failures[frontend.protocol] += 1
            self._failed(frontend, exc.strerror or str(exc), route)
            return False
        self.listeners[frontend] = listener
        self.owned.setdefault(key, set()).add(frontend)
        self.failed.pop(frontend, None)
        self.metrics.listeners = len(self.listeners)
        count = len(target.balancer.endpoints)
        log.info("opened listener %s for %s (%s): %s", frontend, route.service_port, route.kind,
                 f"{count} endpoint{'s' * (count != 1)}" if count else "endpoints elsewhere only (traffic policy "
                 "Local): connections are dropped")
        return True

    async def _sync_health_checks(self, key: str, plan: ServicePlan) -> bool:
        """Open and close `key`'s health check servers; False to retry a failed bind."""
        for frontend in [f for f, (owner, _) in self.health.items() if owner == key and f not in plan.health_checks]:
            self._close_health_check(frontend)
        namespace, name = split_key(key)
        ok = True
        for frontend, group in plan.health_checks.items():
            if frontend in self.health:
                continue

            def count(group: Group = group) -> int:
                target = self.targets.get(group)
                return len(target.balancer.endpoints) if target is not None else 0

            try:
                sock = bind_socket(frontend)
                server = await asyncio.get_running_loop().create_server(
                    lambda count=count: HealthCheck(namespace, name, count), sock=sock)
            except OSError as exc:
                self._failed(frontend, exc.strerror or str(exc), Route(group[0], EXTERNAL, "HealthCheck"))
                ok = False
                continue
            self.health[frontend] = (key, server)
            log.info("opened health check %s for %s", frontend, key)
        return ok

    def _close_health_check(self, frontend: Frontend) -> None:
        key, server = self.health.pop(frontend)
        server.close()
        log.info("closed health check %s for %s", frontend, key)

    def _failed(self, frontend: Frontend, why: str, route: Route) -> None:
        """Log a frontend that cannot be served; once per distinct reason."""
        if self.failed.get(frontend) != why:
            log.warning("cannot listen on %s for %s (%s): %s; retrying every %.0fs",
                        frontend, route.service_port, route.kind, why, RETRY_SECONDS)
        self.failed[frontend] = why

    def _close(self, frontend: Frontend, reason: str) -> None:
        listener = self.listeners.pop(frontend, None)
        self.failed.pop(frontend, None)
        if listener is None:
            return
        owned = self.owned.get(listener.owner)
        if owned is not None:
            owned.discard(frontend)
            if not owned:
                del self.owned[listener.owner]
        listener.close()
        self.metrics.listeners = len(self.listeners)
        log.info("closed listener %s for %s (%s): %s", frontend, listener.route.service_port,
                 listener.route.kind, reason)
