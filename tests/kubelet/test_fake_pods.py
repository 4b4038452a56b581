"""Fake nodes, pod half: pods bound to a fake node are driven by status writes alone.

In-process API server, FakeClock (time starts at 2025-01-01T00:00:00Z): a pod's whole
life, readiness delays and run times included, is stepped with `clock.advance`.
"""

from __future__ import annotations

from typing import Any

from kubelet.fake import containers
from minikube_py.client import EVENTS, NODES, PODS, ApiClient, FakeClock
from tests.kubelet.support import create_bound_pod, eventually, pod_manifest, running_fake_nodes

T0 = "2025-01-01T00:00:00Z"
JOB_OWNER = {"apiVersion": "batch/v1", "kind": "Job", "name": "pi", "uid": "0f6c2d1e-0000-4000-8000-000000000001",
             "controller": True, "blockOwnerDeletion": True}


async def _pod(client: ApiClient, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(PODS, name, "default")
    except Exception:  # noqa: BLE001 - gone
        return None


def _phase(client: ApiClient, name: str, phase: str):  # type: ignore[no-untyped-def]
    async def check() -> dict[str, Any] | None:
        pod = await _pod(client, name)
        return pod if pod and pod["status"].get("phase") == phase else None
    return check


def _conditions(pod: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(c["type"], c["status"], c.get("reason")) for c in pod["status"]["conditions"]]


async def _events(client: ApiClient, pod_name: str) -> list[tuple[str, str, str]]:
    items = (await client.list(EVENTS, "default", field_selector=f"involvedObject.name={pod_name}"))["items"]
    return [(e["reason"], e["message"], e["involvedObject"].get("fieldPath", "")) for e in items
            if e["source"].get("component") == "kubelet"]


async def test_pod_goes_running_and_ready_with_a_kubelets_status(client: ApiClient, clock: FakeClock) -> None:
    manifest = pod_manifest("web", initContainers=[{"name": "init", "image": "busybox:1.36"}],
                            containers=[{"name": "web", "image": "nginx",
                                         "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}]}],
                            volumes=[{"name": "data", "emptyDir": {}}])
    async with running_fake_nodes(client, ["fake-1"], clock=clock) as fake:
        created = await create_bound_pod(client, manifest, "fake-1")
        pod = await eventually(_phase(client, "web", "Running"))
        events = await eventually(lambda: _events_when(client, "web", 7))
        await fake.nodes.handles["fake-1"].recorder.flush()
    status, uid = pod["status"], created["metadata"]["uid"]
    assert (status["hostIP"], status["hostIPs"]) == ("127.1.0.1", [{"ip": "127.1.0.1"}])
    assert (status["podIP"], status["podIPs"]) == ("10.244.0.2", [{"ip": "10.244.0.2"}])
    assert status["startTime"] == T0 and status["qosClass"] == "BestEffort"
    assert _conditions(pod) == [("PodReadyToStartContainers", "True", None), ("Initialized", "True", None),
                                ("Ready", "True", None), ("ContainersReady", "True", None),
                                ("PodScheduled", "True", None)]
    assert all(c["lastTransitionTime"] for c in status["conditions"])
    [web] = status["containerStatuses"]
    assert web["name"] == "web" and web["image"] == "docker.io/library/nginx:latest"
    assert web["imageID"].startswith("docker.io/library/nginx@sha256:") and len(web["imageID"].split(":")[-1]) == 64
    assert web["containerID"].startswith("fake://") and len(web["containerID"]) == 7 + 64
    assert (web["ready"], web["started"], web["restartCount"], web["lastState"]) == (True, True, 0, {})
    assert web["state"] == {"running": {"startedAt": T0}}
    assert web["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True,
                                    "recursiveReadOnly": "Disabled"}]
    [init] = status["initContainerStatuses"]
    assert (init["ready"], init["started"], init["image"]) == (True, False, "docker.io/library/busybox:1.36")
    assert init["state"]["terminated"] == {"containerID": init["containerID"], "exitCode": 0, "finishedAt": T0,
                                           "reason": "Completed", "startedAt": T0}
    managers = {(m["manager"], m.get("subresource")) for m in pod["metadata"]["managedFields"]}
    assert ("kubelet", "status") in managers
    size = containers.image_size("nginx")
    assert 5_000_000 <= size < 100_000_000
    assert events == [
        ("Pulled", 'Container image "busybox:1.36" already present on machine', "spec.initContainers{init}"),
        ("Created", "Created container: init", "spec.initContainers{init}"),
        ("Started", "Started container init", "spec.initContainers{init}"),
        ("Pulling", 'Pulling image "nginx"', "spec.containers{web}"),  # nginx (:latest) defaults to Always
        ("Pulled", f'Successfully pulled image "nginx" in 0s (0s including waiting). Image size: {size} bytes.',
         "spec.containers{web}"),
        ("Created", "Created container: web", "spec.containers{web}"),
        ("Started", "Started container web", "spec.containers{web}"),
    ]
    assert uid


async def _events_when(client: ApiClient, pod_name: str, count: int) -> list[tuple[str, str, str]] | None:
    events = await _events(client, pod_name)
    return events if len(events) >= count else None


async def test_events_name_the_node_as_their_source(client: ApiClient, clock: FakeClock) -> None:
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, pod_manifest("web"), "fake-1")
        await eventually(lambda: _events_when(client, "web", 3))
        items = (await client.list(EVENTS, "default"))["items"]
    assert {(e["source"]["component"], e["source"]["host"], e["type"]) for e in items
            if e["involvedObject"]["name"] == "web"} == {("kubelet", "fake-1", "Normal")}


async def test_readiness_probe_delays_ready_by_its_initial_delay(client: ApiClient, clock: FakeClock) -> None:
    probe = {"httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": 5}
    manifest = pod_manifest("web", containers=[{"name": "web", "image": "nginx", "readinessProbe": probe},
                                               {"name": "log", "image": "busybox"}])
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, manifest, "fake-1")
        pod = await eventually(_phase(client, "web", "Running"))
        assert ("Ready", "False", "ContainersNotReady") in _conditions(pod)
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
        assert ready["message"] == "containers with unready status: [web]"
        assert [c["ready"] for c in pod["status"]["containerStatuses"]] == [False, True]
        clock.advance(5)

        async def is_ready() -> dict[str, Any] | None:
            pod = await _pod(client, "web")
            return pod if pod and ("Ready", "True", None) in _conditions(pod) else None

        pod = await eventually(is_ready)
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2025-01-01T00:00:05Z"
    assert next(c for c in pod["status"]["conditions"] if c["type"] == "Initialized")["lastTransitionTime"] == T0


