"""The scheduling queue orders, backs off and requeues pods like kube-scheduler's
PriorityQueue, driven by a fake clock."""

from __future__ import annotations

import pytest

from controllers.scheduler.framework import ClusterEvent
from controllers.scheduler.plugins import default_framework
from controllers.scheduler.queue import QueuedPodInfo, SchedulingQueue, is_pod_updated
from tests.controllers.scheduler.builders import make_pod

NODE_ADD = ClusterEvent("Node", "Add")
NODE_UPDATE = ClusterEvent("Node", "Update")
POD_DELETE = ClusterEvent("Pod", "Delete")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> SchedulingQueue:
    return SchedulingQueue(clock, cluster_event_map=default_framework().cluster_event_map())


def pop_all(queue: SchedulingQueue) -> list[str]:
    names = []
    while (info := queue.pop()) is not None:
        names.append(info.pod["metadata"]["name"])
    return names


def fail(queue: SchedulingQueue, *plugins: str) -> QueuedPodInfo:
    """Pop the next pod and hand it back as unschedulable by `plugins`."""
    info = queue.pop()
    assert info is not None
    queue.add_unschedulable_if_not_present(info, queue.scheduling_cycle, unschedulable_plugins=set(plugins))
    return info


def test_active_queue_orders_by_priority_then_time_in_queue(queue: SchedulingQueue, clock: FakeClock) -> None:
    for name, priority in [("low-early", 0), ("high", 100), ("low-late", 0), ("mid", 10)]:
        queue.add(make_pod(name, priority=priority))
        clock.advance(1)
    assert queue.pending_pods()["active"] == ["default/high", "default/mid", "default/low-early", "default/low-late"]
    assert pop_all(queue) == ["high", "mid", "low-early", "low-late"]
    assert queue.pop() is None and queue.scheduling_cycle == 4


@pytest.mark.parametrize(("attempts", "seconds"), [
    pytest.param(0, 0.0, id="never-tried"), pytest.param(1, 1.0, id="first"), pytest.param(2, 2.0, id="second"),
    pytest.param(3, 4.0, id="third"), pytest.param(4, 8.0, id="fourth"), pytest.param(5, 10.0, id="capped"),
    pytest.param(12, 10.0, id="stays-capped"),
])
def test_backoff_doubles_from_one_second_to_ten(queue: SchedulingQueue, attempts: int, seconds: float) -> None:
    info = QueuedPodInfo(make_pod("p"), "default/p", 0.0, attempts=attempts)
    assert queue.backoff_duration(info) == seconds


