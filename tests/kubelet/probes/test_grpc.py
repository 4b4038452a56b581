"""grpc probes against a real gRPC server (grpcio with the reference health service):
SERVING, NOT_SERVING, unknown services, servers without the health service, nobody
listening; each with the kubelet's message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from kubelet.probes.grpc import grpc_probe
from kubelet.probes.spec import FAILURE, SUCCESS, Outcome
from tests.kubelet.probes.conftest import free_port

grpc = pytest.importorskip("grpc", reason="needs grpcio (test extra)")
health_async = pytest.importorskip("grpc_health.v1._async", reason="needs grpcio-health-checking (test extra)")
health_pb2 = pytest.importorskip("grpc_health.v1.health_pb2")
health_pb2_grpc = pytest.importorskip("grpc_health.v1.health_pb2_grpc")


@pytest.fixture
async def health_server() -> AsyncIterator[tuple[int, object]]:
    server = grpc.aio.server()
    servicer = health_async.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port, servicer
    finally:
        await server.stop(None)


async def test_serving_overall_and_per_service(health_server):
    port, servicer = health_server
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("db", health_pb2.HealthCheckResponse.SERVING)
    assert await grpc_probe("127.0.0.1", port, "", 1) == Outcome(SUCCESS, "service healthy")
    assert await grpc_probe("127.0.0.1", port, "db", 1) == Outcome(SUCCESS, "service healthy")


async def test_not_serving_and_unknown_service(health_server):
    port, servicer = health_server
    await servicer.set("db", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert await grpc_probe("127.0.0.1", port, "db", 1) == Outcome(
        FAILURE, 'service unhealthy (responded with "NOT_SERVING")')
    # grpcio's reference servicer aborts with NOT_FOUND and no details (grpc-go's says "unknown service").
    assert await grpc_probe("127.0.0.1", port, "cache", 1) == Outcome(
        FAILURE, "error: health rpc probe failed: rpc error: code = NotFound desc = ")


async def test_status_message_is_decoded():
    class Broken(health_pb2_grpc.HealthServicer):
        async def Check(self, request, context):  # noqa: N802 - the gRPC method name
            await context.abort(grpc.StatusCode.UNAVAILABLE, "db down: 100% dead, ünïcode")
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(Broken(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        outcome = await grpc_probe("127.0.0.1", port, "", 1)
    finally:
        await server.stop(None)
    assert outcome == Outcome(
        FAILURE, "error: health rpc probe failed: rpc error: code = Unavailable desc = db down: 100% dead, ünïcode")


async def test_server_without_the_health_service():
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        outcome = await grpc_probe("127.0.0.1", port, "", 1)
    finally:
        await server.stop(None)
    assert outcome.result == FAILURE
    assert outcome.output.startswith("error: this server does not implement the grpc health protocol "
                                     "(grpc.health.v1.Health): ")


async def test_nobody_listening_times_out_like_grpc_go():
    port = free_port()
    started = time.monotonic()
    outcome = await grpc_probe("127.0.0.1", port, "", 1)
    assert 0.9 < time.monotonic() - started < 2
    assert outcome == Outcome(
        FAILURE, f'timeout: failed to connect service "127.0.0.1:{port}" within 1s: context deadline exceeded')


async def test_a_health_check_that_hangs_times_out():
    class Slow(health_pb2_grpc.HealthServicer):
        async def Check(self, request, context):  # noqa: N802 - the gRPC method name
            await asyncio.sleep(5)
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(Slow(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        outcome = await grpc_probe("127.0.0.1", port, "", 1)
    finally:
        await server.stop(None)
    assert outcome == Outcome(FAILURE, "timeout: health rpc did not complete within 1s")
