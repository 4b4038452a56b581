"""A kubelet server on 127.0.0.1 in the test's event loop, over FakePods + LocalRuntime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubelet.server.app import serve
from tests.kubelet.server.fakes import FakePods, LocalRuntime, pod, running


@dataclass
class Kubelet:
    url: str
    port: int
    pods: FakePods
    runtime: LocalRuntime
    tmp: Path

    async def run_pod(self, name: str, argv: list[str], *, container: str = "main", stdin: bool = False,
                      namespace: str = "default") -> str:
        """Start a one-container pod running `argv`; returns its containerID."""
        root = self.tmp / f"{namespace}_{name}" / "root"
        root.mkdir(parents=True, exist_ok=True)
        log = self.tmp / f"{namespace}_{name}" / f"{container}.log"
        cid = await self.runtime.start(container, root, log, argv, stdin=stdin)
        self.pods.logs[cid] = log
        self.pods.add(pod(name, [container], [running(container, cid)], namespace=namespace,
                          spec_extra={"stdin": stdin}))
        return cid


@pytest.fixture
async def kubelet(tmp_path: Path) -> AsyncIterator[Kubelet]:
    runtime = LocalRuntime()
    provider = FakePods(runtime)
    runner, port = await serve(provider, "127.0.0.1", 0)
    try:
        yield Kubelet(f"http://127.0.0.1:{port}", port, provider, runtime, tmp_path)
    finally:
        await runner.cleanup()
        await runtime.close()
