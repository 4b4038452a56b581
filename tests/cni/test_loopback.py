"""The loopback pod network mode through NetworkManager: unique 127.244.<i>.x addresses,
idempotent setup and teardown keyed by sandbox id, state that survives a restart, and
addresses a process can really serve on."""

from __future__ import annotations

import asyncio
import socket

import pytest

from cni import NetworkManager
from cni.loopback import loopback_network
from cni.podcidr import index_of_cidr, pod_cidr_for_index
from cni.types import CNIError

CIDR = "127.244.3.0/24"


@pytest.fixture
def manager(tmp_path) -> NetworkManager:
    return NetworkManager.loopback(tmp_path / "cni", CIDR)


async def test_each_pod_gets_its_own_address_from_the_node_cidr(manager):
    a = await manager.setup_pod("default", "a", "uid-a", "sb-a")
    b = await manager.setup_pod("shop", "b", "uid-b", "sb-b")
    assert (a.ip, a.ips, a.netns) == ("127.244.3.2", ["127.244.3.2"], None)
    assert b.ip == "127.244.3.3"
    assert (b.namespace, b.name, b.uid) == ("shop", "b", "uid-b")
    assert b.result.to_json() == {"cniVersion": "1.0.0", "ips": [{"address": "127.244.3.3/24"}], "dns": {}}


async def test_setup_is_idempotent_per_sandbox_even_when_concurrent(manager):
    results = await asyncio.gather(*(manager.setup_pod("default", "a", "uid-a", "sb-a") for _ in range(5)))
    assert {r.ip for r in results} == {"127.244.3.2"}
    assert list(manager.pods()) == ["sb-a"]
    # A new sandbox of the same pod (after the old one was torn down) is another attachment.
    await manager.teardown_pod("default", "a", "uid-a", "sb-a")
    assert (await manager.setup_pod("default", "a", "uid-a", "sb-a2")).ip == "127.244.3.3"


async def test_teardown_releases_the_address_and_is_idempotent(manager, tmp_path):
    await manager.setup_pod("default", "a", "uid-a", "sb-a")
    await manager.teardown_pod("default", "a", "uid-a", "sb-a")
    await manager.teardown_pod("default", "a", "uid-a", "sb-a")
    await manager.teardown_pod("default", "never", "uid-n", "sb-never")
    assert await manager.status("default", "a", "uid-a", "sb-a") is None
    assert manager.pods() == {}
    assert not (tmp_path / "cni" / "networks" / "mkp-loopback" / "127.244.3.2").exists()


async def test_a_restarted_manager_sees_the_same_pods_and_continues_round_robin(tmp_path):
    first = NetworkManager.loopback(tmp_path / "cni", CIDR)
    a = await first.setup_pod("default", "a", "uid-a", "sb-a")
    await first.setup_pod("default", "b", "uid-b", "sb-b")
    await first.teardown_pod("default", "b", "uid-b", "sb-b")

    again = NetworkManager.loopback(tmp_path / "cni", CIDR)
    assert {k: v.ip for k, v in again.pods().items()} == {"sb-a": a.ip}
    assert (await again.status("default", "a", "uid-a", "sb-a", check=True)).ip == a.ip
    assert (await again.setup_pod("default", "a", "uid-a", "sb-a")).ip == a.ip
    assert (await again.setup_pod("default", "c", "uid-c", "sb-c")).ip == "127.244.3.4"


async def test_check_fails_when_the_allocation_is_gone(manager, tmp_path):
    await manager.setup_pod("default", "a", "uid-a", "sb-a")
    (tmp_path / "cni" / "networks" / "mkp-loopback" / "127.244.3.2").unlink()
    with pytest.raises(CNIError, match="Failed to find address added by container sb-a"):
        await manager.status("default", "a", "uid-a", "sb-a", check=True)


