"""`kubectl get hpa`: REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE, v2 and v1 objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apiserver.tables import printer_for
from tests.apiserver.tables.helpers import NOW, by_name, meta


def cpu(target: int | None = 80, *, average_value: str | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {"type": "Utilization"}
    if target is not None:
        t["averageUtilization"] = target
    if average_value is not None:
        t = {"type": "AverageValue", "averageValue": average_value}
    return {"type": "Resource", "resource": {"name": "cpu", "target": t}}


def cpu_now(percent: int | None = None, *, average_value: str | None = None) -> dict[str, Any]:
    current: dict[str, Any] = {}
    if percent is not None:
        current["averageUtilization"] = percent
    if average_value is not None:
        current["averageValue"] = average_value
    return {"type": "Resource", "resource": {"name": "cpu", "current": current}}


def hpa_v2(metrics: list[Any], current: list[Any] | None = None, **spec: Any) -> dict[str, Any]:
    body = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "maxReplicas": 10,
        "minReplicas": 1,
    }
    body.update(spec)
    if metrics:
        body["metrics"] = metrics
    return {
        "apiVersion": "autoscaling/v2",
        "metadata": meta("web"),
        "spec": body,
        "status": {"currentReplicas": 2, **({"currentMetrics": current} if current else {})},
    }


PODS_METRIC = {
    "type": "Pods",
    "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1k"}},
}
OBJECT_METRIC = {
    "type": "Object",
    "object": {
        "metric": {"name": "hits"},
        "describedObject": {"kind": "Ingress", "name": "main"},
        "target": {"type": "Value", "value": "10k"},
    },
}
EXTERNAL_AVG = {
    "type": "External",
    "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}},
}

V2_CASES = [
    pytest.param(hpa_v2([cpu(80)], [cpu_now(50)]), "cpu: 50%/80%", id="cpu-utilization"),
    pytest.param(hpa_v2([cpu(80)]), "cpu: <unknown>/80%", id="cpu-not-yet-measured"),
    pytest.param(hpa_v2([cpu(None)], [cpu_now(12)]), "cpu: 12%/<auto>", id="cpu-no-target"),
    pytest.param(
        hpa_v2([cpu(average_value="0.5")], [cpu_now(average_value="250m")]),
        "cpu: 250m/500m",
        id="cpu-average-value",
    ),
    pytest.param(
        hpa_v2([cpu(average_value="500m")], [cpu_now(40)]),
        "cpu: <nil>/500m",
        id="average-value-status-missing",
    ),
    pytest.param(
        hpa_v2([PODS_METRIC], [{"type": "Pods", "pods": {"current": {"averageValue": "850"}}}]),
        "850/1k",
        id="pods",
    ),
    pytest.param(hpa_v2([PODS_METRIC]), "<unknown>/1k", id="pods-unknown"),
    pytest.param(
        hpa_v2([OBJECT_METRIC], [{"type": "Object", "object": {"current": {"value": "12k"}}}]),
        "12k/10k",
        id="object-value",
    ),
    pytest.param(hpa_v2([EXTERNAL_AVG]), "<unknown>/30 (avg)", id="external-average"),
    pytest.param(hpa_v2([{"type": "Bogus"}]), "<unknown type>", id="unknown-type"),
    pytest.param(
        hpa_v2([cpu(80), PODS_METRIC, EXTERNAL_AVG], [cpu_now(50)]),
        "cpu: 50%/80%, <unknown>/1k + 1 more...",
        id="two-shown-then-more",
    ),
    pytest.param(hpa_v2([]), "<none>", id="no-metrics"),
]


@pytest.mark.parametrize(("obj", "targets"), V2_CASES)
def test_hpa_v2_targets(obj: dict[str, Any], targets: str) -> None:
    assert printer_for("autoscaling", "HorizontalPodAutoscaler").cells(obj, NOW) == [
        "web",
        "Deployment/web",
        targets,
        "1",
        10,
        2,
        "5m",
    ]


def hpa_v1(
    spec: dict[str, Any], status: dict[str, Any], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    m = meta("php", annotations=annotations or {})
    body = {"scaleTargetRef": {"kind": "Deployment", "name": "php"}, "maxReplicas": 5, **spec}
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": m,
        "spec": body,
        "status": status,
    }


V1_CASES = [
    pytest.param(
        hpa_v1(
            {"minReplicas": 1, "targetCPUUtilizationPercentage": 50},
            {"currentReplicas": 1, "currentCPUUtilizationPercentage": 30},
        ),
        ["php", "Deployment/php", "cpu: 30%/50%", "1", 5, 1, "5m"],
        id="v1-cpu",
    ),
    pytest.param(
        hpa_v1({"targetCPUUtilizationPercentage": 50}, {"currentReplicas": 0}),
        ["php", "Deployment/php", "cpu: <unknown>/50%", "<unset>", 5, 0, "5m"],
        id="v1-unmeasured-and-min-unset",
    ),
    pytest.param(
        hpa_v1({}, {}), ["php", "Deployment/php", "<none>", "<unset>", 5, 0, "5m"], id="v1-no-target"
    ),
    pytest.param(
        hpa_v1(
            {"targetCPUUtilizationPercentage": 60},
            {"currentCPUUtilizationPercentage": 70},
            {
                "autoscaling.alpha.kubernetes.io/metrics": json.dumps(
                    [{"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}}]
                ),
                "autoscaling.alpha.kubernetes.io/current-metrics": json.dumps(
                    [{"type": "Resource", "resource": {"name": "memory", "currentAverageValue": "52428800"}}]
                ),
            },
        ),
        ["php", "Deployment/php", "memory: 52428800/100Mi, cpu: 70%/60%", "<unset>", 5, 0, "5m"],
        id="v1-annotation-metrics-come-first",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), V1_CASES)
def test_hpa_v1_objects_are_converted(obj: dict[str, Any], expected: list[Any]) -> None:
    assert printer_for("autoscaling", "HorizontalPodAutoscaler").cells(obj, NOW) == expected


def test_hpa_columns() -> None:
    assert by_name(printer_for("autoscaling", "HorizontalPodAutoscaler").columns) == [
        ("Name", "string", 0),
        ("Reference", "string", 0),
        ("Targets", "string", 0),
        ("MinPods", "string", 0),
        ("MaxPods", "string", 0),
        ("Replicas", "string", 0),
        ("Age", "string", 0),
    ]
