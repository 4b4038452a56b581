"""Custom resource tables from additionalPrinterColumns, as apiextensions builds them."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.tables import crd_printer
from tests.apiserver.tables.helpers import NOW, ago, by_name, meta

COLUMNS = [
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {
        "name": "Image",
        "type": "string",
        "jsonPath": ".spec.images[0]",
        "priority": 1,
        "description": "First image",
    },
    {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
    {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
    {"name": "Size", "type": "string", "format": "byte", "jsonPath": ".spec.size"},
    {"name": "Last Backup", "type": "date", "jsonPath": ".status.lastBackup"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def widget(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": meta("w1", age={"hours": 2}),
        "spec": spec,
        "status": status or {},
    }


def test_crd_columns_put_name_first_and_keep_definitions() -> None:
    columns = crd_printer(COLUMNS).columns
    assert by_name(columns) == [
        ("Name", "string", 0),
        ("Replicas", "integer", 0),
        ("Ready", "string", 0),
        ("Image", "string", 1),
        ("Ratio", "number", 0),
        ("Paused", "boolean", 0),
        ("Size", "string", 0),
        ("Last Backup", "date", 0),
        ("Age", "date", 0),
    ]
    assert columns[0]["format"] == "name"
    assert (
        columns[1]["description"] == "Custom resource definition column (in JSONPath format): .spec.replicas"
    )
    assert columns[3]["description"] == "First image"
    assert columns[6]["format"] == "byte"


CASES = [
    pytest.param(
        widget(
            {"replicas": 3, "images": ["nginx:1", "envoy"], "ratio": 0.75, "paused": False, "size": "10Gi"},
            {"conditions": [{"type": "Ready", "status": "True"}], "lastBackup": ago(minutes=3, seconds=12)},
        ),
        ["w1", 3, "True", "nginx:1", 0.75, False, "10Gi", "3m12s", "120m"],
        id="all-present",
    ),
    pytest.param(
        widget({}), ["w1", None, None, None, None, None, None, None, "120m"], id="all-missing-are-null"
    ),
    pytest.param(
        widget({"replicas": "three", "ratio": "x", "paused": "yes", "images": []}, {"lastBackup": 5}),
        ["w1", None, None, None, None, None, None, None, "120m"],
        id="mistyped-values-are-null",
    ),
    pytest.param(
        widget({"replicas": 2.9, "ratio": 2}, {"lastBackup": "yesterday"}),
        ["w1", 2, None, None, 2, None, None, "<invalid>", "120m"],
        id="number-coercions-and-invalid-date",
    ),
    pytest.param(
        widget({"size": {"value": 10, "unit": "Gi"}, "images": [None]}, {"lastBackup": ""}),
        ["w1", None, None, "<no value>", None, None, '{"unit":"Gi","value":10}', "<unknown>", "120m"],
        id="string-column-prints-json-and-null",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), CASES)
def test_crd_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    assert crd_printer(COLUMNS).cells(obj, NOW) == expected


@pytest.mark.parametrize("columns", [None, []], ids=["none", "empty"])
def test_crd_without_columns_serves_age(columns: list[dict[str, Any]] | None) -> None:
    printer = crd_printer(columns)
    assert by_name(printer.columns) == [("Name", "string", 0), ("Age", "date", 0)]
    assert printer.columns[1]["description"].startswith("CreationTimestamp is a timestamp")
    assert printer.cells(widget({}), NOW) == ["w1", "120m"]


def test_unparsable_column_drops_it_and_later_ones() -> None:
    printer = crd_printer(
        [
            {"name": "A", "type": "string", "jsonPath": ".spec.a"},
            {"name": "Bad", "type": "string", "jsonPath": ".spec.b[x]"},
            {"name": "C", "type": "string", "jsonPath": ".spec.c"},
        ]
    )
    assert [c["name"] for c in printer.columns] == ["Name", "A"]
    assert printer.cells(widget({"a": "x", "c": "y"}), NOW) == ["w1", "x"]


def test_evaluation_error_gives_null_cell() -> None:
    printer = crd_printer([{"name": "Third", "type": "string", "jsonPath": ".spec.items[2]"}])
    assert printer.cells(widget({"items": ["a"]}), NOW) == ["w1", None]
