"""Fake nodes without a server: addresses, images, pod plans, conditions, node status
patches. The pure functions behind what the integration tests see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kubelet.fake import containers, ipam, nodestatus, podstatus
from kubelet.fake.config import FakeNodeConfig, node_names, parse_capacity

T0 = datetime(2025, 1, 1, tzinfo=UTC)


# -- ipam -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "cidr", "node_ip"), [
    pytest.param(0, "10.244.0.0/24", "127.1.0.1", id="first"),
    pytest.param(255, "10.244.255.0/24", "127.1.1.2", id="last-of-10.244"),
    pytest.param(256, "10.245.0.0/24", "127.1.1.3", id="spills-into-10.245"),
    pytest.param(1023, "10.247.255.0/24", "127.1.4.8", id="last"),
])
def test_node_addresses_by_index(index: int, cidr: str, node_ip: str) -> None:
    assert ipam.cidr_for_index(index) == cidr
    assert ipam.index_of_cidr(cidr) == index
    assert ipam.node_ip_for_index(index) == node_ip


def test_cluster_cidr_runs_out_after_1024_nodes() -> None:
    with pytest.raises(ipam.AddressesExhausted):
        ipam.cidr_for_index(1024)


def test_free_index_skips_used_and_foreign_cidrs() -> None:
    assert ipam.free_index(["10.244.0.0/24", "10.244.2.0/24", "192.168.0.0/24", ""]) == 1


def test_pod_ip_pool_is_round_robin_and_readopts() -> None:
    pool = ipam.PodIPPool()
    pool.reserve("10.244.0.3", "old")  # seen before the node's CIDR is known
    pool.set_cidr("10.244.0.0/24")
    assert [pool.allocate(uid) for uid in ("a", "b")] == ["10.244.0.2", "10.244.0.4"]
    assert pool.allocate("a") == "10.244.0.2"  # idempotent
    pool.release("10.244.0.2", "a")
    assert pool.allocate("c") == "10.244.0.5"  # no immediate reuse
    pool.release("10.244.0.3", "someone-else")
    assert pool.holder("10.244.0.3") == "old"


def test_pod_ip_pool_exhaustion() -> None:
    pool = ipam.PodIPPool("10.244.0.0/30")  # one usable address after the gateway
    assert pool.allocate("a") == "10.244.0.2"
    with pytest.raises(ipam.AddressesExhausted, match="no IP addresses available"):
        pool.allocate("b")


# -- config and containers ------------------------------------------------------------------


def test_parse_capacity_and_names() -> None:
    assert parse_capacity("cpu=16, memory=64Gi,pods=250") == {"cpu": "16", "memory": "64Gi", "pods": "250"}
    with pytest.raises(ValueError):
        parse_capacity("cpu")
    assert node_names(3) == ["fake-node-1", "fake-node-2", "fake-node-3"]
    assert FakeNodeConfig(capacity={"cpu": "2"}).capacity["pods"] == "110"


@pytest.mark.parametrize(("image", "normalized", "repository"), [
    ("nginx", "docker.io/library/nginx:latest", "docker.io/library/nginx"),
    ("nginx:1.27", "docker.io/library/nginx:1.27", "docker.io/library/nginx"),
    ("bitnami/redis", "docker.io/bitnami/redis:latest", "docker.io/bitnami/redis"),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause"),
    ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app"),
])
def test_images_are_reported_as_containerd_does(image: str, normalized: str, repository: str) -> None:
    assert containers.normalize_image(image) == normalized
    assert containers.image_id(image).startswith(f"{repository}@sha256:")


def test_a_digest_in_the_reference_is_the_image_id() -> None:
    assert containers.image_id("busybox:1.36@sha256:abc") == "docker.io/library/busybox@sha256:abc"


# -- pods ---------------------------------------------------------------------------------


def _pod(**spec: object) -> dict:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "web", "image": "nginx"}], **spec}, "status": {"phase": "Pending"}}


@pytest.mark.parametrize(("pod", "completes"), [
    pytest.param(_pod(), False, id="restart-always"),
    pytest.param(_pod(restartPolicy="Never"), True, id="never"),
    pytest.param(_pod(restartPolicy="OnFailure"), True, id="on-failure"),
    pytest.param({**_pod(), "metadata": {"ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job"}]}}, True,
                 id="job-owned"),
])
def test_which_pods_run_to_completion(pod: dict, completes: bool) -> None:
    assert podstatus.runs_to_completion(pod) is completes


@pytest.mark.parametrize(("policy", "code", "restarts"), [
    pytest.param("Always", "1", True, id="always-failing-crash-loops"),
    pytest.param("Always", None, False, id="always-runs-until-deleted"),
    pytest.param("OnFailure", "2", True, id="on-failure-failing"),
    pytest.param("Never", "1", False, id="never-fails-once"),
])
def test_failing_containers_restart_unless_restart_policy_never(policy: str, code: str | None,
                                                                restarts: bool) -> None:
    pod = _pod(restartPolicy=policy)
    if code is not None:
        pod["metadata"]["annotations"] = {"mkp.dev/fake-exit-code": code, "mkp.dev/fake-run-seconds": "5"}
    plan = podstatus.plan(pod, T0, default_run_seconds=2)
    assert plan.restarts is restarts
    later = podstatus.desired_status(pod, plan, T0 + timedelta(seconds=12), host_ip="127.1.0.1", pod_ip="10.244.0.2")
    web = later["containerStatuses"][0]
    if restarts:  # run 0 ends at 5 s, run 1 at 10 s, then a 10 s back-off
        assert later["phase"] == "Running" and web["restartCount"] == 1
        assert web["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    else:
        assert "waiting" not in web["state"] and web["restartCount"] == 0


def test_bad_annotations_fall_back_to_defaults() -> None:
    pod = _pod(restartPolicy="Never")
    pod["metadata"]["annotations"] = {"mkp.dev/fake-run-seconds": "soon", "mkp.dev/fake-exit-code": "x"}
    plan = podstatus.plan(pod, T0, default_run_seconds=2)
    assert (plan.finish_at, plan.exit_code) == (T0 + timedelta(seconds=2), 0)


def test_sidecar_runs_and_stops_with_the_pod() -> None:
    pod = _pod(restartPolicy="Never", initContainers=[
        {"name": "init", "image": "busybox"}, {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}])
    plan = podstatus.plan(pod, T0, default_run_seconds=1)
    running = podstatus.desired_status(pod, plan, T0, host_ip="127.1.0.1", pod_ip="10.244.0.2")
    states = [(s["name"], next(iter(s["state"])), s["ready"]) for s in running["initContainerStatuses"]]
    assert states == [("init", "terminated", True), ("proxy", "running", True)]
    done = podstatus.desired_status(pod, plan, T0 + timedelta(seconds=1), host_ip="127.1.0.1", pod_ip="10.244.0.2")
    assert done["phase"] == "Succeeded"
    assert [next(iter(s["state"])) for s in done["initContainerStatuses"]] == ["terminated", "terminated"]


def test_readiness_gates_hold_ready_back() -> None:
    pod = _pod(readinessGates=[{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}])
    pod["status"]["conditions"] = [{"type": "example.com/dns", "status": "False"}]
    status = podstatus.desired_status(pod, podstatus.plan(pod, T0, default_run_seconds=1), T0,
                                      host_ip="127.1.0.1", pod_ip="10.244.0.2")
    assert [c["type"] for c in status["conditions"]] == [
        "example.com/dns", "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ReadinessGatesNotReady")
    assert ready["message"] == ('corresponding condition of pod readiness gate "example.com/lb" does not exist., '
                                'the status of pod readiness gate "example.com/dns" is not "True", but False')


def test_state_key_ignores_timestamps() -> None:
    pod = _pod()
    plan = podstatus.plan(pod, T0, default_run_seconds=1)
    a = podstatus.desired_status(pod, plan, T0, host_ip="127.1.0.1", pod_ip="10.244.0.2")
    b = podstatus.desired_status(pod, plan, T0 + timedelta(hours=1), host_ip="127.1.0.1", pod_ip="10.244.0.2")
    assert a != b and podstatus.state_key(a) == podstatus.state_key(b)


def test_status_patch_clears_stale_reasons() -> None:
    pod = _pod()
    status = podstatus.desired_status(pod, podstatus.plan(pod, T0, default_run_seconds=1), T0,
                                      host_ip="127.1.0.1", pod_ip="10.244.0.2")
    patch = podstatus.status_patch(pod, status)
    ready = next(c for c in patch["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["reason"], ready["message"], patch["metadata"]) == (None, None, {"uid": "u1"})


# -- nodes --------------------------------------------------------------------------------


def test_node_status_patch_only_when_needed() -> None:
    config = FakeNodeConfig()
    node = nodestatus.registration("n", pod_cidr="10.244.0.0/24", internal_ip="127.1.0.1", config=config, now=T0)
    static = nodestatus.static_status("n", "127.1.0.1", config)
    later = T0 + timedelta(seconds=30)
    assert nodestatus.status_patch(node, static, later, report_due=False) is None
    report = nodestatus.status_patch(node, static, later, report_due=True)
    assert report is not None and set(report["status"]) == {"conditions", "$setElementOrder/conditions"}
    assert {c["lastHeartbeatTime"] for c in report["status"]["conditions"]} == {"2025-01-01T00:00:30Z"}
    assert {c["lastTransitionTime"] for c in report["status"]["conditions"]} == {"2025-01-01T00:00:00Z"}
    bigger = nodestatus.static_status("n", "127.1.0.1", FakeNodeConfig(capacity={"cpu": "16"}))
    changed = nodestatus.status_patch(node, bigger, later, report_due=False)
    assert changed is not None and changed["status"]["capacity"]["cpu"] == "16"


def test_equal_quantities_in_another_spelling_need_no_write() -> None:
    config = FakeNodeConfig()
    node = nodestatus.registration("n", pod_cidr="10.244.0.0/24", internal_ip="127.1.0.1", config=config, now=T0)
    node["status"]["capacity"]["memory"] = "33554432Ki"  # 32Gi, as another writer might spell it
    static = nodestatus.static_status("n", "127.1.0.1", config)
    assert nodestatus.status_patch(node, static, T0, report_due=False) is None


def test_transitions_name_the_kubelets_event_reasons() -> None:
    unknown = [{"type": "Ready", "status": "Unknown"}, {"type": "MemoryPressure", "status": "False"},
               {"type": "DiskPressure", "status": "False"}, {"type": "PIDPressure", "status": "False"}]
    assert nodestatus.transitions(unknown) == ["NodeReady"]
    assert nodestatus.transitions(None) == ["NodeHasSufficientMemory", "NodeHasNoDiskPressure",
                                            "NodeHasSufficientPID", "NodeReady"]
