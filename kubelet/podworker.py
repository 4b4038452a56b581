"""One pod's worker: make what runs match the pod's spec, then report it.

`PodWorker.sync(pod)` is level-triggered, like the kubelet's SyncPod: it compares the
spec with what the runtime says runs (its `ContainerRecord`s) and does the next steps,
never sleeping; whatever must happen later (a back-off ending, a grace period running
out, a probe's verdict, a container exiting) comes back as a requeue or an event that
enqueues the pod again. One sync:

1. a pod with a deletionTimestamp (or gone from the API) is terminated: preStop hooks,
   SIGTERM, SIGKILL when the grace period is over, then volumes, network and sandbox
   are released, the final status written and the object deleted (grace 0);
2. sandbox: pod directories, the pod network (an IP and a namespace from CNI, or the
   host's for hostNetwork), the pod's resolv.conf (kubelet.dnsconfig), the runtime sandbox;
3. volumes (a missing ConfigMap: FailedMount, retried);
4. init containers in order (sidecars, restartPolicy Always, start and keep running);
5. app containers: start those not running, restart the ones that exited as
   restartPolicy says (CrashLoopBackOff: 10 s doubling to 5 min, reset after 10 min
   of running), kill and restart those whose liveness probe failed;
6. status: written when it differs from what was last written.

Events have the kubelet's reasons and messages: Pulling, Pulled, Failed, BackOff,
Created, Started, Killing, Unhealthy (probes), FailedMount, FailedPostStartHook,
FailedPreStopHook.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubelet.envvars import expand, mapping_for
from kubelet.fake.podstatus import go_duration, restart_backoff, state_key, status_patch
from kubelet.runtime.base import EXITED, ContainerConfig, ContainerState, Mount, Resources, Sandbox
from kubelet.runtime.base import RuntimeError_ as RuntimeFailure
from kubelet.runtime.logs import pod_log_dir
from kubelet.status import ContainerRecord, PodView, pod_status
from minikube_py.api import QuantityError, parse_quantity
from minikube_py.client import NORMAL, PODS, WARNING, ApiError, Result

log = logging.getLogger("kubelet.pods")

Obj = dict[str, Any]
BACKOFF_RESET_SECONDS = 600.0  # a container that ran 10 minutes starts its back-off afresh
ORPHAN_GRACE_SECONDS = 2.0  # pods force-deleted from the API: SIGTERM, then SIGKILL after this
DEFAULT_GRACE_SECONDS = 30
NETWORK_ANNOTATION = "mkp.dev/network"  # "none": a namespace with only lo, as Docker's --network none
NETWORK_NONE = "none"
RESYNC_SECONDS = 10.0


def _meta(pod: Obj) -> Obj:
    return pod.get("metadata") or {}


def pod_key(pod: Obj) -> str:
    meta = _meta(pod)
    return f"{meta.get('namespace')}/{meta.get('name')}"


def resources_of(container: Obj) -> Resources:
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}

    def millis(value: Any) -> int | None:
        if value is None:
            return None
        try:
            return int(parse_quantity(str(value)).milli_value())
        except (QuantityError, AttributeError):
            return None

    def size(value: Any) -> int | None:
        if value is None:
            return None
        try:
            return int(parse_quantity(str(value)).int_value())
        except (QuantityError, AttributeError):
            return None

    return Resources(memory_limit=size(limits.get("memory")), cpu_limit_millis=millis(limits.get("cpu")),
                     cpu_request_millis=millis(requests.get("cpu")), memory_request=size(requests.get("memory")))


def should_restart(policy: str, exit_code: int | None) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


@dataclass(frozen=True)
class DNSSettings:
    """The kubelet's --cluster-dns, --cluster-domain and --resolv-conf."""

    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    resolv_conf: Path = Path("/etc/resolv.conf")


@dataclass
class PodContext:
    """What every pod worker of a kubelet shares (set up by `kubelet.agent.Kubelet`)."""

    client: Any
    node_name: str
    root: Path  # node root on disk: logs, volumes
    run_root: Path  # running state (tmpfs when possible): sandboxes, container attempts
    runtime: Any  # kubelet.runtime.base.Runtime
    images: Any  # kubelet.images.ImageStore
    volumes: Any  # kubelet.volumes.VolumeManager
    network: Any  # cni manager: setup_pod / teardown_pod
    probes: Any  # kubelet.probes.ProbeManager
    recorder: Any  # EventRecorder
    env_for: Callable[..., Any]  # async (pod, container, pod_ip) -> dict[str, str]
    host_ip: Callable[[], str | None]
    enqueue: Callable[[str], None]
    clock: Any
    dns: DNSSettings | None = None  # set when the runtime gives pods their own /etc/resolv.conf


