"""pods/log, exec, attach and nodes/proxy through the real API server to a real kubelet
server (over FakePods running local processes), driven by the real kubectl and the
Python client, as a learner uses them: logs, logs -f, exec exit codes, exec -i, cp.

kubectl runs as an asyncio subprocess: both servers live in this test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml

from tests.conftest import require_tool
from tests.kubelet.server.conftest import Kubelet, kubelet  # noqa: F401 - fixture used by name
from tests.kubelet.server.fakes import pod as provider_pod
from tests.kubelet.server.fakes import running, waiting
from tests.minikube_py.client.conftest import InProcessServer, apiserver  # noqa: F401 - fixture used by name


async def _post(url: str, body: dict) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as resp:
            assert resp.status in (200, 201), await resp.text()
            return await resp.json()


async def _node(api: InProcessServer, name: str, port: int, address: str = "127.0.0.1") -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    created = await _post(f"{api.url}/api/v1/nodes", node)
    created["status"] = {"addresses": [{"type": "InternalIP", "address": address},
                                       {"type": "Hostname", "address": name}],
                         "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{api.url}/api/v1/nodes/{name}/status", data=orjson.dumps(created),
                               headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 200, await resp.text()


async def _api_pod(api: InProcessServer, name: str, containers: list[str], node: str | None = "n1") -> None:
    spec: dict = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if node:
        spec["nodeName"] = node
    await _post(f"{api.url}/api/v1/namespaces/default/pods",
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


@pytest.fixture
async def cluster(apiserver: InProcessServer, kubelet: Kubelet, tmp_path: Path):  # noqa: F811
    await _node(apiserver, "n1", kubelet.port)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": apiserver.url}}],
        "users": [{"name": "t", "user": {}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t", "namespace": "default"}}]}))
    return apiserver, kubelet, kubeconfig


async def _start(kubeconfig: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        require_tool("kubectl"), "--kubeconfig", str(kubeconfig), *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def kubectl(kubeconfig: Path, *args: str, stdin: bytes | None = None, timeout: float = 30) -> tuple[int, bytes, str]:
    process = await _start(kubeconfig, *args)
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode or 0, out, err.decode()


async def _get(url: str) -> tuple[int, dict | str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if resp.content_type == "application/json" else text)


async def test_kubectl_logs_and_the_errors_of_log_requests(cluster) -> None:
    api, kl, kubeconfig = cluster
    cid = await kl.run_pod("web", ["sh", "-c", "echo hello; echo world >&2"])
    await asyncio.wait_for(kl.runtime.wait(cid), 10)
    await _api_pod(api, "web", ["main"])
    rc, out, err = await kubectl(kubeconfig, "logs", "web")
    assert rc == 0, err
    assert sorted(out.decode().splitlines()) == ["hello", "world"]
    rc, out, _ = await kubectl(kubeconfig, "logs", "web", "--tail=1", "--timestamps")
    assert rc == 0 and len(out.splitlines()) == 1 and out.split(b" ", 1)[0].endswith(b"Z")

    await _api_pod(api, "two", ["a", "b"])
    status, body = await _get(f"{api.url}/api/v1/namespaces/default/pods/two/log")
    assert (status, body["reason"], body["message"]) == (
        400, "BadRequest", "a container name must be specified for pod two, choose one of: [a b]")
    status, body = await _get(f"{api.url}/api/v1/namespaces/default/pods/web/log?container=y")
    assert (status, body["message"]) == (400, "container y is not valid for pod web")
    status, body = await _get(f"{api.url}/api/v1/namespaces/default/pods/web/log?tailLines=-1")
    assert status == 422 and body["message"] == \
        'PodLogOptions "web" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0'

    kl.pods.add(provider_pod("pending", ["main"], [waiting("main", "ContainerCreating")]))
    await _api_pod(api, "pending", ["main"])
    rc, _, err = await kubectl(kubeconfig, "logs", "pending")
    assert rc == 1
    assert 'Error from server (BadRequest): container "main" in pod "pending" is waiting to start: ' \
           'ContainerCreating' in err
    await _api_pod(api, "unbound", ["main"], node=None)
    assert await _get(f"{api.url}/api/v1/namespaces/default/pods/unbound/log") == (200, "")


async def test_kubectl_logs_follow_streams_promptly(cluster) -> None:
    api, kl, kubeconfig = cluster
    cid = await kl.run_pod("f", ["sh", "-c", "echo first; read x; echo second; read y"], stdin=True)
    await _api_pod(api, "f", ["main"])
    process = await _start(kubeconfig, "logs", "-f", "f")
    try:
        assert await asyncio.wait_for(process.stdout.readline(), 10) == b"first\n"
        container = kl.runtime.containers[cid].process
        container.stdin.write(b"go\n")
        assert await asyncio.wait_for(process.stdout.readline(), 5) == b"second\n"
        container.stdin.write(b"end\n")
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_kubectl_exec_exit_code_stdin_and_errors(cluster) -> None:
    api, kl, kubeconfig = cluster
    await kl.run_pod("e", ["sleep", "60"])
    await _api_pod(api, "e", ["main"])
    rc, out, err = await kubectl(kubeconfig, "exec", "e", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (rc, out) == (3, b"out\n") and "err\n" in err
    rc, out, err = await kubectl(kubeconfig, "exec", "-i", "e", "--", "sh", "-c", "tr a-z A-Z", stdin=b"hello\n")
    assert (rc, out) == (0, b"HELLO\n"), err

    kl.pods.add(provider_pod("w", ["main"], [waiting("main", "ContainerCreating")]))
    await _api_pod(api, "w", ["main"])
    rc, _, err = await kubectl(kubeconfig, "exec", "w", "--", "true")
    assert rc == 1 and 'container not found ("main")' in err
    await _api_pod(api, "unbound", ["main"], node=None)
    rc, _, err = await kubectl(kubeconfig, "exec", "unbound", "--", "true")
    assert rc == 1 and "pod unbound does not have a host assigned" in err


async def test_kubectl_cp_in_and_out_is_tar_over_exec(cluster, tmp_path: Path) -> None:
    api, kl, kubeconfig = cluster
    await kl.run_pod("cp", ["sleep", "60"])
    await _api_pod(api, "cp", ["main"])
    local = tmp_path / "data.bin"
    payload = bytes(range(256)) * 4000
    local.write_bytes(payload)
    root = kl.tmp / "default_cp" / "root"
    (root / "dir").mkdir()
    rc, _, err = await kubectl(kubeconfig, "cp", str(local), "cp:dir/data.bin")
    assert rc == 0, err
    assert (root / "dir" / "data.bin").read_bytes() == payload
    (root / "dir" / "back.txt").write_text("from the container\n")
    back = tmp_path / "back.txt"
    rc, _, err = await kubectl(kubeconfig, "cp", "cp:dir/back.txt", str(back))
    assert rc == 0, err
    assert back.read_text() == "from the container\n"


async def test_spdy_only_requests_get_a_clear_status(cluster) -> None:
    api, kl, _ = cluster
    await kl.run_pod("s", ["sleep", "60"])
    await _api_pod(api, "s", ["main"])
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
    await _api_pod(api, "py", ["main"])
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


async def test_unreachable_kubelet_is_reported_as_kube_apiserver_does(apiserver: InProcessServer) -> None:  # noqa: F811
    await _node(apiserver, "n9", 1)
    await _api_pod(apiserver, "x", ["main"], node="n9")
    status, body = await _get(f"{apiserver.url}/api/v1/namespaces/default/pods/x/log")
    assert status == 500 and body["message"] == \
        'Get "http://127.0.0.1:1/containerLogs/default/x/main": dial tcp 127.0.0.1:1: connect: connection refused'


async def test_kubectl_logs_previous_reads_the_last_terminated_attempt(cluster) -> None:
    api, kl, kubeconfig = cluster
    old = await kl.run_pod("r", ["sh", "-c", "echo attempt-0"])
    await asyncio.wait_for(kl.runtime.wait(old), 10)
    new = await kl.run_pod("r", ["sh", "-c", "echo attempt-1; sleep 60"])
    status = running("main", new)
    status["restartCount"] = 1
    status["lastState"] = {"terminated": {"exitCode": 0, "reason": "Completed", "containerID": old}}
    kl.pods.add(provider_pod("r", ["main"], [status]))
    kl.pods.logs[old] = kl.tmp / "old.log"
    kl.pods.logs[old].write_bytes(b"2026-01-01T00:00:00.000000000Z stdout F attempt-0\n")
    await _api_pod(api, "r", ["main"])
    rc, out, err = await kubectl(kubeconfig, "logs", "r", "--previous")
    assert (rc, out) == (0, b"attempt-0\n"), err


async def _mark_running(api: InProcessServer, name: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{api.url}/api/v1/namespaces/default/pods/{name}") as resp:
            obj = await resp.json()
        obj["status"] = {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}
        async with session.put(f"{api.url}/api/v1/namespaces/default/pods/{name}/status", data=orjson.dumps(obj),
                               headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 200, await resp.text()


async def test_kubectl_port_forward_through_the_api_server(cluster, unused_tcp_port_factory) -> None:
    from aiohttp import web

    api, kl, kubeconfig = cluster
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello from the pod")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    remote = runner.addresses[0][1]
    cid = await kl.run_pod("pf", ["sleep", "60"])
    status = running("main", cid)
    kl.pods.add({**provider_pod("pf", ["main"], [status]), "status": {
        "phase": "Running", "podIP": "127.0.0.1", "containerStatuses": [status]}})
    await _api_pod(api, "pf", ["main"])
    await _mark_running(api, "pf")
    local = unused_tcp_port_factory()
    process = await _start(kubeconfig, "port-forward", "pod/pf", f"{local}:{remote}")
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 10)
        assert line.startswith(b"Forwarding from 127.0.0.1:"), line
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{local}/") as resp:
            assert await resp.text() == "hello from the pod"
    finally:
        process.kill()
        await process.wait()
        await runner.cleanup()


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
    await _api_pod(api, "z", ["main"])
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


async def test_kubectl_attach_streams_the_containers_output_and_takes_stdin(cluster) -> None:
    api, kl, kubeconfig = cluster
    await kl.run_pod("at", ["sh", "-c", "while read l; do echo got $l; done"], stdin=True)
    await _api_pod(api, "at", ["main"])
    await _mark_running(api, "at")
    process = await _start(kubeconfig, "attach", "-i", "at")
    try:
        # Output written before the attach is established is not streamed (attach follows
        # the log from its end): say hello until the echo comes back.
        line = b""
        for _ in range(40):
            process.stdin.write(b"hello\n")
            await process.stdin.drain()
            with contextlib.suppress(TimeoutError):
                line = await asyncio.wait_for(process.stdout.readline(), 0.25)
                break
        assert line == b"got hello\n"
        process.stdin.close()  # stdin EOF ends the container's loop, and so the attach
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_kubectl_exec_with_a_terminal_passes_its_size_and_exit_code(cluster) -> None:
    import fcntl
    import os
    import pty
    import struct
    import termios

    api, kl, kubeconfig = cluster
    await kl.run_pod("tty", ["sleep", "60"])
    await _api_pod(api, "tty", ["main"])
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 91, 0, 0))
    process = await asyncio.create_subprocess_exec(
        require_tool("kubectl"), "--kubeconfig", str(kubeconfig), "exec", "-it", "tty", "--",
        "sh", "-c", "echo ready; read x; stty size; exit 7", stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    output = b""
    try:
        loop = asyncio.get_running_loop()

        async def read_until(marker: bytes) -> None:
            nonlocal output
            while marker not in output:
                output += await loop.run_in_executor(None, os.read, master, 4096)

        await asyncio.wait_for(read_until(b"ready"), 10)
        os.write(master, b"\r")
        await asyncio.wait_for(read_until(b"33 91"), 10)
        assert await asyncio.wait_for(process.wait(), 10) == 7, output
    except TimeoutError:
        raise AssertionError(f"terminal output so far: {output!r}") from None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        os.close(master)


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
    await _api_pod(api, "ppf", ["main"])
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


async def test_pod_proxy_reaches_the_pod_ip(apiserver: InProcessServer, tmp_path: Path) -> None:  # noqa: F811
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"{request.method} {request.path_qs}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    await _post(f"{apiserver.url}/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "main", "image": "busybox", "ports": [{"containerPort": port}]}]}})
    await _mark_running(apiserver, "web")
    try:
        base = f"{apiserver.url}/api/v1/namespaces/default/pods"
        assert await _get(f"{base}/web/proxy/healthz?x=1") == (200, "GET /healthz?x=1")
        assert await _get(f"{base}/web:{port}/proxy/") == (200, "GET /")
        assert await _get(f"{base}/http:web:{port}/proxy/a/b") == (200, "GET /a/b")
        status, body = await _get(f"{base}/web:1/proxy/")
        assert status == 503 and body["message"] == "error trying to reach service: dial tcp 127.0.0.1:1: " \
                                                     "connect: connection refused"
        status, body = await _get(f"{base}/nope/proxy/")
        assert (status, body["reason"]) == (404, "NotFound")
    finally:
        await runner.cleanup()


async def test_exec_to_an_unreachable_kubelet_says_so(apiserver: InProcessServer) -> None:  # noqa: F811
    await _node(apiserver, "n9", 1)
    await _api_pod(apiserver, "x", ["main"], node="n9")
    url = f"{apiserver.url}/api/v1/namespaces/default/pods/x/exec?command=true&stdout=true"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                             "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                             "Sec-WebSocket-Protocol": "v5.channel.k8s.io"}) as resp:
            body = await resp.json()
    assert resp.status == 500 and body["message"] == \
        "error dialing backend: dial tcp 127.0.0.1:1: connect: connection refused"


async def test_kubectl_logs_all_containers_and_by_container(cluster) -> None:
    api, kl, kubeconfig = cluster
    root = kl.tmp / "multi"
    root.mkdir()
    statuses = []
    for name in ("first", "second"):
        log = root / f"{name}.log"
        cid = await kl.runtime.start(name, root, log, ["sh", "-c", f"echo from {name}"])
        await asyncio.wait_for(kl.runtime.wait(cid), 10)
        kl.pods.logs[cid] = log
        statuses.append(running(name, cid))
    kl.pods.add(provider_pod("multi", ["first", "second"], statuses))
    await _api_pod(api, "multi", ["first", "second"])
    rc, out, err = await kubectl(kubeconfig, "logs", "multi", "--all-containers")
    assert (rc, out) == (0, b"from first\nfrom second\n"), err
    rc, out, err = await kubectl(kubeconfig, "logs", "multi", "-c", "second")
    assert (rc, out) == (0, b"from second\n"), err
    rc, out, err = await kubectl(kubeconfig, "logs", "multi")  # kubectl defaults to the first container
    assert (rc, out) == (0, b"from first\n") and 'Defaulted container "first"' in err