async def test_the_reference_host_local_binary_can_allocate_for_the_loopback_mode(tmp_path, host_local_binary):
    manager = NetworkManager.loopback(tmp_path / "cni", CIDR, cni_path=[str(host_local_binary.parent)],
                                      builtin_ipam=False)
    a = await manager.setup_pod("default", "a", "uid-a", "sb-a")
    assert a.ip == "127.244.3.2"
    assert (tmp_path / "cni" / "networks" / "mkp-loopback" / "127.244.3.2").read_bytes() == b"sb-a\r\neth0"
    await manager.status("default", "a", "uid-a", "sb-a", check=True)
    await manager.teardown_pod("default", "a", "uid-a", "sb-a")
    assert not (tmp_path / "cni" / "networks" / "mkp-loopback" / "127.244.3.2").exists()


async def test_exhausted_cidr_fails_setup_and_leaves_nothing_behind(tmp_path):
    manager = NetworkManager.loopback(tmp_path / "cni", "127.244.9.0/30")
    await manager.setup_pod("default", "a", "uid-a", "sb-a")
    with pytest.raises(CNIError, match="no IP addresses available in range set: 127.244.9.1-127.244.9.2"):
        await manager.setup_pod("default", "b", "uid-b", "sb-b")
    assert list(manager.pods()) == ["sb-a"]


async def test_two_pods_serve_the_same_port_on_their_own_addresses(manager):
    a = await manager.setup_pod("default", "a", "uid-a", "sb-a")
    b = await manager.setup_pod("default", "b", "uid-b", "sb-b")
    servers = []
    try:
        for ip in (a.ip, b.ip):
            server = socket.socket()
            server.bind((ip, 0 if not servers else servers[0].getsockname()[1]))
            server.listen()
            servers.append(server)
        port = servers[0].getsockname()[1]
        for ip, server in zip((a.ip, b.ip), servers, strict=True):
            with socket.create_connection((ip, port), timeout=5) as client:
                conn, peer = server.accept()
                conn.close()
                assert client.getpeername() == (ip, port)
    finally:
        for server in servers:
            server.close()


def test_pod_cidrs_by_node_index_in_both_schemes():
    assert pod_cidr_for_index(0) == "127.244.0.0/24"
    assert pod_cidr_for_index(7) == "127.244.7.0/24"
    assert pod_cidr_for_index(300, "10.244.0.0/14") == "10.245.44.0/24"
    assert [index_of_cidr(c) for c in ("127.244.7.0/24", "10.244.7.0/24", "10.245.44.0/24")] == [7, 7, 300]
    assert [index_of_cidr(c) for c in ("192.168.0.0/24", "127.244.0.0/16", "junk")] == [None, None, None]
    with pytest.raises(ValueError, match="has no /24 number 256"):
        pod_cidr_for_index(256)


def test_loopback_mode_needs_a_loopback_cidr():
    with pytest.raises(CNIError, match="needs a 127.x pod CIDR"):
        loopback_network("10.244.0.0/24")
    assert loopback_network(CIDR).plugins == [
        {"type": "mkp-loopback", "ipam": {"type": "host-local", "ranges": [[{"subnet": CIDR}]]}}]


async def test_prune_removes_attachments_of_unknown_sandboxes_including_uncached_allocations(manager, tmp_path):
    await manager.setup_pod("default", "a", "uid-a", "sb-a")
    await manager.setup_pod("default", "b", "uid-b", "sb-b")
    # An ADD that allocated and then crashed before libcni cached its result:
    (tmp_path / "cni" / "networks" / "mkp-loopback" / "127.244.3.200").write_bytes(b"sb-crashed\r\neth0")
    assert await manager.prune(keep={"sb-a"}) == ["sb-b", "sb-crashed"]
    assert list(manager.pods()) == ["sb-a"]
    assert sorted(p.name for p in (tmp_path / "cni" / "networks" / "mkp-loopback").glob("127.*")) == ["127.244.3.2"]
    assert await manager.prune(keep={"sb-a"}) == []
