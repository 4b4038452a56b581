"""tcpSocket probes against real sockets, exec probes through a runtime that runs real
processes: results, output in messages, timeouts."""

from __future__ import annotations

import asyncio
import time

from kubelet.probes.exec import exec_probe
from kubelet.probes.spec import FAILURE, SUCCESS, UNKNOWN, Outcome
from kubelet.probes.tcp import tcp_probe
from tests.kubelet.probes.conftest import eventually, free_port


async def test_tcp_probe_connects_and_sends_nothing():
    received: list[bytes] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read())
        writer.close()
    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await tcp_probe("127.0.0.1", port, 1) == Outcome(SUCCESS, "")
        await asyncio.sleep(0.05)
    finally:
        server.close()
        await server.wait_closed()
    assert received == [b""]


async def test_tcp_probe_refused_message():
    port = free_port()
    assert await tcp_probe("127.0.0.1", port, 1) == Outcome(
        FAILURE, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_exec_success_and_failure_carry_the_output(runtime):
    ok = await exec_probe(runtime, "cid", ["sh", "-c", "echo fine"], 1)
    assert ok == Outcome(SUCCESS, "fine\n")
    bad = await exec_probe(runtime, "cid", ["sh", "-c", "echo out; echo err >&2; exit 3"], 1)
    assert bad == Outcome(FAILURE, "out\nerr\n")  # stdout, then stderr
    silent = await exec_probe(runtime, "cid", ["false"], 1)
    assert silent == Outcome(FAILURE, "")
    assert runtime.calls[0] == ("cid", ["sh", "-c", "echo fine"], False, False)


async def test_exec_timeout_kills_the_command(runtime):
    started = time.monotonic()
    outcome = await exec_probe(runtime, "cid", ["sh", "-c", "sleep 30"], 1)
    assert outcome == Outcome(FAILURE, 'command "sh -c sleep 30" timed out')
    assert time.monotonic() - started < 2
    await eventually(lambda: runtime.processes[0].returncode is not None, what="the command reaped")


async def test_exec_output_is_limited_to_10_kib(runtime):
    outcome = await exec_probe(runtime, "cid", ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; exit 1"], 2)
    assert outcome.result == FAILURE and outcome.output == "x" * 10240


async def test_exec_of_a_missing_executable_fails_with_the_runtime_message(runtime):
    outcome = await exec_probe(runtime, "cid", ["/no/such/healthcheck"], 1)
    assert outcome == Outcome(FAILURE, 'exec: "/no/such/healthcheck": executable file not found in $PATH')


async def test_exec_in_a_container_that_is_gone_errors(runtime):
    runtime.missing.add("gone")
    outcome = await exec_probe(runtime, "gone", ["true"], 1)
    assert outcome == Outcome(UNKNOWN, "", "container gone not found")
