"""Resource names and quantities: container requests/limits, quota and limit-range keys.

Follows the core group's validateResourceRequirements: every name must be a standard
resource (`cpu`, `memory`, `ephemeral-storage`, `hugepages-*`) or a qualified extended
resource (`example.com/gpu`); quantities must not be negative; a request may not exceed
its limit; extended resources cannot be overcommitted and must be whole numbers. The
texts ("must be less than or equal to cpu limit of 1") are Kubernetes'.

Unparsable quantities normally never reach validation (the API server rejects them while
decoding, see defaults.py); if one does, it is reported here as an Invalid value.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from apiserver.admission.validation_names import is_qualified_name
from apiserver.admission.validation_util import as_dict, child, go_quote, invalid_go, key
from apiserver.errors import FieldError, forbidden, invalid, required
from minikube_py.api.quantity import Quantity, QuantityError, parse_quantity

IS_NEGATIVE = "must be greater than or equal to 0"
IS_NOT_POSITIVE = "must be greater than zero"
_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_QUOTA_RESOURCES = {
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "storage", "requests.storage", "services.nodeports", "services.loadbalancers",
    "requests.cpu", "requests.memory", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage",
}
_INTEGER_QUOTA_RESOURCES = {
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
}


def is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended(name: str) -> bool:
    if is_native(name) or name.startswith("requests."):
        return False
    return not is_qualified_name("requests." + name)


def overcommit_allowed(name: str) -> bool:
    return is_native(name) and not is_hugepages(name)


def is_integer_resource(name: str) -> bool:
    return is_extended(name) or name in _INTEGER_QUOTA_RESOURCES


def _is_standard(name: str) -> bool:
    return (name in _CONTAINER_RESOURCES or name in _QUOTA_RESOURCES or is_hugepages(name)
            or name.startswith(("requests.hugepages-", "limits.hugepages-")))


def validate_resource_name(name: str, path: str) -> list[FieldError]:
    errs = [invalid(path, name, msg) for msg in is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name and not _is_standard(name):
        errs.append(invalid(path, name, "must be a standard resource type or fully qualified"))
    return errs


def validate_container_resource_name(name: str, path: str) -> list[FieldError]:
    errs = validate_resource_name(name, path)
    if "/" not in name:
        if name not in _CONTAINER_RESOURCES and not is_hugepages(name):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not is_native(name) and not is_extended(name):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def validate_quota_resource_name(name: str, path: str) -> list[FieldError]:
    errs = validate_resource_name(name, path)
    if "/" not in name and not _is_standard(name):
        errs.append(invalid(path, name, "must be a standard resource for quota"))
    return errs


def quantity_or_error(value: Any, path: str) -> tuple[Quantity | None, list[FieldError]]:
    try:
        return parse_quantity(value), []
    except QuantityError as err:
        return None, [invalid(path, value, str(err))]


def validate_quantity_value(name: str, value: Quantity, path: str) -> list[FieldError]:
    """ValidateResourceQuantityValue."""
    errs = []
    if value.sign() < 0:
        errs.append(invalid(path, str(value), IS_NEGATIVE))
    if is_integer_resource(name) and value.milli_value() % 1000 != 0:
        errs.append(invalid(path, str(value), "must be an integer"))
    return errs


def validate_positive_quantity(value: Quantity, path: str) -> list[FieldError]:
    return [invalid(path, str(value), IS_NOT_POSITIVE)] if value.sign() <= 0 else []


def _parsed_list(resources: Any, path: str, name_check: Any) -> tuple[dict[str, Quantity], list[FieldError]]:
    parsed: dict[str, Quantity] = {}
    errs: list[FieldError] = []
    for name, raw in sorted(as_dict(resources).items()):
        item_path = key(path, name)
        errs += name_check(name, item_path)
        quantity, q_errs = quantity_or_error(raw, item_path)
        errs += q_errs
        if quantity is not None:
            errs += validate_quantity_value(name, quantity, item_path)
            parsed[name] = quantity
    return parsed, errs


def validate_resource_requirements(resources: Any, path: str) -> list[FieldError]:
    """A container's `resources`: names, quantities, requests <= limits."""
    resources = as_dict(resources)
    lim_path, req_path = f"{path}.limits", f"{path}.requests"
    limits, errs = _parsed_list(resources.get("limits"), lim_path, validate_container_resource_name)
    requests, req_errs = _parsed_list(resources.get("requests"), req_path, validate_container_resource_name)
    errs += req_errs
    for name, request in requests.items():
        limit = limits.get(name)
        if limit is not None:
            if request.cmp(limit) != 0 and not overcommit_allowed(name):
                errs.append(invalid(req_path, str(request), f"must be equal to {name} limit of {limit}"))
            elif request.cmp(limit) > 0:
                errs.append(invalid(req_path, str(request), f"must be less than or equal to {name} limit of {limit}"))
        elif not overcommit_allowed(name) and name not in as_dict(resources.get("limits")):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
    names = set(limits) | set(requests)
    if any(is_hugepages(n) for n in names) and not names & {"cpu", "memory"}:
        errs.append(forbidden(path, "HugePages require cpu or memory"))
    return errs


