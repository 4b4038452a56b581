"""The ServiceAccount controller against the real API server: `default` in every active
namespace (the system ones included), recreated, never in a Terminating namespace; and
the `kube-root-ca.crt` ConfigMap when a CA bundle is known."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controllers.serviceaccount.controller import DESCRIPTION, ServiceAccountController, cluster_ca_bundle
from minikube_py.client import (
    CONFIGMAPS,
    NAMESPACES,
    SERVICEACCOUNTS,
    ApiClient,
    EventRecorder,
    SharedInformerFactory,
)
from tests.controllers.manager.harness import ControlPlane, api_server, control_plane, wait_for

SYSTEM = ("default", "kube-system", "kube-public", "kube-node-lease")


async def sa_names(plane: ControlPlane, namespace: str) -> list[str]:
    return [o["metadata"]["name"] for o in (await plane.client.list(SERVICEACCOUNTS, namespace))["items"]]


async def test_default_service_account_in_every_namespace_and_recreated(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=["serviceaccount"]) as plane:
        for ns in SYSTEM:
            await plane.wait_for(lambda ns=ns: _has_default(plane, ns), message=f"default SA in {ns}")
        await plane.client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "new"}})
        await plane.wait_for(lambda: _has_default(plane, "new"), message="default SA in new")
        await plane.client.delete(SERVICEACCOUNTS, "default", "new")
        await plane.wait_for(lambda: _has_default(plane, "new"), message="default SA recreated")
        assert await sa_names(plane, "new") == ["default"]


async def _has_default(plane: ControlPlane, ns: str) -> bool:
    return "default" in await sa_names(plane, ns)


async def test_no_service_account_in_a_terminating_namespace(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=["serviceaccount"]) as plane:
        await plane.client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}})
        await plane.wait_for(lambda: _has_default(plane, "t"), message="default SA in t")
        await plane.client.delete(NAMESPACES, "t")  # no namespace controller: stays Terminating
        await plane.client.delete(SERVICEACCOUNTS, "default", "t")
        # Another namespace's SA appearing proves the controller worked past t's events.
        await plane.client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "u"}})
        await plane.wait_for(lambda: _has_default(plane, "u"), message="default SA in u")
        assert await sa_names(plane, "t") == []


async def test_root_ca_configmap_published_when_a_ca_is_known(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    async with api_server(tmp_path) as url, ApiClient(url, field_manager="tests") as client:
        assert cluster_ca_bundle(client) is None  # plain HTTP: nothing to publish
        factory = SharedInformerFactory(client)
        recorder = EventRecorder(client, "serviceaccount-controller")
        controller = ServiceAccountController(client, factory, recorder, root_ca=pem)
        factory.start()
        task = asyncio.create_task(controller.run())
        try:
            async def published() -> dict | None:
                items = (await client.list(CONFIGMAPS, "kube-public"))["items"]
                return next((c for c in items if c["metadata"]["name"] == "kube-root-ca.crt"), None)

            cm = await wait_for(published, message="kube-root-ca.crt")
            assert cm["data"] == {"ca.crt": pem}
            assert cm["metadata"]["annotations"]["kubernetes.io/description"] == DESCRIPTION
            await client.patch(CONFIGMAPS, "kube-root-ca.crt", {"data": {"ca.crt": "tampered"}}, "kube-public")

            async def restored() -> bool:
                return (await published() or {}).get("data") == {"ca.crt": pem}

            await wait_for(restored, message="ca.crt restored")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.shutdown()
            await recorder.close()
