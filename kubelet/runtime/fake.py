"""The `fake` runtime: the Runtime interface with no processes behind it.

`mkp kubelet --node NAME --runtime fake` runs the real kubelet (pod workers, probes'
absence, statuses, events, deletion) over containers that only exist as records: a
container "runs" from its start until it is killed, then exits with 128 + the signal
(143 for SIGTERM, 137 for SIGKILL), as a process that does not trap it would. Its log
is an empty file; exec and attach are refused (nothing runs to enter). State lives in
memory, so unlike the other runtimes a restarted kubelet finds no containers to
re-adopt and starts its pods anew. For scale, the kwok-style fake nodes
(`kubelet/fake/`, `mkp kubelet --fake`) drive many nodes from one process instead.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kubelet.runtime.base import (
    ERROR,
    EXITED,
    RUNNING,
    ContainerConfig,
    ContainerNotFound,
    ContainerState,
    RuntimeError_,
    Sandbox,
)

PREFIX = "fake://"


class FakeRuntime:
    name = "fake"

    def __init__(self) -> None:
        self._containers: dict[str, ContainerState] = {}
        self._exited: dict[str, asyncio.Event] = {}

    async def create_sandbox(self, sandbox: Sandbox) -> None:
        sandbox.state_dir.mkdir(parents=True, exist_ok=True)

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        return None

    async def start_container(self, config: ContainerConfig) -> ContainerState:
        config.log_path.parent.mkdir(parents=True, exist_ok=True)
        config.log_path.touch()
        container_id = PREFIX + secrets.token_hex(32)
        state = ContainerState(id=container_id, pod_uid=config.sandbox.pod_uid, name=config.name,
                               attempt=config.attempt, state=RUNNING, started_at=datetime.now(UTC),
                               log_path=config.log_path, labels=dict(config.labels))
        self._containers[container_id] = state
        self._exited[container_id] = asyncio.Event()
        return replace(state)

    def _get(self, container_id: str) -> ContainerState:
        try:
            return self._containers[container_id]
        except KeyError:
            raise ContainerNotFound(container_id) from None

    async def status(self, container_id: str) -> ContainerState:
        return replace(self._get(container_id))

    async def wait(self, container_id: str) -> ContainerState:
        self._get(container_id)
        await self._exited[container_id].wait()
        return replace(self._get(container_id))

    async def kill(self, container_id: str, signal: int) -> None:
        state = self._get(container_id)
        if state.state != RUNNING:
            return
        state.state, state.exit_code, state.reason = EXITED, 128 + int(signal), ERROR
        state.finished_at = datetime.now(UTC)
        self._exited[container_id].set()

    async def remove_container(self, container_id: str) -> None:
        self._containers.pop(container_id, None)
        self._exited.pop(container_id, None)

    async def list_containers(self) -> list[ContainerState]:
        return [replace(s) for s in self._containers.values()]

    async def exec(self, container_id: str, argv: Sequence[str], *, stdin: bool, tty: bool,
                   env: Mapping[str, str] | None = None) -> Any:
        self._get(container_id)
        raise RuntimeError_("RunContainerError", "the fake runtime runs no processes: nothing to exec in")

    async def attach_stdin(self, container_id: str) -> Any:
        self._get(container_id)
        raise RuntimeError_("RunContainerError", "the fake runtime runs no processes: nothing to attach to")

    def resize(self, container_id: str, width: int, height: int) -> None:
        return None

    def stats(self, container_id: str) -> dict[str, int] | None:
        return None