def validate_resource_list(resources: Any, path: str, name_check: Any) -> list[FieldError]:
    """A bare ResourceList (quota hard, node capacity ...) checked with `name_check`."""
    return _parsed_list(resources, path, name_check)[1]


def go_quantity(value: Quantity) -> str:
    """A resource.Quantity passed by value, as %#v prints it (int64 form only)."""
    scale = value._scale
    if scale is None:
        return "resource.Quantity{...}"
    amount = int(value.value / Fraction(10) ** scale)
    text = value._text or ""
    return (f"resource.Quantity{{i:resource.int64Amount{{value:{amount}, scale:{scale}}}, "
            f"d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, s:{go_quote(text)}, Format:{go_quote(value.format)}}}")


# (lower, upper, field the error is reported at, value shown, message) when lower > upper.
_LIMIT_CHECKS = [
    ("min", "max", "min", "min", "min value {min} is greater than max value {max}"),
    ("min", "defaultRequest", "defaultRequest", "defaultRequest",
     "min value {min} is greater than default request value {defaultRequest}"),
    ("defaultRequest", "max", "defaultRequest", "defaultRequest",
     "default request value {defaultRequest} is greater than max value {max}"),
    ("defaultRequest", "default", "defaultRequest", "defaultRequest",
     "default request value {defaultRequest} is greater than default limit value {default}"),
    ("min", "default", "default", "min", "min value {min} is greater than default value {default}"),
    ("default", "max", "default", "max", "default value {default} is greater than max value {max}"),
]


def validate_limit_range_item(item: dict[str, Any], path: str) -> list[FieldError]:
    """One spec.limits[i] entry: names, then min <= defaultRequest <= default <= max."""
    kind = item.get("type")
    name_check = validate_container_resource_name if kind in ("Pod", "Container") else validate_resource_name
    errs: list[FieldError] = []
    values: dict[str, dict[str, Quantity]] = {}
    fields = ["max", "min", "default", "defaultRequest", "maxLimitRequestRatio"]
    if kind == "Pod":
        fields = ["max", "min", "maxLimitRequestRatio"]
        errs += [forbidden(child(path, f), "may not be specified when `type` is 'Pod'")
                 for f in ("default", "defaultRequest") if as_dict(item.get(f))]
    for field in fields:
        values[field], field_errs = _parsed_list(item.get(field), child(path, field), name_check)
        errs += field_errs
    if kind == "PersistentVolumeClaim" and "storage" not in values["min"] and "storage" not in values["max"]:
        errs.append(required(child(path, "limits"), "either minimum or maximum storage value is required, "
                                                    "but neither was provided"))
    for name in sorted(set().union(*(set(v) for v in values.values()))):
        found = {f: v[name] for f, v in values.items() if name in v}
        for lower, upper, at, shown, text in _LIMIT_CHECKS:
            if lower in found and upper in found and found[lower] > found[upper]:
                errs.append(invalid_go(key(child(path, at), name), go_quantity(found[shown]),
                                       text.format(**{k: str(v) for k, v in found.items()})))
        ratio = found.get("maxLimitRequestRatio")
        if ratio is not None and ratio < 1:
            errs.append(invalid_go(key(child(path, "maxLimitRequestRatio"), name), go_quantity(ratio),
                                   f"ratio {ratio} is less than 1"))
    return errs
