"""pod-template-hash: the exact FNV-32a / collisionCount / SafeEncodeString pipeline."""

from __future__ import annotations

import pytest

from controllers.common.hashing import SAFE_ALPHABET, compute_hash, fnv32a, safe_encode_string

TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param(b"", 0x811C9DC5, id="offset-basis"),
    pytest.param(b"a", 0xE40C292C, id="a"),
    pytest.param(b"foobar", 0xBF9CF968, id="foobar"),
])
def test_fnv32a_matches_go_hash_fnv(data: bytes, expected: int) -> None:
    assert fnv32a(data) == expected


def test_fnv32a_continues_a_running_sum() -> None:
    assert fnv32a(b"bar", fnv32a(b"foo")) == fnv32a(b"foobar")


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("0123456789", "456789bcdf", id="digits"),
    pytest.param("3094371040", "74f87c5484", id="a-sum"),
])
def test_safe_encode_string_maps_digits_like_kubernetes(text: str, expected: str) -> None:
    assert safe_encode_string(text) == expected


def test_hash_is_stable_and_safe_encoded() -> None:
    value = compute_hash(TEMPLATE)
    assert value == compute_hash({"spec": TEMPLATE["spec"], "metadata": TEMPLATE["metadata"]})
    assert set(value) <= set(SAFE_ALPHABET) and 1 <= len(value) <= 10


@pytest.mark.parametrize("other", [
    pytest.param({**TEMPLATE, "spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}, id="image"),
    pytest.param({**TEMPLATE, "metadata": {"labels": {"app": "web", "v": "2"}}}, id="label"),
])
def test_hash_changes_with_the_template(other: dict) -> None:
    assert compute_hash(other) != compute_hash(TEMPLATE)


def test_empty_and_missing_fields_hash_alike() -> None:
    padded = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "volumes": [], "nodeSelector": {}, "hostname": None}}
    assert compute_hash(padded) == compute_hash(TEMPLATE)


def test_collision_count_changes_the_hash() -> None:
    seen = {compute_hash(TEMPLATE, None), compute_hash(TEMPLATE, 0), compute_hash(TEMPLATE, 1)}
    assert len(seen) == 3, "a nil count adds no bytes; 0 adds eight zero bytes"
