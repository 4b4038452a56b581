"""Shared by the streaming tests: a real API server and a real kubelet server (FakePods
over local processes) with a Node pointing at it, kubectl against them, object helpers.

kubectl runs as an asyncio subprocess: both servers live in the test's event loop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml

from tests.conftest import require_tool
from tests.kubelet.server.conftest import Kubelet
from tests.minikube_py.client.conftest import InProcessServer


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": server}}],
        "users": [{"name": "t", "user": {}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t", "namespace": "default"}}]}))
    return path


async def post(url: str, body: dict) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as resp:
            assert resp.status in (200, 201), await resp.text()
            return await resp.json()


async def add_node(api: InProcessServer, name: str, port: int, address: str = "127.0.0.1") -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    created = await post(f"{api.url}/api/v1/nodes", node)
    created["status"] = {"addresses": [{"type": "InternalIP", "address": address},
                                       {"type": "Hostname", "address": name}],
                         "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{api.url}/api/v1/nodes/{name}/status", data=orjson.dumps(created),
                               headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 200, await resp.text()


async def api_pod(api: InProcessServer, name: str, containers: list[str], node: str | None = "n1") -> None:
    spec: dict = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if node:
        spec["nodeName"] = node
    await post(f"{api.url}/api/v1/namespaces/default/pods",
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


@pytest.fixture
async def cluster(apiserver: InProcessServer, kubelet: Kubelet, tmp_path: Path):
    await add_node(apiserver, "n1", kubelet.port)
    return apiserver, kubelet, write_kubeconfig(tmp_path / "kubeconfig", apiserver.url)


async def start_kubectl(kubeconfig: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        require_tool("kubectl"), "--kubeconfig", str(kubeconfig), *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def kubectl(kubeconfig: Path, *args: str, stdin: bytes | None = None, timeout: float = 30) -> tuple[int, bytes, str]:
    process = await start_kubectl(kubeconfig, *args)
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode or 0, out, err.decode()


async def get(url: str) -> tuple[int, dict | str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if resp.content_type == "application/json" else text)


async def mark_running(api: InProcessServer, name: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{api.url}/api/v1/namespaces/default/pods/{name}") as resp:
            obj = await resp.json()
        obj["status"] = {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}
        async with session.put(f"{api.url}/api/v1/namespaces/default/pods/{name}/status", data=orjson.dumps(obj),
                               headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 200, await resp.text()
