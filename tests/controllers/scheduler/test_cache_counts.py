"""The scheduler cache's remembered per-domain pod counts (PodTopologySpread's question
"how many matching pods per zone?") stay equal to a fresh count as pods come and go."""

from __future__ import annotations

from typing import Any

from controllers.scheduler.cache import SchedulerCache
from controllers.scheduler.matching import label_selector
from controllers.scheduler.nodeinfo import Snapshot
from tests.controllers.scheduler.test_loop import api_node, api_pod

Obj = dict[str, Any]
ZONE = "topology.kubernetes.io/zone"
SELECTOR = label_selector({"matchLabels": {"app": "web"}})
KEY = "default|app=web"


def zoned_node(name: str, zone: str | None) -> Obj:
    node = api_node(name)
    if zone:
        node["metadata"]["labels"][ZONE] = zone
    return node


def bound(name: str, node: str, *, app: str = "web", namespace: str = "default", deleting: bool = False) -> Obj:
    pod = api_pod(name, labels={"app": app})
    pod["metadata"]["namespace"] = namespace
    pod["spec"]["nodeName"] = node
    pod["status"] = {"phase": "Running"}
    if deleting:
        pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return pod


def remembered(cache: SchedulerCache) -> dict[str, int]:
    return dict(cache.snapshot().domain_counts(KEY, SELECTOR, "default", ZONE))


def fresh(cache: SchedulerCache) -> dict[str, int]:
    return Snapshot.domain_counts(cache.snapshot(), KEY + "-fresh", SELECTOR, "default", ZONE)


def test_domain_counts_follow_pod_changes() -> None:
    cache = SchedulerCache()
    for name, zone in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("bare", None)):
        cache.add_node(zoned_node(name, zone))
    cache.add_pod(bound("w1", "a1"))
    cache.add_pod(bound("other", "a1", app="db"))
    assert remembered(cache) == fresh(cache) == {"a": 1, "b": 0, "": 0}
    steps = [
        lambda: cache.assume_pod(api_pod("w2", labels={"app": "web"}), "b1"),
        lambda: cache.add_pod(bound("w2", "a2")),                    # the binding landed elsewhere
        lambda: cache.add_pod(bound("w3", "bare")),
        lambda: cache.add_pod(bound("w4", "b1", namespace="other")),  # another namespace never counts
        lambda: cache.add_pod(bound("w1", "a1", deleting=True)),     # terminating pods do not count
        lambda: cache.remove_pod("default/w3"),
        lambda: cache.assume_pod(api_pod("w5", labels={"app": "web"}), "b1"),
        lambda: cache.forget_pod("default/w5"),
    ]
    for step in steps:
        step()
        assert remembered(cache) == fresh(cache)
    assert remembered(cache) == {"a": 1, "b": 0, "": 0}


def test_node_changes_recount() -> None:
    cache = SchedulerCache()
    cache.add_node(zoned_node("n1", "a"))
    cache.add_pod(bound("w1", "n1"))
    assert remembered(cache) == {"a": 1}
    cache.update_node(None, zoned_node("n1", "b"))   # relabelled: its pods move domain
    assert remembered(cache) == fresh(cache) == {"b": 1}
    cache.add_node(zoned_node("n2", "a"))
    cache.add_pod(bound("w2", "n2"))
    assert remembered(cache) == fresh(cache) == {"a": 1, "b": 1}
    cache.remove_node("n1")
    assert remembered(cache) == fresh(cache) == {"a": 1}
