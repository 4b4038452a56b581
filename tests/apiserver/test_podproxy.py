"""pods/log, exec, attach, portforward, pods/proxy and nodes/proxy through the real API
server to a real kubelet server (FakePods running local processes): validation and
errors as kube-apiserver words them, authorization, the SPDY refusal, the Python client.
(kubectl's view of the same: test_podproxy_kubectl.py.)"""

# ruff: noqa: F811 - pytest fixtures are imported by name and requested as parameters
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from tests.apiserver.podproxy_support import (
    add_node,
    api_pod,
    cluster,  # noqa: F401 - fixture used by name
    get,
    kubectl,
    mark_running,
    post,
)
from tests.kubelet.server.conftest import kubelet  # noqa: F401 - fixture used by name
from tests.kubelet.server.fakes import pod as provider_pod
from tests.kubelet.server.fakes import running
from tests.minikube_py.client.conftest import InProcessServer, apiserver  # noqa: F401 - fixture used by name


async def test_spdy_only_requests_get_a_clear_status(cluster) -> None:
    api, kl, _ = cluster
    await kl.run_pod("s", ["sleep", "60"])
    await api_pod(api, "s", ["main"])
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{api.url}/api/v1/namespaces/default/pods/s/exec?command=true&stdout=true",
                                headers={"Upgrade": "SPDY/3.1", "Connection": "Upgrade"}) as resp:
            body = await resp.json()
    assert resp.status == 400 and body["reason"] == "BadRequest" and "WebSocket only" in body["message"]


async def test_python_client_stream_exec(cluster) -> None:
    from kubernetes import client as k8s
    from kubernetes.stream import stream

    api, kl, _ = cluster
    await kl.run_pod("py", ["sleep", "60"])
    await api_pod(api, "py", ["main"])
    config = k8s.Configuration(host=api.url)
    core = k8s.CoreV1Api(k8s.ApiClient(config))

    def run() -> tuple[str, int | None]:
        out = stream(core.connect_get_namespaced_pod_exec, "py", "default", command=["sh", "-c", "echo hi; exit 5"],
                     stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
        out.run_forever(timeout=10)
        return out.read_stdout(), out.returncode

    stdout, code = await asyncio.to_thread(run)
    assert (stdout, code) == ("hi\n", 5)


async def test_node_proxy_reaches_the_kubelet(cluster) -> None:
    api, kl, kubeconfig = cluster
    await kl.run_pod("n", ["sleep", "60"])
    rc, out, err = await kubectl(kubeconfig, "get", "--raw", "/api/v1/nodes/n1/proxy/stats/summary")
    assert rc == 0, err
    assert json.loads(out)["pods"][0]["podRef"]["name"] == "n"
    rc, out, err = await kubectl(kubeconfig, "get", "--raw", "/api/v1/nodes/n1/proxy/healthz")
    assert (rc, out) == (0, b"ok")


async def test_unreachable_kubelet_is_reported_as_kube_apiserver_does(apiserver: InProcessServer) -> None:
    await add_node(apiserver, "n9", 1)
    await api_pod(apiserver, "x", ["main"], node="n9")
    status, body = await get(f"{apiserver.url}/api/v1/namespaces/default/pods/x/log")
    assert status == 500 and body["message"] == \
        'Get "http://127.0.0.1:1/containerLogs/default/x/main": dial tcp 127.0.0.1:1: connect: connection refused'


class _DenyVerb:
    """Allows everything except one verb on one subresource."""

    def __init__(self, verb: str, subresource: str) -> None:
        self.verb, self.subresource = verb, subresource

    async def authorize(self, user, info) -> tuple[bool, str]:
        return not (info.verb == self.verb and info.subresource == self.subresource), ""


@pytest.mark.parametrize(("verb", "sub", "path"), [
    pytest.param("create", "exec", "exec?command=true&stdout=true", id="websocket-exec-needs-create"),
    pytest.param("get", "log", "log", id="log-needs-get"),
])
async def test_streaming_subresources_are_authorized(cluster, verb: str, sub: str, path: str) -> None:
    api, kl, _ = cluster
    await kl.run_pod("z", ["sleep", "60"])
    await api_pod(api, "z", ["main"])
    api.server.pipeline.authorizer = _DenyVerb(verb, sub)
    async with aiohttp.ClientSession() as session:
        url = f"{api.url}/api/v1/namespaces/default/pods/z/{path}"
        if sub == "exec":
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await session.ws_connect(url, protocols=("v5.channel.k8s.io",))
            assert caught.value.status == 403
            return
        async with session.get(url) as resp:
            body = await resp.json()
    assert resp.status == 403 and body["message"] == \
        f'pods/{sub} "z" is forbidden: User "system:anonymous" cannot {verb} resource "pods/{sub}" ' \
        'in API group "" in the namespace "default"'


async def test_python_client_port_forward_over_channels(cluster) -> None:
    from aiohttp import web
    from kubernetes import client as k8s
    from kubernetes.stream import portforward

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello over channels")

    api, kl, _ = cluster
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    remote = runner.addresses[0][1]
    cid = await kl.run_pod("ppf", ["sleep", "60"])
    status = running("main", cid)
    kl.pods.add({**provider_pod("ppf", ["main"], [status]), "status": {
        "phase": "Running", "podIP": "127.0.0.1", "containerStatuses": [status]}})
    await api_pod(api, "ppf", ["main"])
    core = k8s.CoreV1Api(k8s.ApiClient(k8s.Configuration(host=api.url)))

    def fetch() -> bytes:
        forward = portforward(core.connect_get_namespaced_pod_portforward, "ppf", "default", ports=str(remote))
        try:
            sock = forward.socket(remote)
            sock.setblocking(True)
            sock.settimeout(10)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            sock.close()
            return data
        finally:
            forward.close()

    try:
        reply = await asyncio.to_thread(fetch)
    finally:
        await runner.cleanup()
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"hello over channels")


