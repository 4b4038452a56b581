"""The garbage collector's dependency graph (pkg/controller/garbagecollector's GraphBuilder).

Nodes are objects keyed by uid; an edge runs from each owner to each dependent, taken
from the dependents' ownerReferences. The graph is fed by informer events of every
deletable resource and decides *what to look at*, never what to delete: it puts uids on
two queues, and the collector's workers verify everything with live GETs.

- An owner that is referenced but not (yet) observed becomes a *virtual* node and is
  queued for attemptToDelete, which asks the server whether it exists; if not, a virtual
  delete removes it and queues its dependents (their owner is gone).
- An object deleted (by an informer event or a verified virtual delete) queues its
  dependents, and its owners that wait in foreground deletion.
- An object that starts deletion with the `orphan` finalizer goes on attemptToOrphan;
  with `foregroundDeletion` it is marked deletingDependents and it and its dependents
  go on attemptToDelete.
- A namespaced dependent whose observed owner is namespaced in another namespace gets a
  Warning Event `OwnerRefInvalidNamespace` and is queued (its owner will be found
  absent in its own namespace, as in Kubernetes).

Everything runs on one event loop, so no locking is needed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
ABSENT_CACHE_SIZE = 500


@dataclass(frozen=True)
class Identity:
    """An object's coordinates: objectReference in Kubernetes' garbage collector."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"[{self.api_version}/{self.kind}, namespace: {self.namespace}, name: {self.name}, uid: {self.uid}]"

    @classmethod
    def of(cls, obj: Obj) -> Identity:
        meta = obj.get("metadata") or {}
        return cls(str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(meta.get("namespace") or ""),
                   str(meta.get("name", "")), str(meta.get("uid", "")))

    @classmethod
    def of_ref(cls, ref: Obj, namespace: str) -> Identity:
        return cls(str(ref.get("apiVersion", "")), str(ref.get("kind", "")), namespace, str(ref.get("name", "")),
                   str(ref.get("uid", "")))

    def matches(self, ref: Obj) -> bool:
        """The reference names this identity's apiVersion, kind, name and uid."""
        return (ref.get("apiVersion"), ref.get("kind"), ref.get("name"), ref.get("uid")) == (
            self.api_version, self.kind, self.name, self.uid)


@dataclass
class Node:
    identity: Identity
    owners: list[Obj] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)
    observed: bool = False
    being_deleted: bool = False
    deleting_dependents: bool = False

    @property
    def uid(self) -> str:
        return self.identity.uid

    def ref_to(self, owner_uid: str) -> Obj | None:
        return next((r for r in self.owners if r.get("uid") == owner_uid), None)


def has_finalizer(obj: Obj, finalizer: str) -> bool:
    return finalizer in ((obj.get("metadata") or {}).get("finalizers") or [])


def being_deleted(obj: Obj | None) -> bool:
    return bool(obj and (obj.get("metadata") or {}).get("deletionTimestamp"))


def _starts(old: Obj | None, new: Obj, finalizer: str) -> bool:
    """deletionStartsWithFinalizer: new is deleting with `finalizer`, old was not."""
    if not being_deleted(new) or not has_finalizer(new, finalizer):
        return False
    return old is None or not being_deleted(old) or not has_finalizer(old, finalizer)


