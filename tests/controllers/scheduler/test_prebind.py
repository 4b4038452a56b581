"""VolumeBinding's Reserve and PreBind: WaitForFirstConsumer claims are bound (selected
node annotated, or a static PV chosen) before the pod, and a binding that does not
complete in time sends the pod back to the queue with kube-scheduler's error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from controllers.scheduler.framework import CycleState
from controllers.scheduler.loop import Scheduler
from controllers.scheduler.nodeinfo import Snapshot
from controllers.scheduler.plugins import VolumeBinding
from controllers.scheduler.plugins.volumebinding import pv_node_affinity_matches
from controllers.scheduler.volumes import (
    ANN_SELECTED_NODE,
    PodVolumes,
    VolumeBinder,
    VolumeBindingError,
    claim_for_node,
)
from minikube_py.client import (
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    STORAGECLASSES,
    ApiClient,
    FakeClock,
    SharedInformerFactory,
)
from tests.controllers.scheduler.builders import make_node
from tests.controllers.scheduler.test_loop import (
    NS,
    api_node,
    api_pod,
    condition,
    events_for,
    node_of,
    wait_for,
)
from tests.controllers.scheduler.test_volumebinding import pod_with_claim, pv, pvc, storage_class
from tests.minikube_py.client import conftest as server_fixtures
from tests.minikube_py.client.conftest import InProcessServer

Obj = dict[str, Any]
apiserver = server_fixtures.apiserver
client = server_fixtures.client


# -- Reserve: which claim goes where (pure) -----------------------------------------------------
def reserve(objects: dict[str, list[Obj]], node: str = "n1", pod: Obj | None = None) -> PodVolumes | None:
    snapshot = Snapshot([make_node("n1"), make_node("n2")], **objects)
    state = CycleState(snapshot)
    plugin = VolumeBinding()
    pod = pod or pod_with_claim()
    _, status = plugin.pre_filter(state, pod)
    assert status.is_success() or status.is_skip(), status
    node_info = snapshot.get(node)
    assert node_info is not None
    return plugin.find_pod_volumes(state, node_info)


def sized_pv(name: str, size: str, node: str | None = None) -> Obj:
    volume = pv(name, node, storage_class="local")
    volume["spec"]["capacity"]["storage"] = size
    return volume


def test_claim_without_a_fitting_pv_is_provisioned_on_the_chosen_node() -> None:
    volumes = reserve({"pvcs": [pvc()], "storage_classes": [storage_class()]}, node="n2")
    assert volumes is not None and not volumes.static_bindings
    [(original, claim)] = volumes.dynamic_provisions
    assert claim["metadata"]["annotations"][ANN_SELECTED_NODE] == "n2"
    assert ANN_SELECTED_NODE not in original["metadata"]["annotations"]  # the cache's copy is untouched


def test_smallest_fitting_static_pv_on_the_node_is_chosen() -> None:
    objects = {"pvcs": [pvc(storage_class="local")],
               "pvs": [sized_pv("big", "10Gi", "n1"), sized_pv("small", "2Gi", "n1"), sized_pv("tiny", "512Mi", "n1"),
                       sized_pv("elsewhere", "1Gi", "n2")],
               "storage_classes": [storage_class("local", provisioner="kubernetes.io/no-provisioner")]}
    volumes = reserve(objects)
    assert volumes is not None and not volumes.dynamic_provisions
    [(original, bound)] = volumes.static_bindings
    assert original["metadata"]["name"] == "small"
    assert bound["spec"]["claimRef"]["name"] == "data" and bound["spec"]["claimRef"]["namespace"] == "default"
    assert bound["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"


def test_pod_with_bound_claims_has_nothing_to_reserve() -> None:
    assert reserve({"pvcs": [pvc(volume="pv-1")], "pvs": [pv("pv-1", claim="data")]}) is None


# -- PreBind's check, on cache contents (pure) ---------------------------------------------------
def binder(pvcs: dict[str, Obj], pvs: dict[str, Obj], *, pod_exists: bool = True) -> VolumeBinder:
    nodes = {"n1": make_node("n1")}
    return VolumeBinder(None, FakeClock(), pvcs=pvcs.get, pvs=pvs.get, nodes=nodes.get,  # type: ignore[arg-type]
                        pod_exists=lambda key: pod_exists, node_affinity_matches=pv_node_affinity_matches)


def provisioning(claim: Obj) -> PodVolumes:
    written = claim_for_node(claim, "n1")
    written["metadata"]["resourceVersion"] = "10"
    return PodVolumes("n1", dynamic_provisions=[(claim, written)])


def cached_claim(*, rv: str = "10", selected: str | None = "n1", volume: str = "", bound: bool = True) -> Obj:
    claim = pvc(volume=volume, bound=bound)
    claim["metadata"]["resourceVersion"] = rv
    if selected is not None:
        claim["metadata"]["annotations"][ANN_SELECTED_NODE] = selected
    return claim


@pytest.mark.parametrize(("claim", "pvs", "expected"), [
    pytest.param(cached_claim(rv="9"), {}, False, id="cache-older-than-our-write"),
    pytest.param(cached_claim(), {}, False, id="annotated-not-bound-yet"),
    pytest.param(cached_claim(rv="11", volume="pv-1"), {}, False, id="bound-but-pv-not-seen-yet"),
    pytest.param(cached_claim(rv="11", volume="pv-1", bound=False), {"pv-1": pv("pv-1", "n1")}, False,
                 id="volume-name-without-bind-completed"),
    pytest.param(cached_claim(rv="11", volume="pv-1"), {"pv-1": pv("pv-1", "n1")}, True, id="fully-bound"),
    pytest.param(cached_claim(rv="11", selected=None), {}, 'provisioning failed for PVC "data"',
                 id="provisioner-gave-up"),
    pytest.param(cached_claim(rv="11", volume="pv-1"), {"pv-1": pv("pv-1", "n2")},
                 'pv "pv-1" node affinity doesn\'t match node "n1": no matching NodeSelectorTerms',
                 id="provisioned-on-another-node"),
])
def test_check_bindings(claim: Obj, pvs: dict[str, Obj], expected: bool | str) -> None:
    check = binder({"default/data": claim}, pvs)
    volumes = provisioning(pvc())
    if isinstance(expected, bool):
        assert check.check_bindings("default/p", volumes) is expected
    else:
        with pytest.raises(VolumeBindingError) as raised:
            check.check_bindings("default/p", volumes)
        assert raised.value.message == expected


def test_deleted_pod_stops_waiting() -> None:
    check = binder({"default/data": cached_claim()}, {}, pod_exists=False)
    with pytest.raises(VolumeBindingError, match='pod does not exist any more: pods "p" not found'):
        check.check_bindings("default/p", provisioning(pvc()))


# -- the loop against the API server ---------------------------------------------------------------
@contextlib.asynccontextmanager
async def running_scheduler(url: str, *, clock: FakeClock | None = None,
                            bind_timeout: float = 600.0) -> AsyncIterator[Scheduler]:
    async with ApiClient(url, field_manager="kube-scheduler") as api:
        factory = SharedInformerFactory(api, clock=clock)
        scheduler = Scheduler(api, factory, clock=clock, bind_timeout=bind_timeout)
        factory.start()
        try:
            assert await factory.wait_for_cache_sync(10)
            loop = asyncio.create_task(scheduler.run(), name="scheduler loop")
            try:
                yield scheduler
            finally:
                loop.cancel()
                await asyncio.gather(loop, return_exceptions=True)
        finally:
            await scheduler.close()
            await factory.shutdown()


def claimed_pod(name: str = "web") -> Obj:
    pod = api_pod(name)
    pod["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    return pod


async def setup_claim(api: ApiClient) -> None:
    await api.create(NODES, api_node("n1"))
    await api.create(STORAGECLASSES, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                      "metadata": {"name": "late"}, "provisioner": "example.com/late",
                                      "volumeBindingMode": "WaitForFirstConsumer"})
    await api.create(PERSISTENTVOLUMECLAIMS, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": NS},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "late",
                 "resources": {"requests": {"storage": "1Gi"}}}})


async def selected_node(api: ApiClient) -> str | None:
    claim = await api.get(PERSISTENTVOLUMECLAIMS, "data", NS)
    return (claim["metadata"].get("annotations") or {}).get(ANN_SELECTED_NODE)


async def provision(api: ApiClient, node: str) -> None:
    """What the PV controller and the local-path provisioner do once selected-node is set."""
    await api.create(PERSISTENTVOLUMES, {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pvc-data"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "late",
                 "hostPath": {"path": "/tmp/pvc-data"},
                 "claimRef": {"namespace": NS, "name": "data"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}})
    await api.patch(PERSISTENTVOLUMECLAIMS, "data", {"metadata": {"annotations": {
        "pv.kubernetes.io/bind-completed": "yes"}}, "spec": {"volumeName": "pvc-data"}}, NS)


async def test_claim_gets_selected_node_and_pod_is_bound_only_after_the_claim(
        apiserver: InProcessServer, client: ApiClient) -> None:
    await setup_claim(client)
    async with running_scheduler(apiserver.url) as scheduler:
        await client.create(PODS, claimed_pod())
        assert await wait_for(lambda: selected_node(client), message="selected-node") == "n1"
        await wait_for(lambda: scheduler.binder.waiting == 1, message="PreBind waiting")
        assert await node_of(client, "web") is None  # the binding comes only after the claim is bound
        assert scheduler.cache.is_assumed("default/web")
        await provision(client, "n1")
        await wait_for(lambda: node_of(client, "web"), message="web bound")
        [event] = await wait_for(lambda: events_for(client, "web", "Scheduled"), message="Scheduled")
    assert event["message"] == "Successfully assigned default/web to n1"
    assert scheduler.stats.errors == 0


async def test_claim_not_bound_in_time_sends_the_pod_back_with_scheduler_error(
        apiserver: InProcessServer, client: ApiClient) -> None:
    clock = FakeClock()
    await setup_claim(client)
    expected = 'running PreBind plugin "VolumeBinding": binding volumes: context deadline exceeded'
    async with running_scheduler(apiserver.url, clock=clock, bind_timeout=30) as scheduler:
        await client.create(PODS, claimed_pod())
        await wait_for(lambda: selected_node(client), message="selected-node")
        await wait_for(lambda: scheduler.binder.waiting == 1, message="PreBind waiting")
        clock.advance(31)
        [failed] = await wait_for(lambda: events_for(client, "web", "FailedScheduling"), message="FailedScheduling")

        async def scheduler_error() -> Obj | None:
            found = condition(await client.get(PODS, "web", NS))
            return found if found and found["status"] == "False" else None

        scheduled = await wait_for(scheduler_error, message="PodScheduled=False")
        assert scheduler.cache.node_of("default/web") is None  # the assumed pod is forgotten
        assert scheduler.queue.pending_pods()["backoff"] == ["default/web"]
    assert failed["type"] == "Warning" and failed["message"] == expected
    assert (scheduled["reason"], scheduled["message"]) == ("SchedulerError", expected)
    assert await node_of(client, "web") is None
