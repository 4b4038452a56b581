"""What one HPA sync decides (reconcileAutoscaler), as a pure function of the HPA and the
target's Scale: conditions, status, events, and whether to rescale.

mkp serves no metrics API (metrics.k8s.io, custom.metrics.k8s.io, external.metrics.k8s.io),
so every metric is invalid, exactly as on a Kubernetes cluster without metrics-server:
the HPA only enforces minReplicas/maxReplicas (the branches that need no metrics) and
otherwise reports ScalingActive=False with the metrics client's error, and the Warning
events FailedGet<Type>Metric and FailedComputeMetricsReplicas. The error texts are those
of the metrics clients wrapped by the replica calculator and the controller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
RESOURCE_API_ERROR = ("unable to fetch metrics from resource metrics API: the server could not find the requested "
                      "resource (get pods.metrics.k8s.io)")
CUSTOM_API_ERROR = ("unable to fetch metrics from custom metrics API: the server could not find the requested "
                    "resource (get {resource}.custom.metrics.k8s.io {name})")
EXTERNAL_API_ERROR = ("unable to fetch metrics from external metrics API: the server could not find the requested "
                      "resource (get {name}.external.metrics.k8s.io)")
DEFAULT_METRICS = [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                              "averageUtilization": 80}}}]


@dataclass
class Decision:
    """The outcome of one sync: conditions to set (type, status, reason, message) in
    order, events (type, reason, message), the replicas, and a rescale reason if any."""

    conditions: list[tuple[str, str, str, str]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    current: int = 0
    desired: int | None = None  # None: status.desiredReplicas is left as it was
    rescale_reason: str | None = None
    metric_statuses: list[Obj] | None = None


def metric_error(metric: Obj) -> tuple[str, str, str]:
    """(condition/event reason, the replica calculator's error, the controller's wrapped
    error) for one metric when no metrics API answers."""
    kind = metric.get("type")
    if kind in ("Resource", "ContainerResource"):
        source = metric.get("resource" if kind == "Resource" else "containerResource") or {}
        name = source.get("name", "")
        inner = f"unable to get metrics for resource {name}: {RESOURCE_API_ERROR}"
        what = "utilization" if (source.get("target") or {}).get("type") == "Utilization" else "usage"
        scope = "resource" if kind == "Resource" else "container resource"
        reason = "FailedGetResourceMetric" if kind == "Resource" else "FailedGetContainerResourceMetric"
        return reason, inner, f"failed to get {name} {scope} metric value: failed to get {name} {what}: {inner}"
    source = metric.get({"Pods": "pods", "Object": "object", "External": "external"}.get(str(kind), "")) or {}
    name = (source.get("metric") or {}).get("name", "")
    if kind == "External":
        inner = f"unable to get external metric {name}: " + EXTERNAL_API_ERROR.format(name=name)
        return "FailedGetExternalMetric", inner, f"failed to get external metric {name}: {inner}"
    if kind == "Object":
        target = source.get("describedObject") or {}
        inner = f"unable to get metric {name}: " + CUSTOM_API_ERROR.format(
            resource=str(target.get("kind", "")).lower() + "s", name=target.get("name", ""))
        return "FailedGetObjectMetric", inner, f"failed to get object metric value: {inner}"
    inner = f"unable to get metric {name}: " + CUSTOM_API_ERROR.format(resource="pods", name="*")
    return "FailedGetPodsMetric", inner, f"failed to get pods metric value: {inner}"


def decide(hpa: Obj, scale: Obj) -> Decision:
    """reconcileAutoscaler after the Scale was read (AbleToScale=SucceededGetScale)."""
    spec = hpa.get("spec") or {}
    minimum, maximum = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 0)
    current = int((scale.get("spec") or {}).get("replicas") or 0)
    decision = Decision(current=current)
    decision.conditions.append(("AbleToScale", "True", "SucceededGetScale",
                                "the HPA controller was able to get the target's current scale"))
    if current == 0 and minimum != 0:
        decision.desired = 0
        decision.conditions.append(("ScalingActive", "False", "ScalingDisabled",
                                    "scaling is disabled since the replica count of the target is zero"))
    elif current > maximum:
        decision.desired, decision.rescale_reason = maximum, "Current number of replicas above Spec.MaxReplicas"
    elif current < minimum:
        decision.desired, decision.rescale_reason = minimum, "Current number of replicas below Spec.MinReplicas"
    else:
        _metrics_fail(decision, spec.get("metrics") or DEFAULT_METRICS)
    return decision


def _metrics_fail(decision: Decision, metrics: list[Obj]) -> None:
    """computeReplicasForMetrics with every metric invalid: the first one's condition,
    a Warning per metric, then FailedComputeMetricsReplicas; statuses stay empty."""
    first_error = None
    for metric in metrics:
        reason, inner, wrapped = metric_error(metric)
        decision.events.append(("Warning", reason, inner))
        if first_error is None:
            first_error = wrapped
            decision.conditions.append(("ScalingActive", "False", reason,
                                        f"the HPA was unable to compute the replica count: {inner}"))
    decision.events.append(("Warning", "FailedComputeMetricsReplicas",
                            f"invalid metrics ({len(metrics)} invalid out of {len(metrics)}), "
                            f"first error is: {first_error}"))
    decision.metric_statuses = [{"type": ""} for _ in metrics]  # zero-valued MetricStatus, as Go writes them


def set_condition(status: Obj, ctype: str, value: str, reason: str, message: str, now: str) -> None:
    """setConditionInList: update in place (appending a new type at the end);
    lastTransitionTime moves only when the status does."""
    conditions = status.setdefault("conditions", [])
    existing = next((c for c in conditions if c.get("type") == ctype), None)
    if existing is None:
        existing = {"type": ctype}
        conditions.append(existing)
    if existing.get("status") != value:
        existing["lastTransitionTime"] = now
    existing.update(status=value, reason=reason, message=message)
