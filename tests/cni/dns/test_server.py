"""The listeners on real sockets (no cluster): several length-prefixed queries on one TCP
connection, UDP, and a clear error when the address is taken."""

from __future__ import annotations

import asyncio
import socket

import dns.message
import dns.rcode
import pytest

from cni.dns.metrics import Metrics
from cni.dns.server import DnsHandler, DnsServer, Listen
from cni.dns.zone import ClusterZone

HOST = "127.53.53.3"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@pytest.fixture
async def server():
    zone = ClusterZone("cluster.local", ["10.96.0.10"])
    zone.synced = True
    dns_server = DnsServer(DnsHandler(zone, Metrics()), [Listen(HOST, _free_port())])
    await dns_server.start()
    yield dns_server
    await dns_server.close()


async def test_tcp_connection_carries_several_framed_queries(server):
    reader, writer = await asyncio.open_connection(HOST, server.listens[0].port)
    queries = [dns.message.make_query(name, "A") for name in ("ns.dns.cluster.local", "nope.svc.cluster.local")]
    writer.write(b"".join(len(w).to_bytes(2, "big") + w for w in (q.to_wire() for q in queries)))
    await writer.drain()
    answers = []
    for _ in queries:
        size = int.from_bytes(await reader.readexactly(2), "big")
        answers.append(dns.message.from_wire(await reader.readexactly(size)))
    writer.close()
    assert [a.id for a in answers] == [q.id for q in queries]
    assert answers[0].answer[0][0].to_text() == "10.96.0.10"
    assert dns.rcode.to_text(answers[1].rcode()) == "NXDOMAIN"


async def test_udp_query_is_answered(server):
    loop = asyncio.get_running_loop()
    query = dns.message.make_query("ns.dns.cluster.local", "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (HOST, server.listens[0].port))
        await loop.sock_sendall(sock, query.to_wire())
        reply = dns.message.from_wire(await asyncio.wait_for(loop.sock_recv(sock, 4096), 2))
    assert reply.id == query.id and reply.answer[0][0].to_text() == "10.96.0.10"


async def test_a_taken_address_is_a_clear_error(server):
    taken = server.listens[0]
    other = DnsServer(server.handler, [taken])
    with pytest.raises(OSError, match=f"cannot listen on {taken.host}:{taken.port}/udp"):
        await other.start()