async def test_job_pod_succeeds_after_its_run_time(client: ApiClient, clock: FakeClock) -> None:
    manifest = pod_manifest("pi-abcde", restartPolicy="Never")
    manifest["metadata"]["ownerReferences"] = [JOB_OWNER]
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, manifest, "fake-1")
        await eventually(_phase(client, "pi-abcde", "Running"))
        clock.advance(1)
        pod = await eventually(_phase(client, "pi-abcde", "Succeeded"))
    assert _conditions(pod) == [("PodReadyToStartContainers", "False", None), ("Initialized", "True", "PodCompleted"),
                                ("Ready", "False", "PodCompleted"), ("ContainersReady", "False", "PodCompleted"),
                                ("PodScheduled", "True", None)]
    [web] = pod["status"]["containerStatuses"]
    assert (web["ready"], web["started"]) == (False, False)
    assert web["state"]["terminated"] == {"containerID": web["containerID"], "exitCode": 0, "reason": "Completed",
                                          "startedAt": T0, "finishedAt": "2025-01-01T00:00:01Z"}
    assert pod["status"]["podIP"] == "10.244.0.2"  # a finished pod keeps its address in status


async def test_exit_code_annotation_fails_the_pod(client: ApiClient, clock: FakeClock) -> None:
    manifest = pod_manifest("crash", restartPolicy="Never",
                            annotations={"mkp.dev/fake-exit-code": "3", "mkp.dev/fake-run-seconds": "30"})
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, manifest, "fake-1")
        await eventually(_phase(client, "crash", "Running"))
        clock.advance(29)
        await eventually(lambda: _rv_settled(client, "crash"))
        assert (await _pod(client, "crash"))["status"]["phase"] == "Running"  # type: ignore[index]
        clock.advance(1)
        pod = await eventually(_phase(client, "crash", "Failed"))
    assert ("Ready", "False", "PodFailed") in _conditions(pod)
    assert ("Initialized", "True", None) in _conditions(pod)
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["finishedAt"]) == (3, "Error",
                                                                                        "2025-01-01T00:00:30Z")


