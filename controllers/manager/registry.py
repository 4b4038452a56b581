"""Which controllers the controller-manager can run, by name, and how `--controllers` picks.

Names are kube-controller-manager's (`deployment-controller`, `replicaset-controller`);
the short names it still accepts (`deployment`, `replicaset`) are aliases. Every
controller is built the same way, from a `ControllerContext`: the API client, the shared
informer factory, an EventRecorder with the controller's component name, its number of
workers and the clock. So adding a controller is one line in `CONTROLLERS`:

    "job-controller": lambda ctx: JobController(**ctx.standard("job-controller")),

`select_controllers` reads a `--controllers` list as Kubernetes does: `*` enables every
controller that is on by default, `foo` enables foo, `-foo` disables it, and the first
entry naming a controller wins. Unknown names are an error, not a silent no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from controllers.cronjob.controller import CronJobController
from controllers.daemonset.controller import DaemonSetController
from controllers.deployment.controller import DeploymentController
from controllers.disruption.controller import DisruptionController
from controllers.endpoints.controller import EndpointsController
from controllers.endpointslice.controller import EndpointSliceController
from controllers.garbagecollector.controller import GarbageCollector
from controllers.job.controller import JobController
from controllers.job.ttl import TTLAfterFinishedController
from controllers.namespace.controller import NamespaceController
from controllers.nodelifecycle.config import NodeLifecycleConfig
from controllers.nodelifecycle.controller import NodeLifecycleController
from controllers.nodelifecycle.tainteviction import TaintEvictionController
from controllers.podautoscaler.controller import HorizontalPodAutoscalerController
from controllers.podgc.controller import PodGCController
from controllers.replicaset.controller import ReplicaSetController
from controllers.replicaset.replicationcontroller import ReplicationManager
from controllers.serviceaccount.controller import ServiceAccountController
from controllers.servicelb.controller import ServiceLBController
from controllers.statefulset.controller import StatefulSetController
from controllers.volume.binder import PersistentVolumeBinderController
from controllers.volume.protection import PVCProtectionController, PVProtectionController
from controllers.volume.provisioner import LocalPathProvisioner
from minikube_py.client import ApiClient, Clock, EventRecorder, SharedInformerFactory

log = logging.getLogger("controllers.manager")

DEFAULT_WORKERS = 5  # --concurrent-deployment-syncs, --concurrent-replicaset-syncs, ...
RECORDER_CLOSE_TIMEOUT = 5.0  # seconds to flush pending Events on the way out


class RunnableController(Protocol):
    """What the manager runs: `run()` works until cancelled."""

    async def run(self) -> None: ...


@dataclass
class ControllerContext:
    """What every controller is built from; one per leadership term."""

    client: ApiClient
    informers: SharedInformerFactory
    clock: Clock
    concurrency: Mapping[str, int] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)  # other controller-manager flags, by name
    recorders: list[EventRecorder] = field(default_factory=list)

    def recorder(self, component: str) -> EventRecorder:
        """An EventRecorder whose Events say `source.component: <component>`."""
        recorder = EventRecorder(self.client, component, clock=self.clock)
        self.recorders.append(recorder)
        return recorder

    def workers(self, name: str) -> int:
        return int(self.concurrency.get(name, DEFAULT_WORKERS))

    def standard(self, name: str, *, source: str | None = None) -> dict[str, Any]:
        """The keyword arguments every controller takes; its Events say `source`
        (default: the controller's name)."""
        return {"client": self.client, "informers": self.informers, "recorder": self.recorder(source or name),
                "workers": self.workers(name), "clock": self.clock}

    async def close(self) -> None:
        """Flush the Events still queued (bounded: the server may be gone)."""
        for recorder in self.recorders:
            try:
                await asyncio.wait_for(recorder.close(), RECORDER_CLOSE_TIMEOUT)
            except TimeoutError:
                log.warning("gave up flushing events of %s", recorder.component)


ControllerConstructor = Callable[[ControllerContext], RunnableController]

CONTROLLERS: dict[str, ControllerConstructor] = {
    # workloads
    "deployment-controller": lambda ctx: DeploymentController(**ctx.standard("deployment-controller")),
    "replicaset-controller": lambda ctx: ReplicaSetController(**ctx.standard("replicaset-controller")),
    "replicationcontroller-controller": lambda ctx: ReplicationManager(
        **ctx.standard("replicationcontroller-controller", source="replication-controller")),
    "statefulset-controller": lambda ctx: StatefulSetController(**ctx.standard("statefulset-controller")),
    "daemonset-controller": lambda ctx: DaemonSetController(**ctx.standard("daemonset-controller")),
    "job-controller": lambda ctx: JobController(**ctx.standard("job-controller")),
    "ttl-after-finished-controller": lambda ctx: TTLAfterFinishedController(
        **ctx.standard("ttl-after-finished-controller")),
    "cronjob-controller": lambda ctx: CronJobController(**ctx.standard("cronjob-controller")),
    "disruption-controller": lambda ctx: DisruptionController(
        **ctx.standard("disruption-controller", source="controllermanager")),
    "horizontal-pod-autoscaler-controller": lambda ctx: HorizontalPodAutoscalerController(
        **ctx.standard("horizontal-pod-autoscaler-controller", source="horizontal-pod-autoscaler")),
    # clean-up
    "garbage-collector-controller": lambda ctx: GarbageCollector(**ctx.standard("garbage-collector-controller")),
    "namespace-controller": lambda ctx: NamespaceController(**ctx.standard("namespace-controller")),
    "serviceaccount-controller": lambda ctx: ServiceAccountController(**ctx.standard("serviceaccount-controller")),
    "pod-garbage-collector-controller": lambda ctx: PodGCController(
        **ctx.standard("pod-garbage-collector-controller")),
    # services and nodes (Event sources as Kubernetes names them)
    "endpointslice-controller": lambda ctx: EndpointSliceController(
        **ctx.standard("endpointslice-controller", source="endpoint-slice-controller"),
        max_endpoints_per_slice=int(ctx.options.get("max_endpoints_per_slice") or 100)),
    "endpoints-controller": lambda ctx: EndpointsController(
        **ctx.standard("endpoints-controller", source="endpoint-controller")),
    "node-lifecycle-controller": lambda ctx: NodeLifecycleController(
        **ctx.standard("node-lifecycle-controller", source="node-controller"),
        config=NodeLifecycleConfig.from_options(ctx.options)),
    "taint-eviction-controller": lambda ctx: TaintEvictionController(**ctx.standard("taint-eviction-controller")),
    "service-lb-controller": lambda ctx: ServiceLBController(
        **ctx.standard("service-lb-controller", source="service-controller")),
    # storage
    "persistentvolume-binder-controller": PersistentVolumeBinderController.from_context,
    "local-path-provisioner": LocalPathProvisioner.from_context,
    "persistentvolumeclaim-protection-controller": lambda ctx: PVCProtectionController(
        **ctx.standard("persistentvolumeclaim-protection-controller")),
    "persistentvolume-protection-controller": lambda ctx: PVProtectionController(
        **ctx.standard("persistentvolume-protection-controller")),
}
ALIASES: dict[str, str] = {
    "deployment": "deployment-controller", "replicaset": "replicaset-controller",
    "statefulset": "statefulset-controller", "daemonset": "daemonset-controller", "job": "job-controller",
    "ttl-after-finished": "ttl-after-finished-controller", "cronjob": "cronjob-controller",
    "garbagecollector": "garbage-collector-controller", "namespace": "namespace-controller",
    "serviceaccount": "serviceaccount-controller", "podgc": "pod-garbage-collector-controller",
    "endpointslice": "endpointslice-controller", "endpoint": "endpoints-controller",
    "nodelifecycle": "node-lifecycle-controller", "persistentvolume-binder": "persistentvolume-binder-controller",
    "pvc-protection": "persistentvolumeclaim-protection-controller",
    "pv-protection": "persistentvolume-protection-controller",
    "horizontalpodautoscaling": "horizontal-pod-autoscaler-controller",
    "replicationcontroller": "replicationcontroller-controller",
    "disruption": "disruption-controller",
}
DISABLED_BY_DEFAULT: frozenset[str] = frozenset()


def canonical(name: str) -> str:
    """The registered name for `name` or its alias; ValueError if unknown."""
    name = ALIASES.get(name, name)
    if name not in CONTROLLERS:
        known = ", ".join(sorted([*CONTROLLERS, *ALIASES]))
        raise ValueError(f"unknown controller {name!r} (known: {known})")
    return name


def select_controllers(spec: str | Iterable[str] | None = None) -> list[str]:
    """The controllers a `--controllers` value enables, in registry order.

    `spec` is a comma-separated string or a list of entries; None means `*`.
    """
    if spec is None:
        entries = ["*"]
    elif isinstance(spec, str):
        entries = [e.strip() for e in spec.split(",") if e.strip()]
    else:
        entries = [e.strip() for e in spec if e.strip()]
    choices: dict[str, bool] = {}
    star = False
    for entry in entries:
        if entry == "*":
            star = True
            continue
        enabled = not entry.startswith("-")
        choices.setdefault(canonical(entry.lstrip("-")), enabled)
    return [name for name in CONTROLLERS
            if choices.get(name, star and name not in DISABLED_BY_DEFAULT)]
