"""autoscaling/v2 HorizontalPodAutoscaler validation.

Mirrors pkg/apis/autoscaling/validation for 1.32 (HPAScaleToZero is off, so minReplicas
must be at least 1): replicas bounds, the scale target reference, each metric having
exactly the source its `type` names, and the scaling behavior's policies.
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.validation_meta import validate_object_meta, validate_object_meta_update
from apiserver.admission.validation_names import is_dns1123_label, name_is_dns_subdomain, name_is_path_segment
from apiserver.admission.validation_resources import go_quantity, validate_container_resource_name
from apiserver.admission.validation_util import as_dict, as_int, as_list, as_str, child, index, invalid_go
from apiserver.errors import FieldError, forbidden, invalid, not_supported, required
from minikube_py.api.quantity import QuantityError, parse_quantity

METRIC_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"]
_SOURCE_FIELDS = {"Object": "object", "Pods": "pods", "Resource": "resource", "External": "external",
                  "ContainerResource": "containerResource"}
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600


def _reference(ref: Any, path: str) -> list[FieldError]:
    ref, errs = as_dict(ref), []
    for field in ("kind", "name"):
        value = as_str(ref.get(field))
        if not value:
            errs.append(required(child(path, field), ""))
        else:
            errs += [invalid(child(path, field), value, m) for m in name_is_path_segment(value, False)]
    return errs


def _positive_quantity(target: dict[str, Any], field: str, path: str) -> list[FieldError]:
    if target.get(field) is None:
        return []
    try:
        quantity = parse_quantity(target[field])
    except QuantityError as err:
        return [invalid(child(path, field), target[field], str(err))]
    return [invalid_go(child(path, field), go_quantity(quantity), "must be positive")] if quantity.sign() != 1 else []


def _target(target: Any, path: str) -> list[FieldError]:
    target, errs = as_dict(target), []
    kind = as_str(target.get("type"))
    if not kind:
        errs.append(required(child(path, "type"), "must specify a metric target type"))
    if kind not in ("Utilization", "Value", "AverageValue"):
        errs.append(invalid(child(path, "type"), kind, "must be either Utilization, Value, or AverageValue"))
    errs += _positive_quantity(target, "value", path) + _positive_quantity(target, "averageValue", path)
    utilization = as_int(target.get("averageUtilization"))
    if utilization is not None and utilization < 1:
        errs.append(invalid(child(path, "averageUtilization"), utilization, "must be greater than 0"))
    return errs


def _metric_name(metric: Any, path: str) -> list[FieldError]:
    name = as_str(as_dict(metric).get("name"))
    if not name:
        return [required(child(path, "name"), "must specify a metric name")]
    return [invalid(child(path, "name"), name, m) for m in name_is_path_segment(name, False)]


def _source(kind: str, src: dict[str, Any], path: str) -> list[FieldError]:
    target, tpath = as_dict(src.get("target")), child(path, "target")
    errs: list[FieldError] = []
    if kind in ("resource", "containerResource"):
        if not as_str(src.get("name")):
            errs.append(required(child(path, "name"), "must specify a resource name"))
        elif kind == "containerResource":
            errs += validate_container_resource_name(src["name"], child(path, "name"))
        if kind == "containerResource":
            container = as_str(src.get("container"))
            if not container:
                errs.append(required(child(path, "container"), "must specify a container"))
            else:
                errs += [invalid(child(path, "container"), container, m) for m in is_dns1123_label(container)]
        errs += _target(target, tpath)
        if target.get("averageUtilization") is None and target.get("averageValue") is None:
            errs.append(required(child(tpath, "averageUtilization"), "must set either a target raw value or a target utilization"))
        if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
            errs.append(forbidden(child(tpath, "averageValue"), "may not set both a target raw value and a target utilization"))
        return errs
    if kind == "object":
        errs += _reference(src.get("describedObject"), child(path, "describedObject"))
    errs += _metric_name(src.get("metric"), child(path, "metric")) + _target(target, tpath)
    if kind == "pods" and target.get("averageValue") is None:
        errs.append(required(child(tpath, "averageValue"), "must specify a positive target averageValue"))
    if kind in ("object", "external") and target.get("value") is None and target.get("averageValue") is None:
        detail = ("must set either a target value or averageValue" if kind == "object"
                  else "must set either a target value for metric or a per-pod target")
        errs.append(required(child(tpath, "averageValue"), detail))
    return errs


def _metric(metric: dict[str, Any], path: str) -> list[FieldError]:
    kind = as_str(metric.get("type"))
    errs = [] if kind else [required(child(path, "type"), "must specify a metric source type")]
    if kind not in METRIC_TYPES:
        errs.append(not_supported(child(path, "type"), kind, METRIC_TYPES))
    present = [f for f in ("object", "external", "pods", "resource", "containerResource")
               if isinstance(metric.get(f), dict)]
    if present:
        errs += _source(present[0], metric[present[0]], child(path, present[0]))
    expected = _SOURCE_FIELDS.get(kind, "")
    if kind in _SOURCE_FIELDS and expected not in present:
        errs.append(required(child(path, expected), "must populate information for the given metric source"))
    elif kind not in _SOURCE_FIELDS:
        errs.append(not_supported(child(path, "type"), kind, METRIC_TYPES))
    if len(present) != 1:
        errs += [forbidden(child(path, f), "must populate the given metric source only") for f in present if f != expected]
    return errs


def _rules(rules: Any, path: str) -> list[FieldError]:
    if not isinstance(rules, dict):
        return []
    errs: list[FieldError] = []
    window = as_int(rules.get("stabilizationWindowSeconds"))
    if window is not None and window < 0:
        errs.append(invalid(child(path, "stabilizationWindowSeconds"), window, "must be greater than or equal to zero"))
    if window is not None and window > MAX_STABILIZATION_WINDOW_SECONDS:
        errs.append(invalid(child(path, "stabilizationWindowSeconds"), window,
                            f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"))
    select = rules.get("selectPolicy")
    if select is not None and select not in ("Disabled", "Max", "Min"):
        errs.append(not_supported(child(path, "selectPolicy"), select, ["Disabled", "Max", "Min"]))
    policies = as_list(rules.get("policies"))
    if not policies:
        errs.append(required(child(path, "policies"), "must specify at least one Policy"))
    for i, policy in enumerate(policies):
        policy, item = as_dict(policy), index(child(path, "policies"), i)
        if policy.get("type") not in ("Pods", "Percent"):
            errs.append(not_supported(child(item, "type"), as_str(policy.get("type")), ["Percent", "Pods"]))
        value, period = as_int(policy.get("value")) or 0, as_int(policy.get("periodSeconds")) or 0
        if value <= 0:
            errs.append(invalid(child(item, "value"), value, "must be greater than zero"))
        if period <= 0:
            errs.append(invalid(child(item, "periodSeconds"), period, "must be greater than zero"))
        if period > MAX_PERIOD_SECONDS:
            errs.append(invalid(child(item, "periodSeconds"), period, f"must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return errs


def _hpa_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    low, high = as_int(spec.get("minReplicas")), as_int(spec.get("maxReplicas")) or 0
    if low is not None and low < 1:
        errs.append(invalid("spec.minReplicas", low, "must be greater than or equal to 1"))
    if high < 1:
        errs.append(invalid("spec.maxReplicas", high, "must be greater than 0"))
    if low is not None and high < low:
        errs.append(invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
    errs += _reference(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    for i, metric in enumerate(as_list(spec.get("metrics"))):
        errs += _metric(as_dict(metric), index("spec.metrics", i))
    behavior = as_dict(spec.get("behavior"))
    return errs + _rules(behavior.get("scaleUp"), "spec.behavior.scaleUp") + _rules(
        behavior.get("scaleDown"), "spec.behavior.scaleDown")


def validate_hpa(hpa: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(hpa.get("metadata"), name_is_dns_subdomain) + _hpa_spec(as_dict(hpa.get("spec")))


def validate_hpa_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new.get("metadata"), old.get("metadata")) + _hpa_spec(as_dict(new.get("spec")))