async def test_pod_proxy_reaches_the_pod_ip(apiserver: InProcessServer, tmp_path: Path) -> None:
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"{request.method} {request.path_qs}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    await post(f"{apiserver.url}/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "main", "image": "busybox", "ports": [{"containerPort": port}]}]}})
    await mark_running(apiserver, "web")
    try:
        base = f"{apiserver.url}/api/v1/namespaces/default/pods"
        assert await get(f"{base}/web/proxy/healthz?x=1") == (200, "GET /healthz?x=1")
        assert await get(f"{base}/web:{port}/proxy/") == (200, "GET /")
        assert await get(f"{base}/http:web:{port}/proxy/a/b") == (200, "GET /a/b")
        status, body = await get(f"{base}/web:1/proxy/")
        assert status == 503 and body["message"] == "error trying to reach service: dial tcp 127.0.0.1:1: " \
                                                     "connect: connection refused"
        status, body = await get(f"{base}/nope/proxy/")
        assert (status, body["reason"]) == (404, "NotFound")
    finally:
        await runner.cleanup()


async def test_exec_to_an_unreachable_kubelet_says_so(apiserver: InProcessServer) -> None:
    await add_node(apiserver, "n9", 1)
    await api_pod(apiserver, "x", ["main"], node="n9")
    url = f"{apiserver.url}/api/v1/namespaces/default/pods/x/exec?command=true&stdout=true"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                             "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                             "Sec-WebSocket-Protocol": "v5.channel.k8s.io"}) as resp:
            body = await resp.json()
    assert resp.status == 500 and body["message"] == \
        "error dialing backend: dial tcp 127.0.0.1:1: connect: connection refused"


async def test_discovery_lists_the_streaming_subresources(apiserver: InProcessServer) -> None:
    status, body = await get(f"{apiserver.url}/api/v1")
    assert status == 200
    verbs = {r["name"]: (r["kind"], r["verbs"]) for r in body["resources"]}
    assert verbs["pods/log"] == ("Pod", ["get"])
    assert verbs["pods/exec"] == ("PodExecOptions", ["create", "get"])
    assert verbs["pods/attach"] == ("PodAttachOptions", ["create", "get"])
    assert verbs["pods/portforward"] == ("PodPortForwardOptions", ["create", "get"])
    assert verbs["pods/proxy"] == ("PodProxyOptions", ["create", "delete", "get", "patch", "update"])
    assert verbs["nodes/proxy"] == ("NodeProxyOptions", ["create", "delete", "get", "patch", "update"])
