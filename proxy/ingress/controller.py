"""The ingress controller process: informers, two level-triggered loops, the listeners.

Informers: Ingresses, IngressClasses, Services, EndpointSlices, Secrets (all namespaces).

    any of them changes                 -> key "config" on the configuration queue
    an Ingress changes                  -> its key on the status queue
    an IngressClass changes             -> every Ingress's key (which ones are ours may change)

`sync_config` (one key, so one rebuild at a time, and bursts of events collapse into one)
builds the routing table from the Ingresses we serve, resolves every backend to ready
endpoints, loads the TLS Secrets and swaps the whole configuration into the data plane:
ingress-nginx's sync loop, minus writing nginx.conf. Problems it finds (bad annotations,
bad regexes, missing or invalid TLS Secrets) are kept per Ingress.

`sync_ingress(key)` makes one Ingress's status and Events right: served Ingresses get
status.loadBalancer.ingress [{ip: <publish address>}] (with `ports` when the listeners are
not on 80/443) and a `Normal Sync "Scheduled for sync"` Event per new generation, as
ingress-nginx records; problems become Warning Sync Events. An Ingress we stop serving
(class changed) gets our address taken out of its status again, and so do all of them
when the controller stops cleanly (ingress-nginx's --update-status-on-shutdown).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from minikube_py.client import (
    ENDPOINTSLICES,
    INGRESSES,
    NORMAL,
    SECRETS,
    SERVICES,
    WARNING,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    EventHandler,
    EventRecorder,
    RealClock,
    SharedInformerFactory,
    WorkQueue,
    enqueue_mapped,
    key_of,
    split_key,
)
from proxy.ingress.classes import CONTROLLER_CLASS, INGRESSCLASSES, ClassFilter, ensure_ingress_class
from proxy.ingress.metrics import Metrics, metrics_app
from proxy.ingress.proxying import Dataplane, Listener
from proxy.ingress.routes import build_table
from proxy.ingress.tls import Certificates
from proxy.ingress.upstreams import build_upstreams

log = logging.getLogger("proxy.ingress")

Obj = dict[str, Any]
CONFIG_KEY = "config"
COMPONENT = "mkp-ingress-controller"


def default_ports() -> tuple[int, int]:
    """80/443 as root, else 8080/8443 (unprivileged ports)."""
    return (80, 443) if os.geteuid() == 0 else (8080, 8443)


@dataclass(frozen=True)
class IngressOptions:
    address: str = "127.0.0.1"
    http_port: int = field(default_factory=lambda: default_ports()[0])  # 0: any free port
    https_port: int = field(default_factory=lambda: default_ports()[1])  # 0: any free port
    ingress_class: str = "mkp"
    controller_class: str = CONTROLLER_CLASS
    publish_address: str | None = None  # default: --address (127.0.0.1 when that is 0.0.0.0)
    metrics_bind_address: str = "127.0.0.1:10254"  # "" for none
    update_status_on_shutdown: bool = True  # take our address out of the Ingresses on a clean stop

    def publish(self) -> str:
        if self.publish_address:
            return self.publish_address
        return "127.0.0.1" if self.address in ("0.0.0.0", "::", "") else self.address


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


class IngressController:
    """One controller of IngressClass `options.ingress_class`. `run()` until cancelled."""

    def __init__(self, client: ApiClient, options: IngressOptions | None = None, *, clock: Clock | None = None) -> None:
        self.client = client
        self.options = options or IngressOptions()
        self.clock = clock or RealClock()
        self.factory = SharedInformerFactory(client, clock=self.clock)
        self.ingresses = self.factory.informer(INGRESSES)
        self.classes = self.factory.informer(INGRESSCLASSES)
        self.services = self.factory.informer(SERVICES)
        self.slices = self.factory.informer(ENDPOINTSLICES)
        self.secrets = self.factory.informer(SECRETS)
        self.filter = ClassFilter(self.classes.lister, self.options.ingress_class, self.options.controller_class)
        self.config_queue: WorkQueue[str] = WorkQueue("ingress-config", clock=self.clock)
        self.status_queue: WorkQueue[str] = WorkQueue("ingress-status", clock=self.clock)
        self.recorder = EventRecorder(client, COMPONENT, clock=self.clock)
        self.metrics = Metrics(self.options.controller_class)
        self.certificates = Certificates()
        self.dataplane = Dataplane(self.metrics, https_port=self.options.https_port)
        self.http = Listener("http", self.options.http_port)
        self.https = Listener("https", self.options.https_port)
        self.metrics_port = 0
        self.problems: dict[str, list[str]] = {}  # per Ingress key, from the last sync_config
        self._synced_generation: dict[str, tuple[str, int, str]] = {}
        self._warned: dict[str, list[str]] = {}
        self._runners: list[web.BaseRunner] = []
        self._ready = False
        self._wire()

    def _wire(self) -> None:
        config = EventHandler(on_add=lambda _o: self.config_queue.add(CONFIG_KEY),
                              on_update=lambda _o, _n: self.config_queue.add(CONFIG_KEY),
                              on_delete=lambda _o: self.config_queue.add(CONFIG_KEY))
        for informer in (self.ingresses, self.classes, self.services, self.slices, self.secrets):
            informer.add_event_handler(config)
        self.ingresses.add_event_handler(enqueue_mapped(self.status_queue, lambda obj: [key_of(obj)]))
        self.classes.add_event_handler(enqueue_mapped(
            self.status_queue, lambda _obj: [key_of(i) for i in self.ingresses.lister.list()]))

    # -- lifecycle ------------------------------------------------------------------------

    def healthy(self) -> bool:
        return self._ready

    async def run(self) -> None:
        """Ensure the IngressClass, sync the caches, serve, and reconcile until cancelled."""
        await ensure_ingress_class(self.client, self.options.ingress_class, self.options.controller_class)
        self.factory.start()
        try:
            await self.factory.wait_for_cache_sync()
            await self.sync_config(CONFIG_KEY)
            await self.start_listeners()
            self._ready = True
            loops = [Controller("ingress-config", self.config_queue, self.sync_config),
                     Controller("ingress-status", self.status_queue, self.sync_ingress, workers=2)]
            await asyncio.gather(*(loop.run() for loop in loops))
        finally:
            was_ready, self._ready = self._ready, False
            if was_ready and self.options.update_status_on_shutdown:
                await self.clear_statuses()
            await self.stop()

    async def start_listeners(self) -> None:
        address = self.options.address
        for listener, ssl_context in ((self.http, None), (self.https, self.certificates.default)):
            runner = web.ServerRunner(web.Server(self.dataplane.handler(listener), access_log=None),
                                      handle_signals=False, shutdown_timeout=1.0)
            await runner.setup()
            self._runners.append(runner)
            await web.TCPSite(runner, address, listener.port, ssl_context=ssl_context,
                              reuse_address=True).start()
            listener.port = runner.addresses[0][1]
        self.dataplane.https_port = self.https.port
        log.info("ingress controller serving http://%s:%d and https://%s:%d", address, self.http.port,
                 address, self.https.port)
        if self.options.metrics_bind_address:
            host, port = _host_port(self.options.metrics_bind_address)
            runner = web.AppRunner(metrics_app(self.metrics, self.healthy), access_log=None, handle_signals=False,
                                   shutdown_timeout=1.0)
            await runner.setup()
            self._runners.append(runner)
            await web.TCPSite(runner, host, port, reuse_address=True).start()
            self.metrics_port = runner.addresses[0][1]
            log.info("metrics and health checks on http://%s:%d/metrics, /healthz", host, self.metrics_port)

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        await self.dataplane.close()
        await self.recorder.close()
        await self.factory.shutdown()

    # -- the configuration -----------------------------------------------------------------

    async def sync_config(self, _key: str) -> None:
        served = [i for i in self.ingresses.lister.list() if self.filter.serves(i)]
        table = build_table(served)
        upstreams = build_upstreams(table.backends(), self.services.lister, self.slices.lister,
                                    previous=self.dataplane.upstreams)
        tls_problems = self.certificates.update(table, self.secrets.lister)
        self.dataplane.configure(table, upstreams)
        self.metrics.reloaded(True)
        problems: dict[str, list[str]] = {}
        for ing in served:
            key, namespace = key_of(ing), (ing.get("metadata") or {}).get("namespace", "")
            found = list(table.errors.get(split_key(key), []))
            secrets = {t.get("secretName") for t in (ing.get("spec") or {}).get("tls") or []}
            found += [m for (ns, name), m in tls_problems.items() if ns == namespace and name in secrets]
            if found:
                problems[key] = found
        for key in set(problems) | set(self.problems):
            if problems.get(key) != self.problems.get(key):
                self.status_queue.add(key)
        self.problems = problems
        log.debug("configuration: %d ingresses, %d servers, %d upstreams", len(served), len(table.servers),
                  len(upstreams))

    # -- one Ingress: status and events ------------------------------------------------------

    def desired_status(self) -> list[Obj]:
        address = self.options.publish()
        try:
            ipaddress.ip_address(address)
            entry: Obj = {"ip": address}
        except ValueError:
            entry = {"hostname": address}
        if (self.http.port, self.https.port) != (80, 443):
            entry["ports"] = [{"port": self.http.port, "protocol": "TCP"}, {"port": self.https.port, "protocol": "TCP"}]
        return [entry]

    async def sync_ingress(self, key: str) -> None:
        namespace, name = split_key(key)
        ing = self.ingresses.lister.get(name, namespace)
        if ing is None:
            self._synced_generation.pop(key, None)
            self._warned.pop(key, None)
            return
        current = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        desired = self.desired_status()
        if not self.filter.serves(ing):
            self._synced_generation.pop(key, None)
            if current == desired:  # ours: we wrote it
                await self._write_status(ing, [])
            return
        self._record_events(key, ing)
        if current != desired:
            await self._write_status(ing, desired)

    def _record_events(self, key: str, ing: Obj) -> None:
        meta = ing.get("metadata") or {}
        annotations = str(sorted((meta.get("annotations") or {}).items()))
        signature = (str(meta.get("uid")), int(meta.get("generation") or 0), annotations)
        if self._synced_generation.get(key) != signature:
            self._synced_generation[key] = signature
            self.recorder.event(ing, NORMAL, "Sync", "Scheduled for sync")
        problems = self.problems.get(key, [])
        if problems != self._warned.get(key):
            for message in problems:
                if message not in self._warned.get(key, []):
                    self.recorder.event(ing, WARNING, "Sync", message)
            self._warned[key] = problems

    async def clear_statuses(self, timeout: float = 5.0) -> None:
        """ingress-nginx's --update-status-on-shutdown: a controller going away takes its
        address out of the Ingresses it served, so none points at a dead listener."""
        desired = self.desired_status()
        ours = [i for i in self.ingresses.lister.list()
                if ((i.get("status") or {}).get("loadBalancer") or {}).get("ingress") == desired]
        try:
            await asyncio.wait_for(asyncio.gather(*(self._write_status(i, []) for i in ours)), timeout)
        except (TimeoutError, ApiError, OSError) as exc:
            log.warning("could not clear the status of every Ingress on shutdown: %s", exc)

    async def _write_status(self, ing: Obj, entries: list[Obj]) -> None:
        meta = ing["metadata"]
        patch = {"status": {"loadBalancer": {"ingress": entries or None}}}
        try:
            await self.client.patch(INGRESSES, meta["name"], patch, meta["namespace"], subresource="status")
        except ApiError as exc:
            if not exc.is_not_found():
                raise
