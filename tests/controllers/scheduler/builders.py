"""Small builders for Node and Pod JSON objects, and helpers that run one plugin the way
the framework would, so each plugin's test reads as a table of cases."""

from __future__ import annotations

from typing import Any

from controllers.scheduler.framework import (
    SUCCESS,
    CycleState,
    FilterPlugin,
    NormalizeScorePlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
    Status,
)
from controllers.scheduler.nodeinfo import Snapshot

Obj = dict[str, Any]


def make_node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
              labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
              unschedulable: bool = False, extra: dict[str, str] | None = None,
              images: list[Obj] | None = None) -> Obj:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    node: Obj = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {},
        "status": {"allocatable": allocatable, "capacity": dict(allocatable)},
    }
    if taints:
        node["spec"]["taints"] = taints
    if unschedulable:
        node["spec"]["unschedulable"] = True
    if images:
        node["status"]["images"] = images
    return node


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> Obj:
    result = {"key": key, "effect": effect}
    if value:
        result["value"] = value
    return result


def container(name: str = "app", *, cpu: str | None = None, memory: str | None = None,
              image: str = "nginx:1.27", ports: list[Obj] | None = None, **extra: Any) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    result: Obj = {"name": name, "image": image, **extra}
    if requests:
        result["resources"] = {"requests": requests}
    if ports:
        result["ports"] = ports
    return result


def make_pod(name: str, *, namespace: str = "default", cpu: str | None = None, memory: str | None = None,
             node_name: str | None = None, labels: dict[str, str] | None = None, priority: int | None = None,
             containers: list[Obj] | None = None, uid: str | None = None, **spec: Any) -> Obj:
    pod: Obj = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}",
                     "labels": dict(labels or {})},
        "spec": {"containers": containers or [container(cpu=cpu, memory=memory)], **spec},
        "status": {"phase": "Running" if node_name else "Pending"},
    }
    if node_name:
        pod["spec"]["nodeName"] = node_name
    if priority is not None:
        pod["spec"]["priority"] = priority
    return pod


def run_filter(plugin: Any, pod: Obj, snapshot: Snapshot, node: str) -> Status:
    """PreFilter (if any) then Filter for one node, as the framework runs them."""
    state = CycleState(snapshot)
    if isinstance(plugin, PreFilterPlugin):
        _, status = plugin.pre_filter(state, pod)
        if status.is_skip():
            return SUCCESS
        if not status.is_success():
            return status
    assert isinstance(plugin, FilterPlugin)
    info = snapshot.get(node)
    assert info is not None
    return plugin.filter(state, pod, info)


def run_score(plugin: Any, pod: Obj, snapshot: Snapshot, nodes: list[str] | None = None,
              ) -> tuple[dict[str, int], dict[str, int]]:
    """(raw, normalized) scores of one plugin over `nodes` (default: all); a plugin whose
    PreScore says Skip scores nothing."""
    state = CycleState(snapshot)
    infos = [snapshot.get(n) for n in nodes] if nodes else list(snapshot.node_infos)
    assert all(infos)
    if isinstance(plugin, PreScorePlugin) and plugin.pre_score(state, pod, infos).is_skip():  # type: ignore[arg-type]
        return {}, {}
    assert isinstance(plugin, ScorePlugin)
    raw = {info.name: plugin.score(state, pod, info) for info in infos}  # type: ignore[union-attr]
    normalized = dict(raw)
    if isinstance(plugin, NormalizeScorePlugin):
        plugin.normalize_score(state, pod, normalized)
    return raw, normalized