class PodWorker:
    """The worker of one pod (one uid)."""

    def __init__(self, ctx: PodContext, pod: Obj) -> None:
        self.ctx = ctx
        self.pod = pod
        self.uid = str(_meta(pod).get("uid"))
        self.key = pod_key(pod)
        self.records: dict[str, ContainerRecord] = {}
        self.configs: dict[str, ContainerConfig] = {}
        self.sandbox: Sandbox | None = None
        self.sandbox_ready = False
        self.pod_ip: str | None = None
        self.volume_paths: dict[str, Path] | None = None
        self.started_at: datetime | None = None
        self.last_written: tuple[Any, ...] | None = None
        self.kill_deadline: float | None = None  # monotonic; set when termination starts
        self.killed: set[str] = set()  # container ids already sent SIGKILL
        self.terminated = False  # everything stopped and released
        self.deleted = False  # the API object is gone (or deleted by us)
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._hooks: set[asyncio.Task[Any]] = set()
        self._refresh_due = 0.0
        self._ensure_records(pod)

    # -- bookkeeping ---------------------------------------------------------------

    def _ensure_records(self, pod: Obj) -> None:
        spec = pod.get("spec") or {}
        for c in spec.get("initContainers") or []:
            if c["name"] not in self.records:
                self.records[c["name"]] = ContainerRecord(c["name"], init=True, sidecar=c.get("restartPolicy") == "Always")
        for c in spec.get("containers") or []:
            if c["name"] not in self.records:
                self.records[c["name"]] = ContainerRecord(c["name"])

    def adopt(self, states: list[ContainerState]) -> None:
        """Take over containers a previous kubelet process started (newest attempt per
        name is current, the one before is previous)."""
        by_name: dict[str, list[ContainerState]] = {}
        for state in states:
            by_name.setdefault(state.name, []).append(state)
        status = self.pod.get("status") or {}
        counts = {s.get("name"): int(s.get("restartCount") or 0)
                  for s in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])}
        for name, found in by_name.items():
            record = self.records.get(name)
            if record is None:
                continue
            found.sort(key=lambda s: s.attempt)
            record.current = found[-1]
            record.previous = found[-2] if len(found) > 1 else None
            record.restart_count = max(counts.get(name, 0), record.current.attempt)
            record.attempts_started = record.current.attempt + 1
            record.started = record.current.state != EXITED
            if record.running:
                self._watch(record.current)
                self._probe(record)
        if states:
            self.started_at = min((s.started_at for s in states if s.started_at), default=None)
            self.pod_ip = status.get("podIP")

    def refresh_volumes_soon(self) -> None:
        """A ConfigMap or Secret changed: rewrite the volume files at the next sync."""
        self._refresh_due = 0.0

    def _watch(self, state: ContainerState) -> None:
        if state.id in self._watches:
            return

        async def wait() -> None:
            try:
                await self.ctx.runtime.wait(state.id)
            except Exception:  # noqa: BLE001 - a vanished container is an exit too
                log.debug("waiting for %s failed", state.id, exc_info=True)
            self.ctx.enqueue(self.key)

        self._watches[state.id] = asyncio.get_running_loop().create_task(wait(), name=f"wait {state.id[:24]}")

    def _probe(self, record: ContainerRecord) -> None:
        if record.current is None:
            return
        try:
            self.ctx.probes.add(self.pod, record.name, record.current.id, record.current.started_at, self.pod_ip)
        except Exception:  # noqa: BLE001 - a bad probe spec must not stop the pod
            log.exception("probes for %s/%s", self.key, record.name)

    def _spec_container(self, name: str) -> Obj:
        spec = self.pod.get("spec") or {}
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            if c["name"] == name:
                return c
        raise KeyError(name)

    def _field_path(self, name: str) -> str:
        record = self.records.get(name)
        kind = "initContainers" if record is not None and record.init else "containers"
        return f"spec.{kind}{{{name}}}"

    def _event(self, event_type: str, reason: str, message: str, container: str | None = None) -> None:
        if self.ctx.recorder is None:
            return
        self.ctx.recorder.event(self.pod, event_type, reason, message,
                                **({"field_path": self._field_path(container)} if container else {}))

    def _mono(self) -> float:
        return float(self.ctx.clock.monotonic())

    def _now(self) -> datetime:
        return datetime.now(UTC)

    # -- sync ---------------------------------------------------------------------

    async def sync(self, pod: Obj | None) -> Result | None:
        """Reconcile with `pod` (None: the object is gone from the API)."""
        if pod is None:
            self.deleted = True
            return await self._terminate(grace=ORPHAN_GRACE_SECONDS, write_status=False)
        self.pod = pod
        self._ensure_records(pod)
        await self._refresh()
        meta = _meta(pod)
        if meta.get("deletionTimestamp"):
            with contextlib.suppress(Exception):
                self.ctx.probes.update_pod(pod)
            grace = meta.get("deletionGracePeriodSeconds")
            if grace is None:
                grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
            return await self._terminate(grace=float(grace), write_status=True)
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            await self._stop_all()
            if not any(r.running for r in self.records.values()):
                await self._release()
                return None
            return Result(requeue_after=0.2)
        return await self._run()

    async def _refresh(self) -> None:
        """Read the state of running attempts whose process has ended."""
        for record in self.records.values():
            if record.running:
                assert record.current is not None
                task = self._watches.get(record.current.id)
                if task is None or task.done():
                    with contextlib.suppress(Exception):
                        record.current = await self.ctx.runtime.status(record.current.id)

    async def _run(self) -> Result | None:
        requeue: list[float] = [RESYNC_SECONDS]
        view = PodView(host_ip=self.ctx.host_ip() or "", pod_ip=self.pod_ip, sandbox_ready=self.sandbox_ready,
                       started_at=self.started_at, init_done=False)
        if not await self._ensure_sandbox(view, requeue):
            return await self._report(view, requeue)
        if not await self._ensure_volumes(view, requeue):
            return await self._report(view, requeue)
        spec = self.pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        init_done = await self._sync_inits(spec, policy, view, requeue)
        view.init_done = init_done
        if init_done and not view.init_failed:
            for container in spec.get("containers") or []:
                await self._sync_container(container, policy, requeue)
        return await self._report(view, requeue)

    async def _report(self, view: PodView, requeue: list[float]) -> Result:
        await self._write_status(view)
        return Result(requeue_after=max(min(requeue), 0.05))

    async def _ensure_sandbox(self, view: PodView, requeue: list[float]) -> bool:
        if self.sandbox_ready:
            return True
        meta, spec = _meta(self.pod), self.pod.get("spec") or {}
        state_dir = self.ctx.run_root / "pods" / self.uid / "sandbox"
        await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
        try:
            netns = await self._setup_network(meta, spec)
            if self.ctx.dns is not None:
                await self._write_resolv_conf(state_dir)
            hostname = spec.get("hostname") or str(meta.get("name"))
            self.sandbox = Sandbox(pod_uid=self.uid, namespace=str(meta.get("namespace")), name=str(meta.get("name")),
                                   hostname=hostname[:63], state_dir=state_dir, pod_ip=self.pod_ip, netns=netns,
                                   labels={"io.kubernetes.pod.uid": self.uid})
            await self.ctx.runtime.create_sandbox(self.sandbox)
        except Exception as exc:  # noqa: BLE001 - reported as the kubelet does, retried
            log.warning("sandbox of %s: %s", self.key, exc)
            self._event(WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            requeue.append(2.0)
            return False
        self.sandbox_ready = True
        view.sandbox_ready = True
        view.pod_ip = self.pod_ip
        if self.started_at is None:
            self.started_at = self._now()
        view.started_at = self.started_at
        return True

    async def _setup_network(self, meta: Obj, spec: Obj) -> str | None:
        """The pod's network: the host's (hostNetwork: pod IP = node IP), a namespace
        with only `lo` (annotation mkp.dev/network: none: no pod IP), or the node's pod
        network. Returns the namespace path the runtime joins (None: the host's)."""
        if spec.get("hostNetwork"):
            self.pod_ip = self.ctx.host_ip()
            return None
        args = (meta.get("namespace"), meta.get("name"), self.uid, self.uid)
        if (meta.get("annotations") or {}).get(NETWORK_ANNOTATION) == NETWORK_NONE:
            network = await self.ctx.network.setup_isolated_pod(*args)
            self.pod_ip = None
        else:
            network = await self.ctx.network.setup_pod(*args)
            self.pod_ip = network.ip
        return getattr(network, "netns", None)

    async def _write_resolv_conf(self, state_dir: Path) -> None:
        """The pod's /etc/resolv.conf from its dnsPolicy and dnsConfig (see
        kubelet.dnsconfig), in the sandbox directory where the runtime binds it from;
        the events the decision calls for are recorded on the pod (and the node)."""
        from kubelet.dnsconfig import pod_dns_config, read_host_resolv_conf
        dns = self.ctx.dns
        host = await asyncio.to_thread(read_host_resolv_conf, dns.resolv_conf)
        config, events = pod_dns_config(self.pod, cluster_dns=list(dns.cluster_dns),
                                        cluster_domain=dns.cluster_domain, host_resolv_conf=host)
        await asyncio.to_thread((state_dir / "resolv.conf").write_text, config.resolv_conf())
        for event in events:
            if event.node and self.ctx.recorder is not None:
                self.ctx.recorder.event({"kind": "Node", "name": self.ctx.node_name, "uid": self.ctx.node_name},
                                        event.type, event.reason, event.message)
            elif not event.node:
                self._event(event.type, event.reason, event.message)

    async def _ensure_volumes(self, view: PodView, requeue: list[float]) -> bool:
        mono = self._mono()
        if self.volume_paths is not None:
            if mono >= self._refresh_due:
                self._refresh_due = mono + RESYNC_SECONDS
                with contextlib.suppress(Exception):
                    await self.ctx.volumes.refresh(self.pod)
            return True
        try:
            self.volume_paths = await self.ctx.volumes.setup(self.pod)
        except Exception as exc:  # noqa: BLE001 - VolumeError and friends: FailedMount, retried
            message = getattr(exc, "message", None) or str(exc)
            self._event(WARNING, "FailedMount", message)
            requeue.append(2.0)
            return False
        self._refresh_due = mono + RESYNC_SECONDS
        return True

    async def _sync_inits(self, spec: Obj, policy: str, view: PodView, requeue: list[float]) -> bool:
        """Run init containers in order; True once all regular ones succeeded and every
        sidecar before them has started."""
        pending: list[str] = []
        blocked = False
        for container in spec.get("initContainers") or []:
            record = self.records[container["name"]]
            if blocked:
                if not record.succeeded:
                    pending.append(record.name)
                continue
            if record.sidecar:
                await self._sync_container(container, "Always", requeue)
                if not (record.running and record.started):
                    blocked = True
                    pending.append(record.name)
                continue
            if record.succeeded and not record.restart_pending:
                continue
            pending.append(record.name)
            blocked = True
            if record.running:
                continue
            if record.exited and policy == "Never":
                view.init_failed = True
                break
            init_policy = "OnFailure"  # a failed init container is retried unless the pod's policy is Never
            await self._sync_container(container, init_policy, requeue)
        view.uninitialized = pending
        return not blocked

    async def _sync_container(self, container: Obj, policy: str, requeue: list[float]) -> None:
        record = self.records[container["name"]]
        mono = self._mono()
        if record.running:
            assert record.current is not None
            self._probe_state(record)
            reason = self.ctx.probes.kill_reason(record.current.id)
            if reason is not None and record.killing != record.current.id:
                record.killing = record.current.id
                restart = should_restart(policy, 1)
                self._event(NORMAL, "Killing", reason.event_message(restart=restart), record.name)
                grace = reason.grace_period if reason.grace_period is not None else self._grace()
                await self._kill(record, signal.SIGTERM, grace=float(grace))
            elif record.started and record.current.started_at is not None:
                ran = (self._now() - record.current.started_at).total_seconds()
                if ran >= BACKOFF_RESET_SECONDS:
                    record.backoff_until = None
            return
        if record.exited:
            assert record.current is not None
            await self._collect_exit(record)
            if not should_restart(policy, record.current.exit_code):
                record.restart_pending = False
                record.waiting = None
                return
            record.restart_pending = True
            if record.backoff_until is not None and mono < record.backoff_until:
                left = record.backoff_until - mono
                name, meta = record.name, _meta(self.pod)
                delay = int(round(record.backoff_delay))
                message = (f"back-off {go_duration(delay)} restarting failed container={name} "
                           f"pod={meta.get('name')}_{meta.get('namespace')}({self.uid})")
                if record.waiting is None or record.waiting[0] != "CrashLoopBackOff":
                    self._event(WARNING, "BackOff", f"Back-off restarting failed container {name} in pod "
                                f"{meta.get('name')}_{meta.get('namespace')}({self.uid})", name)
                record.waiting = ("CrashLoopBackOff", message)
                requeue.append(left)
                return
        elif record.waiting is not None and record.backoff_until is not None and mono < record.backoff_until:
            requeue.append(record.backoff_until - mono)
            if record.waiting[0] == "ErrImagePull":
                image = container.get("image")
                record.waiting = ("ImagePullBackOff", f'Back-off pulling image "{image}": ErrImagePull: '
                                                      f"{record.waiting[1]}")
                self._event(NORMAL, "BackOff", f'Back-off pulling image "{image}"', record.name)
                self._event(WARNING, "Failed", "Error: ImagePullBackOff", record.name)
            return
        await self._start(container, record, requeue)

    def _probe_state(self, record: ContainerRecord) -> None:
        assert record.current is not None
        probes = self.ctx.probes
        record.started = bool(probes.started(record.current.id))
        record.ready = bool(probes.ready(record.current.id)) and record.started

    async def _collect_exit(self, record: ContainerRecord) -> None:
        """Refresh an exited attempt's final state once and arm the restart back-off."""
        assert record.current is not None
        if record.current.finished_at is None:
            with contextlib.suppress(Exception):
                record.current = await self.ctx.runtime.status(record.current.id)
        self.ctx.probes.remove(record.current.id)
        record.ready = False
        record.started = False
        if record.armed_for != record.current.id:
            record.armed_for = record.current.id
            current = record.current
            if current.started_at is not None and current.finished_at is not None and \
                    (current.finished_at - current.started_at).total_seconds() >= BACKOFF_RESET_SECONDS:
                record.backoff_count = 0
            self._arm_backoff(record)

    def _arm_backoff(self, record: ContainerRecord) -> None:
        """At each exit (or failed start): the first restart is at once, then 10 s
        doubling up to 5 minutes, as the kubelet's container back-off; a container that
        ran 10 minutes starts over."""
        delay = restart_backoff(record.backoff_count)
        record.backoff_count += 1
        record.backoff_delay = delay
        record.backoff_until = self._mono() + delay if delay > 0 else None

    async def _start(self, container: Obj, record: ContainerRecord, requeue: list[float]) -> None:
        name = record.name
        image_ref = str(container.get("image") or "")
        policy = container.get("imagePullPolicy") or ("Always" if image_ref.endswith(":latest") or ":" not in
                                                      image_ref.rsplit("/", 1)[-1] else "IfNotPresent")
        # 1. the image
        try:
            present = self.ctx.images.present(image_ref)
            if policy == "Always" or (policy == "IfNotPresent" and not present):
                self._event(NORMAL, "Pulling", f'Pulling image "{image_ref}"', name)
                started = time.monotonic()
                image, _pulled = await self.ctx.images.pull(image_ref, policy)
                took = time.monotonic() - started
                self._event(NORMAL, "Pulled", f'Successfully pulled image "{image_ref}" in {took:.3f}s '
                            f"({took:.3f}s including waiting). Image size: {image.size} bytes.", name)
            else:
                image, _pulled = await self.ctx.images.pull(image_ref, policy)
                self._event(NORMAL, "Pulled", f'Container image "{image_ref}" already present on machine', name)
        except Exception as exc:  # noqa: BLE001 - ImageNotFound, ErrImageNeverPull
            message = getattr(exc, "message", None) or str(exc)
            reason = "ErrImageNeverPull" if type(exc).__name__ == "ErrImageNeverPull" else "ErrImagePull"
            if type(exc).__name__ == "ImageNotFound":  # as the CRI's gRPC error reaches the kubelet
                message = f"rpc error: code = NotFound desc = {message}"
            if reason == "ErrImagePull":
                self._event(WARNING, "Failed", f'Failed to pull image "{image_ref}": {message}', name)
            else:
                self._event(WARNING, "ErrImageNeverPull", message, name)
            self._event(WARNING, "Failed", f"Error: {reason}", name)
            record.waiting = (reason, message)
            record.pull_failures += 1
            delay = min(10.0 * 2 ** (record.pull_failures - 1), 300.0)
            record.backoff_until = self._mono() + delay
            requeue.append(delay)
            return
        record.pull_failures = 0
        record.image = getattr(image, "ref", image_ref)
        record.image_id = getattr(image, "repo_digest", None) or getattr(image, "id", "")
        # 2. environment, mounts, command
        try:
            env = {**(getattr(image, "env", None) or {}), **await self.ctx.env_for(self.pod, container, self.pod_ip)}
            mounts = self.ctx.volumes.mounts(self.pod, container, self.volume_paths or {}, env=env)
        except Exception as exc:  # noqa: BLE001 - ConfigError: CreateContainerConfigError
            message = getattr(exc, "message", None) or str(exc)
            record.waiting = ("CreateContainerConfigError", message)
            self._event(WARNING, "Failed", f"Error: {message}", name)
            requeue.append(2.0)
            return
        argv = command_line(container, image, env)
        attempt = record.attempts_started
        assert self.sandbox is not None
        meta = _meta(self.pod)
        log_path = pod_log_dir(self.ctx.root, self.pod) / name / f"{attempt}.log"
        state_dir = self.ctx.run_root / "pods" / self.uid / "containers" / name / str(attempt)
        security = {**((self.pod.get("spec") or {}).get("securityContext") or {}),
                    **(container.get("securityContext") or {})}
        config = ContainerConfig(
            sandbox=self.sandbox, name=name, attempt=attempt, argv=argv, env=env, image=image, log_path=log_path,
            state_dir=state_dir, working_dir=container.get("workingDir") or getattr(image, "working_dir", None),
            mounts=list(mounts), resources=resources_of(container), stdin=bool(container.get("stdin")),
            stdin_once=bool(container.get("stdinOnce")), tty=bool(container.get("tty")),
            run_as_user=security.get("runAsUser"), run_as_group=security.get("runAsGroup"),
            read_only_root=bool(security.get("readOnlyRootFilesystem")),
            labels={"io.kubernetes.pod.uid": self.uid, "io.kubernetes.pod.namespace": str(meta.get("namespace")),
                    "io.kubernetes.pod.name": str(meta.get("name")), "io.kubernetes.container.name": name,
                    "io.kubernetes.container.attempt": str(attempt)})
        # 3. start
        previous = record.current
        try:
            state = await self.ctx.runtime.start_container(config)
        except RuntimeFailure as exc:
            record.waiting = (exc.reason, exc.message)
            self._event(WARNING, "Failed", f"Error: {exc.message}", name)
            record.attempts_started += 1
            self._arm_backoff(record)
            requeue.append(record.backoff_delay or 1.0)
            return
        self.configs[name] = config
        if previous is not None:
            record.previous = previous
            record.restart_count += 1
        record.current = state
        record.attempts_started = attempt + 1
        record.waiting = None
        record.restart_pending = False
        record.ready = record.started = False
        record.killing = None
        self._event(NORMAL, "Created", f"Created container: {name}", name)
        if state.state == EXITED and state.reason == "StartError":
            self._event(WARNING, "Failed", f"Error: {state.message or 'failed to start container'}", name)
        else:
            self._event(NORMAL, "Started", f"Started container {name}", name)
        self._watch(state)
        if state.state != EXITED:
            self._probe(record)
            self._probe_state(record)
            hook = ((container.get("lifecycle") or {}).get("postStart"))
            if hook:
                await self._post_start(container, record, hook)

    # -- hooks --------------------------------------------------------------------

    async def _run_hook(self, container: Obj, record: ContainerRecord, hook: Obj, timeout: float) -> str | None:
        """Run a lifecycle handler; None on success, else the error message."""
        assert record.current is not None
        if "exec" in hook:
            argv = list((hook.get("exec") or {}).get("command") or [])
            try:
                proc = await self.ctx.runtime.exec(record.current.id, argv, stdin=False, tty=False)
                output = b""
                if proc.stdout is not None:
                    output = await asyncio.wait_for(proc.stdout.read(), timeout)
                code = await asyncio.wait_for(proc.wait(), timeout)
            except Exception as exc:  # noqa: BLE001
                return f"command {argv!r} failed: {exc}"
            if code != 0:
                return f"command '{' '.join(argv)}' exited with {code}: {output.decode(errors='replace')}"
            return None
        if "httpGet" in hook:
            import aiohttp
            get = hook["httpGet"]
            port = get.get("port")
            if isinstance(port, str) and not port.isdigit():
                port = next((p.get("containerPort") for p in container.get("ports") or [] if p.get("name") == port), port)
            host = get.get("host") or self.pod_ip or "127.0.0.1"
            url = f"{(get.get('scheme') or 'HTTP').lower()}://{host}:{port}{get.get('path') or '/'}"
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                        session.get(url, ssl=False) as resp:
                    if resp.status >= 400:
                        return f"HTTP lifecycle hook ({get.get('path')}) for Container \"{record.name}\" in Pod " \
                               f"\"{_meta(self.pod).get('name')}\" failed - error: received status code {resp.status}"
            except Exception as exc:  # noqa: BLE001
                return f"Get {url!r}: {exc}"
            return None
        if "sleep" in hook:  # the PodLifecycleSleepAction handler: wait, then succeed
            await asyncio.sleep(min(float((hook.get("sleep") or {}).get("seconds") or 0), timeout))
            return None
        return "unknown lifecycle handler"

    async def _post_start(self, container: Obj, record: ContainerRecord, hook: Obj) -> None:
        error = await self._run_hook(container, record, hook, timeout=30.0)
        if error is not None:
            self._event(WARNING, "FailedPostStartHook", error, record.name)
            self._event(NORMAL, "Killing", f"FailedPostStartHook: Container {record.name} failed post start hook, "
                        "will be killed", record.name)
            await self._kill(record, signal.SIGKILL, grace=0)

    # -- stopping -----------------------------------------------------------------

    def _grace(self) -> float:
        return float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS))

    async def _kill(self, record: ContainerRecord, sig: int, *, grace: float) -> None:
        """Stop the running attempt: `sig` now; SIGKILL after `grace` seconds if it is
        still running then (a requeue of the pod checks)."""
        assert record.current is not None
        with contextlib.suppress(Exception):
            await self.ctx.runtime.kill(record.current.id, sig)
        if sig != signal.SIGKILL and grace >= 0:
            container_id = record.current.id
            loop = asyncio.get_running_loop()

            async def escalate() -> None:
                with contextlib.suppress(Exception):
                    state = await asyncio.wait_for(self.ctx.runtime.wait(container_id), grace)
                    if state.state == EXITED:
                        return
                with contextlib.suppress(Exception):
                    await self.ctx.runtime.kill(container_id, signal.SIGKILL)

            task = loop.create_task(escalate())
            self._hooks.add(task)
            task.add_done_callback(self._hooks.discard)

    async def _stop_all(self) -> None:
        """A finished pod (Succeeded or Failed) stops what still runs, its sidecars:
        SIGTERM once, SIGKILL after the termination grace period."""
        for record in self.records.values():
            if record.running and record.current is not None and record.killing != record.current.id:
                record.killing = record.current.id
                self._event(NORMAL, "Killing", f"Stopping container {record.name}", record.name)
                await self._kill(record, signal.SIGTERM, grace=self._grace())

    async def _terminate(self, *, grace: float, write_status: bool) -> Result | None:
        """Graceful termination: preStop hooks and SIGTERM once, SIGKILL at the deadline,
        then release everything and delete the object."""
        mono = self._mono()
        running = [r for r in self.records.values() if r.running]
        if self.kill_deadline is None:
            self.kill_deadline = mono + max(grace, 0.0)
            apps_first = sorted(running, key=lambda r: r.sidecar)
            for record in apps_first:
                spec_container = self._safe_container(record.name)
                self._event(NORMAL, "Killing", f"Stopping container {record.name}", record.name)
                hook = ((spec_container or {}).get("lifecycle") or {}).get("preStop")
                task = asyncio.get_running_loop().create_task(self._pre_stop_then_term(record, spec_container, hook,
                                                                                       grace))
                self._hooks.add(task)
                task.add_done_callback(self._hooks.discard)
        # refresh states of the running ones
        for record in running:
            assert record.current is not None
            with contextlib.suppress(Exception):
                state = await self.ctx.runtime.status(record.current.id)
                record.current = state
        still = [r for r in self.records.values() if r.running]
        if still:
            if mono >= self.kill_deadline:
                for record in still:
                    assert record.current is not None
                    if record.current.id not in self.killed:
                        self.killed.add(record.current.id)
                        with contextlib.suppress(Exception):
                            await self.ctx.runtime.kill(record.current.id, signal.SIGKILL)
                return Result(requeue_after=0.2)
            return Result(requeue_after=max(min(self.kill_deadline - mono, 1.0), 0.05))
        await self._release()
        if write_status and not self.deleted:
            view = PodView(host_ip=self.ctx.host_ip() or "", pod_ip=self.pod_ip, sandbox_ready=False,
                           started_at=self.started_at, init_done=True, deleting=True)
            for record in self.records.values():
                record.waiting = None if record.current is not None else record.waiting
                record.restart_pending = False
                record.ready = False
            with contextlib.suppress(ApiError):
                await self._write_status(view)
            await self._delete_object()
        return None

    def _safe_container(self, name: str) -> Obj | None:
        try:
            return self._spec_container(name)
        except KeyError:
            return None

    async def _pre_stop_then_term(self, record: ContainerRecord, container: Obj | None, hook: Obj | None,
                                  grace: float) -> None:
        if hook and container is not None and record.running:
            try:
                error = await asyncio.wait_for(self._run_hook(container, record, hook, timeout=grace), grace)
            except TimeoutError:
                error = f"PreStopHook for container {record.name} did not complete in {grace:g}s"
            if error is not None:
                self._event(WARNING, "FailedPreStopHook", error, record.name)
        if record.current is not None:
            with contextlib.suppress(Exception):
                await self.ctx.runtime.kill(record.current.id, signal.SIGTERM)
        self.ctx.enqueue(self.key)

    async def _release(self) -> None:
        """Everything stopped: give back probes, volumes, network, sandbox."""
        if self.terminated:
            return
        self.ctx.probes.remove_pod(self.uid)
        for task in list(self._watches.values()):
            task.cancel()
        self._watches.clear()
        with contextlib.suppress(Exception):
            await self.ctx.volumes.teardown(self.uid)
        meta = _meta(self.pod)
        with contextlib.suppress(Exception):
            await self.ctx.network.teardown_pod(meta.get("namespace"), meta.get("name"), self.uid, self.uid)
        if self.sandbox is not None:
            with contextlib.suppress(Exception):
                await self.ctx.runtime.remove_sandbox(self.sandbox)
        self.terminated = True

    async def _delete_object(self) -> None:
        meta = _meta(self.pod)
        try:
            await self.ctx.client.delete(PODS, meta.get("name"), meta.get("namespace"), grace_period_seconds=0,
                                         preconditions={"uid": self.uid})
        except ApiError as exc:
            if not (exc.is_not_found() or exc.is_conflict()):
                raise
        self.deleted = True

    async def cleanup_files(self) -> None:
        """After the object is gone: remove the containers and the pod's directories."""
        import shutil
        for record in self.records.values():
            for state in (record.previous, record.current):
                if state is not None:
                    with contextlib.suppress(Exception):
                        await self.ctx.runtime.remove_container(state.id)
        shutil.rmtree(self.ctx.root / "pods" / self.uid, ignore_errors=True)
        shutil.rmtree(self.ctx.run_root / "pods" / self.uid, ignore_errors=True)
        shutil.rmtree(pod_log_dir(self.ctx.root, self.pod), ignore_errors=True)

    async def close(self) -> None:
        """The kubelet stops: leave the containers running (they are re-adopted)."""
        for task in list(self._watches.values()) + list(self._hooks):
            task.cancel()

    # -- status -------------------------------------------------------------------

    async def _write_status(self, view: PodView) -> None:
        desired = pod_status(self.pod, self.records, view, self._now())
        key = state_key(desired) + (desired.get("startTime"),)
        current_key = state_key(self.pod.get("status")) + ((self.pod.get("status") or {}).get("startTime"),)
        if key == self.last_written and key == current_key:
            return
        if key == current_key:
            self.last_written = key
            return
        meta = _meta(self.pod)
        try:
            self.pod = await self.ctx.client.patch(PODS, meta.get("name"), status_patch(self.pod, desired),
                                                   namespace=meta.get("namespace"), patch_type="strategic",
                                                   subresource="status", field_manager="kubelet")
            self.last_written = key
        except ApiError as exc:
            if exc.is_not_found() or exc.is_conflict():
                return
            raise


def command_line(container: Obj, image: Any, env: dict[str, str]) -> list[str]:
    """The argv to run: command/args from the spec over the image's entrypoint/cmd (as
    Docker and Kubernetes combine them), with $(VAR) references expanded."""
    command = container.get("command")
    args = container.get("args")
    entrypoint = list(getattr(image, "entrypoint", None) or [])
    cmd = list(getattr(image, "cmd", None) or [])
    if command:
        argv = [*command, *(args or [])]
    elif args:
        argv = [*entrypoint, *args]
    else:
        argv = [*entrypoint, *cmd]
    mapping = mapping_for(env)
    return [expand(a, mapping) for a in argv]


__all__ = ["DNSSettings", "Mount", "PodContext", "PodWorker", "command_line", "pod_key"]
