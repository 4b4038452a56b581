"""What a learner types: the real kubectl `logs` (-f, --previous, --tail, --timestamps,
--all-containers), `exec` (exit codes, -i, -it on a terminal), `cp`, `attach` and
`port-forward`, through the real API server to a real kubelet server (FakePods running
local processes)."""

# ruff: noqa: F811 - pytest fixtures are imported by name and requested as parameters
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp

from tests.apiserver.podproxy_support import (
    api_pod,
    cluster,  # noqa: F401 - fixture used by name
    get,
    kubectl,
    mark_running,
    start_kubectl,
)
from tests.conftest import require_tool
from tests.kubelet.server.conftest import kubelet  # noqa: F401 - fixture used by name
from tests.kubelet.server.fakes import pod as provider_pod
from tests.kubelet.server.fakes import running, waiting
from tests.minikube_py.client.conftest import InProcessServer, apiserver  # noqa: F401 - fixture used by name


async def test_kubectl_logs_and_the_errors_of_log_requests(cluster) -> None:
    api, kl, kubeconfig = cluster
    cid = await kl.run_pod("web", ["sh", "-c", "echo hello; echo world >&2"])
    await asyncio.wait_for(kl.runtime.wait(cid), 10)
    await api_pod(api, "web", ["main"])
    rc, out, err = await kubectl(kubeconfig, "logs", "web")
    assert rc == 0, err
    assert sorted(out.decode().splitlines()) == ["hello", "world"]
    rc, out, _ = await kubectl(kubeconfig, "logs", "web", "--tail=1", "--timestamps")
    assert rc == 0 and len(out.splitlines()) == 1 and out.split(b" ", 1)[0].endswith(b"Z")

    await api_pod(api, "two", ["a", "b"])
    status, body = await get(f"{api.url}/api/v1/namespaces/default/pods/two/log")
    assert (status, body["reason"], body["message"]) == (
        400, "BadRequest", "a container name must be specified for pod two, choose one of: [a b]")
    status, body = await get(f"{api.url}/api/v1/namespaces/default/pods/web/log?container=y")
    assert (status, body["message"]) == (400, "container y is not valid for pod web")
    status, body = await get(f"{api.url}/api/v1/namespaces/default/pods/web/log?tailLines=-1")
    assert status == 422 and body["message"] == \
        'PodLogOptions "web" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0'

    kl.pods.add(provider_pod("pending", ["main"], [waiting("main", "ContainerCreating")]))
    await api_pod(api, "pending", ["main"])
    rc, _, err = await kubectl(kubeconfig, "logs", "pending")
    assert rc == 1
    assert 'Error from server (BadRequest): container "main" in pod "pending" is waiting to start: ' \
           'ContainerCreating' in err
    await api_pod(api, "unbound", ["main"], node=None)
    assert await get(f"{api.url}/api/v1/namespaces/default/pods/unbound/log") == (200, "")


async def test_kubectl_logs_follow_streams_promptly(cluster) -> None:
    api, kl, kubeconfig = cluster
    cid = await kl.run_pod("f", ["sh", "-c", "echo first; read x; echo second; read y"], stdin=True)
    await api_pod(api, "f", ["main"])
    process = await start_kubectl(kubeconfig, "logs", "-f", "f")
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
    await api_pod(api, "e", ["main"])
    rc, out, err = await kubectl(kubeconfig, "exec", "e", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (rc, out) == (3, b"out\n") and "err\n" in err
    rc, out, err = await kubectl(kubeconfig, "exec", "-i", "e", "--", "sh", "-c", "tr a-z A-Z", stdin=b"hello\n")
    assert (rc, out) == (0, b"HELLO\n"), err

    kl.pods.add(provider_pod("w", ["main"], [waiting("main", "ContainerCreating")]))
    await api_pod(api, "w", ["main"])
    rc, _, err = await kubectl(kubeconfig, "exec", "w", "--", "true")
    assert rc == 1 and 'container not found ("main")' in err
    await api_pod(api, "unbound", ["main"], node=None)
    rc, _, err = await kubectl(kubeconfig, "exec", "unbound", "--", "true")
    assert rc == 1 and "pod unbound does not have a host assigned" in err


async def test_kubectl_cp_in_and_out_is_tar_over_exec(cluster, tmp_path: Path) -> None:
    api, kl, kubeconfig = cluster
    await kl.run_pod("cp", ["sleep", "60"])
    await api_pod(api, "cp", ["main"])
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
    await api_pod(api, "r", ["main"])
    rc, out, err = await kubectl(kubeconfig, "logs", "r", "--previous")
    assert (rc, out) == (0, b"attempt-0\n"), err


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
    await api_pod(api, "pf", ["main"])
    await mark_running(api, "pf")
    local = unused_tcp_port_factory()
    process = await start_kubectl(kubeconfig, "port-forward", "pod/pf", f"{local}:{remote}")
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 10)
        assert line.startswith(b"Forwarding from 127.0.0.1:"), line
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{local}/") as resp:
            assert await resp.text() == "hello from the pod"
    finally:
        process.kill()
        await process.wait()
        await runner.cleanup()


async def test_kubectl_attach_streams_the_containers_output_and_takes_stdin(cluster) -> None:
    api, kl, kubeconfig = cluster
    await kl.run_pod("at", ["sh", "-c", "while read l; do echo got $l; done"], stdin=True)
    await api_pod(api, "at", ["main"])
    await mark_running(api, "at")
    process = await start_kubectl(kubeconfig, "attach", "-i", "at")
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
    await api_pod(api, "tty", ["main"])
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
    await api_pod(api, "multi", ["first", "second"])
    rc, out, err = await kubectl(kubeconfig, "logs", "multi", "--all-containers")
    # kubectl keeps the per-container requests in a Go map: the order varies between runs.
    assert (rc, sorted(out.splitlines())) == (0, [b"from first", b"from second"]), err
    rc, out, err = await kubectl(kubeconfig, "logs", "multi", "-c", "second")
    assert (rc, out) == (0, b"from second\n"), err
    rc, out, err = await kubectl(kubeconfig, "logs", "multi")  # kubectl defaults to the first container
    assert (rc, out) == (0, b"from first\n") and 'Defaulted container "first"' in err
