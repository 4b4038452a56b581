"""Replica arithmetic and annotations of the Deployment controller, table-driven."""

from __future__ import annotations

import pytest

from controllers.deployment import annotations as ann
from controllers.deployment import replicas as rep


def dep(replicas: int, surge: int | str | None = "25%", unavailable: int | str | None = "25%",
        strategy: str = "RollingUpdate") -> dict:
    rolling = {k: v for k, v in (("maxSurge", surge), ("maxUnavailable", unavailable)) if v is not None}
    return {"metadata": {"name": "web"},
            "spec": {"replicas": replicas, "strategy": {"type": strategy, "rollingUpdate": rolling}}}


@pytest.mark.parametrize(("surge", "unavailable", "desired", "expected"), [
    pytest.param("25%", "25%", 10, (3, 2), id="percent-surge-rounds-up-unavailable-down"),
    pytest.param("25%", "25%", 3, (1, 0), id="three-replicas-default"),
    pytest.param(1, 0, 3, (1, 0), id="ints"),
    pytest.param("1%", "1%", 2, (1, 0), id="tiny-percent-surge-rounds-to-one"),
    pytest.param(0, "1%", 2, (0, 1), id="both-zero-makes-unavailable-one"),
    pytest.param(0, 0, 5, (0, 1), id="explicit-zeros"),
    pytest.param("50%", "50%", 5, (3, 2), id="odd-halves"),
])
def test_resolve_fenceposts(surge, unavailable, desired: int, expected: tuple[int, int]) -> None:
    assert rep.resolve_fenceposts(surge, unavailable, desired) == expected


def test_fencepost_string_must_be_a_percentage() -> None:
    with pytest.raises(ValueError, match="not a percentage"):
        rep.value_from_int_or_percent("3", 10, True)


@pytest.mark.parametrize(("d", "surge", "unavailable"), [
    pytest.param(dep(10), 3, 2, id="rolling"),
    pytest.param(dep(2, 0, 5), 0, 2, id="unavailable-capped-at-replicas"),
    pytest.param(dep(0), 0, 0, id="zero-replicas"),
    pytest.param(dep(4, strategy="Recreate"), 0, 0, id="recreate"),
    pytest.param({"spec": {"replicas": 4}}, 1, 1, id="defaults-when-missing"),
])
def test_max_surge_and_unavailable(d: dict, surge: int, unavailable: int) -> None:
    assert (rep.max_surge(d), rep.max_unavailable(d)) == (surge, unavailable)


def rs(replicas: int) -> dict:
    return {"spec": {"replicas": replicas}}


@pytest.mark.parametrize(("d", "others", "new", "expected"), [
    pytest.param(dep(3, 1, 0), [rs(3)], 0, 1, id="surge-one"),
    pytest.param(dep(3, 1, 0), [rs(3)], 1, 1, id="at-max-total"),
    pytest.param(dep(10, 3, 2), [rs(8)], 5, 5, id="crashloop-example"),
    pytest.param(dep(10, 3, 2), [rs(2)], 5, 10, id="never-beyond-desired"),
    pytest.param(dep(4, strategy="Recreate"), [rs(4)], 0, 4, id="recreate-full-size"),
])
def test_new_rs_new_replicas(d: dict, others: list[dict], new: int, expected: int) -> None:
    new_rs = rs(new)
    assert rep.new_rs_new_replicas(d, [*others, new_rs], new_rs) == expected


@pytest.mark.parametrize(("rs_replicas", "d", "to_add", "added", "annotated", "expected"), [
    pytest.param(8, dep(15, 3, 2), 5, 0, 13, 3, id="docs-example-old"),
    pytest.param(5, dep(15, 3, 2), 5, 3, 13, 2, id="docs-example-new"),
    pytest.param(5, dep(0), -5, 0, 13, -5, id="to-zero"),
    pytest.param(4, dep(5, 0, 1), -3, 0, 8, -1, id="down-own-share"),
    pytest.param(8, dep(2, 0, 1), -3, 0, 8, -3, id="down-clamped-to-allowed"),
    pytest.param(0, dep(10), 5, 0, 10, 0, id="never-from-zero"),
])
def test_proportion(rs_replicas: int, d: dict, to_add: int, added: int, annotated: int, expected: int) -> None:
    assert rep.proportion(rs(rs_replicas), d, to_add, added, annotated) == expected


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(2.5, 3, id="half-up"), pytest.param(2.49, 2, id="below-half"),
    pytest.param(-2.5, -3, id="negative-half-away-from-zero"),
])
def test_round_to_int(value: float, expected: int) -> None:
    assert rep.round_to_int(value) == expected


@pytest.mark.parametrize(("existing", "new_revision", "expected_revision", "expected_history"), [
    pytest.param({}, 1, "1", None, id="first-revision"),
    pytest.param({ann.REVISION: "1"}, 3, "3", "1", id="rollback-records-history"),
    pytest.param({ann.REVISION: "3", ann.REVISION_HISTORY: "1"}, 5, "5", "1,3", id="history-appends"),
    pytest.param({ann.REVISION: "4"}, 3, "4", None, id="never-lowered"),
])
def test_new_replica_set_revision(existing: dict, new_revision: int, expected_revision: str,
                                  expected_history: str | None) -> None:
    d = {"metadata": {"annotations": {"team": "blue", ann.LAST_APPLIED: "{}", ann.REVISION: "9"}},
         "spec": {"replicas": 3}}
    replica_set = {"metadata": {"annotations": dict(existing)}, "spec": {"replicas": 0}}
    ann.set_new_replica_set_annotations(d, replica_set, new_revision, exists=True)
    found = replica_set["metadata"]["annotations"]
    assert found[ann.REVISION] == expected_revision
    assert found.get(ann.REVISION_HISTORY) == expected_history
    assert found["team"] == "blue" and ann.LAST_APPLIED not in found


def test_revision_history_is_capped_at_2000_characters() -> None:
    history = ",".join(str(n) for n in range(1000, 1400))  # 1999 characters
    replica_set = {"metadata": {"annotations": {ann.REVISION: "1400", ann.REVISION_HISTORY: history}}}
    ann.set_new_replica_set_annotations({"spec": {}}, replica_set, 1401, exists=True)
    kept = replica_set["metadata"]["annotations"][ann.REVISION_HISTORY]
    assert len(kept) <= 2000 and kept.endswith(",1400") and not kept.startswith("1000,")