def test_error_goes_to_backoff_and_returns_when_it_expires(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(make_pod("p"))
    fail(queue)                                   # no rejecting plugin: an error, not "does not fit"
    assert queue.pending_pods()["backoff"] == ["default/p"]
    assert queue.next_wakeup() == 1.0
    clock.advance(0.9)
    assert queue.pop() is None
    clock.advance(0.1)
    info = queue.pop()
    assert info is not None and info.attempts == 2
    queue.add_unschedulable_if_not_present(info, queue.scheduling_cycle)
    clock.advance(1.5)
    assert queue.pop() is None                    # second backoff is 2s
    clock.advance(0.5)
    assert pop_all(queue) == ["p"]


def test_unschedulable_pods_wait_for_an_event_that_can_help(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(make_pod("tainted-out"))
    queue.add(make_pod("too-big"))
    fail(queue, "TaintToleration")
    fail(queue, "NodeResourcesFit")
    clock.advance(30)
    assert queue.pop() is None and queue.pending_pods()["unschedulable"] == ["default/tainted-out", "default/too-big"]
    assert queue.move_all_to_active_or_backoff(POD_DELETE) == 1       # only NodeResourcesFit cares
    assert pop_all(queue) == ["too-big"]
    assert queue.move_all_to_active_or_backoff(NODE_ADD) == 1
    assert pop_all(queue) == ["tainted-out"]


def test_event_during_backoff_moves_to_backoff_queue(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(make_pod("p"))
    fail(queue, "NodeResourcesFit")
    clock.advance(0.5)
    queue.move_all_to_active_or_backoff(NODE_UPDATE)
    assert queue.pending_pods()["backoff"] == ["default/p"] and queue.pop() is None
    clock.advance(0.5)
    assert pop_all(queue) == ["p"]


def test_event_no_plugin_registered_for_moves_nothing(queue: SchedulingQueue) -> None:
    queue.add(make_pod("p"))
    fail(queue, "NodeResourcesFit")
    assert queue.move_all_to_active_or_backoff(ClusterEvent("ConfigMap", "Add")) == 0
    assert queue.pending_pods()["unschedulable"] == ["default/p"]


def test_event_during_the_cycle_sends_the_failed_pod_to_backoff(queue: SchedulingQueue) -> None:
    queue.add(make_pod("p"))
    info = queue.pop()
    assert info is not None
    queue.move_all_to_active_or_backoff(NODE_ADD)      # a node joined while p was being scheduled
    queue.add_unschedulable_if_not_present(info, queue.scheduling_cycle, unschedulable_plugins={"TaintToleration"})
    assert queue.pending_pods()["backoff"] == ["default/p"]


def test_leftover_unschedulable_pods_are_flushed_after_five_minutes(queue: SchedulingQueue,
                                                                    clock: FakeClock) -> None:
    queue.add(make_pod("p"))
    fail(queue, "TaintToleration")
    clock.advance(299)
    assert queue.flush_unschedulable_leftover() == 0
    clock.advance(2)
    assert queue.pop() is None        # the periodic flush runs every 30s; the last one was just now
    clock.advance(30)
    assert pop_all(queue) == ["p"]


def test_updates(queue: SchedulingQueue, clock: FakeClock) -> None:
    pod = make_pod("p")
    queue.add(pod)
    fail(queue, "NodeAffinity")
    status_only = make_pod("p")
    status_only["status"] = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]}
    status_only["metadata"]["resourceVersion"] = "7"
    queue.update(pod, status_only)
    assert queue.pending_pods()["unschedulable"] == ["default/p"]
    relabelled = make_pod("p", nodeSelector={"disk": "ssd"})
    queue.update(status_only, relabelled)
    clock.advance(1)
    assert [i.pod["spec"].get("nodeSelector") for i in [queue.pop()]] == [{"disk": "ssd"}]


def test_update_while_in_flight_wins_over_the_failure(queue: SchedulingQueue) -> None:
    queue.add(make_pod("p"))
    info = queue.pop()
    assert info is not None
    own_status_write = make_pod("p")
    own_status_write["status"] = {"phase": "Pending", "conditions": []}
    queue.update(make_pod("p"), own_status_write)            # bookkeeping only: nothing to redo
    assert len(queue) == 0
    queue.update(make_pod("p"), make_pod("p", labels={"v": "2"}))   # a real change mid-cycle
    queue.add_unschedulable_if_not_present(info, queue.scheduling_cycle, unschedulable_plugins={"NodeAffinity"})
    assert queue.pending_pods() == {"active": ["default/p"], "backoff": [], "unschedulable": []}
    again = queue.pop()
    assert again is not None and again.pod["metadata"]["labels"] == {"v": "2"}


def test_delete_removes_from_every_queue(queue: SchedulingQueue) -> None:
    queue.add(make_pod("a"))
    queue.add(make_pod("b"))
    fail(queue, "TaintToleration")
    queue.delete(make_pod("a"))
    queue.delete(make_pod("b"))
    assert len(queue) == 0 and queue.pop() is None


def test_priority_change_reorders_active_queue(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(make_pod("a"))
    clock.advance(1)
    queue.add(make_pod("b"))
    queue.update(make_pod("b"), make_pod("b", priority=5))
    assert pop_all(queue) == ["b", "a"]


def test_pod_update_detection_ignores_bookkeeping() -> None:
    base = make_pod("p")
    noisy = make_pod("p")
    noisy["metadata"].update(resourceVersion="9", generation=3, managedFields=[{}], finalizers=["x"])
    noisy["status"] = {"phase": "Pending"}
    assert not is_pod_updated(base, noisy)
    assert is_pod_updated(base, make_pod("p", labels={"a": "b"}))


def test_initial_attempt_timestamp_is_kept_across_attempts(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(make_pod("p"))
    first = fail(queue)
    started = first.initial_attempt_timestamp
    clock.advance(5)
    again = queue.pop()
    assert again is first and again.initial_attempt_timestamp == started and again.attempts == 2
