"""Table columns for custom resources, from a CRD version's additionalPrinterColumns.

Follows apiextensions-apiserver's table convertor: a Name column first, then one column
per additionalPrinterColumn (name, type, format, priority; the description defaults to
"Custom resource definition column (in JSONPath format): <path>"). Without columns the
CRD serves a single Age column (type date, `.metadata.creationTimestamp`). Each cell
takes the *first* JSONPath result: a string column prints it as text (objects and lists
as JSON, a JSON null as "<no value>"); integer, number and boolean columns keep the
JSON value when its type fits; a date column shows the age of an RFC 3339 string
("<invalid>" when it does not parse). Anything missing, mistyped or erroring is a null
cell, which kubectl leaves blank. As in Kubernetes, a column whose JSONPath does not
parse ends the list: it and later columns are dropped.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from apiserver.tables import jsonpath
from apiserver.tables.cells import meta
from apiserver.tables.duration import UNKNOWN, human_duration, parse_time
from apiserver.tables.printer import OBJECT_META, Printer, column, doc, name_column

log = logging.getLogger(__name__)


def default_columns() -> list[dict[str, Any]]:
    """The columns a CRD version without additionalPrinterColumns is served with."""
    return [
        {
            "name": "Age",
            "type": "date",
            "description": doc(OBJECT_META, "creationTimestamp"),
            "jsonPath": ".metadata.creationTimestamp",
        }
    ]


def _date_cell(value: Any, now: datetime) -> Any:
    if not isinstance(value, str):
        return None
    if value in ("", "null"):
        return UNKNOWN
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return "<invalid>"
    if t.tzinfo is None:  # RFC 3339 requires an offset
        return "<invalid>"
    if parse_time(value) is None:  # Go's zero time
        return UNKNOWN
    return human_duration(now - t)


def cell_for_json_value(type_: str, value: Any, now: datetime) -> Any:
    """cellForJSONValue: the JSON value if it fits the column type, else null."""
    if value is None:
        return None
    if type_ == "integer":
        if isinstance(value, bool):
            return None
        return int(value) if isinstance(value, int | float) else None
    if type_ == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        number = float(value)
        # Go encodes float64(3) as `3`: an int serializes to the same JSON bytes
        return int(number) if number.is_integer() and abs(number) < 1e21 else number
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if type_ == "string":
        return value if isinstance(value, str) else None
    if type_ == "date":
        return _date_cell(value, now)
    return None


def _cell(path: list[jsonpath.Node], type_: str, obj: dict[str, Any], now: datetime) -> Any:
    try:
        results = jsonpath.find_results(path, obj, allow_missing_keys=True)
    except (jsonpath.JSONPathError, RecursionError):
        return None
    if not results or not results[0]:
        return None
    value = results[0][0]
    if type_ == "string":
        return jsonpath.print_value(value)
    return cell_for_json_value(type_, value, now)


def crd_printer(additional_printer_columns: list[dict[str, Any]] | None) -> Printer:
    """The Printer for a custom resource version with these additionalPrinterColumns
    (CustomResourceColumnDefinition dicts: name, type, format, description, priority,
    jsonPath); None or [] gives the default Age column."""
    specs = additional_printer_columns or default_columns()
    columns = [name_column()]
    paths: list[tuple[list[jsonpath.Node], str]] = []
    for spec in specs:
        json_path = str(spec.get("jsonPath", ""))
        try:
            parsed = jsonpath.parse_column(json_path)
        except jsonpath.JSONPathError as err:
            log.warning("unrecognized column definition %r: %s; later columns dropped", json_path, err)
            break
        description = (
            spec.get("description") or f"Custom resource definition column (in JSONPath format): {json_path}"
        )
        type_ = str(spec.get("type", ""))
        columns.append(
            column(
                str(spec.get("name", "")),
                type_,
                description,
                fmt=spec.get("format") or "",
                priority=spec.get("priority") or 0,
            )
        )
        paths.append((parsed, type_))

    def cells(obj: dict[str, Any], now: datetime) -> list[Any]:
        return [meta(obj).get("name", ""), *(_cell(p, t, obj, now) for p, t in paths)]

    return Printer(columns, cells)
