"""Condition bookkeeping and expectations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controllers.common.actions import SetExpectations
from controllers.common.conditions import get_condition, set_condition
from controllers.common.expectations import ControlleeExpectations, ExpectationsStore, satisfied

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def cond(status: str, reason: str, at: str) -> dict:
    return {"type": "Progressing", "status": status, "reason": reason,
            "lastUpdateTime": at, "lastTransitionTime": at}


@pytest.mark.parametrize(("new", "transition", "update"), [
    pytest.param(cond("True", "Same", "T2"), "T1", "T1", id="same-status-and-reason-is-a-no-op"),
    pytest.param(cond("True", "Other", "T2"), "T1", "T2", id="new-reason-keeps-transition-time"),
    pytest.param(cond("False", "Other", "T2"), "T2", "T2", id="new-status-moves-transition-time"),
])
def test_set_condition(new: dict, transition: str, update: str) -> None:
    status = {"conditions": [cond("True", "Same", "T1"), {"type": "Available", "status": "True"}]}
    set_condition(status, new)
    got = get_condition(status, "Progressing")
    assert (got["lastTransitionTime"], got["lastUpdateTime"]) == (transition, update)
    if update == "T2":
        assert status["conditions"][-1]["type"] == "Progressing", "replaced conditions move to the end"


@pytest.mark.parametrize(("record", "expected"), [
    pytest.param(None, True, id="no-record"),
    pytest.param(ControlleeExpectations(NOW, add=0), True, id="fulfilled"),
    pytest.param(ControlleeExpectations(NOW, add=-1), True, id="over-observed"),
    pytest.param(ControlleeExpectations(NOW, add=2), False, id="waiting-for-creates"),
    pytest.param(ControlleeExpectations(NOW, deletes=frozenset({"ns/p"})), False, id="waiting-for-deletes"),
    pytest.param(ControlleeExpectations(NOW - timedelta(minutes=6), add=2), True, id="expired"),
])
def test_satisfied(record: ControlleeExpectations | None, expected: bool) -> None:
    assert satisfied(record, NOW) is expected


def test_store_counts_observations_and_replaces_records() -> None:
    store = ExpectationsStore()
    store.apply("ns/rs", SetExpectations(add=2), NOW)
    store.creation_observed("ns/rs")
    assert store.get("ns/rs").add == 1
    store.apply("ns/rs", SetExpectations(deletes=frozenset({"ns/a"})), NOW)
    assert store.get("ns/rs").add == 0 and not store.get("ns/rs").fulfilled()
    store.deletion_observed("ns/rs", "ns/a")
    store.deletion_observed("ns/rs", "ns/a")
    assert store.get("ns/rs").fulfilled()
    store.forget("ns/rs")
    assert store.get("ns/rs") is None
