"""findBestMatchForClaim and checkVolumeSatisfyClaim as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.volume.matching import check_volume_satisfies_claim, find_best_match
from tests.controllers.volume.world import make_pv, make_pvc

Obj = dict[str, Any]


def _claim(name: str = "c", uid: str = "u1", **kwargs: Any) -> Obj:
    claim = make_pvc(name, **kwargs)
    claim["metadata"]["uid"] = uid
    return claim


def test_smallest_volume_that_fits_wins() -> None:
    volumes = [make_pv("big", "10Gi"), make_pv("small", "1Gi"), make_pv("medium", "5Gi")]
    assert find_best_match(_claim(size="2Gi"), volumes, False)["metadata"]["name"] == "medium"


def test_volume_smaller_than_request_is_skipped() -> None:
    assert find_best_match(_claim(size="2Gi"), [make_pv("small", "1Gi")], False) is None


def test_fewest_access_modes_are_preferred_over_size() -> None:
    volumes = [make_pv("rwo-rwx", "1Gi", modes=("ReadWriteOnce", "ReadWriteMany")), make_pv("rwo", "5Gi")]
    assert find_best_match(_claim(), volumes, False)["metadata"]["name"] == "rwo"


def test_volume_without_a_requested_mode_is_skipped() -> None:
    assert find_best_match(_claim(modes=("ReadWriteMany",)), [make_pv("rwo")], False) is None


@pytest.mark.parametrize(("volume", "claim"), [
    pytest.param(make_pv("v", cls="fast"), make_pvc("c", cls=""), id="class-differs"),
    pytest.param(make_pv("v", phase="Released"), make_pvc("c"), id="not-available"),
    pytest.param(make_pv("v", claim_ref={"namespace": "default", "name": "other", "uid": "x"}), make_pvc("c"),
                 id="claimed-by-another"),
    pytest.param(make_pv("v", volumeMode="Block"), make_pvc("c"), id="volume-mode"),
    pytest.param(make_pv("v", labels={"tier": "gold"}), make_pvc("c", selector={"matchLabels": {"tier": "silver"}}),
                 id="selector"),
])
def test_volume_that_does_not_fit_is_skipped(volume: Obj, claim: Obj) -> None:
    claim["metadata"]["uid"] = "u1"
    assert find_best_match(claim, [volume], False) is None


def test_selector_match_binds() -> None:
    volumes = [make_pv("silver", labels={"tier": "silver"}), make_pv("gold", labels={"tier": "gold"})]
    claim = _claim(selector={"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}]})
    assert find_best_match(claim, volumes, False)["metadata"]["name"] == "gold"


def test_volume_prebound_to_the_claim_wins_over_a_smaller_free_one() -> None:
    prebound = make_pv("mine", "5Gi", phase="Pending", claim_ref={"namespace": "default", "name": "c"})
    volumes = [make_pv("free", "1Gi"), prebound]
    assert find_best_match(_claim(), volumes, False)["metadata"]["name"] == "mine"


def test_volume_prebound_to_an_older_claim_of_the_same_name_is_skipped() -> None:
    stale = make_pv("mine", claim_ref={"namespace": "default", "name": "c", "uid": "old"})
    assert find_best_match(_claim(uid="new"), [stale], False) is None


def test_wait_for_first_consumer_binds_only_prebound_volumes() -> None:
    free = make_pv("free", cls="local")
    prebound = make_pv("mine", cls="local", claim_ref={"namespace": "default", "name": "c", "uid": "u1"})
    claim = _claim(cls="local")
    assert find_best_match(claim, [free], True) is None
    assert find_best_match(claim, [free, prebound], True)["metadata"]["name"] == "mine"


def test_volume_being_deleted_is_skipped() -> None:
    volume = make_pv("v")
    volume["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert find_best_match(_claim(), [volume], False) is None


@pytest.mark.parametrize(("volume", "problem"), [
    pytest.param(make_pv("v", "1Gi"), "requested PV is too small", id="size"),
    pytest.param(make_pv("v", "5Gi", cls="x"), "storageClassName does not match", id="class"),
    pytest.param(make_pv("v", "5Gi", volumeMode="Block"), "incompatible volumeMode", id="mode"),
    pytest.param(make_pv("v", "5Gi", modes=("ReadOnlyMany",)), "incompatible accessMode", id="access"),
    pytest.param(make_pv("v", "5Gi"), None, id="fits"),
])
def test_check_volume_satisfies_claim(volume: Obj, problem: str | None) -> None:
    assert check_volume_satisfies_claim(volume, _claim(size="2Gi")) == problem
