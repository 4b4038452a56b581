"""Helpers for the probe tests: real loopback HTTP servers (aiohttp on free ports), a
recorder that keeps what it is given, and a runtime whose `exec` runs real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web


@dataclass
class RecordedEvent:
    obj: dict[str, Any]
    type: str
    reason: str
    message: str
    field_path: str | None


class FakeRecorder:
    """EventRecorder.event's signature; keeps the events in order."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    def event(self, obj: dict[str, Any], event_type: str, reason: str, message: str, *,
              field_path: str | None = None) -> None:
        self.events.append(RecordedEvent(obj, event_type, reason, message, field_path))

    def messages(self, reason: str = "Unhealthy") -> list[str]:
        return [e.message for e in self.events if e.reason == reason]


class SubprocessRuntime:
    """`Runtime.exec` running argv as a real host process (what the process runtime does
    for a container without isolation); `missing` ids raise ContainerNotFound."""

    name = "test"

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], bool, bool]] = []
        self.missing: set[str] = set()
        self.processes: list[asyncio.subprocess.Process] = []

    async def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool,
                   env: dict[str, str] | None = None) -> Any:
        from kubelet.runtime.base import ContainerNotFound, RuntimeError_
        self.calls.append((container_id, list(argv), stdin, tty))
        if container_id in self.missing:
            raise ContainerNotFound(f"container {container_id} not found")
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except FileNotFoundError as exc:
            raise RuntimeError_("StartError", f'exec: "{argv[0]}": executable file not found in $PATH') from exc
        self.processes.append(process)
        return _ExecProcess(process)

    async def cleanup(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


class _ExecProcess:
    """An ExecProcess over an asyncio subprocess; kill() kills its whole session, as a
    runtime kills an exec'd command and what it started."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stdin, self.stdout, self.stderr = process.stdin, process.stdout, process.stderr

    async def wait(self) -> int:
        return await self.process.wait()

    def resize(self, width: int, height: int) -> None:
        pass

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
def recorder() -> FakeRecorder:
    return FakeRecorder()


@pytest.fixture
async def runtime() -> AsyncIterator[SubprocessRuntime]:
    rt = SubprocessRuntime()
    try:
        yield rt
    finally:
        await rt.cleanup()


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """`port = await serve(app)` starts an aiohttp app on 127.0.0.1 (a free port);
    every server is stopped at the end of the test."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application, *, ssl_context: Any = None) -> int:
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    try:
        yield start
    finally:
        for runner in runners:
            await runner.cleanup()


async def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll `check()` (real time, on the loop) until truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def pod(*containers: dict[str, Any], uid: str = "uid-1", name: str = "web", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": "7"},
            "spec": {"containers": list(containers), **spec}}
