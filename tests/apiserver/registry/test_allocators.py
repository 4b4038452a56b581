"""Service clusterIP / nodePort allocation on a real store."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from apiserver import errors
from apiserver.registry import allocators
from apiserver.registry.allocators import Allocator, ServiceAllocations
from apiserver.storage.sqlite import SQLiteStorage


@pytest.fixture
async def allocator(tmp_path):
    storage = SQLiteStorage(tmp_path / "state.db")
    yield Allocator(storage, ServiceAllocations.from_config("10.96.0.0/24"))
    await storage.close()


def _svc(name: str, **spec) -> dict:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"type": "ClusterIP", **spec}}


async def test_cluster_ip_comes_from_the_range_and_never_twice(allocator):
    seen = set()
    for i in range(50):
        svc = _svc(f"s{i}", ports=[{"port": 80}])
        await allocator.assign(svc, None)
        ip = svc["spec"]["clusterIP"]
        assert svc["spec"]["clusterIPs"] == [ip]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/24")
        assert ip not in ("10.96.0.0", "10.96.0.1", "10.96.0.255")
        seen.add(ip)
    assert len(seen) == 50


async def test_concurrent_claims_of_one_ip_let_exactly_one_win(allocator):
    async def claim(i: int):
        try:
            return await allocator.allocate_ip("10.96.0.77", f"default/s{i}", "spec.clusterIPs")
        except errors.StatusError as exc:
            return exc
    results = await asyncio.gather(*(claim(i) for i in range(10)))
    assert sum(1 for r in results if r == "10.96.0.77") == 1
    assert all("provided IP is already allocated" in r.message for r in results if isinstance(r, errors.StatusError))


@pytest.mark.parametrize(("wanted", "message"), [
    pytest.param("1.2.3.4", "the provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is 10.96.0.0/24",
                 id="outside-range"),
    pytest.param("10.96.0.255", "is not in the valid range", id="broadcast"),
])
async def test_chosen_ip_outside_the_range_is_invalid(allocator, wanted, message):
    with pytest.raises(errors.StatusError) as err:
        await allocator.assign(_svc("s", clusterIP=wanted), None)
    assert err.value.code == 422 and message in err.value.message
    assert err.value.details["causes"][0]["field"] == "spec.clusterIPs"


async def test_node_ports_headless_and_external_name(allocator):
    node_port = _svc("np", type="NodePort", ports=[{"port": 80}, {"port": 81, "nodePort": 30080}])
    await allocator.assign(node_port, None)
    ports = [p["nodePort"] for p in node_port["spec"]["ports"]]
    assert ports[1] == 30080 and 30000 <= ports[0] <= 32767 and ports[0] != 30080
    with pytest.raises(errors.StatusError) as err:
        await allocator.assign(_svc("np2", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]), None)
    assert "provided port is already allocated" in err.value.message
    with pytest.raises(errors.StatusError) as err:
        await allocator.assign(_svc("np3", type="NodePort", ports=[{"port": 80, "nodePort": 8080}]), None)
    assert "The range of valid ports is 30000-32767" in err.value.message
    headless = _svc("h", clusterIP="None")
    await allocator.assign(headless, None)
    assert headless["spec"]["clusterIP"] == "None"
    external = _svc("e", type="ExternalName", externalName="example.com")
    await allocator.assign(external, None)
    assert "clusterIP" not in external["spec"]


async def test_update_keeps_values_and_release_frees_them(allocator):
    svc = _svc("s", type="NodePort", ports=[{"port": 80}])
    await allocator.assign(svc, None)
    again = _svc("s", type="NodePort", clusterIP=svc["spec"]["clusterIP"], ports=[dict(svc["spec"]["ports"][0])])
    await allocator.assign(again, svc)  # same values: nothing new claimed, no conflict with itself
    assert again["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
    await allocator.release_all(svc)
    reuse = _svc("t", clusterIP=svc["spec"]["clusterIP"], type="NodePort",
                 ports=[{"port": 80, "nodePort": svc["spec"]["ports"][0]["nodePort"]}])
    await allocator.assign(reuse, None)


async def test_repair_releases_only_unheld_values_past_the_grace_period(allocator, monkeypatch):
    kept, leaked = _svc("kept"), _svc("leaked")
    await allocator.assign(kept, None)
    await allocator.assign(leaked, None)
    assert await allocator.repair([kept]) == 0  # within the grace period
    monkeypatch.setattr(allocators, "REPAIR_GRACE_SECONDS", -1.0)
    assert await allocator.repair([kept]) == 1
    await allocator.allocate_ip(leaked["spec"]["clusterIP"], "default/new", "spec.clusterIPs")
    with pytest.raises(errors.StatusError):
        await allocator.allocate_ip(kept["spec"]["clusterIP"], "default/new", "spec.clusterIPs")
