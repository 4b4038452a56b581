"""Hashing, naming, ordering and equality of ControllerRevisions; creation with collisions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controllers.history import (
    HASH_LABEL,
    create_revision,
    equal_revision,
    find_equal_revisions,
    new_revision,
    next_revision,
    owned_or_orphaned,
    raw_data,
    revision_hash,
    revision_name,
    sort_revisions,
)
from controllers.history.revisions import fnv32
from minikube_py.client import ApiError

PARENT = {"apiVersion": "apps/v1", "kind": "StatefulSet",
          "metadata": {"name": "web", "namespace": "default", "uid": "set-uid"}}
DATA = {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.0"}]}}}}


def rev(name: str, number: int, *, created: str = "2025-01-01T00:00:00Z", data: Any = None,
        labels: dict[str, str] | None = None, controller: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "creationTimestamp": created,
                            "labels": labels or {}, "uid": f"uid-{name}"}
    if controller:
        meta["ownerReferences"] = [{"uid": controller, "controller": True}]
    return {"metadata": meta, "revision": number, "data": data if data is not None else DATA}


def test_fnv32_is_fnv1_not_fnv1a() -> None:
    # Go's fnv.New32: the empty sum is the offset basis; "a" is the published FNV-1 vector.
    assert fnv32(b"") == 0x811C9DC5
    assert fnv32(b"a") == 0x050C5D7E
    assert fnv32(b"foobar") == 0x31F0B262


def test_raw_data_is_go_json_marshal_of_a_map() -> None:
    assert raw_data({"b": 1, "a": {"d": "<&>", "c": [1, 2]}}) == b'{"a":{"c":[1,2],"d":"\\u003c\\u0026\\u003e"},"b":1}'


def test_hash_changes_with_data_and_collision_count_and_uses_the_safe_alphabet() -> None:
    plain, probed, other = revision_hash(DATA, None), revision_hash(DATA, 0), revision_hash({"x": 1}, None)
    assert len({plain, probed, other, revision_hash(DATA, 1)}) == 4
    assert revision_hash(DATA, 0) == probed  # deterministic
    assert set(plain) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_new_revision_body() -> None:
    body = new_revision(PARENT, DATA, 3, 0, {"app": "web"}, annotations={"note": "x"})
    hash_value = revision_hash(DATA, 0)
    assert body["metadata"]["name"] == f"web-{hash_value}"
    assert body["metadata"]["labels"] == {"app": "web", HASH_LABEL: hash_value}
    assert body["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                                    "uid": "set-uid", "controller": True,
                                                    "blockOwnerDeletion": True}]
    assert body["metadata"]["annotations"] == {"note": "x"}
    assert body["revision"] == 3 and body["data"] == DATA and body["kind"] == "ControllerRevision"


def test_revision_name_truncates_long_prefixes() -> None:
    assert revision_name("p" * 300, "abc") == "p" * 223 + "-abc"


def test_sort_and_next_revision() -> None:
    revisions = [rev("c", 2), rev("b", 1, created="2025-01-02T00:00:00Z"), rev("a", 1, created="2025-01-02T00:00:00Z"),
                 rev("z", 1, created="2024-12-31T00:00:00Z")]
    ordered = sort_revisions(revisions)
    assert [r["metadata"]["name"] for r in ordered] == ["z", "a", "b", "c"]
    assert next_revision(ordered) == 3
    assert next_revision([]) == 1


@pytest.mark.parametrize(("left", "right", "equal"), [
    pytest.param(rev("a", 1), rev("b", 2), True, id="same-data"),
    pytest.param(rev("a", 1), rev("b", 1, data={"x": 1}), False, id="different-data"),
    pytest.param(rev("a", 1, labels={HASH_LABEL: "45"}), rev("b", 1, labels={HASH_LABEL: "46"}), False,
                 id="numeric-hashes-differ"),
    pytest.param(rev("a", 1, labels={HASH_LABEL: "bcd"}), rev("b", 1, labels={HASH_LABEL: "fgh"}), True,
                 id="non-numeric-hashes-ignored"),
])
def test_equal_revision(left: dict, right: dict, equal: bool) -> None:
    assert equal_revision(left, right) is equal


def test_equal_revision_none_and_find() -> None:
    assert equal_revision(None, None) and not equal_revision(rev("a", 1), None)
    revisions = [rev("a", 1), rev("b", 2, data={"x": 1}), rev("c", 3)]
    assert [r["metadata"]["name"] for r in find_equal_revisions(revisions, rev("n", 9))] == ["a", "c"]


def test_owned_or_orphaned_keeps_ours_and_orphans() -> None:
    revisions = [rev("ours", 1, controller="set-uid"), rev("orphan", 2), rev("theirs", 3, controller="other")]
    assert [r["metadata"]["name"] for r in owned_or_orphaned(PARENT, revisions)] == ["ours", "orphan"]


class FakeClient:
    """create/get of ControllerRevisions in a dict, answering AlreadyExists as the API does."""

    def __init__(self, existing: list[dict[str, Any]] | None = None) -> None:
        self.objects = {r["metadata"]["name"]: r for r in existing or []}
        self.created: list[str] = []

    async def create(self, resource: Any, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if name in self.objects:
            raise ApiError({"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": "exists"})
        self.objects[name] = copy.deepcopy(obj)
        self.created.append(name)
        return copy.deepcopy(obj)

    async def get(self, resource: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        return copy.deepcopy(self.objects[name])


async def test_create_revision_without_collision() -> None:
    client = FakeClient()
    body = new_revision(PARENT, DATA, 1, 0, {"app": "web"})
    created, count = await create_revision(client, PARENT, body, 0)  # type: ignore[arg-type]
    assert count == 0 and created["metadata"]["name"] == body["metadata"]["name"]


async def test_create_revision_reuses_an_equal_existing_revision() -> None:
    body = new_revision(PARENT, DATA, 1, 0, {"app": "web"})
    client = FakeClient([copy.deepcopy(body)])
    created, count = await create_revision(client, PARENT, body, 0)  # type: ignore[arg-type]
    assert count == 0 and created == body and client.created == []


async def test_create_revision_bumps_collision_count_on_a_real_collision() -> None:
    body = new_revision(PARENT, DATA, 1, 0, {"app": "web"})
    squatter = copy.deepcopy(body)
    squatter["data"] = {"something": "else"}
    client = FakeClient([squatter])
    created, count = await create_revision(client, PARENT, body, 0)  # type: ignore[arg-type]
    assert count == 1
    assert created["metadata"]["name"] == f"web-{revision_hash(DATA, 1)}" != body["metadata"]["name"]
    assert created["data"] == DATA
