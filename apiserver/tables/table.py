"""`build_table`: the `meta.k8s.io/v1` Table a list or get answers with when the client
asks for `as=Table` (kubectl get always does).

Shape, as Kubernetes serializes it: `metadata` carries the list's resourceVersion,
continue token and remainingItemCount (only those that are set); `columnDefinitions`
lists every column, wide ones included (priority 1), since the server prints wide and
kubectl hides them without `-o wide`; each row has `cells`, `conditions` when the
printer reports some, and `object` according to `includeObject`: a
PartialObjectMetadata (the default, "Metadata"; kubectl reads NAMESPACE, labels and
`-L` columns from it), the full object ("Object", sent by `--sort-by`), or null
("None").

Watches answer each event with a one-row Table; Kubernetes sends the column
definitions with the first event only (`no_headers=True` for the others).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from apiserver.tables.duration import utc_now
from apiserver.tables.printer import Printer

INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")


def partial_object_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """meta.AsPartialObjectMetadata with the meta.k8s.io/v1 kind set."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def _row_object(obj: dict[str, Any], include_object: str) -> dict[str, Any] | None:
    if include_object == "Object":
        return obj
    if include_object == "None":
        return None
    return partial_object_metadata(obj)


def _list_meta(resource_version: str, continue_token: str, remaining: int | None) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return meta


def build_table(
    printer: Printer,
    objects: list[dict[str, Any]],
    *,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
    remaining: int | None = None,
    now: datetime | None = None,
    no_headers: bool = False,
) -> dict[str, Any]:
    """The Table JSON for `objects` (one for a get or a watch event, all for a list).

    `include_object` is the request's `includeObject` ("" means "Metadata"); any other
    value raises ValueError, which the API server answers with 400 BadRequest
    `unrecognized includeObject value: "x"`. `resource_version` is the list's (or, for
    a get, the object's) resourceVersion. Ages are computed as of `now` (default: the
    current time). `no_headers` leaves `columnDefinitions` null, as Kubernetes does
    for every watch event after the first one.
    """
    include_object = include_object or "Metadata"
    if include_object not in INCLUDE_OBJECT_VALUES:
        # worded like the API server's 400, with Go's %q quoting
        raise ValueError(f"unrecognized includeObject value: {json.dumps(include_object)}")
    now = now or utc_now()
    if printer.sort_key is not None:
        objects = sorted(objects, key=printer.sort_key)
    rows: list[dict[str, Any]] | None = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer.cells(obj, now)}
        conditions = printer.conditions(obj)
        if conditions:
            row["conditions"] = conditions
        row["object"] = _row_object(obj, include_object)
        rows.append(row)
    if not rows and printer.nil_rows_when_empty:
        rows = None
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": _list_meta(resource_version, continue_token, remaining),
        "columnDefinitions": None if no_headers else list(printer.columns),
        "rows": rows,
    }