async def test_on_failure_pod_restarts_its_container_with_crash_loop_backoff(client: ApiClient,
                                                                             clock: FakeClock) -> None:
    """OnFailure: the pod stays Running; each failed run is restarted in place, the first
    at once, then after 10 s, 20 s, ... (waiting CrashLoopBackOff meanwhile)."""
    manifest = pod_manifest("loop", restartPolicy="OnFailure",
                            annotations={"mkp.dev/fake-exit-code": "2", "mkp.dev/fake-run-seconds": "5"})

    def web(pod: dict) -> dict:
        return pod["status"]["containerStatuses"][0]

    async def restarted(count: int, state: str):
        pod = await _pod(client, "loop")
        status = web(pod) if pod and pod["status"].get("containerStatuses") else {}
        return pod if status.get("restartCount") == count and state in status.get("state", {}) else None

    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, manifest, "fake-1")
        await eventually(_phase(client, "loop", "Running"))
        clock.advance(5)  # run 0 ends at 5 s: restarted at once
        pod = await eventually(lambda: restarted(1, "running"))
        assert pod["status"]["phase"] == "Running"
        last = web(pod)["lastState"]["terminated"]
        assert (last["exitCode"], last["reason"], last["finishedAt"]) == (2, "Error", "2025-01-01T00:00:05Z")
        clock.advance(5)  # run 1 ends at 10 s: back-off 10 s
        pod = await eventually(lambda: restarted(1, "waiting"))
        waiting = web(pod)["state"]["waiting"]
        assert waiting["reason"] == "CrashLoopBackOff"
        assert waiting["message"].startswith("back-off 10s restarting failed container=web pod=loop_default(")
        assert ("Ready", "False", "ContainersNotReady") in _conditions(pod)
        assert pod["status"]["phase"] == "Running"
        clock.advance(10)  # run 2 starts at 20 s
        pod = await eventually(lambda: restarted(2, "running"))
        assert web(pod)["state"]["running"]["startedAt"] == "2025-01-01T00:00:20Z"
        await eventually(lambda: _events_when(client, "loop", 4))

        async def started_three_times():
            items = (await client.list(EVENTS, "default"))["items"]
            counts = {e["reason"]: e.get("count", 1) for e in items if e["involvedObject"]["name"] == "loop"}
            return counts if counts.get("Started") == 3 else None

        counts = await eventually(started_three_times)
    assert counts == {"Pulling": 3, "Pulled": 3, "Created": 3, "Started": 3, "BackOff": 1}  # Always pulls each time


async def _rv_settled(client: ApiClient, name: str) -> bool:
    """A tiny pause for the driver to have looked (a reconcile costs milliseconds)."""
    import asyncio

    await asyncio.sleep(0.1)
    return True


async def test_deleted_pod_is_removed_with_grace_period_zero(client: ApiClient, clock: FakeClock) -> None:
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, pod_manifest("web"), "fake-1")
        await eventually(_phase(client, "web", "Running"))
        deleting = await client.delete(PODS, "web", "default")  # graceful: 30 s by default
        assert deleting["metadata"]["deletionGracePeriodSeconds"] == 30
        await eventually(lambda: _gone(client, "web"))
        events = await eventually(lambda: _events_when(client, "web", 4))
    assert ("Killing", "Stopping container web", "spec.containers{web}") in events


