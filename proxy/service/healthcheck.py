"""The per-Service health check kube-proxy serves on spec.healthCheckNodePort.

A LoadBalancer Service with externalTrafficPolicy Local has a healthCheckNodePort: a
cloud load balancer probes every node there and sends traffic only to nodes that answer
200, i.e. that have a local endpoint (so the client's source address survives). The
answer is kube-proxy's: JSON naming the Service with its count of local endpoints,
`X-Load-Balancing-Endpoint-Weight` set to the same count, 200 when there is at least
one and 503 when there is none.

The server is a few lines of HTTP/1.1 over an asyncio Protocol (any method, any path,
one response, then close), because a probe is all it ever gets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson

MAX_REQUEST = 16384


class HealthCheck(asyncio.Protocol):
    """Answers one probe with the Service's local endpoint count, then closes."""

    def __init__(self, namespace: str, name: str, local_endpoints: Callable[[], int]) -> None:
        self.namespace = namespace
        self.name = name
        self.local_endpoints = local_endpoints
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer and len(self.buffer) < MAX_REQUEST:
            return  # the request's head is not complete yet
        self.transport.write(self.response())
        self.transport.close()

    def response(self) -> bytes:
        count = self.local_endpoints()
        body = orjson.dumps({"service": {"namespace": self.namespace, "name": self.name},
                             "localEndpoints": count, "serviceProxyHealthy": True})
        status = "200 OK" if count > 0 else "503 Service Unavailable"
        head = (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
                f"X-Load-Balancing-Endpoint-Weight: {count}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n")
        return head.encode() + body
