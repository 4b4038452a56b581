"""The HorizontalPodAutoscaler printer (autoscaling/v2 and autoscaling/v1 objects).

Kubernetes prints HPAs from the internal type, which is shaped like v2; a v1 object is
first converted the way the API server does: `targetCPUUtilizationPercentage` becomes a
cpu Resource metric (appended after any metrics kept in the
`autoscaling.alpha.kubernetes.io/metrics` annotation), and likewise for the current
values. TARGETS then reads e.g. "cpu: 50%/80%", "cpu: <unknown>/80%",
"memory: 100Mi/500Mi", "5/10 (avg)", at most two metrics then " + N more...".
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from apiserver.tables.cells import get, items, mapping, meta
from apiserver.tables.duration import since
from apiserver.tables.printer import Printer, age_column, column, doc, name_column
from apiserver.tables.quantity import canonical

SPECS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
STATUSES_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
UNKNOWN = "<unknown>"

# v1 (v2beta1-shaped) field -> v2 MetricTarget/MetricValueStatus field, per source type;
# a None default means the Go conversion leaves a nil pointer, "0" a zero Quantity.
_V1_SPEC_FIELDS = {
    "resource": {
        "targetAverageUtilization": ("averageUtilization", None),
        "targetAverageValue": ("averageValue", None),
    },
    "containerResource": {
        "targetAverageUtilization": ("averageUtilization", None),
        "targetAverageValue": ("averageValue", None),
    },
    "pods": {"targetAverageValue": ("averageValue", "0")},
    "object": {"targetValue": ("value", "0"), "averageValue": ("averageValue", None)},
    "external": {"targetValue": ("value", None), "targetAverageValue": ("averageValue", None)},
}
_V1_STATUS_FIELDS = {
    "resource": {
        "currentAverageUtilization": ("averageUtilization", None),
        "currentAverageValue": ("averageValue", None),
    },
    "containerResource": {
        "currentAverageUtilization": ("averageUtilization", None),
        "currentAverageValue": ("averageValue", None),
    },
    "pods": {"currentAverageValue": ("averageValue", "0")},
    "object": {"currentValue": ("value", "0"), "averageValue": ("averageValue", None)},
    "external": {"currentValue": ("value", "0"), "currentAverageValue": ("averageValue", None)},
}


def _v1_metric(
    metric: dict[str, Any], fields: dict[str, dict[str, tuple[str, Any]]], into: str
) -> dict[str, Any]:
    """One v1 annotation metric (spec or status) in the v2 shape the printer reads."""
    out: dict[str, Any] = {"type": metric.get("type", "")}
    for source, mapping_ in fields.items():
        if not isinstance(metric.get(source), dict):
            continue
        v1 = metric[source]
        value = {new: v1.get(old, default) for old, (new, default) in mapping_.items()}
        out[source] = {"name": v1.get("name", ""), into: {k: v for k, v in value.items() if v is not None}}
    return out


def _annotation_metrics(
    hpa: dict[str, Any], key: str, fields: dict[str, Any], into: str
) -> list[dict[str, Any]]:
    raw = (meta(hpa).get("annotations") or {}).get(key)
    try:
        decoded = json.loads(raw) if raw else []
    except ValueError:
        decoded = []
    return [_v1_metric(m, fields, into) for m in decoded if isinstance(m, dict)]


def as_v2(hpa: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The (spec metrics, current metrics) of an HPA of either version, in v2 shape."""
    spec, status = mapping(hpa, "spec"), mapping(hpa, "status")
    is_v1 = str(hpa.get("apiVersion", "")) == "autoscaling/v1" or (
        "metrics" not in spec
        and ("targetCPUUtilizationPercentage" in spec or "currentCPUUtilizationPercentage" in status)
    )
    if not is_v1:
        return items(spec, "metrics"), items(status, "currentMetrics")
    specs = _annotation_metrics(hpa, SPECS_ANNOTATION, _V1_SPEC_FIELDS, "target")
    statuses = _annotation_metrics(hpa, STATUSES_ANNOTATION, _V1_STATUS_FIELDS, "current")
    if spec.get("targetCPUUtilizationPercentage") is not None:
        target = {"type": "Utilization", "averageUtilization": spec["targetCPUUtilizationPercentage"]}
        specs.append({"type": "Resource", "resource": {"name": "cpu", "target": target}})
    if status.get("currentCPUUtilizationPercentage") is not None:
        current = {"averageUtilization": status["currentCPUUtilizationPercentage"]}
        statuses.append({"type": "Resource", "resource": {"name": "cpu", "current": current}})
    return specs, statuses


