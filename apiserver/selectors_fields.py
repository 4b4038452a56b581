"""Field selectors: fields.ParseSelector, matching, and the fields each kind can be selected by.

Split from `selectors.py` (the public API). A list or watch with `fieldSelector=` is checked
twice in Kubernetes: the string must parse (fields.ParseSelector, with `\\` escapes), then
every field label must be accepted by the kind's field label conversion function, else the
request fails with 400 `field label not supported: <label>` (or, for kinds without one,
`"<label>" is not a known field selector: only "metadata.name", "metadata.namespace"`).
Matching then compares against the object's selectable field set (registry ToSelectableFields).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apiserver.errors import bad_request
from apiserver.selectors_labels import EQUALS, NOT_EQUALS, SelectorError


@dataclass(frozen=True)
class FieldRequirement:
    """One field selector term: `field=value` (`==` is the same) or `field!=value`."""

    field: str
    operator: str  # EQUALS or NOT_EQUALS
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return equal if self.operator == EQUALS else not equal

    def to_string(self) -> str:
        op = "=" if self.operator == EQUALS else "!="
        return f"{self.field}{op}{escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """A parsed field selector: terms ANDed, sorted as fields.ParseSelector sorts them."""

    requirements: tuple[FieldRequirement, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def to_string(self) -> str:
        return ",".join(r.to_string() for r in self.requirements)

    def requires_exact_match(self, name: str) -> str | None:
        for requirement in self.requirements:
            if requirement.field == name and requirement.operator == EQUALS:
                return requirement.value
        return None


def escape_field_value(value: str) -> str:
    """fields.EscapeValue: backslash-escape `\\`, `,` and `=`."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    out: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            # Go prints the rune with %v, i.e. its code point.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(char)}")
        else:
            out.append(char)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    terms, start, escaped = [], 0, False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """fields.ParseSelector. Raises a 400 StatusError with the apiserver's message on bad input."""
    requirements: list[FieldRequirement] = []
    try:
        for part in sorted(_split_terms(text)) if text else []:
            if not part:
                continue
            split = _split_term(part)
            if split is None:
                raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
            lhs, op, rhs = split
            operator = NOT_EQUALS if op == "!=" else EQUALS
            requirements.append(FieldRequirement(lhs, operator, _unescape_field_value(rhs)))
    except SelectorError as exc:
        raise exc.status() from exc
    return FieldSelector(tuple(requirements))

# --- which fields each kind can be selected by ---------------------------------------------

_META = ("metadata.name", "metadata.namespace")
_NOT_SUPPORTED = "field label not supported: {label}"
_DEFAULT = '{quoted} is not a known field selector: only "metadata.name", "metadata.namespace"'
_EVENT_FIELDS = (
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
    "reason", "reportingComponent", "source", "type",
)

# (group, kind) -> (accepted labels, error for any other label), as the kind's field label
# conversion function in k8s.io/kubernetes/pkg/apis/<group>/<version>/conversion.go has them.
# Kinds not listed accept metadata.name and metadata.namespace only (the scheme's default).
SUPPORTED_FIELDS: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    ("", "Pod"): (frozenset({*_META, "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                             "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                             "status.podIPs", "status.nominatedNodeName", "spec.host"}), _NOT_SUPPORTED),
    ("", "Node"): (frozenset({"metadata.name", "spec.unschedulable"}), _NOT_SUPPORTED),
    ("", "ReplicationController"): (frozenset({*_META, "status.replicas"}), _NOT_SUPPORTED),
    ("", "Event"): (frozenset({*_META, *_EVENT_FIELDS}), _NOT_SUPPORTED),
    ("", "Namespace"): (frozenset({"metadata.name", "status.phase"}), _NOT_SUPPORTED),
    ("", "Secret"): (frozenset({*_META, "type"}), _NOT_SUPPORTED),
    ("", "Service"): (frozenset({*_META, "spec.clusterIP", "spec.type"}), _NOT_SUPPORTED),
    ("batch", "Job"): (frozenset({*_META, "status.successful"}), 'field label {quoted} not supported for batchv1.Job'),
    ("certificates.k8s.io", "CertificateSigningRequest"): (frozenset({"metadata.name", "spec.signerName"}),
                                                          _NOT_SUPPORTED),
}

