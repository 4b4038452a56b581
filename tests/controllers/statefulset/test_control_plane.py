"""The StatefulSet controller in a real control plane (API server + controller-manager in
process, a fake kubelet marking pods ready), driven by the real kubectl: ordered
creation with claims, scale down keeping claims, a rolling update in reverse order,
`kubectl rollout status/history/undo statefulset`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controllers.common import objects, pods
from minikube_py.client import CONTROLLERREVISIONS, PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS
from tests.conftest import require_tool
from tests.controllers.manager.harness import NS, ControlPlane, FakeKubelet, control_plane

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]
CONTROLLERS = ["statefulset-controller"]


def manifests(replicas: int = 3) -> list[Obj]:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx", "namespace": NS},
               "spec": {"clusterIP": "None", "selector": {"app": "nginx"}, "ports": [{"port": 80, "name": "web"}]}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": NS},
           "spec": {"serviceName": "nginx", "replicas": replicas, "selector": {"matchLabels": {"app": "nginx"}},
                    "template": {"metadata": {"labels": {"app": "nginx"}},
                                 "spec": {"containers": [{"name": "nginx", "image": "nginx:1.0"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
                        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}
    return [service, sts]


async def pod_names(plane: ControlPlane) -> list[str]:
    items = (await plane.client.list(PODS, NS))["items"]
    return sorted(objects.name(p) for p in items if not objects.being_deleted(p))


async def sts_status(plane: ControlPlane) -> Obj:
    return objects.status(await plane.client.get(STATEFULSETS, "web", NS))


async def test_ordered_creation_waits_for_readiness_and_creates_claims_first(tmp_path: Path) -> None:
    kubectl = require_tool("kubectl")
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane, \
            FakeKubelet(plane.client, auto=False) as kubelet:
        path = tmp_path / "web.yaml"
        path.write_text(yaml.safe_dump_all(manifests()))
        await plane.kubectl(kubectl, "apply", "-f", str(path))
        for ordinal in range(3):
            name = f"web-{ordinal}"

            async def created(expected: int = ordinal + 1) -> bool:
                return (await sts_status(plane)).get("replicas") == expected

            await plane.wait_for(created, message=f"{name} created")
            # The sync that created it has written its status and stopped: no next pod yet.
            assert await pod_names(plane) == [f"web-{i}" for i in range(ordinal + 1)]
            claim = await plane.client.get(PERSISTENTVOLUMECLAIMS, f"www-{name}", NS)
            pod = await plane.client.get(PODS, name, NS)
            assert objects.creation_time(claim) <= objects.creation_time(pod)
            assert pod["spec"]["hostname"] == name and pod["spec"]["subdomain"] == "nginx"
            await kubelet.mark_ready(name)
        await plane.wait_for(lambda: _ready(plane, 3), message="3 ready")
        messages = [e["message"] for e in sorted(await plane.events("SuccessfulCreate", kind="StatefulSet"),
                                                  key=lambda e: e["metadata"]["name"])]
        assert "create Pod web-0 in StatefulSet web successful" in messages
        assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in messages
        _, out, _ = await plane.kubectl(kubectl, "get", "statefulset", "web")
        assert "3/3" in out


async def _ready(plane: ControlPlane, count: int) -> bool:
    status = await sts_status(plane)
    return status.get("readyReplicas") == count and status.get("currentRevision") == status.get("updateRevision")


async def test_kubectl_scale_rollout_status_history_and_undo(tmp_path: Path) -> None:
    kubectl = require_tool("kubectl")
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane, FakeKubelet(plane.client):
        async def run(*args: str) -> str:
            return (await plane.kubectl(kubectl, *args))[1]

        path = tmp_path / "web.yaml"
        path.write_text(yaml.safe_dump_all(manifests()))
        await run("apply", "-f", str(path))
        out = await run("rollout", "status", "statefulset/web", "--timeout=30s")
        assert "partitioned roll out complete: 3 new pods have been updated" in out

        # An image update replaces web-2, then web-1, then web-0.
        uids = {n: objects.uid(await plane.client.get(PODS, n, NS)) for n in ("web-0", "web-1", "web-2")}
        await run("set", "image", "statefulset/web", "nginx=nginx:2.0")
        await run("rollout", "status", "statefulset/web", "--timeout=30s")
        await plane.wait_for(lambda: _ready(plane, 3), message="update complete")
        new = {n: await plane.client.get(PODS, n, NS) for n in uids}
        assert all(objects.uid(new[n]) != uids[n] for n in uids)
        assert all(p["spec"]["containers"][0]["image"] == "nginx:2.0" for p in new.values())
        assert objects.creation_time(new["web-2"]) <= objects.creation_time(new["web-1"]) \
            <= objects.creation_time(new["web-0"])
        deletes = [e["message"] for e in sorted(await plane.events("SuccessfulDelete", kind="StatefulSet"),
                                                 key=lambda e: e["metadata"]["name"])]
        assert [m.split()[2] for m in deletes] == ["web-2", "web-1", "web-0"]

        history = await run("rollout", "history", "statefulset/web")
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
        assert "nginx:1.0" in await run("rollout", "history", "statefulset/web", "--revision=1")
        assert "rolled back" in await run("rollout", "undo", "statefulset/web")
        await run("rollout", "status", "statefulset/web", "--timeout=30s")

        async def rolled_back() -> bool:
            items = [await plane.client.get(PODS, n, NS) for n in ("web-0", "web-1", "web-2")]
            return await _ready(plane, 3) and all(p["spec"]["containers"][0]["image"] == "nginx:1.0" for p in items)

        await plane.wait_for(rolled_back, timeout=20, message="rollback")
        revisions = (await plane.client.list(CONTROLLERREVISIONS, NS))["items"]
        assert sorted(r["revision"] for r in revisions) == [2, 3]

        # Scale to 1: web-2 and web-1 go, every claim stays.
        await run("scale", "statefulset/web", "--replicas=1")

        async def scaled() -> bool:
            return await pod_names(plane) == ["web-0"] and (await sts_status(plane)).get("replicas") == 1

        await plane.wait_for(scaled, timeout=20, message="scaled to 1")
        claims = (await plane.client.list(PERSISTENTVOLUMECLAIMS, NS))["items"]
        assert sorted(objects.name(c) for c in claims) == ["www-web-0", "www-web-1", "www-web-2"]
        assert all(pods.is_ready(p) for p in (await plane.client.list(PODS, NS))["items"])
