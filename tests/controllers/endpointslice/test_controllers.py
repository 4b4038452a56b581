"""The EndpointSlice and Endpoints controllers in the controller-manager against the real
API server: pods of a Service become endpoints as they turn ready, scaling changes them,
Services without selectors are left alone, and the real kubectl prints them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from controllers.common import objects
from minikube_py.client import ENDPOINTS, ENDPOINTSLICES, NODES, PODS, SERVICES, ApiClient
from tests.controllers.manager.harness import NS, ControlPlane, control_plane

Obj = dict[str, Any]
CONTROLLERS = ["endpointslice", "endpoint"]
KUBECTL = shutil.which("kubectl")


def service(name: str = "web", **spec: Any) -> Obj:
    body: Obj = {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS}, "spec": body}


def pod(name: str, app: str = "web") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
            "spec": {"nodeName": "node-1", "containers": [
                {"name": "app", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]}}


async def start_pod(client: ApiClient, name: str, ip: str, *, ready: bool = True) -> None:
    await client.create(PODS, pod(name), NS)
    await set_ready(client, name, ip, ready)


async def set_ready(client: ApiClient, name: str, ip: str, ready: bool) -> None:
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    await client.patch(PODS, name, {"status": status}, NS, subresource="status")


async def slices_of(client: ApiClient, service_name: str) -> list[Obj]:
    items = (await client.list(ENDPOINTSLICES, NS, label_selector=f"kubernetes.io/service-name={service_name}"))
    return items["items"]


def ready_ips(slices: list[Obj]) -> list[str]:
    return sorted(e["addresses"][0] for s in slices for e in s.get("endpoints") or [] if e["conditions"]["ready"])


async def endpoints_ips(client: ApiClient, name: str) -> tuple[list[str], list[str]]:
    ep = await client.get(ENDPOINTS, name, NS)
    subsets = ep.get("subsets") or []
    return (sorted(a["ip"] for s in subsets for a in s.get("addresses") or []),
            sorted(a["ip"] for s in subsets for a in s.get("notReadyAddresses") or []))


async def setup(plane: ControlPlane) -> None:
    await plane.client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "node-1", "labels": {"topology.kubernetes.io/zone": "zone-a"}}})


async def test_service_pods_become_endpoints_and_slices(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        client = plane.client
        await setup(plane)
        await client.create(SERVICES, service(), NS)
        await start_pod(client, "web-1", "10.1.0.1")
        await start_pod(client, "web-2", "10.1.0.2", ready=False)

        async def converged(ready: list[str], not_ready: list[str]) -> bool:
            slices = await slices_of(client, "web")
            try:
                eps = await endpoints_ips(client, "web")
            except Exception:  # noqa: BLE001 - not created yet
                return False
            every = sorted(e["addresses"][0] for s in slices for e in s.get("endpoints") or [])
            return ready_ips(slices) == ready and every == sorted(ready + not_ready) and eps == (ready, not_ready)

        await plane.wait_for(lambda: converged(["10.1.0.1"], ["10.1.0.2"]), message="first endpoints")
        [slice_obj] = await slices_of(client, "web")
        assert slice_obj["metadata"]["name"].startswith("web-")
        assert slice_obj["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
            "endpointslice-controller.k8s.io"
        assert slice_obj["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        assert {e["zone"] for e in slice_obj["endpoints"]} == {"zone-a"}
        assert "endpoints.kubernetes.io/last-change-trigger-time" in slice_obj["metadata"]["annotations"]

        await set_ready(client, "web-2", "10.1.0.2", True)
        await start_pod(client, "web-3", "10.1.0.3")
        await plane.wait_for(lambda: converged(["10.1.0.1", "10.1.0.2", "10.1.0.3"], []), message="scaled up")
        [updated] = await slices_of(client, "web")
        assert updated["metadata"]["name"] == slice_obj["metadata"]["name"], "the slice is updated in place"

        await client.delete(PODS, "web-1", NS, grace_period_seconds=0)
        await plane.wait_for(lambda: converged(["10.1.0.2", "10.1.0.3"], []), message="scaled down")

        if KUBECTL:
            _, out, _ = await plane.kubectl(KUBECTL, "get", "endpoints", "web")
            assert "10.1.0.2:8080,10.1.0.3:8080" in out
            _, out, _ = await plane.kubectl(KUBECTL, "get", "endpointslices")
            assert "IPv4" in out and "8080" in out and "10.1.0.2,10.1.0.3" in out


async def test_selectorless_services_are_left_to_their_owners(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        client = plane.client
        await setup(plane)
        manual = service("manual")
        del manual["spec"]["selector"]
        await client.create(SERVICES, manual, NS)
        mine = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual", "namespace": NS},
                "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"name": "http", "port": 80}]}]}
        await client.create(ENDPOINTS, mine, NS)
        await client.create(SERVICES, service(), NS)
        await start_pod(client, "web-1", "10.1.0.1")
        await plane.wait_for(lambda: _has_endpoints(client, "web"), message="web endpoints")
        assert (await endpoints_ips(client, "manual")) == (["192.0.2.1"], [])
        assert await slices_of(client, "manual") == []


@pytest.mark.parametrize("headless", [True, False], ids=["headless", "clusterip"])
async def test_service_deleted_takes_its_endpoints(tmp_path: Path, headless: bool) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        client = plane.client
        await setup(plane)
        await client.create(SERVICES, service(**({"clusterIP": "None"} if headless else {})), NS)
        await start_pod(client, "web-1", "10.1.0.1")
        await plane.wait_for(lambda: _has_endpoints(client, "web"), message="endpoints")
        ep = await client.get(ENDPOINTS, "web", NS)
        assert (objects.labels(ep).get("service.kubernetes.io/headless") == "") is headless
        await client.delete(SERVICES, "web", NS)
        await plane.wait_for(lambda: _gone(client, "web"), message="endpoints deleted")


async def _has_endpoints(client: ApiClient, name: str) -> bool:
    try:
        return bool((await endpoints_ips(client, name))[0])
    except Exception:  # noqa: BLE001
        return False


async def _gone(client: ApiClient, name: str) -> bool:
    try:
        await client.get(ENDPOINTS, name, NS)
    except Exception:  # noqa: BLE001
        return True
    return False


async def test_a_deleted_slice_is_made_again(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        client = plane.client
        await setup(plane)
        await client.create(SERVICES, service(), NS)
        await start_pod(client, "web-1", "10.1.0.1")
        [first] = await plane.wait_for(lambda: _slices_with(client, ["10.1.0.1"]), message="slice")
        await client.delete(ENDPOINTSLICES, first["metadata"]["name"], NS)
        [again] = await plane.wait_for(lambda: _slices_with(client, ["10.1.0.1"]), message="slice re-made")
        assert again["metadata"]["name"] != first["metadata"]["name"]
        await start_pod(client, "web-2", "10.1.0.2")
        await plane.wait_for(lambda: _slices_with(client, ["10.1.0.1", "10.1.0.2"]), message="still in sync")


async def _slices_with(client: ApiClient, ips: list[str]) -> list[Obj] | None:
    slices = await slices_of(client, "web")
    return slices if ready_ips(slices) == ips and len(slices) == 1 else None
