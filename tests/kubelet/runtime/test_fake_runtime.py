"""The fake runtime: containers that run until killed, behind the Runtime interface."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from kubelet.runtime.base import EXITED, RUNNING, ContainerConfig, ContainerNotFound, RuntimeError_, Sandbox
from kubelet.runtime.fake import FakeRuntime


def _config(tmp_path: Path, name: str = "app") -> ContainerConfig:
    sandbox = Sandbox(pod_uid="uid", namespace="default", name="p", hostname="p", state_dir=tmp_path / "sandbox")
    return ContainerConfig(sandbox=sandbox, name=name, attempt=0, argv=["sleep", "1"], env={}, image=None,
                           log_path=tmp_path / "logs" / "0.log", state_dir=tmp_path / "state")


async def test_runs_until_killed_then_exits_with_128_plus_the_signal(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    await runtime.create_sandbox(_config(tmp_path).sandbox)
    state = await runtime.start_container(_config(tmp_path))
    assert state.state == RUNNING and state.id.startswith("fake://") and state.log_path.read_text() == ""
    waiter = asyncio.create_task(runtime.wait(state.id))
    await asyncio.sleep(0)
    assert not waiter.done()
    await runtime.kill(state.id, signal.SIGTERM)
    done = await asyncio.wait_for(waiter, 1)
    assert (done.state, done.exit_code, done.reason) == (EXITED, 143, "Error")
    await runtime.kill(state.id, signal.SIGKILL)  # already exited: no change
    assert (await runtime.status(state.id)).exit_code == 143
    assert [s.id for s in await runtime.list_containers()] == [state.id]
    await runtime.remove_container(state.id)
    with pytest.raises(ContainerNotFound):
        await runtime.status(state.id)


async def test_exec_and_attach_are_refused(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    state = await runtime.start_container(_config(tmp_path))
    with pytest.raises(RuntimeError_, match="runs no processes"):
        await runtime.exec(state.id, ["sh"], stdin=False, tty=False)
    with pytest.raises(RuntimeError_):
        await runtime.attach_stdin(state.id)
    assert runtime.stats(state.id) is None
