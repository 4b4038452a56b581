"""Conversion between a served version and the storage version.

Objects are stored in one version per resource and converted at the handler boundary,
as kube-apiserver converts through its internal version:
- autoscaling/v1 HorizontalPodAutoscaler <-> autoscaling/v2 (stored): the CPU target
  maps to a Resource metric; what v1 cannot express travels in the
  `autoscaling.alpha.kubernetes.io/*` annotations, as Kubernetes does, so a v1
  round trip loses nothing.
- events.k8s.io/v1 Event <-> core/v1 Event (stored): renamed fields.
- custom resources: only apiVersion changes (conversion strategy None).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from apiserver.registry.resource import ResourceInfo

Obj = dict[str, Any]

_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
_CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
_CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
_BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"

# events.k8s.io/v1 field -> core/v1 field
_EVENT_FIELDS = {
    "regarding": "involvedObject", "note": "message", "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp", "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count", "reportingController": "reportingComponent",
}


def needs_conversion(info: ResourceInfo, version: str) -> bool:
    return version != info.version or bool(info.shares_storage_with)


def to_storage(info: ResourceInfo, obj: Obj, version: str) -> Obj:
    """A request-version object in the storage version."""
    if not needs_conversion(info, version):
        return obj
    if info.shares_storage_with == "events":
        return _event_to_core(obj)
    if info.kind == "HorizontalPodAutoscaler" and version == "v1":
        return _hpa_v1_to_v2(obj)
    out = dict(obj)
    out["apiVersion"] = info.api_version(info.version)
    return out


def from_storage(info: ResourceInfo, obj: Obj, version: str) -> Obj:
    """A stored object in the version the client asked for."""
    if not needs_conversion(info, version):
        return obj
    if info.shares_storage_with == "events":
        return _core_to_event(obj)
    if info.kind == "HorizontalPodAutoscaler" and version == "v1":
        return _hpa_v2_to_v1(obj)
    out = dict(obj)
    out["apiVersion"] = info.api_version(version)
    return out


def _event_to_core(obj: Obj) -> Obj:
    out: Obj = {"apiVersion": "v1", "kind": "Event"}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        out[_EVENT_FIELDS.get(key, key)] = value
    if "source" not in out and obj.get("reportingController"):
        out["source"] = {"component": obj["reportingController"]}
    return out


def _core_to_event(obj: Obj) -> Obj:
    reverse = {v: k for k, v in _EVENT_FIELDS.items()}
    out: Obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        out[reverse.get(key, key)] = value
    return out


def _cpu_metric(percent: int) -> Obj:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}}


def _is_cpu_utilization(metric: Obj) -> bool:
    res = metric.get("resource") or {}
    return metric.get("type") == "Resource" and res.get("name") == "cpu" and \
        (res.get("target") or {}).get("type") == "Utilization"


def _hpa_v1_to_v2(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    meta = out.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    spec = out.setdefault("spec", {})
    metrics = orjson.loads(annotations.pop(_METRICS_ANNOTATION, "[]"))
    cpu = spec.pop("targetCPUUtilizationPercentage", None)
    if cpu is not None:
        metrics = [m for m in metrics if not _is_cpu_utilization(m)] + [_cpu_metric(cpu)]
    if metrics:
        spec["metrics"] = metrics
    if _BEHAVIOR_ANNOTATION in annotations:
        spec["behavior"] = orjson.loads(annotations.pop(_BEHAVIOR_ANNOTATION))
    status = out.get("status")
    if isinstance(status, dict):
        current = orjson.loads(annotations.pop(_CURRENT_METRICS_ANNOTATION, "[]"))
        cpu_now = status.pop("currentCPUUtilizationPercentage", None)
        if cpu_now is not None:
            current.append({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu_now}}})
        if current:
            status["currentMetrics"] = current
        if _CONDITIONS_ANNOTATION in annotations:
            status["conditions"] = orjson.loads(annotations.pop(_CONDITIONS_ANNOTATION))
    _set_annotations(meta, annotations)
    return out


def _hpa_v2_to_v1(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    meta = out.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    spec = out.setdefault("spec", {})
    metrics = spec.pop("metrics", None) or []
    others = [m for m in metrics if not _is_cpu_utilization(m)]
    for m in metrics:
        if _is_cpu_utilization(m):
            spec["targetCPUUtilizationPercentage"] = m["resource"]["target"].get("averageUtilization")
    if others:
        annotations[_METRICS_ANNOTATION] = orjson.dumps(others).decode()
    if spec.get("behavior"):
        annotations[_BEHAVIOR_ANNOTATION] = orjson.dumps(spec.pop("behavior")).decode()
    spec.pop("behavior", None)
    status = out.get("status")
    if isinstance(status, dict):
        current = status.pop("currentMetrics", None) or []
        rest = []
        for m in current:
            res = m.get("resource") or {}
            if m.get("type") == "Resource" and res.get("name") == "cpu" and "averageUtilization" in (res.get("current") or {}):
                status["currentCPUUtilizationPercentage"] = res["current"]["averageUtilization"]
            else:
                rest.append(m)
        if rest:
            annotations[_CURRENT_METRICS_ANNOTATION] = orjson.dumps(rest).decode()
        if status.get("conditions"):
            annotations[_CONDITIONS_ANNOTATION] = orjson.dumps(status.pop("conditions")).decode()
        status.pop("conditions", None)
    _set_annotations(meta, annotations)
    return out


def _set_annotations(meta: Obj, annotations: dict[str, str]) -> None:
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
