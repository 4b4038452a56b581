"""Selectors and tolerations match as apimachinery and component-helpers do."""

from __future__ import annotations

import pytest

from controllers.scheduler.matching import (
    find_untolerated_taint,
    label_selector,
    node_selector_term_matches,
    required_node_affinity_matches,
    toleration_tolerates,
)
from tests.controllers.scheduler.builders import make_node, make_pod, taint


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    pytest.param(None, {"a": "1"}, False, id="nil-matches-nothing"),
    pytest.param({}, {"a": "1"}, True, id="empty-matches-everything"),
    pytest.param({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True, id="match-labels"),
    pytest.param({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True,
                 id="notin-absent-key"),
    pytest.param({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "x"}, False,
                 id="does-not-exist"),
    pytest.param({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, {"a": "5"}, False,
                 id="gt-is-not-a-label-selector-operator"),
])
def test_label_selector(selector: dict | None, labels: dict, matches: bool) -> None:
    assert label_selector(selector).matches(labels) is matches


@pytest.mark.parametrize(("term", "matches"), [
    pytest.param({}, False, id="empty-term-matches-no-node"),
    pytest.param({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}, True, id="gt"),
    pytest.param({"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]}, False, id="lt"),
    pytest.param({"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["4"]}]}, False,
                 id="gt-non-integer-label"),
    pytest.param({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}, True,
                 id="match-fields-name"),
    pytest.param({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}, False,
                 id="match-fields-notin"),
    pytest.param({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}],
                  "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}, False,
                 id="labels-and-fields-anded"),
])
def test_node_selector_term(term: dict, matches: bool) -> None:
    node = make_node("n1", labels={"cores": "8", "zone": "a"})
    assert node_selector_term_matches(term, node) is matches


def test_required_node_affinity_ands_node_selector_with_affinity() -> None:
    node = make_node("n1", labels={"disk": "ssd", "zone": "a"})
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}
    assert required_node_affinity_matches(make_pod("p", nodeSelector={"disk": "ssd"}, affinity=affinity), node)
    assert not required_node_affinity_matches(make_pod("p", nodeSelector={"disk": "hdd"}, affinity=affinity), node)


@pytest.mark.parametrize(("toleration", "tolerated"), [
    pytest.param({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, True, id="exact"),
    pytest.param({"key": "k", "value": "v"}, True, id="empty-operator-is-equal-empty-effect-is-any"),
    pytest.param({"key": "k", "operator": "Exists"}, True, id="exists"),
    pytest.param({"operator": "Exists"}, True, id="empty-key-exists-tolerates-all"),
    pytest.param({"key": "k", "value": "other"}, False, id="wrong-value"),
    pytest.param({"key": "k", "operator": "Exists", "effect": "NoExecute"}, False, id="wrong-effect"),
])
def test_toleration(toleration: dict, tolerated: bool) -> None:
    assert toleration_tolerates(toleration, taint("k", "v")) is tolerated


def test_first_untolerated_hard_taint_in_node_order() -> None:
    taints = [taint("soft", effect="PreferNoSchedule"), taint("a"), taint("b", effect="NoExecute")]
    assert find_untolerated_taint(taints, [])["key"] == "a"
    assert find_untolerated_taint(taints, [{"key": "a", "operator": "Exists"}])["key"] == "b"
