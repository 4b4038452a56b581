"""Fake nodes: pods whose ConfigMaps or Secrets are missing wait, as on a real kubelet.

In-process API server, FakeClock: the retry every 10 s is stepped with `clock.advance`.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.fake import blocked
from minikube_py.client import CONFIGMAPS, EVENTS, PODS, SECRETS, ApiClient, FakeClock
from tests.kubelet.support import create_bound_pod, eventually, pod_manifest, running_fake_nodes

DB_PASSWORD = {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}}


async def _pod_when(client: ApiClient, name: str, check: Any) -> Any:
    async def probe() -> Any:
        pod = await client.get(PODS, name, "default")
        return pod if check(pod) else None
    return await eventually(probe)


def _waiting(pod: dict) -> dict:
    return ((pod["status"].get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting") or {}


async def _warnings(client: ApiClient, fake: Any, name: str) -> list[tuple[str, str, str]]:
    await fake.nodes.handles["fake-1"].recorder.flush()
    items = (await client.list(EVENTS, "default", field_selector=f"involvedObject.name={name}"))["items"]
    return [(e["reason"], e["message"], e["involvedObject"].get("fieldPath", "")) for e in items
            if e["type"] == "Warning"]


async def test_missing_secret_in_env_is_create_container_config_error(client: ApiClient, clock: FakeClock) -> None:
    manifest = pod_manifest("app", containers=[{"name": "app", "image": "nginx:1.25", "env": [DB_PASSWORD]}])
    async with running_fake_nodes(client, ["fake-1"], clock=clock) as fake:
        await create_bound_pod(client, manifest, "fake-1")
        pod = await _pod_when(client, "app", lambda p: _waiting(p).get("reason") == "CreateContainerConfigError")
        assert pod["status"]["phase"] == "Pending" and pod["status"]["podIP"]  # the sandbox exists
        assert _waiting(pod)["message"] == 'secret "db-credentials" not found'
        ready = {c["type"]: (c["status"], c.get("reason")) for c in pod["status"]["conditions"]}
        assert ready["Ready"] == ("False", "ContainersNotReady")
        assert ready["PodReadyToStartContainers"] == ("True", None)
        assert await _warnings(client, fake, "app") == [
            ("Failed", 'Error: secret "db-credentials" not found', "spec.containers{app}")]
        items = (await client.list(EVENTS, "default", field_selector="involvedObject.name=app"))["items"]
        assert ("Pulled", 'Container image "nginx:1.25" already present on machine') in {
            (e["reason"], e["message"]) for e in items}  # pulled before the config fails

        await client.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials"},
                                      "stringData": {"user": "app"}}, "default")
        clock.advance(blocked.RETRY_SECONDS)
        pod = await _pod_when(client, "app", lambda p: "couldn't find key" in _waiting(p).get("message", ""))
        assert _waiting(pod)["message"] == "couldn't find key password in Secret default/db-credentials"

        await client.patch(SECRETS, "db-credentials", {"stringData": {"password": "s3cret"}}, "default")
        clock.advance(blocked.RETRY_SECONDS)
        pod = await _pod_when(client, "app", lambda p: p["status"].get("phase") == "Running")
        assert pod["status"]["containerStatuses"][0]["ready"] is True
        await fake.nodes.handles["fake-1"].recorder.flush()
        items = (await client.list(EVENTS, "default", field_selector="involvedObject.name=app"))["items"]
        assert "Started" in {e["reason"] for e in items}


async def test_missing_config_map_volume_keeps_the_pod_container_creating(client: ApiClient,
                                                                          clock: FakeClock) -> None:
    manifest = pod_manifest("web", volumes=[{"name": "config", "configMap": {"name": "web-config"}}])
    async with running_fake_nodes(client, ["fake-1"], clock=clock) as fake:
        await create_bound_pod(client, manifest, "fake-1")
        pod = await _pod_when(client, "web", lambda p: _waiting(p).get("reason") == "ContainerCreating")
        assert pod["status"]["phase"] == "Pending" and "podIP" not in pod["status"]
        assert await _warnings(client, fake, "web") == [
            ("FailedMount", 'MountVolume.SetUp failed for volume "config" : configmap "web-config" not found', "")]
        await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"},
                                         "data": {"a": "b"}}, "default")
        clock.advance(blocked.RETRY_SECONDS)
        pod = await _pod_when(client, "web", lambda p: p["status"].get("phase") == "Running")
        assert pod["status"]["podIP"]


@pytest.mark.parametrize("spec", [
    pytest.param({"volumes": [{"name": "s", "secret": {"secretName": "nope", "optional": True}}]}, id="volume"),
    pytest.param({"containers": [{"name": "web", "image": "nginx", "envFrom": [
        {"configMapRef": {"name": "nope", "optional": True}}]}]}, id="env-from"),
])
async def test_optional_references_do_not_block(client: ApiClient, clock: FakeClock, spec: dict) -> None:
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, pod_manifest("opt", **spec), "fake-1")
        await _pod_when(client, "opt", lambda p: p["status"].get("phase") == "Running")


async def test_init_container_env_error_holds_the_pod_initializing(client: ApiClient, clock: FakeClock) -> None:
    manifest = pod_manifest("init", initContainers=[{"name": "setup", "image": "busybox:1.36", "envFrom": [
        {"configMapRef": {"name": "settings"}}]}])
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, manifest, "fake-1")
        pod = await _pod_when(client, "init", lambda p: p["status"].get("initContainerStatuses"))
    [init] = pod["status"]["initContainerStatuses"]
    assert init["state"]["waiting"] == {"reason": "CreateContainerConfigError",
                                        "message": 'configmap "settings" not found'}
    assert _waiting(pod) == {"reason": "PodInitializing"}
    initialized = next(c for c in pod["status"]["conditions"] if c["type"] == "Initialized")
    assert (initialized["status"], initialized["reason"], initialized["message"]) == (
        "False", "ContainersNotInitialized", "containers with incomplete status: [setup]")
