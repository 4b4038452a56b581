"""Printers for admissionregistration.k8s.io: webhook configurations and (mutating and
validating) admission policies and their bindings.

A binding's PARAMREF reads "namespace/name", "*/name" when the namespace is left to the
request, or the Go debug string of its label selector, which is what Kubernetes prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiserver.tables.cells import get, items, meta
from apiserver.tables.duration import since
from apiserver.tables.printer import Printer, age_column, column, name_column

_POLICY_NAME = "PolicyName indicates the policy definition which the policy binding binded to"
_PARAM_REF = "ParamRef indicates the param resource which sets the configration param"
_PARAM_KIND = "ParamKind specifies the kind of resources used to parameterize this policy"


def _name_age(obj: dict[str, Any], now: datetime, *middle: Any) -> list[Any]:
    m = meta(obj)
    return [m.get("name", ""), *middle, since(m.get("creationTimestamp"), now)]


def webhook_configuration_printer() -> Printer:
    columns = [
        name_column(),
        column(
            "Webhooks",
            "integer",
            "Webhooks indicates the number of webhooks registered in this configuration",
        ),
        age_column(),
    ]
    return Printer(columns, lambda o, now: _name_age(o, now, len(items(o, "webhooks"))))


def _param_kind(policy: dict[str, Any]) -> str:
    kind = get(policy, "spec", "paramKind")
    if not isinstance(kind, dict):
        return "<unset>"
    return f"{kind.get('apiVersion', '')}/{kind.get('kind', '')}"


def policy_printer(counted: str) -> Printer:
    """ValidatingAdmissionPolicy (counted="validations") or MutatingAdmissionPolicy
    (counted="mutations")."""
    if counted == "validations":
        title, text = (
            "Validations",
            "Validations indicates the number of validation rules defined in this configuration",
        )
    else:
        title, text = (
            "Mutations",
            "Mutation indicates the number of mutations rules defined in this configuration",
        )
    columns = [
        name_column(),
        column(title, "integer", text),
        column("ParamKind", "string", _PARAM_KIND),
        age_column(),
    ]
    return Printer(columns, lambda o, now: _name_age(o, now, len(items(o, "spec", counted)), _param_kind(o)))


def _go_selector_string(sel: dict[str, Any]) -> str:
    """The generated String() of a metav1.LabelSelector (a Go debug form)."""
    labels = "".join(f"{k}: {v}," for k, v in sorted((sel.get("matchLabels") or {}).items()))
    exprs = "".join(
        f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
        f"Values:[{' '.join(e.get('values') or [])}],}},"
        for e in sel.get("matchExpressions") or []
        if isinstance(e, dict)
    )
    return f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"


def _param_ref(binding: dict[str, Any]) -> str:
    ref = get(binding, "spec", "paramRef")
    if not isinstance(ref, dict):
        return "<unset>"
    if ref.get("name"):
        return f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else f"*/{ref['name']}"
    if isinstance(ref.get("selector"), dict):
        return _go_selector_string(ref["selector"])
    return "<unset>"


def policy_binding_printer() -> Printer:
    columns = [
        name_column(),
        column("PolicyName", "string", _POLICY_NAME),
        column("ParamRef", "string", _PARAM_REF),
        age_column(),
    ]
    return Printer(
        columns, lambda o, now: _name_age(o, now, get(o, "spec", "policyName", default=""), _param_ref(o))
    )
