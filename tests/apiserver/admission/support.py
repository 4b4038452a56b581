"""Helpers for admission tests: default like the API server, then validate."""

from __future__ import annotations

import copy
from typing import Any

from apiserver.admission.defaults import default_object
from apiserver.admission.validation import validate_object
from apiserver.errors import invalid_object


def split(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def defaulted(obj: dict[str, Any]) -> dict[str, Any]:
    """A defaulted deep copy of `obj` (a create: no resourceVersion)."""
    obj = copy.deepcopy(obj)
    group, version = split(obj["apiVersion"])
    default_object(group, version, obj["kind"], obj)
    return obj


def stored(obj: dict[str, Any], resource_version: str = "1") -> dict[str, Any]:
    """`obj` as it would read back from storage: defaulted, with a resourceVersion."""
    obj = defaulted(obj)
    obj["metadata"]["resourceVersion"] = resource_version
    return obj


def errors(obj: dict[str, Any], old: dict[str, Any] | None = None, *, default: bool = True) -> list[str]:
    """The field error messages for creating `obj` (or updating `old` to it)."""
    if default:
        obj = defaulted(obj) if old is None else _defaulted_update(obj)
    group, _ = split(obj["apiVersion"])
    return [e.message() for e in validate_object(group, obj["kind"], obj, old)]


def _defaulted_update(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj.setdefault("metadata", {}).setdefault("resourceVersion", "1")
    group, version = split(obj["apiVersion"])
    default_object(group, version, obj["kind"], obj)
    return obj


def status_message(obj: dict[str, Any], old: dict[str, Any] | None = None) -> str:
    """The whole 422 message kubectl would print."""
    new = defaulted(obj) if old is None else _defaulted_update(obj)
    group, _ = split(new["apiVersion"])
    errs = validate_object(group, new["kind"], new, old)
    return invalid_object(new["kind"], group, new["metadata"].get("name", ""), errs).message
