"""The real kubectl drives a Deployment through the controller-manager: rollout status,
history, undo, pause/resume, restart, and describe with the controllers' events.

The API server and the controller-manager run in process; kubectl runs as a child
process with a kubeconfig pointing at them, and a fake kubelet marks pods ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controllers.common import objects, ownership
from minikube_py.client import DEPLOYMENTS, REPLICASETS
from tests.conftest import require_tool
from tests.controllers.manager.harness import NS, ControlPlane, FakeKubelet, control_plane, deployment

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]
SEED_STRATEGY = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def image_of(obj: Obj) -> str:
    return objects.spec(obj)["template"]["spec"]["containers"][0]["image"]


async def revisions(plane: ControlPlane) -> dict[str, Obj]:
    """The Deployment's ReplicaSets by image."""
    d = await plane.client.get(DEPLOYMENTS, "web", NS)
    items = (await plane.client.list(REPLICASETS, NS))["items"]
    return {image_of(rs): rs for rs in items if ownership.is_controlled_by(rs, d)}


async def test_kubectl_rollout_status_history_undo_pause_resume_describe(tmp_path: Path) -> None:
    kubectl = require_tool("kubectl")
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client):
        async def run(*args: str) -> str:
            return (await plane.kubectl(kubectl, *args))[1]

        manifest = tmp_path / "web.yaml"
        manifest.write_text(yaml.safe_dump(deployment(replicas=3, strategy=SEED_STRATEGY)))
        await run("apply", "-f", str(manifest))
        out = await run("rollout", "status", "deployment/web", "--timeout=20s")
        assert 'deployment "web" successfully rolled out' in out

        await run("set", "image", "deployment/web", "app=nginx:2.0")
        out = await run("rollout", "status", "deployment/web", "--timeout=20s")
        assert 'deployment "web" successfully rolled out' in out
        v1 = (await revisions(plane))["nginx:1.0"]
        assert v1["spec"]["replicas"] == 0

        history = await run("rollout", "history", "deployment/web")
        assert _history_rows(history) == ["1", "2"]
        assert "nginx:1.0" in await run("rollout", "history", "deployment/web", "--revision=1")

        assert "rolled back" in await run("rollout", "undo", "deployment/web")
        await run("rollout", "status", "deployment/web", "--timeout=20s")
        d = await plane.client.get(DEPLOYMENTS, "web", NS)
        assert image_of(d) == "nginx:1.0"
        back = await revisions(plane)
        assert objects.uid(back["nginx:1.0"]) == objects.uid(v1)  # revision 1's ReplicaSet, not a new one
        assert back["nginx:1.0"]["spec"]["replicas"] == 3
        assert objects.annotations(back["nginx:1.0"])["deployment.kubernetes.io/revision"] == "3"
        assert back["nginx:2.0"]["spec"]["replicas"] == 0
        assert _history_rows(await run("rollout", "history", "deployment/web")) == ["2", "3"]

        await _pause_and_resume(plane, run)
        await _restart(plane, run)
        await _describe(run)


def _history_rows(history: str) -> list[str]:
    lines = history.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("REVISION")) + 1
    return [line.split()[0] for line in lines[start:] if line.strip()]


async def _pause_and_resume(plane: ControlPlane, run: Any) -> None:
    assert "paused" in await run("rollout", "pause", "deployment/web")
    await run("set", "image", "deployment/web", "app=nginx:3.0")

    async def pause_observed() -> bool:
        d = await plane.client.get(DEPLOYMENTS, "web", NS)
        conds = {c["type"]: c for c in objects.status(d).get("conditions") or []}
        return (objects.status(d).get("observedGeneration") == objects.generation(d)
                and conds.get("Progressing", {}).get("reason") == "DeploymentPaused")
    await plane.wait_for(pause_observed, message="the pause observed")
    assert "nginx:3.0" not in await revisions(plane)  # paused: no rollout

    assert "resumed" in await run("rollout", "resume", "deployment/web")
    await run("rollout", "status", "deployment/web", "--timeout=20s")
    rss = await revisions(plane)
    assert {image: rs["spec"]["replicas"] for image, rs in rss.items()} == {
        "nginx:1.0": 0, "nginx:2.0": 0, "nginx:3.0": 3}


async def _restart(plane: ControlPlane, run: Any) -> None:
    assert "restarted" in await run("rollout", "restart", "deployment/web")
    await run("rollout", "status", "deployment/web", "--timeout=20s")
    items = (await plane.client.list(REPLICASETS, NS))["items"]
    restarted = [rs for rs in items if "kubectl.kubernetes.io/restartedAt"
                 in (rs["spec"]["template"]["metadata"].get("annotations") or {})]
    assert len(restarted) == 1 and restarted[0]["spec"]["replicas"] == 3


async def _describe(run: Any) -> None:
    out = await run("describe", "deployment", "web")
    assert "RollingUpdateStrategy:  0 max unavailable, 1 max surge" in out
    assert "NewReplicaSet:" in out and "OldReplicaSets:" in out
    conditions = out.split("Conditions:")[1].split("OldReplicaSets:")[0]
    assert "Available      True    MinimumReplicasAvailable" in conditions
    assert "Progressing    True    NewReplicaSetAvailable" in conditions
    events = out.split("Events:")[1]
    assert "ScalingReplicaSet" in events and "deployment-controller" in events
    assert "Scaled up replica set web-" in events and "Scaled down replica set web-" in events
