"""The `Printer` type: one kind's Table columns and the function computing its cells.

Kubernetes registers, per internal type, a list of `TableColumnDefinition`s and a print
function; the API server always calls it with `Wide: true`, so every row carries the
cells of all columns and kubectl hides the `priority > 0` ones unless `-o wide`. A
`Printer` is that pair, for objects held as JSON dicts.

Column descriptions: the ones Kubernetes writes out literally in its printers are kept
here as the interface strings they are; the ones Kubernetes takes from API field docs
(`SwaggerDoc()`) are read at run time from the OpenAPI definitions of the
`kubernetes-validate` package via `apiserver.schema`, not copied into this project.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apiserver.tables.cells import meta
from apiserver.tables.duration import parse_time

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

CellsFn = Callable[[dict[str, Any], datetime], list[Any]]
ConditionsFn = Callable[[dict[str, Any]], list[dict[str, Any]]]


@functools.cache
def _definitions() -> dict[str, Any]:
    try:
        from apiserver.schema import definitions

        return definitions()
    except Exception:  # the data package is missing: descriptions degrade to ""
        return {}


def doc(definition: str, field: str) -> str:
    """The API documentation of one field, e.g. doc("io.k8s.api.core.v1.PodSpec", "nodeName");
    "" when the definition or field is unknown. `definition` may omit the
    "io.k8s.api." prefix ("core.v1.PodSpec")."""
    defs = _definitions()
    schema = defs.get(definition) or defs.get(f"io.k8s.api.{definition}") or {}
    prop = schema.get("properties", {}).get(field, {})
    return prop.get("description", "") if isinstance(prop, dict) else ""


def column(
    name: str, type_: str, description: str = "", *, fmt: str = "", priority: int = 0
) -> dict[str, Any]:
    """One `TableColumnDefinition`, every field present as Kubernetes serializes it."""
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


def name_column(*, priority: int = 0) -> dict[str, Any]:
    return column("Name", "string", doc(OBJECT_META, "name"), fmt="name", priority=priority)


def age_column() -> dict[str, Any]:
    return column("Age", "string", doc(OBJECT_META, "creationTimestamp"))


def containers_column() -> dict[str, Any]:
    return column("Containers", "string", "Names of each container in the template.", priority=1)


def images_column() -> dict[str, Any]:
    return column("Images", "string", "Images referenced by each container in the template.", priority=1)


class Printer:
    """The Table columns of one kind and the cells of one object.

    `columns` are the `columnDefinitions` (name, type, format, description, priority);
    `cells(obj, now)` returns one row's cells in the same order, computed as of `now`
    (ages). `conditions(obj)` gives the row's `conditions` (pods report Completed).
    `nil_rows_when_empty` mirrors the default convertor, whose empty Table has
    `"rows": null` rather than `[]`. `sort_key`, when set, orders a list's rows
    (Kubernetes sorts FlowSchemas by matching precedence, then name).
    """

    def __init__(
        self,
        columns: list[dict[str, Any]],
        cells: CellsFn,
        *,
        conditions: ConditionsFn | None = None,
        nil_rows_when_empty: bool = False,
        sort_key: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.columns = columns
        self._cells = cells
        self._conditions = conditions
        self.nil_rows_when_empty = nil_rows_when_empty
        self.sort_key = sort_key

    def cells(self, obj: dict[str, Any], now: datetime) -> list[Any]:
        """The cells of `obj`'s row, one per column."""
        return self._cells(obj, now)

    def conditions(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        """The row conditions of `obj` (empty for most kinds)."""
        return self._conditions(obj) if self._conditions else []

    def __repr__(self) -> str:
        return f"Printer({[c['name'] for c in self.columns]})"


def _created_at(obj: dict[str, Any], now: datetime) -> list[Any]:
    m = meta(obj)
    t = parse_time(m.get("creationTimestamp"))
    created = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else "0001-01-01T00:00:00Z"
    return [m.get("name", ""), created]


@functools.cache
def default_printer() -> Printer:
    """apiserver's default table convertor, for kinds without a printer (Role,
    ClusterRole, LimitRange, CustomResourceDefinition...): Name and an RFC 3339
    "Created At" (type date), which kubectl renders as CREATED AT."""
    columns = [name_column(), column("Created At", "date", doc(OBJECT_META, "creationTimestamp"))]
    return Printer(columns, _created_at, nil_rows_when_empty=True)
