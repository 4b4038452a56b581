"""The Table envelope: metadata, column definitions, rows and the includeObject modes."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.tables import build_table, crd_printer, printer_for
from tests.apiserver.tables.helpers import NOW, meta


def pod(name: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(
            name, namespace="default", labels={"app": "web"}, resourceVersion="42", uid="u-" + name
        ),
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": phase},
    }


def test_table_envelope_for_a_list() -> None:
    table = build_table(
        printer_for("", "Pod"),
        [pod("a")],
        resource_version="1234",
        continue_token="tok",
        remaining=7,
        now=NOW,
    )
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "1234", "continue": "tok", "remainingItemCount": 7}
    assert table["columnDefinitions"] == printer_for("", "Pod").columns
    assert set(table["columnDefinitions"][0]) == {"name", "type", "format", "description", "priority"}
    assert table["rows"][0]["cells"] == [
        "a",
        "0/1",
        "Running",
        "0",
        "5m",
        "<none>",
        "<none>",
        "<none>",
        "<none>",
    ]


def test_list_metadata_omits_unset_fields() -> None:
    assert build_table(printer_for("", "Pod"), [], now=NOW)["metadata"] == {}
    assert build_table(printer_for("", "Pod"), [], remaining=0, now=NOW)["metadata"] == {
        "remainingItemCount": 0
    }


@pytest.mark.parametrize(
    ("include", "expected"),
    [
        pytest.param(
            "Metadata",
            lambda o: {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": o["metadata"],
            },
            id="metadata",
        ),
        pytest.param(
            "",
            lambda o: {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": o["metadata"],
            },
            id="empty-means-metadata",
        ),
        pytest.param("Object", lambda o: o, id="object"),
        pytest.param("None", lambda o: None, id="none"),
    ],
)
def test_include_object_modes(include: str, expected: Any) -> None:
    obj = pod("a")
    row = build_table(printer_for("", "Pod"), [obj], include_object=include, now=NOW)["rows"][0]
    assert "object" in row and row["object"] == expected(obj)


def test_unknown_include_object_is_rejected() -> None:
    with pytest.raises(ValueError, match='unrecognized includeObject value: "Everything"'):
        build_table(printer_for("", "Pod"), [pod("a")], include_object="Everything")


def test_rows_carry_printer_conditions_only_when_set() -> None:
    rows = build_table(printer_for("", "Pod"), [pod("a"), pod("b", "Succeeded")], now=NOW)["rows"]
    assert "conditions" not in rows[0]
    assert rows[1]["conditions"][0]["type"] == "Completed"


@pytest.mark.parametrize(
    ("printer", "rows"),
    [
        pytest.param(printer_for("", "Pod"), [], id="printer-empty-list"),
        pytest.param(crd_printer(None), [], id="crd-empty-list"),
        pytest.param(
            printer_for("rbac.authorization.k8s.io", "Role"), None, id="default-convertor-null-rows"
        ),
    ],
)
def test_empty_tables(printer: Any, rows: list[Any] | None) -> None:
    assert build_table(printer, [], now=NOW)["rows"] == rows


def test_flow_schemas_are_sorted_by_precedence_then_name() -> None:
    def fs(name: str, precedence: int) -> dict[str, Any]:
        return {
            "metadata": meta(name),
            "spec": {"matchingPrecedence": precedence, "priorityLevelConfiguration": {"name": "pl"}},
        }

    objects = [fs("b", 500), fs("z", 100), fs("a", 500)]
    table = build_table(printer_for("flowcontrol.apiserver.k8s.io", "FlowSchema"), objects, now=NOW)
    assert [r["cells"][0] for r in table["rows"]] == ["z", "a", "b"]


def test_default_now_is_the_current_time() -> None:
    fresh = {"metadata": {"name": "n", "creationTimestamp": NOW.isoformat()}}
    age = build_table(printer_for("", "Namespace"), [fresh])["rows"][0]["cells"][-1]
    assert age.endswith(("s", "m", "h", "d", "y"))


def test_watch_events_after_the_first_omit_column_definitions() -> None:
    first = build_table(printer_for("", "Pod"), [pod("a")], now=NOW)
    later = build_table(printer_for("", "Pod"), [pod("a")], now=NOW, no_headers=True)
    assert first["columnDefinitions"] and later["columnDefinitions"] is None
    assert later["rows"] == first["rows"]
