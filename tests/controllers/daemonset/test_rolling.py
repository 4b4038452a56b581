"""RollingUpdate steps (maxUnavailable, maxSurge) and OnDelete, one sync at a time."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.common.actions import DeletePods
from controllers.daemonset.backoff import FailedPodsBackoff
from controllers.daemonset.reconcile import CreateDaemonPods, reconcile_daemonset
from controllers.daemonset.rolling import scaled_value
from tests.controllers.daemonset.fixtures import NOW, daemon_pod, daemon_set, node

NODES = [node("n1"), node("n2"), node("n3")]
NEW = "h2"


def strategy(max_unavailable: Any = 1, max_surge: Any = 0) -> dict[str, Any]:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable, "maxSurge": max_surge}}


def step(ds: dict[str, Any], pods: list[dict[str, Any]], nodes=NODES) -> tuple[list[str], list[str]]:
    """(nodes created on, pods deleted) by one sync with the current revision NEW."""
    actions = reconcile_daemonset(ds, nodes, pods, hash_value=NEW, now=NOW, backoff=FailedPodsBackoff())
    creates = [a for a in actions if isinstance(a, CreateDaemonPods)]
    deletes = [a for a in actions if isinstance(a, DeletePods)]
    return (list(creates[0].node_names) if creates else [], list(deletes[0].names) if deletes else [])


def old_pods(*nodes: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [daemon_pod(f"old-{n}", n, hash_value="h1", **kwargs) for n in nodes]


def test_max_unavailable_one_replaces_one_node_at_a_time() -> None:
    ds = daemon_set(strategy=strategy(1))
    assert step(ds, old_pods("n1", "n2", "n3")) == ([], ["old-n1"])
    # manage creates the new pod on the emptied node, from the current revision
    assert step(ds, old_pods("n2", "n3")) == (["n1"], [])
    # the new pod is not available yet: nothing else goes
    waiting = [daemon_pod("new-n1", "n1", hash_value=NEW, ready=False), *old_pods("n2", "n3")]
    assert step(ds, waiting) == ([], [])
    ready = [daemon_pod("new-n1", "n1", hash_value=NEW), *old_pods("n2", "n3")]
    assert step(ds, ready) == ([], ["old-n2"])


def test_max_unavailable_percent_rounds_up() -> None:
    ds = daemon_set(strategy=strategy("50%"))
    assert step(ds, old_pods("n1", "n2", "n3")) == ([], ["old-n1", "old-n2"])


def test_unavailable_old_pod_is_replaced_beyond_the_budget() -> None:
    ds = daemon_set(strategy=strategy(1))
    pods = [*old_pods("n1", "n2"), *old_pods("n3", ready=False)]
    assert step(ds, pods) == ([], ["old-n3"])


def test_node_without_pod_counts_as_unavailable() -> None:
    ds = daemon_set(strategy=strategy(1))
    pods = old_pods("n1", "n2")
    # manage wants a pod on n3 first; the rolling update only runs once manage is idle
    assert step(ds, pods) == (["n3"], [])


def test_deleting_pod_is_not_counted_and_manage_waits() -> None:
    ds = daemon_set(strategy=strategy(1))
    pods = [*old_pods("n1", deleting=True), *old_pods("n2", "n3")]
    # n1's only pod is being deleted: manage neither creates (a pod exists) nor deletes;
    # the rolling update counts n1 as unavailable and spends the budget on it
    assert step(ds, pods) == ([], [])


def test_max_surge_creates_next_to_old_pods_then_deletes_old_once_new_available() -> None:
    ds = daemon_set(strategy=strategy(0, 1))
    assert step(ds, old_pods("n1", "n2", "n3")) == (["n1"], [])
    surging = [*old_pods("n1", "n2", "n3"), daemon_pod("new-n1", "n1", hash_value=NEW, ready=False, age=5)]
    assert step(ds, surging) == ([], [])
    available = [*old_pods("n1", "n2", "n3"), daemon_pod("new-n1", "n1", hash_value=NEW, age=5)]
    assert step(ds, available) == ([], ["old-n1"])
    assert step(ds, [*old_pods("n2", "n3"), daemon_pod("new-n1", "n1", hash_value=NEW)]) == (["n2"], [])


def test_max_surge_replaces_unavailable_old_pod_at_once() -> None:
    ds = daemon_set(strategy=strategy(0, 1))
    pods = [*old_pods("n1", "n2"), *old_pods("n3", ready=False)]
    assert step(ds, pods) == (["n3", "n1"], [])  # replacements first, then surge candidates


def test_max_surge_percent_of_nodes() -> None:
    ds = daemon_set(strategy=strategy(0, "100%"))
    assert step(ds, old_pods("n1", "n2", "n3")) == (["n1", "n2", "n3"], [])


def test_surge_keeps_old_pod_when_new_not_ready_and_drops_not_ready_old() -> None:
    ds = daemon_set(strategy=strategy(0, 1))
    new_not_ready = daemon_pod("new-n1", "n1", hash_value=NEW, ready=False, age=5)
    assert step(ds, [*old_pods("n1", ready=False), new_not_ready], nodes=[node("n1")]) == ([], ["old-n1"])


def test_on_delete_never_deletes_old_pods_but_recreates_from_current_revision() -> None:
    ds = daemon_set(strategy={"type": "OnDelete"})
    assert step(ds, old_pods("n1", "n2", "n3")) == ([], [])
    assert step(ds, old_pods("n2", "n3")) == (["n1"], [])


@pytest.mark.parametrize(("value", "total", "expected"), [
    (1, 3, 1), ("1", 3, 1), ("25%", 3, 1), ("50%", 3, 2), ("0%", 3, 0), ("100%", 7, 7), (None, 3, 0)])
def test_scaled_value_rounds_up(value, total, expected) -> None:
    assert scaled_value(value, total) == expected
