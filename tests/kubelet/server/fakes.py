"""A PodProvider and a runtime for the kubelet server's tests, running real local
processes: a "container" is a subprocess whose working directory (a temp dir) stands
in for its root filesystem, its stdout/stderr written to a CRI-format log file as the
mkp-shim does; `exec` runs another subprocess there (with a pty for tty=True)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import pty
import signal
import struct
import termios
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubelet.runtime.base import ContainerNotFound


def _kill_group(process: asyncio.subprocess.Process) -> None:
    """Kill a process started with start_new_session and everything it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def cri_time(when: datetime | None = None) -> str:
    when = when or datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def write_cri(path: Path, stream: str, text: str, when: datetime | None = None) -> None:
    with path.open("ab") as f:
        for line in text.splitlines():
            f.write(f"{cri_time(when)} {stream} F {line}\n".encode())


@dataclass
class LocalContainer:
    id: str
    root: Path
    log: Path
    process: asyncio.subprocess.Process
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    resizes: list[tuple[int, int]] = field(default_factory=list)


class PtyProcess:
    """An exec'd process on a pty: stdout carries both streams, stdin writes the master."""

    def __init__(self, process: asyncio.subprocess.Process, master: int, reader: asyncio.StreamReader) -> None:
        self._process, self._master = process, master
        self.stdin = self
        self.stdout = reader
        self.stderr = None
        self.sizes: list[tuple[int, int]] = []

    def write(self, data: bytes) -> None:
        os.write(self._master, data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, b"\x04")  # ^D: end of input on a terminal

    async def wait(self) -> int:
        return await self._process.wait()

    def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))
        fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def kill(self) -> None:
        _kill_group(self._process)


class PipeProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.stdin, self.stdout, self.stderr = process.stdin, process.stdout, process.stderr

    async def wait(self) -> int:
        return await self._process.wait()

    def resize(self, width: int, height: int) -> None:
        return None

    def kill(self) -> None:
        _kill_group(self._process)


class LocalRuntime:
    """Just enough of kubelet.runtime.base.Runtime for the server: exec, attach_stdin,
    wait, resize, with real processes."""

    name = "process"

    def __init__(self) -> None:
        self.containers: dict[str, LocalContainer] = {}
        self.execs: list[Any] = []

    async def start(self, name: str, root: Path, log: Path, argv: list[str], *, stdin: bool = False) -> str:
        cid = "process://" + hashlib.sha256(f"{name}{len(self.containers)}".encode()).hexdigest()
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=root, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
        container = LocalContainer(cid, root, log, process)
        container.pumps = [asyncio.create_task(self._log(process.stdout, log, "stdout")),
                           asyncio.create_task(self._log(process.stderr, log, "stderr"))]
        asyncio.create_task(self._reap(container))
        self.containers[cid] = container
        return cid

    @staticmethod
    async def _log(reader: Any, log: Path, stream: str) -> None:
        while line := await reader.readline():
            write_cri(log, stream, line.decode().rstrip("\n"))

    @staticmethod
    async def _reap(container: LocalContainer) -> None:
        await container.process.wait()
        await asyncio.gather(*container.pumps, return_exceptions=True)
        container.exited.set()

    async def wait(self, container_id: str) -> None:
        container = self.containers.get(container_id)
        if container is None:
            raise ContainerNotFound(container_id)
        await container.exited.wait()

    async def exec(self, container_id: str, argv: Sequence[str], *, stdin: bool, tty: bool,
                   env: Mapping[str, str] | None = None) -> Any:
        container = self.containers[container_id]
        if tty:
            master, slave = pty.openpty()
            process = await asyncio.create_subprocess_exec(
                *argv, cwd=container.root, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
            os.close(slave)
            reader = asyncio.StreamReader()
            loop = asyncio.get_running_loop()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(master), "rb"))
            result: Any = PtyProcess(process, master, reader)
        else:
            process = await asyncio.create_subprocess_exec(
                *argv, cwd=container.root, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
            result = PipeProcess(process)
        self.execs.append(result)
        return result

    async def attach_stdin(self, container_id: str) -> Any:
        return self.containers[container_id].process.stdin

    def resize(self, container_id: str, width: int, height: int) -> None:
        self.containers[container_id].resizes.append((width, height))

    async def close(self) -> None:
        for container in self.containers.values():
            _kill_group(container.process)
            await container.exited.wait()
        for proc in self.execs:
            proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)


class FakePods:
    """The PodProvider: pods with the status a kubelet would have computed."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self._pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.logs: dict[str, Path] = {}

    def add(self, pod: dict[str, Any]) -> None:
        self._pods[(pod["metadata"].get("namespace", "default"), pod["metadata"]["name"])] = pod

    def find_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._pods.get((namespace, name))

    def pods(self) -> list[dict[str, Any]]:
        return list(self._pods.values())

    def log_path(self, pod: dict[str, Any], container: str, container_id: str) -> Path | None:
        return self.logs.get(container_id)

    async def summary(self) -> dict[str, Any]:
        return {"node": {"nodeName": "n1", "memory": {"workingSetBytes": 1}},
                "pods": [{"podRef": {"name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"]}}
                         for p in self._pods.values()]}


def pod(name: str, containers: list[str], statuses: list[dict[str, Any]], *, namespace: str = "default",
        node: str = "n1", spec_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = {"nodeName": node, "containers": [{"name": c, "image": "busybox", **(spec_extra or {})}
                                              for c in containers]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": spec, "status": {"phase": "Running", "containerStatuses": statuses}}


def running(name: str, cid: str) -> dict[str, Any]:
    return {"name": name, "containerID": cid, "ready": True, "restartCount": 0,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, "image": "busybox"}


def waiting(name: str, reason: str) -> dict[str, Any]:
    return {"name": name, "ready": False, "restartCount": 0, "state": {"waiting": {"reason": reason}},
            "image": "busybox"}
