"""Which informer events wake which DaemonSets (the controller's event handlers), with a
FakeClock and caches filled by hand: no API server is contacted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from controllers.daemonset.controller import DaemonSetController
from minikube_py.client import ApiClient, EventRecorder, FakeClock, SharedInformerFactory, settle
from tests.controllers.daemonset.fixtures import daemon_pod, daemon_set, node, taint


@pytest.fixture
async def controller() -> AsyncIterator[DaemonSetController]:
    client = ApiClient("http://127.0.0.1:9")  # never contacted: no informer is started
    clock = FakeClock()
    ctrl = DaemonSetController(client, SharedInformerFactory(client, clock=clock),
                               EventRecorder(client, "daemonset-controller", clock=clock), clock=clock)
    everywhere = daemon_set("everywhere")
    edge = daemon_set("edge", pod_spec={"nodeSelector": {"role": "edge"}})
    edge["metadata"]["uid"] = "edge-uid"
    ctrl.daemon_sets.store.upsert(everywhere)
    ctrl.daemon_sets.store.upsert(edge)
    yield ctrl
    ctrl.queue.shutdown()


def queued(ctrl: DaemonSetController) -> set[str]:
    return set(ctrl.queue._dirty)


async def test_new_node_wakes_only_daemonsets_that_should_run_there(controller) -> None:
    controller._node_added(node("n1"))
    assert queued(controller) == {"default/everywhere"}
    controller._node_added(node("n2", labels={"role": "edge"}))
    assert queued(controller) == {"default/everywhere", "default/edge"}


async def test_node_update_wakes_daemonsets_whose_eligibility_changed(controller) -> None:
    plain = node("n1")
    heartbeat = {**plain, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    controller._node_updated(plain, heartbeat)
    assert queued(controller) == set()
    controller._node_updated(plain, node("n1", labels={"role": "edge"}))
    assert queued(controller) == {"default/edge"}
    controller._node_updated(plain, node("n1", taints=[taint("dedicated", "NoSchedule")]))
    assert queued(controller) == {"default/edge", "default/everywhere"}


async def test_pod_turning_ready_requeues_after_min_ready_seconds(controller) -> None:
    ds = daemon_set("slow", min_ready=10)
    ds["metadata"]["uid"] = "slow-uid"
    controller.daemon_sets.store.upsert(ds)
    before = daemon_pod("p", "n1", ready=False, owner_uid="slow-uid")
    before["metadata"]["ownerReferences"][0]["name"] = "slow"
    after = daemon_pod("p", "n1", ready=True, owner_uid="slow-uid")
    after["metadata"]["ownerReferences"][0]["name"] = "slow"
    controller._pod_turned_ready(before, after)
    assert queued(controller) == set()
    controller.clock.advance(10.5)
    await settle()
    assert queued(controller) == set()  # minReadySeconds + 1s against clock skew
    controller.clock.advance(0.5)
    await settle()
    assert queued(controller) == {"default/slow"}