class AbsentOwnerCache:
    """Identities verified absent (an LRU, as Kubernetes' absentOwnerCache)."""

    def __init__(self, size: int = ABSENT_CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[Identity, None] = OrderedDict()

    def add(self, identity: Identity) -> None:
        self._items[identity] = None
        self._items.move_to_end(identity)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __contains__(self, identity: object) -> bool:
        return identity in self._items


class Graph:
    """uid -> Node, kept by `observe` / `observe_deleted` / `virtual_delete`."""

    def __init__(self, *, attempt_to_delete: Callable[[str], None], attempt_to_orphan: Callable[[str], None],
                 invalid_namespace: Callable[[Node, Obj], None] | None = None) -> None:
        self.nodes: dict[str, Node] = {}
        self.absent = AbsentOwnerCache()
        self._delete = attempt_to_delete
        self._orphan = attempt_to_orphan
        self._invalid = invalid_namespace or (lambda node, ref: None)

    def get(self, uid: str) -> Node | None:
        return self.nodes.get(uid)

    def dependents(self, node: Node) -> list[Node]:
        return [d for uid in sorted(node.dependents) if (d := self.nodes.get(uid)) is not None]

    def blocking_dependents(self, node: Node) -> list[Node]:
        """Dependents whose reference to `node` has blockOwnerDeletion: true."""
        return [d for d in self.dependents(node) if (d.ref_to(node.uid) or {}).get("blockOwnerDeletion") is True]

    # -- informer events ------------------------------------------------------------------

    def observe(self, obj: Obj, old: Obj | None = None) -> None:
        """An add or update seen by an informer."""
        identity = Identity.of(obj)
        if not identity.uid:
            return
        owners = list((obj.get("metadata") or {}).get("ownerReferences") or [])
        node = self.nodes.get(identity.uid)
        if node is None:
            node = Node(identity, owners, observed=True, being_deleted=being_deleted(obj),
                        deleting_dependents=being_deleted(obj) and has_finalizer(obj, FOREGROUND))
            self.nodes[identity.uid] = node
            self._add_to_owners(node, owners)
        else:
            if not node.observed:
                self._first_observation(node, identity)
            node.identity = identity
            self._update_owners(node, owners)
            if being_deleted(obj):
                node.being_deleted = True
        self._transitions(old, obj, node)

    def observe_deleted(self, obj: Obj) -> None:
        """A delete seen by an informer (or a DeletedFinalStateUnknown's last state)."""
        node = self.nodes.get(Identity.of(obj).uid)
        if node is not None:
            self._remove(node)

    def virtual_delete(self, identity: Identity) -> None:
        """attemptToDelete verified `identity` does not exist (404 or another uid)."""
        node = self.nodes.get(identity.uid)
        if node is None:
            return
        if node.observed:
            if node.identity == identity:
                self._remove(node)
            else:  # the real object is known under other coordinates: only the mismatches go
                for dep in self.dependents(node):
                    if not node.identity.matches(dep.ref_to(node.uid) or {}):
                        self._delete(dep.uid)
            return
        matching, others = self._partition(node, identity)
        if not others:
            self.absent.add(identity)
            self._remove(node)
            return
        # Dependents disagree on this owner's coordinates: keep the node under another.
        self.absent.add(identity)
        for dep in matching:
            self._delete(dep.uid)
        if node.identity == identity:
            ref = others[0].ref_to(node.uid) or {}
            node.identity = Identity.of_ref(ref, others[0].identity.namespace)
            self._delete(node.uid)

    # -- helpers --------------------------------------------------------------------------

    def _partition(self, node: Node, identity: Identity) -> tuple[list[Node], list[Node]]:
        matching, others = [], []
        for dep in self.dependents(node):
            ref = dep.ref_to(node.uid) or {}
            same_ns = not identity.namespace or dep.identity.namespace == identity.namespace
            (matching if identity.matches(ref) and same_ns else others).append(dep)
        return matching, others

    def _first_observation(self, node: Node, identity: Identity) -> None:
        """A virtual node is seen for real: dependents that named it otherwise are checked."""
        node.observed = True
        if identity == node.identity:
            return
        for dep in self.dependents(node):
            ref = dep.ref_to(node.uid) or {}
            if identity.matches(ref) and (not identity.namespace or dep.identity.namespace == identity.namespace):
                continue
            if identity.namespace and dep.identity.namespace != identity.namespace:
                self._invalid(dep, ref)
            self._delete(dep.uid)

    def _add_to_owners(self, node: Node, owners: Iterable[Obj]) -> None:
        suspicious = False
        for ref in owners:
            uid = str(ref.get("uid", ""))
            owner = self.nodes.get(uid)
            if owner is None:
                owner = Node(Identity.of_ref(ref, node.identity.namespace))
                self.nodes[uid] = owner
                owner.dependents.add(node.uid)
                self._delete(uid)
                continue
            owner.dependents.add(node.uid)
            if suspicious:
                continue
            owner_ns = owner.identity.namespace
            if owner_ns and owner_ns != node.identity.namespace:
                if owner.observed:
                    self._invalid(node, ref)
                suspicious = True
            elif not owner.identity.matches(ref):
                suspicious = True
            elif not owner_ns and node.identity.namespace and not owner.observed:
                suspicious = True
        if suspicious:
            self._delete(node.uid)

    def _update_owners(self, node: Node, owners: list[Obj]) -> None:
        old = {str(r.get("uid")): r for r in node.owners}
        new = {str(r.get("uid")): r for r in owners}
        added = [r for uid, r in new.items() if uid not in old]
        removed = [r for uid, r in old.items() if uid not in new]
        changed = [(old[uid], r) for uid, r in new.items() if uid in old and old[uid] != r]
        if not (added or removed or changed):
            return
        for ref in removed:  # an owner waiting on this dependent may now be unblocked
            if ref.get("blockOwnerDeletion") is True and str(ref.get("uid")) in self.nodes:
                self._delete(str(ref.get("uid")))
        for before, after in changed:
            if before.get("blockOwnerDeletion") is True and after.get("blockOwnerDeletion") is not True:
                self._delete(str(after.get("uid")))
        node.owners = owners
        self._add_to_owners(node, added)
        for ref in removed:
            owner = self.nodes.get(str(ref.get("uid")))
            if owner is not None:
                owner.dependents.discard(node.uid)

    def _transitions(self, old: Obj | None, new: Obj, node: Node) -> None:
        if _starts(old, new, ORPHAN):
            self._orphan(node.uid)
            return
        if _starts(old, new, FOREGROUND):
            node.deleting_dependents = True
            for dep in sorted(node.dependents):
                self._delete(dep)
            self._delete(node.uid)

    def _remove(self, node: Node) -> None:
        self.nodes.pop(node.uid, None)
        for ref in node.owners:
            owner = self.nodes.get(str(ref.get("uid")))
            if owner is not None:
                owner.dependents.discard(node.uid)
                if owner.deleting_dependents:
                    self._delete(owner.uid)
        for dep in sorted(node.dependents):
            self._delete(dep)
