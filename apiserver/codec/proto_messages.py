"""Kubernetes protobuf message tables: field number -> JSON name, type and JSON shape.

kubectl 1.32 sends typed-client bodies (`kubectl create deployment`, `auth can-i`, ...) as
`application/vnd.kubernetes.protobuf`. Decoding them needs, per message, what generated.proto
says (field numbers and types) plus two facts from the Go structs that the .proto does not
carry but that decide the JSON Go's encoding/json would produce:

- `!` (keep): the Go field is a pointer or has no `omitempty`, so a zero value on the wire
  stays in the JSON (`replicas: 0`, `containerPort: 0`, `rules: null`). Without it a zero
  value is dropped: gogo-protobuf writes every non-pointer scalar, even when zero, and Go
  would then omit it from JSON.
- `^` (inline): the Go struct embeds the message with `json:",inline"` (Volume.volumeSource,
  Probe.handler, ...), so its fields are merged into the parent object.

The tables are kept as compact strings (one per message) in `proto_tables_core` and
`proto_tables_groups`; this module parses them once at import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apiserver.codec.proto_tables_core import CORE_V1
from apiserver.codec.proto_tables_groups import GROUPS

# Scalar type codes used in the tables.
SCALARS = {"s": "string", "y": "bytes", "b": "bool", "i": "int32", "l": "int64", "d": "double"}

# Messages with a custom JSON form, decoded by hand in `protobuf.py`.
BUILTINS = frozenset(
    {"Time", "MicroTime", "Duration", "Quantity", "IntOrString", "FieldsV1", "RawExtension", "ExtraValue"}
)

_FIELD_RE = re.compile(r"^(\w+)=(\d+):(\{(\w+)\}|\w+)([*!^]*)$")


@dataclass(frozen=True)
class Field:
    """One field of a message: its JSON name and how to decode and render it."""

    json_name: str
    number: int
    type: str  # a key of SCALARS, or a message name (see MESSAGES and BUILTINS)
    repeated: bool = False
    is_map: bool = False  # map<string, type>: entries are messages {1: key, 2: value}
    keep: bool = False
    inline: bool = False

    @property
    def is_scalar(self) -> bool:
        return self.type in SCALARS


def parse_fields(spec: str) -> dict[int, Field]:
    """Parse `name=1:s!, items=2:KeyToPath*, labels=11:{s}` into {number: Field}."""
    fields: dict[int, Field] = {}
    for part in spec.split(","):
        part = part.strip()
        match = _FIELD_RE.match(part)
        if not match:
            raise ValueError(f"bad field spec {part!r}")
        name, number, typ, map_value, flags = match.groups()
        field = Field(
            json_name=name,
            number=int(number),
            type=map_value or typ,
            repeated="*" in flags,
            is_map=map_value is not None,
            keep="!" in flags,
            inline="^" in flags,
        )
        if field.number in fields:
            raise ValueError(f"duplicate field number {field.number} in {spec!r}")
        fields[field.number] = field
    return fields


def _build() -> dict[str, dict[int, Field]]:
    messages: dict[str, dict[int, Field]] = {}
    for table in (CORE_V1, GROUPS):
        for name, spec in table.items():
            if name in messages:
                raise ValueError(f"message {name} defined twice")
            messages[name] = parse_fields(spec)
    return messages


MESSAGES: dict[str, dict[int, Field]] = _build()

# (apiVersion, kind) of the top-level objects a client may send -> message name.
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "Service"): "Service",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "ResourceQuota"): "ResourceQuota",
    ("v1", "Pod"): "Pod",
    ("apps/v1", "Deployment"): "Deployment",
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
    ("networking.k8s.io/v1", "Ingress"): "Ingress",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("scheduling.k8s.io/v1", "PriorityClass"): "PriorityClass",
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "HorizontalPodAutoscaler",
    ("autoscaling/v1", "Scale"): "Scale",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
}


def unresolved_types() -> set[str]:
    """Message types referenced by a field but defined nowhere (empty when tables are complete)."""
    missing: set[str] = set()
    for fields in MESSAGES.values():
        for field in fields.values():
            if not field.is_scalar and field.type not in MESSAGES and field.type not in BUILTINS:
                missing.add(field.type)
    return missing