async def test_pod_with_a_finalizer_gets_a_terminal_status_before_deletion(client: ApiClient,
                                                                        clock: FakeClock) -> None:
    manifest = pod_manifest("job-pod")
    manifest["metadata"]["finalizers"] = ["batch.kubernetes.io/job-tracking"]
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, manifest, "fake-1")
        await eventually(_phase(client, "job-pod", "Running"))
        await client.delete(PODS, "job-pod", "default")
        pod = await eventually(_phase(client, "job-pod", "Failed"))
        assert pod["metadata"]["deletionGracePeriodSeconds"] == 0
        assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143
        await client.patch(PODS, "job-pod", {"metadata": {"finalizers": None}}, "default")
        await eventually(lambda: _gone(client, "job-pod"))


async def test_pods_of_other_nodes_are_left_alone(client: ApiClient, clock: FakeClock) -> None:
    await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "real-1"}})
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, pod_manifest("elsewhere"), "real-1")
        await create_bound_pod(client, pod_manifest("here"), "fake-1")
        await client.create(PODS, pod_manifest("unscheduled"))
        await eventually(_phase(client, "here", "Running"))
        await _rv_settled(client, "elsewhere")
        for name in ("elsewhere", "unscheduled"):
            pod = await _pod(client, name)
            assert pod is not None and pod["status"]["phase"] == "Pending" and "podIP" not in pod["status"]


async def test_pod_ips_are_unique_per_node_and_host_network_uses_the_node_ip(client: ApiClient,
                                                                              clock: FakeClock) -> None:
    async with running_fake_nodes(client, ["fake-1", "fake-2"], clock=clock):
        for i in range(6):
            await create_bound_pod(client, pod_manifest(f"p{i}"), "fake-1" if i % 2 else "fake-2")
        await create_bound_pod(client, pod_manifest("host", hostNetwork=True), "fake-1")
        pods = [await eventually(_phase(client, f"p{i}", "Running")) for i in range(6)]
        host = await eventually(_phase(client, "host", "Running"))
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == 6
    for p in pods:
        node = p["spec"]["nodeName"]
        subnet = "10.244.0." if p["status"]["hostIP"] == "127.1.0.1" else "10.244.1."
        assert p["status"]["podIP"].startswith(subnet), (node, p["status"])
    assert host["status"]["podIP"] == host["status"]["hostIP"]


async def test_restart_re_adopts_running_pods(client: ApiClient, clock: FakeClock) -> None:
    job = pod_manifest("job", restartPolicy="Never", annotations={"mkp.dev/fake-run-seconds": "20"})
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, pod_manifest("web"), "fake-1")
        await create_bound_pod(client, job, "fake-1")
        web = await eventually(_phase(client, "web", "Running"))
        await eventually(_phase(client, "job", "Running"))
        await eventually(lambda: _events_when(client, "web", 3))
    clock.advance(5)
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        await create_bound_pod(client, pod_manifest("new"), "fake-1")
        new = await eventually(_phase(client, "new", "Running"))
        again = await _pod(client, "web")
        assert again is not None and again["metadata"]["resourceVersion"] == web["metadata"]["resourceVersion"]
        clock.advance(15)  # the job started at T0 with 20 s to run
        job_done = await eventually(_phase(client, "job", "Succeeded"))
        await _rv_settled(client, "web")
        started = [e for e in await _events(client, "web") if e[0] == "Started"]
    assert web["status"]["podIP"] == "10.244.0.2" and new["status"]["podIP"] not in ("10.244.0.2", "10.244.0.3")
    assert job_done["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"] == "2025-01-01T00:00:20Z"
    assert len(started) == 1


async def _gone(client: ApiClient, name: str) -> bool:
    return await _pod(client, name) is None