def _value_metric(spec: dict[str, Any], status: dict[str, Any] | None) -> str:
    """Object and External sources: "cur/target (avg)" or "cur/target"."""
    target = mapping(spec, "target")
    if target.get("averageValue") is not None:
        current = UNKNOWN
        if status is not None and get(status, "current", "averageValue") is not None:
            current = canonical(status["current"]["averageValue"])
        return f"{current}/{canonical(target['averageValue'])} (avg)"
    current = canonical(get(status, "current", "value")) if status is not None else UNKNOWN
    return f"{current}/{canonical(target.get('value'))}"


def _resource_metric(spec: dict[str, Any], status: dict[str, Any] | None) -> str:
    """Resource and ContainerResource sources: "cpu: 50%/80%", "memory: 10Mi/50Mi"."""
    target = mapping(spec, "target")
    name = spec.get("name", "")
    if target.get("averageValue") is not None:
        current = canonical(get(status, "current", "averageValue")) if status is not None else UNKNOWN
        return f"{name}: {current}/{canonical(target['averageValue'])}"
    current = UNKNOWN
    if status is not None and get(status, "current", "averageUtilization") is not None:
        current = f"{status['current']['averageUtilization']}%"
    goal = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
    return f"{name}: {current}/{goal}"


_SOURCES = {"External": "external", "Pods": "pods", "Object": "object", "Resource": "resource"}
_SOURCES["ContainerResource"] = "containerResource"


def _one_metric(spec: dict[str, Any], status: dict[str, Any] | None) -> str:
    source = _SOURCES.get(spec.get("type", ""))
    if source is None:
        return "<unknown type>"
    body = mapping(spec, source)
    own = (
        mapping(status, source) if isinstance(status, dict) and isinstance(status.get(source), dict) else None
    )
    if source == "pods":
        current = canonical(get(own, "current", "averageValue")) if own is not None else UNKNOWN
        return f"{current}/{canonical(get(body, 'target', 'averageValue'))}"
    if source in ("object", "external"):
        return _value_metric(body, own)
    return _resource_metric(body, own)


def format_metrics(specs: list[dict[str, Any]], statuses: list[dict[str, Any]]) -> str:
    """formatHPAMetrics: status i describes spec i; two shown, then " + N more..."."""
    if not specs:
        return "<none>"
    shown = [_one_metric(s, statuses[i] if i < len(statuses) else None) for i, s in enumerate(specs)]
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


def _hpa_cells(hpa: dict[str, Any], now: datetime) -> list[Any]:
    m, spec = meta(hpa), mapping(hpa, "spec")
    ref = mapping(spec, "scaleTargetRef")
    min_pods = spec.get("minReplicas")
    return [
        m.get("name", ""),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        format_metrics(*as_v2(hpa)),
        "<unset>" if min_pods is None else str(min_pods),
        spec.get("maxReplicas", 0),
        get(hpa, "status", "currentReplicas", default=0),
        since(m.get("creationTimestamp"), now),
    ]


def hpa_printer() -> Printer:
    spec = "autoscaling.v2.HorizontalPodAutoscalerSpec"
    columns = [
        name_column(),
        column("Reference", "string", doc(spec, "scaleTargetRef")),
        column("Targets", "string", doc(spec, "metrics")),
        column("MinPods", "string", doc(spec, "minReplicas")),
        column("MaxPods", "string", doc(spec, "maxReplicas")),
        column("Replicas", "string", doc("autoscaling.v2.HorizontalPodAutoscalerStatus", "currentReplicas")),
        age_column(),
    ]
    return Printer(columns, _hpa_cells)
