"""Kubernetes API errors as one exception type.

Every failure in the API server is raised as a `StatusError` carrying what a Kubernetes
`Status` object needs (code, reason, message, details). One middleware turns it into the
JSON `Status` kubectl and client libraries parse; after a watch stream has started, the
watch handler sends it as an `ERROR` event instead. Field-level problems are collected as
`FieldError`s, whose messages follow k8s.io/apimachinery's field.Error wording
("spec.replicas: Invalid value: -1: must be greater than or equal to 0"), and become a
422 `Invalid` with one cause per field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# FieldError types, as k8s.io/apimachinery/pkg/util/validation/field names them:
# (cause reason, message prefix).
FIELD_ERROR_TYPES: dict[str, tuple[str, str]] = {
    "Required": ("FieldValueRequired", "Required value"),
    "Invalid": ("FieldValueInvalid", "Invalid value"),
    "NotSupported": ("FieldValueNotSupported", "Unsupported value"),
    "Duplicate": ("FieldValueDuplicate", "Duplicate value"),
    "Forbidden": ("FieldValueForbidden", "Forbidden"),
    "TooLong": ("FieldValueTooLong", "Too long"),
    "TooMany": ("FieldValueTooMany", "Too many"),
    "NotFound": ("FieldValueNotFound", "Not found"),
    "Internal": ("InternalError", "Internal error"),
    "TypeInvalid": ("FieldValueTypeInvalid", "Invalid value"),
}

_OMIT = object()


def _quote(value: Any) -> str:
    """Render a bad value the way field.Error does: strings quoted, numbers bare."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass
class FieldError:
    """One invalid field: `type` is a key of FIELD_ERROR_TYPES, `field` a path like
    `spec.template.spec.containers[0].name`."""

    type: str
    field: str
    value: Any = _OMIT
    detail: str = ""

    @property
    def reason(self) -> str:
        return FIELD_ERROR_TYPES[self.type][0]

    def body(self) -> str:
        """The message without the field path (what a Status cause's `message` holds)."""
        prefix = FIELD_ERROR_TYPES[self.type][1]
        if self.type in ("Required", "Forbidden", "TooLong", "TooMany", "Internal") or self.value is _OMIT:
            return f"{prefix}: {self.detail}" if self.detail else prefix
        text = f"{prefix}: {_quote(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def message(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict[str, Any]:
        return {"reason": self.reason, "message": self.body(), "field": self.field}


# Convenience constructors mirroring field.Required / field.Invalid / ...
def required(field: str, detail: str = "") -> FieldError:
    return FieldError("Required", field, detail=detail)


def invalid(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("Invalid", field, value, detail)


def not_supported(field: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
    return FieldError("NotSupported", field, value, detail)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("Duplicate", field, value)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError("Forbidden", field, detail=detail)


def too_long(field: str, max_len: int) -> FieldError:
    return FieldError("TooLong", field, detail=f"may not be more than {max_len} bytes")


class StatusError(Exception):
    """An API error that becomes a Kubernetes `Status` response."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            status["reason"] = self.reason
        if self.details:
            status["details"] = self.details
        status["code"] = self.code
        return status


def qualified(resource: str, group: str) -> str:
    """`deployments.apps`, or `pods` for the core group: how Kubernetes names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def _details(name: str, resource: str, group: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource
    details.update(extra)
    return details


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
        details=_details(name, resource, group),
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
        details=_details(name, resource, group),
    )


def conflict(resource: str, name: str, group: str = "", why: str = "") -> StatusError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return StatusError(
        409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        details=_details(name, resource, group),
    )


def invalid_object(kind: str, group: str, name: str, errors: list[FieldError]) -> StatusError:
    """422 Invalid, worded as apierrors.NewInvalid: one error bare, several in brackets."""
    qualified_kind = f"{kind}.{group}" if group else kind
    messages = [e.message() for e in errors]
    joined = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    return StatusError(
        422, "Invalid", f'{qualified_kind} "{name}" is invalid: {joined}',
        details={**_details(name, kind, group), "causes": [e.cause() for e in errors]},
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def forbidden_request(message: str, *, resource: str = "", name: str = "", group: str = "") -> StatusError:
    details = _details(name, resource, group) if resource else None
    return StatusError(403, "Forbidden", message, details=details)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def not_acceptable(message: str) -> StatusError:
    return StatusError(406, "NotAcceptable", message)


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def too_large(message: str = "the request is too large") -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type})")


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