# Labels a conversion function renames: the result is the key used in `field_set`.
_RENAMES: dict[tuple[str, str], dict[str, str]] = {
    ("", "Pod"): {"spec.host": "spec.nodeName"},
    ("events.k8s.io", "Event"): {
        **{f"regarding.{part}": f"involvedObject.{part}"
           for part in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reportingController": "reportingComponent", "reason": "reason", "type": "type",
        "metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace",
    },
}
SUPPORTED_FIELDS[("events.k8s.io", "Event")] = (frozenset(_RENAMES[("events.k8s.io", "Event")]), _NOT_SUPPORTED)


def validate_field_selector(group: str, kind: str, selector: FieldSelector | str) -> FieldSelector:
    """Check every field label against the kind, as the API server does before listing.

    Returns the selector with labels renamed to the keys of `field_set` (`spec.host` ->
    `spec.nodeName`, events.k8s.io `regarding.name` -> `involvedObject.name`). Raises a 400
    StatusError with Kubernetes' message for a label the kind does not support.
    """
    if isinstance(selector, str):
        selector = parse_field_selector(selector)
    supported, message = SUPPORTED_FIELDS.get((group, kind), (frozenset(_META), _DEFAULT))
    renames = _RENAMES.get((group, kind), {})
    converted = []
    for requirement in selector.requirements:
        if requirement.field not in supported:
            label = requirement.field  # Go's %q, close enough to JSON quoting for labels
            raise bad_request(message.format(label=label, quoted=json.dumps(label)))
        name = renames.get(requirement.field, requirement.field)
        converted.append(FieldRequirement(name, requirement.operator, requirement.value))
    return FieldSelector(tuple(converted))


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _pod_fields(pod: Mapping[str, Any]) -> dict[str, str]:
    ips = [_text(entry.get("ip")) for entry in _get(pod, "status", "podIPs") or [] if isinstance(entry, Mapping)]
    pod_ip = ips[0] if ips else _text(_get(pod, "status", "podIP"))
    fields = {f"spec.{name}": _text(_get(pod, "spec", name))
              for name in ("nodeName", "restartPolicy", "schedulerName", "serviceAccountName")}
    fields.update({
        "spec.hostNetwork": _text(bool(_get(pod, "spec", "hostNetwork"))),
        "status.phase": _text(_get(pod, "status", "phase")),
        "status.podIP": pod_ip,
        "status.podIPs": ",".join(ips) if ips else pod_ip,
        "status.nominatedNodeName": _text(_get(pod, "status", "nominatedNodeName")),
    })
    return fields


def _event_fields(event: Mapping[str, Any], *, events_api: bool) -> dict[str, str]:
    """Core and events.k8s.io Events share one field set (Kubernetes stores them as one kind)."""
    ref = _get(event, "regarding" if events_api else "involvedObject") or {}
    reporting = _text(event.get("reportingController" if events_api else "reportingComponent"))
    source = _text(_get(event, "deprecatedSource" if events_api else "source", "component")) or reporting
    fields = {f"involvedObject.{part}": _text(ref.get(part))
              for part in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    fields.update(reason=_text(event.get("reason")), reportingComponent=reporting, source=source,
                  type=_text(event.get("type")))
    return fields


def _kind_fields(group: str, kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    if (group, kind) == ("", "Pod"):
        return _pod_fields(obj)
    if kind == "Event" and group in ("", "events.k8s.io"):
        return _event_fields(obj, events_api=group == "events.k8s.io")
    extractors: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
        ("", "Secret"): {"type": ("type",)},
        ("", "Namespace"): {"status.phase": ("status", "phase")},
        ("", "Service"): {"spec.clusterIP": ("spec", "clusterIP"), "spec.type": ("spec", "type")},
        ("", "ReplicationController"): {"status.replicas": ("status", "replicas")},
        ("apps", "ReplicaSet"): {"status.replicas": ("status", "replicas")},
        ("certificates.k8s.io", "CertificateSigningRequest"): {"spec.signerName": ("spec", "signerName")},
    }
    fields = {name: _text(_get(obj, *path)) for name, path in extractors.get((group, kind), {}).items()}
    if (group, kind) == ("", "Node"):
        fields["spec.unschedulable"] = _text(bool(_get(obj, "spec", "unschedulable")))
    if (group, kind) in (("", "ReplicationController"), ("apps", "ReplicaSet")):
        fields["status.replicas"] = _text(_get(obj, "status", "replicas") or 0)
    if (group, kind) == ("batch", "Job"):
        fields["status.successful"] = _text(_get(obj, "status", "succeeded") or 0)
    return fields


def field_set(group: str, kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable fields of `obj` (registry ToSelectableFields): metadata.name and
    metadata.namespace for every kind, plus the kind's own fields as strings."""
    fields = {"metadata.name": _text(_get(obj, "metadata", "name")),
              "metadata.namespace": _text(_get(obj, "metadata", "namespace"))}
    fields.update(_kind_fields(group, kind, obj))
    return fields
