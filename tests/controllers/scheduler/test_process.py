"""The scheduler process: leader election, `main` under SIGTERM, `explain_pod`, and
what the real kubectl shows of the scheduler's work. Against the in-process API server;
kubectl and the `main` process run as asyncio subprocesses (a blocking call would
stall the server, which lives in this test's event loop)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from controllers.scheduler.process import ElectionTimings, LeaderElectionLost, explain_pod, run_scheduler
from minikube_py.client import LEASES, NODES, PODS, ApiClient
from tests.conftest import REPO_ROOT, require_tool
from tests.controllers.scheduler.test_loop import (
    NS,
    api_node,
    api_pod,
    events_for,
    node_of,
    running_scheduler,
    wait_for,
)
from tests.minikube_py.client import conftest as server_fixtures
from tests.minikube_py.client.conftest import InProcessServer

apiserver = server_fixtures.apiserver
client = server_fixtures.client
FAST = ElectionTimings(lease_duration=1.0, renew_deadline=0.6, retry_period=0.1)


async def lease_holder(api: ApiClient) -> str:
    try:
        lease = await api.get(LEASES, "kube-scheduler", "kube-system")
    except Exception:  # noqa: BLE001 - not created yet
        return ""
    return lease["spec"].get("holderIdentity") or ""


def start(url: str, identity: str) -> asyncio.Task[None]:
    async def run() -> None:
        async with ApiClient(url, field_manager="kube-scheduler") as api:
            await run_scheduler(api, identity=identity, election=FAST)
    return asyncio.create_task(run(), name=identity)


async def stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_one_replica_leads_and_a_standby_takes_over(apiserver: InProcessServer, client: ApiClient) -> None:
    await client.create(NODES, api_node("n1"))
    replicas = {"sched-a": start(apiserver.url, "sched-a"), "sched-b": start(apiserver.url, "sched-b")}
    try:
        first = await wait_for(lambda: lease_holder(client), message="a leader")
        await client.create(PODS, api_pod("before"))
        await wait_for(lambda: node_of(client, "before"), message="bound by the leader")
        await stop(replicas.pop(first))  # releases the Lease on the way out
        [second] = replicas
        await wait_for(lambda: _is(client, second), message="takeover")
        await client.create(PODS, api_pod("after"))
        await wait_for(lambda: node_of(client, "after"), message="bound by the new leader")
    finally:
        await stop(*replicas.values())
    lease = await client.get(LEASES, "kube-scheduler", "kube-system")
    assert lease["spec"]["leaseTransitions"] >= 1


async def _is(api: ApiClient, identity: str) -> bool:
    return await lease_holder(api) == identity


async def test_losing_the_lease_ends_the_scheduler(apiserver: InProcessServer, client: ApiClient) -> None:
    task = start(apiserver.url, "sched-a")
    try:
        await wait_for(lambda: _is(client, "sched-a"), message="sched-a leads")
        lease = await client.get(LEASES, "kube-scheduler", "kube-system")
        lease["spec"]["holderIdentity"] = "intruder"
        await client.update(LEASES, lease)
        with pytest.raises(LeaderElectionLost):
            await asyncio.wait_for(asyncio.shield(task), 5)
    finally:
        await stop(task)


async def test_main_schedules_and_exits_cleanly_on_sigterm(apiserver: InProcessServer, client: ApiClient) -> None:
    await client.create(NODES, api_node("n1"))
    code = f"from controllers.scheduler.process import main; main(None, {apiserver.url!r}, True)"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MKP_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", code, cwd=REPO_ROOT, env=env,
                                                   stderr=asyncio.subprocess.PIPE)
    try:
        await wait_for(lambda: lease_holder(client), timeout=20, message="the process leads")
        await client.create(PODS, api_pod("web"))
        assert await wait_for(lambda: node_of(client, "web"), message="bound by the process") == "n1"
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert await lease_holder(client) == ""  # released, so a standby need not wait out the lease


async def test_explain_pod_names_the_failed_filter_of_every_node(client: ApiClient) -> None:
    await client.create(NODES, api_node("tainted", cpu="16", taints=[{"key": "dedicated", "value": "gpu",
                                                                      "effect": "NoSchedule"}]))
    await client.create(NODES, api_node("small", cpu="1"))
    await client.create(NODES, api_node("cordoned", cpu="16", unschedulable=True))
    await client.create(NODES, api_node("fits", cpu="8"))
    await client.create(PODS, api_pod("web", cpu="6"))
    pending = await explain_pod(client, NS, "web")
    await client.bind(NS, "web", "fits")
    bound = await explain_pod(client, NS, "web")
    for text in (pending, bound):
        assert text.startswith("Pod default/web: scheduled to fits (4 of 4 nodes filtered, 1 feasible)")
        assert "  small: rejected by NodeResourcesFit (Unschedulable: Insufficient cpu)" in text
        assert ("  tainted: rejected by TaintToleration (UnschedulableAndUnresolvable: "
                "node(s) had untolerated taint {dedicated: gpu})") in text
        assert ("  cordoned: rejected by NodeUnschedulable (UnschedulableAndUnresolvable: "
                "node(s) were unschedulable)") in text
    assert "Currently bound to node fits" not in pending
    assert bound.endswith("Currently bound to node fits (evaluated above as if it were not scheduled yet).")


async def test_explain_pod_of_an_unschedulable_pod_gives_the_failed_scheduling_message(client: ApiClient) -> None:
    await client.create(NODES, api_node("small", cpu="1"))
    await client.create(PODS, api_pod("huge", cpu="4", scheduler_name="other"))
    text = await explain_pod(client, NS, "huge")
    assert text.startswith("Pod default/huge: not scheduled (1 of 1 nodes filtered, 0 feasible)\n"
                           "  0/1 nodes are available: 1 Insufficient cpu.")
    assert "small: rejected by NodeResourcesFit (Unschedulable: Insufficient cpu)" in text
    assert text.endswith("Note: spec.schedulerName is 'other'; default-scheduler leaves this pod to that scheduler.")


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": server}}], "users": [{"name": "t", "user": {}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t", "namespace": NS}}],
    }))
    return path


async def _kubectl(kubeconfig: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        require_tool("kubectl"), "--kubeconfig", str(kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


async def test_kubectl_describe_shows_failed_scheduling_and_get_wide_shows_the_node(
        apiserver: InProcessServer, client: ApiClient, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", apiserver.url)
    await client.create(NODES, api_node("node-1", cpu="2"))
    async with running_scheduler(apiserver.url) as scheduler:
        await client.create(PODS, api_pod("web"))
        await client.create(PODS, api_pod("huge", cpu="8"))
        await wait_for(lambda: events_for(client, "huge", "FailedScheduling"), guard=scheduler.guard)
        await wait_for(lambda: events_for(client, "web", "Scheduled"), guard=scheduler.guard)
        await scheduler.wait_for_bindings()
        wide = await _kubectl(kubeconfig, "get", "pods", "-o", "wide")
        describe = await _kubectl(kubeconfig, "describe", "pod", "huge")
        describe_web = await _kubectl(kubeconfig, "describe", "pod", "web")
    rows = {line.split()[0]: line.split() for line in wide.strip().splitlines()[1:]}
    header = wide.splitlines()[0].split()
    assert rows["web"][header.index("NODE")] == "node-1"
    assert rows["huge"][header.index("NODE")] == "<none>"
    message = ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
               "1 No preemption victims found for incoming pod.")
    failed = next(line for line in describe.splitlines() if "FailedScheduling" in line)
    assert failed.split()[:2] == ["Warning", "FailedScheduling"]
    assert "default-scheduler" in failed and failed.rstrip().endswith(message)
    assert any(line.split() == ["PodScheduled", "False"] for line in describe.splitlines())
    scheduled = next(line for line in describe_web.splitlines() if "Scheduled" in line and "Normal" in line)
    assert scheduled.rstrip().endswith("default-scheduler  Successfully assigned default/web to node-1")
