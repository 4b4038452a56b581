"""The informer cache: keys, indexes (namespace, owner UID, custom) and listers."""

from __future__ import annotations

import pytest

from minikube_py.client import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    Lister,
    Store,
    deep_copy,
    key_of,
    split_key,
)
from tests.minikube_py.client.support import pod


def owned(name: str, owner_uid: str, namespace: str = "default") -> dict:
    return pod(name, namespace, owner={"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                       "uid": owner_uid, "controller": True})


def test_keys_are_namespace_slash_name() -> None:
    assert key_of(pod("a", "ns")) == "ns/a"
    assert key_of({"metadata": {"name": "node-1"}}) == "node-1"
    assert key_of(DeletedFinalStateUnknown("ns/x", {})) == "ns/x"
    assert split_key("ns/a") == ("ns", "a") and split_key("node-1") == ("", "node-1")


def test_namespace_index_follows_upserts_and_deletes() -> None:
    store = Store()
    store.upsert(pod("a", "x"))
    store.upsert(pod("b", "x"))
    store.upsert(pod("c", "y"))
    assert [o["metadata"]["name"] for o in store.by_index(NAMESPACE_INDEX, "x")] == ["a", "b"]
    store.delete("x/a")
    assert store.index_keys(NAMESPACE_INDEX, "x") == ["x/b"]
    store.delete("x/b")
    assert store.index_values(NAMESPACE_INDEX) == ["y"]  # empty index values disappear


def test_owner_index_tracks_ownership_changes() -> None:
    store = Store()
    lister = Lister(store)
    store.upsert(owned("p1", "uid-1"))
    store.upsert(owned("p2", "uid-1"))
    assert [o["metadata"]["name"] for o in lister.by_owner_uid("uid-1")] == ["p1", "p2"]  # index built on demand
    store.upsert(owned("p2", "uid-2"))  # adopted by another owner
    store.upsert(pod("p3"))
    assert [o["metadata"]["name"] for o in lister.by_owner_uid("uid-1")] == ["p1"]
    assert [o["metadata"]["name"] for o in lister.by_owner_uid("uid-2")] == ["p2"]
    store.replace([owned("p9", "uid-2")])
    assert lister.by_owner_uid("uid-1") == [] and len(lister.by_owner_uid("uid-2")) == 1


def test_custom_indexer_indexes_existing_objects() -> None:
    store = Store()
    store.upsert(pod("a", nodeName="n1"))
    store.upsert(pod("b", nodeName="n2"))
    store.add_indexer("node", lambda o: [o["spec"]["nodeName"]] if o["spec"].get("nodeName") else [])
    store.upsert(pod("c", nodeName="n1"))
    assert store.index_keys("node", "n1") == ["default/a", "default/c"]
    with pytest.raises(ValueError):
        store.add_indexer("node", lambda o: [])
    with pytest.raises(KeyError):
        store.by_index("nope", "x")


def test_lister_gets_and_filters() -> None:
    store = Store()
    lister = Lister(store)
    store.upsert(pod("a", "x", labels={"app": "web"}))
    store.upsert(pod("b", "x", labels={"app": "db"}))
    store.upsert(pod("c", "y", labels={"app": "web"}))
    assert lister.get("a", "x")["metadata"]["name"] == "a" and lister.get("a", "y") is None
    assert sorted(key_of(o) for o in lister.list(selector={"app": "web"})) == ["x/a", "y/c"]
    assert [key_of(o) for o in lister.list("x", "app in (web,api)")] == ["x/a"]
    assert len(lister.list()) == 3 == len(lister)


def test_deep_copy_is_independent() -> None:
    original = pod("a", labels={"k": "v"})
    copy = deep_copy(original)
    copy["metadata"]["labels"]["k"] = "changed"
    assert original["metadata"]["labels"]["k"] == "v"
