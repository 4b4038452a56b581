"""The controller-manager: controller selection, leader election on the Lease, field
manager and event sources, and the process entry point stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from controllers.manager import LeaderElectionLost, select_controllers
from controllers.manager.registry import CONTROLLERS, DISABLED_BY_DEFAULT
from minikube_py.client import DEPLOYMENTS, LEASES, PODS, REPLICASETS, ApiError
from tests.conftest import REPO_ROOT
from tests.controllers.manager.harness import NS, ControlPlane, control_plane, deployment, replica_set

Obj = dict[str, Any]
BOTH = ["deployment-controller", "replicaset-controller"]
ALL = [name for name in CONTROLLERS if name not in DISABLED_BY_DEFAULT]
ALL_BUT_RS = [name for name in ALL if name != "replicaset-controller"]
ALL_BUT_DEPLOYMENT = [name for name in ALL if name != "deployment-controller"]


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param(None, ALL, id="default-is-star"),
    pytest.param("*", ALL, id="star"),
    pytest.param("*,-replicaset", ALL_BUT_RS, id="star-minus-alias"),
    pytest.param("-replicaset-controller,*", ALL_BUT_RS, id="minus-then-star"),
    pytest.param("replicaset", ["replicaset-controller"], id="one-by-alias"),
    pytest.param("-deployment,deployment,*", ALL_BUT_DEPLOYMENT, id="first-entry-wins"),
    pytest.param("", [], id="nothing"),
    pytest.param(["deployment-controller", "replicaset"], BOTH, id="list"),
])
def test_select_controllers_reads_the_controllers_flag_as_kubernetes(spec: Any, expected: list[str]) -> None:
    assert select_controllers(spec) == expected


def test_select_controllers_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown controller 'jobs'"):
        select_controllers("*,-jobs")


async def lease(plane: ControlPlane) -> Obj | None:
    items = (await plane.client.list(LEASES, "kube-system"))["items"]
    return next((item for item in items if item["metadata"]["name"] == "kube-controller-manager"), None)


async def holder(plane: ControlPlane, identity: str) -> Obj | None:
    found = await lease(plane)
    return found if found and found["spec"].get("holderIdentity") == identity else None


async def replica_sets(plane: ControlPlane) -> list[Obj]:
    return (await plane.client.list(REPLICASETS, NS))["items"]


async def test_only_the_leader_reconciles_and_a_standby_takes_over(tmp_path: Path) -> None:
    async with control_plane(tmp_path, manager=False) as plane:
        first = plane.start_manager(name="a", leader_elect=True, identity="a")
        held = await plane.wait_for(lambda: holder(plane, "a"), message="a to lead")
        assert held["spec"]["leaseDurationSeconds"] == 1
        plane.start_manager(name="b", leader_elect=True, identity="b")
        await plane.client.create(DEPLOYMENTS, deployment("one", replicas=1))
        await plane.wait_for(lambda: replica_sets(plane), message="a ReplicaSet from a")
        assert await holder(plane, "a")  # b stood by

        await plane.stop_manager(first)  # releases the Lease
        taken = await plane.wait_for(lambda: holder(plane, "b"), message="b to take over")
        assert taken["spec"]["leaseTransitions"] >= 1
        await plane.client.create(DEPLOYMENTS, deployment("two", replicas=1))

        async def second() -> bool:
            return any(rs["metadata"]["name"].startswith("two-") for rs in await replica_sets(plane))
        await plane.wait_for(second, message="a ReplicaSet from b")


async def test_only_selected_controllers_run(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=["replicaset"]) as plane:
        await plane.client.create(DEPLOYMENTS, deployment(replicas=1))
        await plane.client.create(REPLICASETS, replica_set(replicas=1))

        async def pods() -> list[Obj]:
            return (await plane.client.list(PODS, NS))["items"]
        await plane.wait_for(pods, message="the ReplicaSet's pod")
        assert [rs["metadata"]["name"] for rs in await replica_sets(plane)] == ["rs"]  # no Deployment controller


async def test_writes_carry_the_field_manager_and_events_the_component(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane:
        await plane.client.create(DEPLOYMENTS, deployment(replicas=1))
        [rs] = await plane.wait_for(lambda: replica_sets(plane), message="a ReplicaSet")
        assert {f["manager"] for f in rs["metadata"]["managedFields"]} == {"kube-controller-manager"}

        async def sources() -> set[str] | None:
            found = {(e["reason"], e["source"]["component"]) for e in await plane.events()}
            return found if len(found) >= 2 else None
        assert await plane.wait_for(sources, message="events") == {
            ("ScalingReplicaSet", "deployment-controller"), ("SuccessfulCreate", "replicaset-controller")}


async def test_process_runs_until_sigterm_and_releases_the_lease(tmp_path: Path) -> None:
    code = "import sys; from controllers.manager import main; main(None, sys.argv[1], '*', True)"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MKP_LOG_LEVEL": "WARNING"}
    async with control_plane(tmp_path, manager=False) as plane:
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", code, plane.url, env=env,
                                                       stderr=asyncio.subprocess.PIPE)
        try:
            leading = await plane.wait_for(lambda: lease(plane), timeout=20, message="the process to lead")
            identity = leading["spec"]["holderIdentity"]
            assert identity.startswith(os.uname().nodename + "_")
            await plane.client.create(DEPLOYMENTS, deployment(replicas=1))
            await plane.wait_for(lambda: replica_sets(plane), message="a ReplicaSet")
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 10)
            assert process.returncode == 0, stderr.decode()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        released = await lease(plane)
        assert released is not None and not released["spec"].get("holderIdentity")


async def test_losing_the_lease_stops_the_controllers_and_raises(tmp_path: Path) -> None:
    async with control_plane(tmp_path, manager=False) as plane:
        task = plane.start_manager(name="a", leader_elect=True, identity="a")
        await plane.wait_for(lambda: holder(plane, "a"), message="a to lead")

        async def steal() -> bool:  # another replica takes the Lease over
            held = await lease(plane)
            assert held is not None
            held["spec"].update(holderIdentity="thief", leaseDurationSeconds=3600)
            try:
                await plane.client.update(LEASES, held)
            except ApiError as exc:
                if exc.is_conflict():
                    return False  # renewed meanwhile: try again
                raise
            return True
        await plane.wait_for(steal, message="the Lease stolen")
        plane.managers.remove(task)  # its failure is what this test expects
        with pytest.raises(LeaderElectionLost, match="a lost the lease kube-system/kube-controller-manager"):
            await asyncio.wait_for(task, 10)
        await plane.client.create(DEPLOYMENTS, deployment(replicas=1))
        await asyncio.sleep(0.3)
        assert await replica_sets(plane) == []  # nobody reconciles any more
