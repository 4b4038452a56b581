"""The kubelet server over the real `process` runtime (containers under mkp-shim), behind
the real API server, driven by the real kubectl: logs -f, exec with an exit code,
cp in and out, attach. What the fake provider's tests prove, with the runtime the
kubelet actually runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kubelet.runtime.base import ContainerConfig, Sandbox
from kubelet.runtime.process import ProcessRuntime
from kubelet.server.app import serve
from tests.apiserver.podproxy_support import (
    add_node,
    api_pod,
    kubectl,
    mark_running,
    start_kubectl,
)
from tests.kubelet.runtime.shim_support import clean_shims, shim_home  # noqa: F401 - fixtures used by name
from tests.kubelet.server.fakes import running
from tests.minikube_py.client.conftest import InProcessServer, apiserver  # noqa: F401 - fixture used by name

IMAGE = SimpleNamespace(env={"PATH": os.environ["PATH"]}, process_path=os.environ["PATH"])


class RuntimePods:
    """A PodProvider over a real runtime: one single-container pod per started container."""

    def __init__(self, runtime: ProcessRuntime) -> None:
        self.runtime = runtime
        self._pods: dict[str, dict[str, Any]] = {}
        self._logs: dict[str, Path] = {}

    async def start(self, name: str, argv: list[str], workdir: Path, *, stdin: bool = False) -> str:
        root = self.runtime.root
        sandbox = Sandbox(pod_uid=f"uid-{name}", namespace="default", name=name, hostname=name,
                          state_dir=root / f"pods/uid-{name}/sandbox")
        config = ContainerConfig(sandbox=sandbox, name="main", attempt=0, argv=argv, env={"PATH": os.environ["PATH"]},
                                 image=IMAGE, log_path=root / f"logs/default_{name}_uid-{name}/main/0.log",
                                 state_dir=root / f"pods/uid-{name}/containers/main/0", working_dir=str(workdir),
                                 stdin=stdin, labels={"io.kubernetes.container.name": "main"})
        state = await self.runtime.start_container(config)
        self._logs[state.id] = config.log_path
        self._pods[name] = {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
                            "spec": {"nodeName": "n1", "containers": [{"name": "main", "stdin": stdin}]},
                            "status": {"phase": "Running", "containerStatuses": [running("main", state.id)]}}
        return state.id

    def container_ids(self) -> list[str]:
        return list(self._logs)

    def find_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._pods.get(name) if namespace == "default" else None

    def pods(self) -> list[dict[str, Any]]:
        return list(self._pods.values())

    def log_path(self, pod: dict[str, Any], container: str, container_id: str) -> Path | None:
        return self._logs.get(container_id)

    async def summary(self) -> dict[str, Any]:
        return {"node": {"nodeName": "n1"}, "pods": []}


@pytest.fixture
async def stack(apiserver: InProcessServer, clean_shims: Path):  # noqa: F811
    import yaml

    provider = RuntimePods(ProcessRuntime(clean_shims / "node"))
    runner, port = await serve(provider, "127.0.0.1", 0)
    await add_node(apiserver, "n1", port)
    kubeconfig = clean_shims / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": apiserver.url}}], "users": [{"name": "t", "user": {}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t", "namespace": "default"}}]}))
    try:
        yield apiserver, provider, kubeconfig, clean_shims
    finally:
        await runner.cleanup()
        for container_id in provider.container_ids():
            await provider.runtime.kill(container_id, signal.SIGKILL)
            await asyncio.wait_for(provider.runtime.wait(container_id), 10)


async def test_logs_follow_exec_and_cp_with_the_process_runtime(stack) -> None:
    api, provider, kubeconfig, tmp = stack
    workdir = tmp / "work"
    workdir.mkdir()
    cid = await provider.start("app", ["sh", "-c", "echo started; read x; echo got $x; sleep 60"], workdir,
                               stdin=True)
    await api_pod(api, "app", ["main"])
    follow = await start_kubectl(kubeconfig, "logs", "-f", "app")
    try:
        assert await asyncio.wait_for(follow.stdout.readline(), 10) == b"started\n"
        writer = await provider.runtime.attach_stdin(cid)
        writer.write(b"hello\n")
        await writer.drain()
        writer.close()
        assert await asyncio.wait_for(follow.stdout.readline(), 10) == b"got hello\n"
    finally:
        follow.kill()
        await follow.wait()

    rc, out, err = await kubectl(kubeconfig, "exec", "app", "--", "sh", "-c", "echo in $PWD; exit 3")
    assert (rc, out) == (3, f"in {workdir}\n".encode()), err
    payload = os.urandom(100_000)
    (tmp / "local.bin").write_bytes(payload)
    rc, _, err = await kubectl(kubeconfig, "cp", str(tmp / "local.bin"), "app:copied.bin")
    assert rc == 0, err
    assert (workdir / "copied.bin").read_bytes() == payload
    rc, _, err = await kubectl(kubeconfig, "cp", "app:copied.bin", str(tmp / "back.bin"))
    assert rc == 0, err
    assert (tmp / "back.bin").read_bytes() == payload
    rc, _, err = await kubectl(kubeconfig, "exec", "app", "--", "no-such-command")
    assert rc == 1 and 'exec: "no-such-command": executable file not found in $PATH' in err


async def test_attach_with_the_process_runtime(stack) -> None:
    api, provider, kubeconfig, tmp = stack
    await provider.start("att", ["sh", "-c", "while read l; do echo got $l; done"], tmp, stdin=True)
    await api_pod(api, "att", ["main"])
    await mark_running(api, "att")
    process = await start_kubectl(kubeconfig, "attach", "-i", "att")
    try:
        line = b""
        for _ in range(40):  # until the attach is established (it streams output from then on)
            process.stdin.write(b"hi\n")
            await process.stdin.drain()
            with contextlib.suppress(TimeoutError):
                line = await asyncio.wait_for(process.stdout.readline(), 0.25)
                break
        assert line == b"got hi\n"
    finally:
        process.kill()
        await process.wait()
