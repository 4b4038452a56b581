"""client-go JSONPath semantics, as CRD printer columns depend on them."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.tables.jsonpath import JSONPathError, find_results, parse, parse_column, print_value

OBJ: dict[str, Any] = {
    "metadata": {"name": "w", "labels": {"app.kubernetes.io/name": "web"}, "a.b": "dotted"},
    "a": {"b": "nested"},
    "spec": {
        "replicas": 3,
        "ratio": 0.5,
        "paused": False,
        "nothing": None,
        "containers": [
            {"name": "app", "image": "nginx", "port": 80},
            {"name": "log", "image": "busybox", "port": 9000},
            {"name": "side", "image": "envoy"},
        ],
    },
    "status": {
        "conditions": [
            {"type": "Ready", "status": "True", "priority": 1},
            {"type": "Synced", "status": "False", "priority": 2},
        ]
    },
}


def first_list(path: str, data: Any = OBJ, **kw: Any) -> list[Any]:
    return find_results(parse_column(path), data, **kw)[0]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(".spec.replicas", [3], id="field"),
        pytest.param(".spec.missing", [], id="missing-field-allowed"),
        pytest.param(".spec.nothing", [None], id="null-is-a-value"),
        pytest.param(".spec.nothing.deeper", [], id="no-descent-into-null"),
        pytest.param(".spec.replicas.deeper", [], id="field-of-scalar-is-empty"),
        pytest.param(".spec.containers[0].image", ["nginx"], id="index"),
        pytest.param(".spec.containers[-1].name", ["side"], id="negative-index"),
        pytest.param(".spec.containers[0:2].name", ["app", "log"], id="slice"),
        pytest.param(".spec.containers[::2].name", ["app", "side"], id="step"),
        pytest.param(".spec.containers[*].name", ["app", "log", "side"], id="star"),
        pytest.param(".spec.containers[0,2].name", ["app", "side"], id="union"),
        pytest.param(".spec.containers[*].port", [80, 9000], id="missing-keys-skipped"),
        pytest.param('.status.conditions[?(@.type=="Ready")].status', ["True"], id="filter-equals"),
        pytest.param(
            ".status.conditions[?(@.type!='Ready')].type", ["Synced"], id="filter-not-equals-single-quotes"
        ),
        pytest.param(".status.conditions[?(@.priority>1)].type", ["Synced"], id="filter-greater"),
        pytest.param(".spec.containers[?(@.port)].name", ["app", "log"], id="filter-exists"),
        pytest.param(".spec.containers[?(@.port<=80)].name", ["app"], id="filter-skips-missing-left"),
        pytest.param("..image", ["nginx", "busybox", "envoy"], id="recursive"),
        pytest.param(".metadata.labels.app\\.kubernetes\\.io/name", ["web"], id="escaped-dots"),
        pytest.param(".metadata['a.b']", [], id="bracket-key-with-dot-is-split"),
        pytest.param("['a.b']", ["nested"], id="bracket-key-split-follows-path"),
        pytest.param(".metadata['name']", ["w"], id="bracket-key"),
        pytest.param(".a.*", ["nested"], id="wildcard-on-map"),
    ],
)
def test_find_results(path: str, expected: list[Any]) -> None:
    assert first_list(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(".spec.containers[5].name", id="index-out-of-range"),
        pytest.param(".spec.replicas[0]", id="index-on-scalar"),
        pytest.param(".spec.replicas[?(@.a)]", id="filter-on-scalar"),
        pytest.param(".status.conditions[?(@.priority=='1')].type", id="compare-int-with-string"),
        pytest.param(".status.conditions[?(@.status<true)].type", id="order-booleans"),
    ],
)
def test_evaluation_errors(path: str) -> None:
    with pytest.raises(JSONPathError):
        first_list(path)


def test_missing_key_is_an_error_unless_allowed() -> None:
    with pytest.raises(JSONPathError):
        first_list(".spec.missing", allow_missing_keys=False)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(".spec.containers[0", id="unterminated-array"),
        pytest.param(".spec.containers[x]", id="bad-index"),
        pytest.param(".a....b", id="double-recursive"),
        pytest.param(".spec | x", id="bad-character"),
        pytest.param("{range .items[*]}", id="range-unsupported"),
    ],
)
def test_parse_errors(path: str) -> None:
    with pytest.raises(JSONPathError):
        parse_column(path)


def test_template_text_outside_braces() -> None:
    nodes = parse("name={.metadata.name} n={.spec.replicas}")
    assert [r for r in find_results(nodes, OBJ)] == [["name="], ["w"], [" n="], [3]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("text", "text", id="string-raw"),
        pytest.param(3, "3", id="int"),
        pytest.param(0.5, "0.5", id="float"),
        pytest.param(2.0, "2", id="integral-float"),
        pytest.param(123456.0, "123456", id="float-below-exponent"),
        pytest.param(1000000.0, "1e+06", id="float-exponent-like-go"),
        pytest.param(0.00001, "1e-05", id="small-float"),
        pytest.param(True, "true", id="bool"),
        pytest.param(None, "<no value>", id="null"),
        pytest.param({"b": 1, "a": "<x>"}, '{"a":"\\u003cx\\u003e","b":1}', id="map-as-go-json"),
        pytest.param([1, 2.5, None], "[1,2.5,null]", id="list-as-json"),
        pytest.param([1e-7, 1e21], "[1e-7,1e+21]", id="json-float-exponents"),
    ],
)
def test_print_value_matches_go_text(value: Any, expected: str) -> None:
    assert print_value(value) == expected
