"""The process kubelet: one node whose pods run as real processes.

`Kubelet` wires the node half (registration, Lease, status: the same `NodeAgent` fake
nodes use, with this host's capacity and a `NodeProfile` of its own) and the pod half:
an informer on the pods bound to this node, a work queue keyed by namespace/name and a
`PodWorker` per pod uid that makes the runtime match the spec (`kubelet.podworker`).
Around them: the image store, the volume manager, the pod network (CNI, loopback or
bridge: kubelet.podnetwork), pods' DNS settings (kubelet.dnsconfig), the prober, and
the kubelet's own HTTP server (logs, exec, attach, port-forward, stats), which the
API server calls for `kubectl logs/exec/port-forward`.

Restarting the kubelet keeps pods running: at start it lists the runtime's containers
(their shims outlived the old process), hands each pod's to its worker (`adopt`), and
kills only containers whose pod no longer exists (housekeeping, every few seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubelet.config import KubeletConfig
from kubelet.fake.config import COMPONENT, FIELD_MANAGER
from kubelet.fake.nodes import NodeAgent
from kubelet.podworker import DNSSettings, PodContext, PodWorker
from minikube_py.client import (
    CONFIGMAPS,
    NODES,
    PODS,
    SECRETS,
    SERVICES,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    EventHandler,
    EventRecorder,
    ItemExponentialFailureRateLimiter,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
    key_of,
    split_key,
)
from minikube_py.client.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES

log = logging.getLogger("kubelet")

Obj = dict[str, Any]
HOUSEKEEPING_SECONDS = 2.0


class ObjectSource:
    """ConfigMaps and Secrets from informers (what the kubelet's watch-based managers
    give), PVCs and PVs by GET."""

    def __init__(self, client: ApiClient, configmaps: Any, secrets: Any) -> None:
        self.client = client
        self.informers = {"configmaps": configmaps, "secrets": secrets}

    async def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        informer = self.informers.get(kind)
        if informer is not None:
            return informer.lister.get(name, namespace)
        resource = {"persistentvolumeclaims": PERSISTENTVOLUMECLAIMS, "persistentvolumes": PERSISTENTVOLUMES}[kind]
        try:
            return await self.client.get(resource, name, namespace if resource.namespaced else None)
        except ApiError as exc:
            if exc.is_not_found():
                return None
            raise


def _runtime_for(config: KubeletConfig, run_root: Path) -> Any:
    if config.runtime == "fake":
        from kubelet.runtime.fake import FakeRuntime
        return FakeRuntime()
    if config.runtime == "namespaces":
        from kubelet.runtime.namespaces import NamespacesRuntime
        return NamespacesRuntime(run_root, config.node)
    from kubelet.runtime.process import ProcessRuntime
    return ProcessRuntime(run_root)


class Kubelet:
    """One node: its Node object and the processes of its pods."""

    def __init__(self, client: ApiClient, config: KubeletConfig, *, clock: Clock | None = None,
                 runtime: Any = None, images: Any = None, network: Any = None) -> None:
        from kubelet.images import ImageStore
        from kubelet.probes import ProbeManager
        from kubelet.volumes import VolumeManager

        self.client = client
        self.config = config
        self.clock = clock or RealClock()
        config.root.mkdir(parents=True, exist_ok=True)
        self.factory = SharedInformerFactory(client, clock=self.clock)
        self.pods = self.factory.informer(PODS, field_selector=f"spec.nodeName={config.node}")
        self.configmaps = self.factory.informer(CONFIGMAPS)
        self.secrets = self.factory.informer(SECRETS)
        self.services = self.factory.informer(SERVICES)
        self.nodes = self.factory.informer(NODES, field_selector=f"metadata.name={config.node}")
        self.port = config.port
        self.images = images or ImageStore(config.root)
        self.node_agent = NodeAgent(client, [config.node], config=config.node_config(), clock=self.clock,
                                    informer=self.nodes, on_ready=self._node_ready,
                                    profile=config.profile(self.port, self._node_images))
        self.recorder = EventRecorder(client, COMPONENT, config.node, clock=self.clock)
        self.run_root = config.run_root()
        self.runtime = runtime or _runtime_for(config, self.run_root)
        self.source = ObjectSource(client, self.configmaps, self.secrets)
        self.volumes = VolumeManager(config.root, self.source)
        self.network = network or self._network()
        self.queue: WorkQueue[str] = WorkQueue("kubelet-pods", clock=self.clock,
                                               rate_limiter=ItemExponentialFailureRateLimiter(0.05, 10.0))
        self.probes = ProbeManager(runtime=self.runtime, recorder=self.recorder, clock=self.clock,
                                   on_change=self._probe_changed)
        self.workers: dict[str, PodWorker] = {}  # by pod uid
        self.by_key: dict[str, str] = {}  # namespace/name -> uid of the worker under that name
        self.adoptable: dict[str, list[Any]] = {}  # pod uid -> runtime containers found at start
        self.ctx = PodContext(client=client, node_name=config.node, root=config.root, run_root=self.run_root,
                              runtime=self.runtime,
                              images=self.images, volumes=self.volumes, network=self.network, probes=self.probes,
                              recorder=self.recorder, env_for=self._env_for, host_ip=self.host_ip,
                              enqueue=self.queue.add, clock=self.clock, dns=self._dns())
        self._ready = asyncio.Event()
        self._server: Any = None
        self.pods.add_event_handler(EventHandler(self._on_pod, lambda old, new: self._on_pod(new), self._on_pod))
        for informer in (self.configmaps, self.secrets):
            informer.add_event_handler(EventHandler(self._on_config, lambda old, new: self._on_config(new),
                                                    lambda obj: None))

    # -- collaborators -----------------------------------------------------------------

    def _network(self) -> Any:
        from kubelet.podnetwork import pod_network
        return pod_network(self.config, self.run_root, self.pod_cidr)

    def _dns(self) -> DNSSettings | None:
        """Pod DNS settings, for a runtime that gives pods their own /etc/resolv.conf."""
        if getattr(self.runtime, "name", None) != "namespaces":
            return None
        return DNSSettings(tuple(self.config.cluster_dns), self.config.cluster_domain, self.config.resolv_conf)

    def _node_images(self) -> list[Obj]:
        try:
            return list(self.images.node_status_images())
        except Exception:  # noqa: BLE001 - an unreadable store must not stop node status
            log.exception("listing the node's images")
            return []

    def handle(self) -> Any:
        return self.node_agent.handles[self.config.node]

    def host_ip(self) -> str | None:
        return self.handle().internal_ip

    def pod_cidr(self) -> str | None:
        node = self.handle().node or {}
        return (node.get("spec") or {}).get("podCIDR")

    async def _env_for(self, pod: Obj, container: Obj, pod_ip: str | None) -> dict[str, str]:
        from kubelet.envvars import container_env
        namespace = (pod.get("metadata") or {}).get("namespace")
        services = [s for s in self.services.lister.list() if (s.get("metadata") or {}).get("namespace") == namespace
                    or ((s.get("metadata") or {}).get("namespace") == "default"
                        and (s.get("metadata") or {}).get("name") == "kubernetes")]
        env = await container_env(pod, container, source=self.source, node_ip=self.host_ip() or "",
                                  pod_ip=pod_ip or "", services=services)
        # POD_IP tells an app which address is its own (unless the pod sets POD_IP
        # itself). Under the loopback pod network containers share the host's network,
        # so the built-in images (podinfo, nginx) bind MKP_POD_IP rather than every
        # address; in the bridge network a pod has its own namespace and they bind as
        # usual (also localhost, where port-forward connects).
        if pod_ip:
            env.setdefault("POD_IP", pod_ip)
            if self.config.network == "loopback":
                env["MKP_POD_IP"] = pod_ip
        return env

    # -- events -> keys -------------------------------------------------------------------

    def _on_pod(self, pod: Any) -> None:
        self.queue.add(key_of(pod))

    def _on_config(self, obj: Obj) -> None:
        """A ConfigMap or Secret changed: resync the pods of its namespace that use it
        (their volume files and, for pods not yet started, env)."""
        namespace = (obj.get("metadata") or {}).get("namespace")
        for worker in self.workers.values():
            if (worker.pod.get("metadata") or {}).get("namespace") == namespace:
                worker.refresh_volumes_soon()
                self.queue.add(worker.key)

    def _probe_changed(self, pod_uid: str) -> None:
        worker = self.workers.get(pod_uid)
        if worker is not None:
            self.queue.add(worker.key)

    def _node_ready(self, name: str) -> None:
        self._ready.set()
        for pod in self.pods.lister.list():
            self.queue.add(key_of(pod))

    # -- reconcile -----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        if not self._ready.is_set():
            return Result(requeue_after=0.2)
        namespace, name = split_key(key)
        pod = self.pods.lister.get(name, namespace)
        uid = ((pod or {}).get("metadata") or {}).get("uid")
        old_uid = self.by_key.get(key)
        if old_uid is not None and old_uid != uid:
            result = await self._finish(old_uid)
            if result is not None:
                return result
        if pod is None:
            return None
        worker = self.workers.get(uid)
        if worker is None:
            worker = PodWorker(self.ctx, pod)
            worker.adopt(self.adoptable.pop(uid, []))
            self.workers[uid] = worker
            self.by_key[key] = uid
        result = await worker.sync(pod)
        if worker.deleted and worker.terminated:
            await self._finish(uid)
            return None
        return result

    async def _finish(self, uid: str) -> Result | None:
        """Stop the worker of a pod whose object is gone; None once it is cleaned up."""
        worker = self.workers.get(uid)
        if worker is None:
            return None
        if not worker.terminated:
            result = await worker.sync(None)
            if not worker.terminated:
                return result or Result(requeue_after=0.2)
        await worker.cleanup_files()
        self.workers.pop(uid, None)
        if self.by_key.get(worker.key) == uid:
            self.by_key.pop(worker.key, None)
        return None

    # -- housekeeping -----------------------------------------------------------------------

    async def _adopt_existing(self) -> None:
        try:
            states = await self.runtime.list_containers()
        except Exception:  # noqa: BLE001 - an empty or unreadable root: nothing to adopt
            log.exception("listing the runtime's containers")
            return
        for state in states:
            self.adoptable.setdefault(state.pod_uid, []).append(state)
        if states:
            log.info("found %d containers of %d pods from before", len(states), len(self.adoptable))

    async def _housekeeping(self) -> None:
        """Kill containers whose pod is gone (deleted while this kubelet was down)."""
        await self.pods.wait_synced()
        while True:
            live = {((p.get("metadata") or {}).get("uid")) for p in self.pods.lister.list()}
            for uid in list(self.adoptable):
                if uid not in live:
                    for state in self.adoptable.pop(uid):
                        log.info("removing container %s of gone pod %s", state.id, uid)
                        with contextlib.suppress(Exception):
                            await self.runtime.kill(state.id, signal.SIGKILL)
                            await self.runtime.wait(state.id)
                        with contextlib.suppress(Exception):
                            await self.runtime.remove_container(state.id)
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    # -- the server ---------------------------------------------------------------------

    async def _start_server(self) -> None:
        from kubelet.server.app import serve
        address = self.host_ip() or "127.0.0.1"
        try:
            self._server, self.port = await serve(self.provider(), address, self.config.port)
        except OSError as exc:  # the port is taken on that address: any free one (published in the Node)
            log.warning("kubelet port %d on %s: %s; using a free port", self.config.port, address, exc)
            self._server, self.port = await serve(self.provider(), address, 0)
        from dataclasses import replace
        self.node_agent.profile = replace(self.node_agent.profile, kubelet_port=self.port)
        self.node_agent.queue.add(self.config.node)
        log.info("kubelet server on http://%s:%d", address, self.port)

    def provider(self) -> Any:
        from kubelet.provider import Provider
        return Provider(self)

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        # Pod starts do their file system work on worker threads (slow disks); allow a
        # burst of them to overlap.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32, thread_name_prefix="kubelet-io"))
        await self._adopt_existing()
        self.factory.start()
        self.node_agent.enqueue_all()
        controllers = [self.node_agent.controller(),
                       Controller("kubelet-pods", self.queue, self.reconcile, workers=self.config.pod_workers,
                                  wait_for=[self.pods, self.configmaps, self.secrets, self.services])]
        log.info("kubelet for node %s starting (runtime %s, network %s, root %s)", self.config.node,
                 self.config.runtime, self.config.network, self.config.root)
        try:
            async with asyncio.TaskGroup() as group:
                for controller in controllers:
                    group.create_task(controller.run(), name=f"controller {controller.name}")
                group.create_task(self._housekeeping(), name="housekeeping")
                await self._ready.wait()
                await self._start_server()
        finally:
            for worker in list(self.workers.values()):
                await worker.close()
            with contextlib.suppress(Exception):
                await self.probes.close()
            if self._server is not None:
                with contextlib.suppress(Exception):
                    await self._server.cleanup()
            await self.factory.shutdown()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.recorder.close(), 2.0)


def user_agent() -> str:
    from kubelet.fake.config import KUBELET_VERSION, host_architecture
    return f"kubelet/{KUBELET_VERSION} (linux/{host_architecture()}) mkp"


async def serve(config: KubeletConfig, *, kubeconfig: str | None = None, server: str | None = None) -> None:
    from minikube_py.client import client_for, run_until_signalled
    client = client_for(kubeconfig, server, field_manager=FIELD_MANAGER, user_agent=user_agent())
    await run_until_signalled(client, Kubelet(client, config).run, f"kubelet {config.node}")


def main(config: KubeletConfig, *, kubeconfig: str | None = None, server: str | None = None) -> None:
    import uvloop

    from minikube_py.client import setup_process
    setup_process()
    uvloop.run(serve(config, kubeconfig=kubeconfig, server=server))

