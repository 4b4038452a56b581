"""Build objects that set every field of a message table, to round-trip through real kubectl.

`kubectl create job --from=cronjob/<name>` GETs the CronJob as JSON, decodes it into Go structs
and POSTs the Job (with the CronJob's whole jobTemplate.spec, PodTemplateSpec included) as
protobuf. Serving a CronJob built here therefore checks every field number, JSON name and
pointer/omitempty flag of the PodSpec tree against Go itself:

- `rich`: every field non-zero, so a wrong number or name shows up as a difference;
- `zero`: scalars at their zero value (lists and maps left out, since protobuf cannot tell an
  empty list from an absent one), so Go's pointer/omitempty choices show up as differences.
"""

from __future__ import annotations

import itertools
from typing import Any

from apiserver.codec.proto_messages import MESSAGES, Field

_RICH_SCALARS: dict[str, Any] = {"s": "x", "y": "aGk=", "b": True, "i": 7, "l": 9, "d": 1.5}
_ZERO_SCALARS: dict[str, Any] = {"s": "", "y": "", "b": False, "i": 0, "l": 0, "d": 0.0}


class SampleBuilder:
    """Generates sample values; `zero` selects the zero-valued variant."""

    def __init__(self, *, zero: bool) -> None:
        self.zero = zero
        self._counter = itertools.count()

    def message(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for field in MESSAGES[name].values():
            value = self.field(field)
            if value is _SKIP:
                continue
            if field.inline:
                obj.update(value)
            else:
                obj[field.json_name] = value
        return obj

    def field(self, field: Field) -> Any:
        if field.is_map:
            if self.zero:
                return _SKIP
            value = self.single(field)
            return _SKIP if value is _SKIP else {"k": value}
        if field.repeated:
            if self.zero and field.is_scalar:
                return _SKIP
            value = self.single(field)
            return _SKIP if value is _SKIP else [value]
        return self.single(field)

    def single(self, field: Field) -> Any:
        if field.is_scalar:
            if self.zero:
                return _ZERO_SCALARS[field.type]
            if field.type == "s":
                return f"{field.json_name}-{next(self._counter)}"
            return _RICH_SCALARS[field.type]
        if field.type in MESSAGES:
            return self.message(field.type)
        return self.builtin(field.type)

    def builtin(self, name: str) -> Any:
        if name in ("Time", "MicroTime"):
            return _SKIP if self.zero else "2024-01-02T03:04:05Z"
        if name == "Quantity":
            return "0" if self.zero else "250m"
        if name == "IntOrString":
            if self.zero:
                return 0
            return 8080 if next(self._counter) % 2 else "http"
        if name == "FieldsV1":
            return _SKIP if self.zero else {"f:metadata": {"f:name": {}}}
        return _SKIP


class _Skip:
    """Marks a field the sample leaves out."""


_SKIP: Any = _Skip()


def cronjob_with_template(name: str, *, zero: bool) -> dict[str, Any]:
    """A CronJob whose jobTemplate.spec sets every JobSpec/PodTemplateSpec field."""
    builder = SampleBuilder(zero=zero)
    spec = builder.message("JobSpec")
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": "default", "uid": "3f6c1b52-6a53-4b8e-9d8a-0c1f2e3d4c5b"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": spec}},
    }


def is_subset(small: Any, big: Any, path: str = "") -> list[str]:
    """Paths where `small` has something `big` lacks or differs (dicts compared key by key)."""
    if isinstance(small, dict) and isinstance(big, dict):
        problems: list[str] = []
        for key, value in small.items():
            if key not in big:
                problems.append(f"{path}.{key}")
            else:
                problems.extend(is_subset(value, big[key], f"{path}.{key}"))
        return problems
    if isinstance(small, list) and isinstance(big, list) and len(small) == len(big):
        return [p for i, (a, b) in enumerate(zip(small, big, strict=True)) for p in is_subset(a, b, f"{path}[{i}]")]
    return [] if small == big else [f"{path} ({small!r} != {big!r})"]
