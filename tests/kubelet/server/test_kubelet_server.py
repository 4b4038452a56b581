"""The kubelet server over real sockets and real processes: logs (tail, timestamps,
limits, follow), exec over the channel protocols (exit codes, binary stdin with the v5
close signal, tty and resize, v4 and base64), attach, and the errors the API server
relays."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time

import aiohttp
import pytest

from kubelet.server import channels
from tests.kubelet.server.conftest import Kubelet
from tests.kubelet.server.fakes import pod, waiting


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def _exited(kubelet: Kubelet, cid: str) -> None:
    await asyncio.wait_for(kubelet.runtime.wait(cid), 10)


async def test_logs_whole_tail_timestamps_and_limit(kubelet: Kubelet) -> None:
    cid = await kubelet.run_pod("p", ["sh", "-c", "echo one; echo two >&2; echo three"])
    await _exited(kubelet, cid)
    base = f"{kubelet.url}/containerLogs/default/p/main"
    assert (await _get(base))[1].splitlines() == ["one", "two", "three"] or \
        sorted((await _get(base))[1].splitlines()) == ["one", "three", "two"]
    assert (await _get(base + "?tailLines=1"))[1] in ("three\n", "two\n")
    status, stamped = await _get(base + "?timestamps=true&tailLines=1")
    assert status == 200 and stamped.split(" ", 1)[0].endswith("Z") and stamped.split(" ", 1)[1] in ("three\n", "two\n")
    assert (await _get(base + "?limitBytes=2"))[1] == "on"
    assert (await _get(base + "?sinceTime=2999-01-01T00:00:00Z"))[1] == ""
    assert (await _get(base + "?tailLines=-1"))[0] == 422


async def test_logs_follow_streams_lines_as_written_and_ends_when_the_container_exits(kubelet: Kubelet) -> None:
    cid = await kubelet.run_pod("f", ["sh", "-c", "echo first; read x; echo second"], stdin=True)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{kubelet.url}/containerLogs/default/f/main?follow=true") as resp:
            started = time.monotonic()
            line = await asyncio.wait_for(resp.content.readline(), 5)
            assert line == b"first\n" and time.monotonic() - started < 2
            kubelet.runtime.containers[cid].process.stdin.write(b"go\n")
            assert await asyncio.wait_for(resp.content.readline(), 5) == b"second\n"
            assert await asyncio.wait_for(resp.content.read(), 5) == b""  # the stream ends with the container


async def test_log_errors_are_the_kubelets(kubelet: Kubelet) -> None:
    kubelet.pods.add(pod("w", ["app"], [waiting("app", "ContainerCreating")]))
    assert await _get(f"{kubelet.url}/containerLogs/default/w/app") == (
        400, 'container "app" in pod "w" is waiting to start: ContainerCreating')
    assert await _get(f"{kubelet.url}/containerLogs/default/w/app?previous=true") == (
        400, 'previous terminated container "app" in pod "w" not found')
    assert await _get(f"{kubelet.url}/containerLogs/default/w/nope") == (404, 'container "nope" not found in pod "w"')
    assert await _get(f"{kubelet.url}/containerLogs/default/gone/app") == (404, 'pod "gone" does not exist')


async def _exec(kubelet: Kubelet, pod_name: str, command: list[str], *, protocol: str = channels.V5,
                stdin: bytes | None = None, tty: bool = False, resize: tuple[int, int] | None = None,
                path: str = "exec") -> tuple[dict[int, bytes], bytes, str | None]:
    """Run an exec; returns (output per channel, raw error channel, negotiated protocol)."""
    query = [("command", c) for c in command] + [("stdout", "1")]
    query += [("tty", "1")] if tty else [("stderr", "1")]
    if stdin is not None:
        query.append(("stdin", "1"))
    out: dict[int, bytes] = {}
    binary = "base64" not in protocol
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{kubelet.url}/{path}/default/{pod_name}/main", params=query,
                                      protocols=(protocol,), max_msg_size=0) as ws:
            if resize:
                await ws.send_bytes(bytes([4]) + json.dumps({"Width": resize[0], "Height": resize[1]}).encode())
            if stdin is not None:
                for i in range(0, len(stdin), 32768):
                    chunk = stdin[i:i + 32768]
                    if binary:
                        await ws.send_bytes(b"\x00" + chunk)
                    else:
                        await ws.send_str("0" + base64.b64encode(chunk).decode())
                if protocol == channels.V5:
                    await ws.send_bytes(bytes([255, 0]))
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    out[msg.data[0]] = out.get(msg.data[0], b"") + msg.data[1:]
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    channel = int(msg.data[0])
                    out[channel] = out.get(channel, b"") + base64.b64decode(msg.data[1:])
            return out, out.get(3, b""), ws.protocol


async def test_exec_exit_code_and_streams_over_v5(kubelet: Kubelet) -> None:
    await kubelet.run_pod("e", ["sleep", "30"])
    out, error, protocol = await _exec(kubelet, "e", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert protocol == channels.V5
    assert out[1] == b"out\n" and out[2] == b"err\n"
    status = json.loads(error)
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    out, error, _ = await _exec(kubelet, "e", ["true"])
    assert json.loads(error) == {"metadata": {}, "status": "Success"}


async def test_exec_binary_stdin_round_trip_ends_at_the_v5_close_signal(kubelet: Kubelet) -> None:
    await kubelet.run_pod("c", ["sleep", "30"])
    payload = os.urandom(300_000)
    out, error, _ = await _exec(kubelet, "c", ["cat"], stdin=payload)
    assert out[1] == payload
    assert json.loads(error)["status"] == "Success"


async def test_exec_tty_applies_resize(kubelet: Kubelet) -> None:
    await kubelet.run_pod("t", ["sleep", "30"])
    out, error, _ = await _exec(kubelet, "t", ["sh", "-c", "read x; stty size; exit 4"], stdin=b"go\n",
                                tty=True, resize=(100, 40))
    assert b"40 100" in out[1]
    assert json.loads(error)["details"]["causes"][0]["message"] == "4"


@pytest.mark.parametrize("protocol", [channels.V4, channels.V4_BASE64, channels.V1])
async def test_exec_older_protocols(kubelet: Kubelet, protocol: str) -> None:
    await kubelet.run_pod("o", ["sleep", "30"])
    out, error, negotiated = await _exec(kubelet, "o", ["sh", "-c", "echo hi; exit 2"], protocol=protocol)
    assert negotiated == protocol and out[1] == b"hi\n"
    if protocol == channels.V1:
        assert error.startswith(b"command terminated with non-zero exit code")
    else:
        assert json.loads(error)["details"]["causes"][0]["message"] == "2"


async def test_exec_failure_to_start_is_an_internal_error(kubelet: Kubelet) -> None:
    await kubelet.run_pod("x", ["sleep", "30"])
    _, error, _ = await _exec(kubelet, "x", ["/no/such/binary"])
    status = json.loads(error)
    assert status["reason"] == "InternalError" and "error executing command in container" in status["message"]


async def test_attach_sends_stdin_to_the_container_and_streams_its_output(kubelet: Kubelet) -> None:
    await kubelet.run_pod("a", ["sh", "-c", "while read l; do echo got $l; done"], stdin=True)
    query = {"stdin": "1", "stdout": "1", "stderr": "1"}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{kubelet.url}/attach/default/a/main", params=query,
                                      protocols=(channels.V5,)) as ws:
            first = await ws.receive(timeout=5)
            assert first.data == b"\x01"  # the ready signal: empty message on stdout
            await asyncio.sleep(0.2)
            await ws.send_bytes(b"\x00hello\n")
            msg = await ws.receive(timeout=5)
            assert msg.data == b"\x01got hello\n"
            await ws.send_bytes(bytes([255, 0]))  # closing stdin ends the container's loop
            rest = [m async for m in ws]
    assert json.loads(rest[-1].data[1:]) == {"metadata": {}, "status": "Success"}


async def test_stream_errors_before_the_upgrade(kubelet: Kubelet) -> None:
    await kubelet.run_pod("u", ["sleep", "30"])
    kubelet.pods.add(pod("w", ["main"], [waiting("main", "ContainerCreating")]))
    assert await _get(f"{kubelet.url}/exec/default/u/main?command=true&stdout=1") == (
        426, "Upgrade request required: this kubelet streams over WebSocket "
             f"({', '.join(channels.PROTOCOLS)})")
    assert await _get(f"{kubelet.url}/exec/default/w/main?command=true&stdout=1") == (
        500, 'container not found ("main")')
    assert await _get(f"{kubelet.url}/exec/default/nope/main?command=true&stdout=1") == (404, "pod does not exist")
    assert await _get(f"{kubelet.url}/exec/default/u/main?command=true") == (
        400, "you must specify at least 1 of stdin, stdout, stderr")


async def test_pods_stats_and_healthz(kubelet: Kubelet) -> None:
    await kubelet.run_pod("s", ["sleep", "30"])
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{kubelet.url}/pods") as resp:
            body = await resp.json()
        assert body["kind"] == "PodList" and [p["metadata"]["name"] for p in body["items"]] == ["s"]
        async with session.get(f"{kubelet.url}/stats/summary") as resp:
            assert (await resp.json())["pods"][0]["podRef"]["name"] == "s"
        async with session.get(f"{kubelet.url}/healthz") as resp:
            assert await resp.text() == "ok"


async def test_a_follow_abandoned_by_its_client_ends_while_the_log_is_quiet(kubelet: Kubelet) -> None:
    await kubelet.run_pod("q", ["sh", "-c", "echo one; sleep 60"])

    def following() -> int:
        return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith("log-follow-") and not t.done())

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{kubelet.url}/containerLogs/default/q/main?follow=true") as resp:
            assert await asyncio.wait_for(resp.content.readline(), 5) == b"one\n"
            assert following() == 1
    deadline = time.monotonic() + 5
    while following() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert following() == 0


async def test_exec_killed_by_a_signal_reports_128_plus_the_signal(kubelet: Kubelet) -> None:
    await kubelet.run_pod("k", ["sleep", "30"])
    _, error, _ = await _exec(kubelet, "k", ["sh", "-c", "kill -9 $$"])
    assert json.loads(error)["details"]["causes"] == [{"reason": "ExitCode", "message": "137"}]
