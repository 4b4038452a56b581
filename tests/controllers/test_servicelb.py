"""The load-balancer controller in the controller-manager against the real API server:
LoadBalancer Services get loopback addresses (lowest free, loadBalancerIP honoured,
never two alike), the cleanup finalizer, the service controller's Events, and lose all
of it when the type changes away; deletion waits for the cleanup. The address choice
is also tested as pure code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controllers.manager.registry import select_controllers
from controllers.servicelb.allocation import AllocationError, choose_address
from controllers.servicelb.controller import FINALIZER
from minikube_py.client import SERVICES, ApiError
from tests.controllers.manager.harness import NS, ControlPlane, control_plane

Obj = dict[str, Any]
CONTROLLERS = ["service-lb-controller"]
POOL = "127.3.0.0/16"


def lb_service(name: str, **spec: Any) -> Obj:
    body: Obj = {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": 8080}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS}, "spec": body}


def with_ingress(service: Obj, *ips: str) -> Obj:
    return {**service, "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}}


@pytest.mark.parametrize(("service", "taken", "expected"), [
    pytest.param(lb_service("a"), [], "127.3.0.1", id="lowest"),
    pytest.param(lb_service("a"), ["127.3.0.1", "127.3.0.2"], "127.3.0.3", id="skips-taken"),
    pytest.param(with_ingress(lb_service("a"), "127.3.0.9"), ["127.3.0.1"], "127.3.0.9", id="keeps-its-own"),
    pytest.param(with_ingress(lb_service("a"), "127.3.0.9"), ["127.3.0.9"], "127.3.0.1", id="moves-off-a-duplicate"),
    pytest.param(with_ingress(lb_service("a"), "10.0.0.1"), [], "127.3.0.1", id="foreign-address-replaced"),
    pytest.param(lb_service("a", loadBalancerIP="127.3.7.7"), [], "127.3.7.7", id="requested"),
])
def test_address_choice(service: Obj, taken: list[str], expected: str) -> None:
    assert choose_address(service, POOL, taken) == expected


@pytest.mark.parametrize(("service", "taken", "message"), [
    pytest.param(lb_service("a", loadBalancerIP="10.1.2.3"), [], "not in the load-balancer range", id="outside"),
    pytest.param(lb_service("a", loadBalancerIP="127.3.0.5"), ["127.3.0.5"], "already in use", id="taken"),
    pytest.param(lb_service("a"), ["127.3.0.1", "127.3.0.2"], "no free address", id="exhausted"),
])
def test_address_choice_failures(service: Obj, taken: list[str], message: str) -> None:
    pool = "127.3.0.0/30" if message == "no free address" else POOL
    with pytest.raises(AllocationError, match=message):
        choose_address(service, pool, taken)


def test_the_controller_is_registered_and_on_by_default() -> None:
    assert "service-lb-controller" in select_controllers("*")


async def ingress_of(plane: ControlPlane, name: str) -> list[Obj]:
    obj = await plane.client.get(SERVICES, name, NS)
    return ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []


async def reasons(plane: ControlPlane, name: str) -> list[str]:
    events = await plane.events()
    return [e["reason"] for e in sorted(events, key=lambda e: e["metadata"]["creationTimestamp"])
            if e["involvedObject"]["name"] == name]


async def test_load_balancer_services_get_distinct_addresses_events_and_the_finalizer(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        client = plane.client
        await client.create(SERVICES, lb_service("one"), NS)
        await client.create(SERVICES, lb_service("two"), NS)
        await client.create(SERVICES, lb_service("fixed", loadBalancerIP="127.3.9.9"), NS)
        await client.create(SERVICES, lb_service("other-class", loadBalancerClass="example.com/lb"), NS)
        await client.create(SERVICES, {**lb_service("plain"), "spec": {"ports": [{"port": 80}]}}, NS)
        for name in ("one", "two", "fixed"):
            await plane.wait_for(lambda n=name: ingress_of(plane, n), message=f"{name}'s address")
        one, two = (await ingress_of(plane, "one"))[0], (await ingress_of(plane, "two"))[0]
        assert {one["ip"], two["ip"]} == {"127.3.0.1", "127.3.0.2"}
        assert one["ipMode"] == "VIP"
        assert await ingress_of(plane, "fixed") == [{"ip": "127.3.9.9", "ipMode": "VIP"}]
        assert await ingress_of(plane, "other-class") == [] and await ingress_of(plane, "plain") == []
        assert FINALIZER in (await client.get(SERVICES, "one", NS))["metadata"]["finalizers"]
        await plane.wait_for(lambda: reasons(plane, "one"), message="events")
        assert (await reasons(plane, "one"))[:2] == ["EnsuringLoadBalancer", "EnsuredLoadBalancer"]
        events = await plane.events("EnsuredLoadBalancer")
        assert events[0]["message"] == "Ensured load balancer"
        assert events[0]["source"]["component"] == "service-controller"


async def test_type_change_clears_status_and_finalizer_and_delete_waits_for_cleanup(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        client = plane.client
        await client.create(SERVICES, lb_service("web"), NS)
        await plane.wait_for(lambda: ingress_of(plane, "web"), message="address")
        await client.patch(SERVICES, "web", {"spec": {"type": "ClusterIP"}}, NS)

        async def cleaned() -> bool:
            obj = await client.get(SERVICES, "web", NS)
            return not (await ingress_of(plane, "web")) and FINALIZER not in (obj["metadata"].get("finalizers") or [])

        await plane.wait_for(cleaned, message="status and finalizer cleared")
        assert "DeletedLoadBalancer" in await reasons(plane, "web")
        await client.patch(SERVICES, "web", {"spec": {"type": "LoadBalancer"}}, NS)
        await plane.wait_for(lambda: ingress_of(plane, "web"), message="address again")
        await client.delete(SERVICES, "web", NS)

        async def gone() -> bool:
            try:
                await client.get(SERVICES, "web", NS)
            except ApiError as exc:
                return exc.is_not_found()
            return False

        await plane.wait_for(gone, message="service deleted after cleanup")


async def test_a_taken_requested_address_is_a_warning(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        client = plane.client
        await client.create(SERVICES, lb_service("first", loadBalancerIP="127.3.0.7"), NS)
        await plane.wait_for(lambda: ingress_of(plane, "first"), message="first address")
        await client.create(SERVICES, lb_service("second", loadBalancerIP="127.3.0.7"), NS)
        failed = await plane.wait_for(lambda: plane.events("SyncLoadBalancerFailed"), message="warning")
        assert failed[0]["type"] == "Warning"
        assert failed[0]["message"] == ("Error syncing load balancer: failed to ensure load balancer: requested "
                                        "loadBalancerIP 127.3.0.7 is already in use by another Service")
        assert await ingress_of(plane, "second") == []
