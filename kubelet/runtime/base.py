"""The container runtime interface the kubelet's pod workers use, CRI-shaped.

The kubelet decides *what* runs (which container, which attempt, when to kill); a
runtime decides *how*: `process` (a plain subprocess in its own session, no isolation),
`namespaces` (root: pid/mount/uts/ipc namespaces, an overlay root filesystem, cgroup
limits) and `fake` (status only) implement the same `Runtime` protocol. The shape follows
Kubernetes' CRI: a pod sandbox, then containers started in it, each identified by an
opaque id of the form `<runtime>://<64 hex>` (what `containerID` shows in pod status),
with state `running` or `exited` and, once exited, exit code, reason and finish time.

Containers outlive the kubelet: every container runs under a small shim (`mkp-shim`, see
`kubelet/runtime/shim/`) that owns its stdio, writes its log in the CRI format and records
its exit status in the container's state directory. So a restarted kubelet calls
`list_containers()` and re-adopts what runs, instead of killing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

RUNNING = "running"
EXITED = "exited"

# Reasons of a terminated container, as Kubernetes reports them.
COMPLETED = "Completed"  # exit code 0
ERROR = "Error"  # non-zero exit code
OOM_KILLED = "OOMKilled"  # the kernel killed it over its memory limit (exit code 137)
START_ERROR = "StartError"  # the runtime could not start it (exit code 128)


class RuntimeError_(Exception):  # noqa: N801 - not the builtin
    """A runtime call failed; `reason` is the Kubernetes reason to show (say
    `StartError`, `RunContainerError`, `CreateContainerError`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ContainerNotFound(Exception):
    """No container with that id (never existed, or removed)."""


@dataclass(frozen=True)
class Mount:
    """A host path made visible at `container_path` (a bind mount under `namespaces`;
    under `process`, which cannot remap paths, the kubelet passes host paths and says so)."""

    host_path: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class Resources:
    """resources.limits and requests, parsed. None = not set."""

    memory_limit: int | None = None  # bytes
    cpu_limit_millis: int | None = None  # -> cfs quota (cpu.cfs_quota_us / cpu.max)
    cpu_request_millis: int | None = None  # -> cpu shares / weight
    memory_request: int | None = None


@dataclass
class Sandbox:
    """The pod-level environment all of a pod's containers share."""

    pod_uid: str
    namespace: str
    name: str
    hostname: str
    state_dir: Path  # <root>/pods/<uid>/sandbox
    pod_ip: str | None = None
    netns: str | None = None  # path of the pod's network namespace (bridge CNI); None = host network
    cgroup_parent: str | None = None  # runtime-specific, set by create_sandbox
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerConfig:
    """Everything a runtime needs to start one attempt of one container."""

    sandbox: Sandbox
    name: str
    attempt: int  # 0 for the first run, then the restart count
    argv: list[str]  # command + args, image entrypoint/cmd applied, $(VAR) expanded
    env: dict[str, str]
    image: Any  # kubelet.images.Image (resolved)
    log_path: Path  # CRI-format log file, <root>/logs/<ns>_<pod>_<uid>/<name>/<attempt>.log
    state_dir: Path  # <root>/pods/<uid>/containers/<name>/<attempt>: pid, exit, fifos
    working_dir: str | None = None
    mounts: list[Mount] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    run_as_user: int | None = None
    run_as_group: int | None = None
    read_only_root: bool = False
    labels: dict[str, str] = field(default_factory=dict)  # pod uid, namespace, name, container, attempt


@dataclass
class ContainerState:
    """What the runtime knows of one container."""

    id: str  # "<runtime>://<64 hex>"
    pod_uid: str
    name: str
    attempt: int
    state: str  # RUNNING or EXITED
    pid: int | None = None  # host pid of the container's main process while running
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None  # COMPLETED, ERROR, OOM_KILLED, START_ERROR when exited
    message: str | None = None
    log_path: Path | None = None
    labels: dict[str, str] = field(default_factory=dict)


class ExecProcess(Protocol):
    """A process started by `Runtime.exec`: streams and exit code, like an asyncio
    subprocess. With a tty, stdout carries both streams and stderr is None."""

    stdin: Any  # asyncio.StreamWriter-like (write, drain, close) or None
    stdout: Any  # asyncio.StreamReader-like or None
    stderr: Any

    async def wait(self) -> int: ...
    def resize(self, width: int, height: int) -> None: ...
    def kill(self) -> None: ...


class Runtime(Protocol):
    name: str  # "process", "namespaces", "fake"

    async def create_sandbox(self, sandbox: Sandbox) -> None:
        """Set up pod-level state (directories, cgroup parent). Idempotent."""

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        """Undo create_sandbox once every container is gone. Idempotent."""

    async def start_container(self, config: ContainerConfig) -> ContainerState:
        """Start one attempt; returns when the process runs (state RUNNING), or raises
        RuntimeError_ (say the executable does not exist: reason StartError)."""

    async def wait(self, container_id: str) -> ContainerState:
        """Return once the container has exited (immediately if it already has)."""

    async def status(self, container_id: str) -> ContainerState:
        """Current state; raises ContainerNotFound."""

    async def kill(self, container_id: str, signal: int) -> None:
        """Send `signal` to the container's processes (its process group). No error if
        it already exited."""

    async def remove_container(self, container_id: str) -> None:
        """Forget an exited container (its state directory; the log file stays until
        the pod is removed)."""

    async def list_containers(self) -> list[ContainerState]:
        """Every container this runtime knows under its root, running or exited (so a
        restarted kubelet can re-adopt them)."""

    async def exec(self, container_id: str, argv: Sequence[str], *, stdin: bool, tty: bool,
                   env: Mapping[str, str] | None = None) -> ExecProcess:
        """Run `argv` in the container's context (its env, working dir, namespaces)."""

    async def attach_stdin(self, container_id: str) -> Any:
        """A writer to the container's stdin (containers with stdin: true), or raises
        RuntimeError_."""

    def resize(self, container_id: str, width: int, height: int) -> None:
        """Resize a tty container's terminal."""

    def stats(self, container_id: str) -> dict[str, int] | None:
        """{"cpu_usage_nanos", "memory_working_set_bytes", "memory_rss_bytes",
        "memory_usage_bytes"} from cgroups or /proc; None when not running."""

