"""Client-side label selectors: the same language as the API server's."""

from __future__ import annotations

import pytest

from minikube_py.client import from_label_selector, parse_selector
from minikube_py.client.labels import as_selector

LABELS = {"app": "web", "tier": "fe", "version": "3"}


@pytest.mark.parametrize(("selector", "matches"), [
    pytest.param("", True, id="empty-selects-all"),
    pytest.param("app=web", True, id="equals"),
    pytest.param("app==web", True, id="double-equals"),
    pytest.param("app=db", False, id="equals-other"),
    pytest.param("app!=db", True, id="not-equals"),
    pytest.param("missing!=x", True, id="not-equals-matches-absent-key"),
    pytest.param("app in (web, api)", True, id="in"),
    pytest.param("app notin (web)", False, id="notin"),
    pytest.param("missing notin (a)", True, id="notin-matches-absent-key"),
    pytest.param("app", True, id="exists"),
    pytest.param("!app", False, id="does-not-exist"),
    pytest.param("!missing", True, id="does-not-exist-absent"),
    pytest.param("version>2", True, id="greater-than"),
    pytest.param("version<2", False, id="less-than"),
    pytest.param("app=web,tier in (fe,be),!legacy", True, id="conjunction"),
    pytest.param("app=web,tier=be", False, id="conjunction-one-fails"),
])
def test_selector_strings_match_like_kubernetes(selector: str, matches: bool) -> None:
    assert parse_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize("bad", ["app in (", "=web", "a,,b", "x>y", "a b"])
def test_invalid_selectors_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_selector(bad)


@pytest.mark.parametrize(("spec", "matches"), [
    pytest.param({}, True, id="empty-selects-everything"),
    pytest.param(None, False, id="none-selects-nothing"),
    pytest.param({"matchLabels": {"app": "web"}}, True, id="match-labels"),
    pytest.param({"matchLabels": {"app": "web"},
                  "matchExpressions": [{"key": "tier", "operator": "In", "values": ["be"]}]}, False, id="and"),
    pytest.param({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["be"]},
                                       {"key": "app", "operator": "Exists"},
                                       {"key": "gpu", "operator": "DoesNotExist"}]}, True, id="expressions"),
])
def test_label_selector_specs(spec: dict | None, matches: bool) -> None:
    assert from_label_selector(spec).matches(LABELS) is matches


def test_selector_prints_back_to_the_api_form() -> None:
    spec = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In",
                                                                  "values": ["fe", "be"]}]}
    assert str(from_label_selector(spec)) == "app=web,tier in (be,fe)"
    assert str(parse_selector("!a,b,c!=d,e>1")) == "!a,b,c!=d,e>1"
    assert as_selector({"a": "1"}).matches({"a": "1"}) and as_selector(None).empty()
