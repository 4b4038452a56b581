"""Controller references: who owns what, and claiming (adopting and releasing) objects.

A controller owns an object when the object's ownerReferences hold an entry with
`controller: true` and the controller's uid (metav1.GetControllerOf). Claiming follows
BaseControllerRefManager.ClaimObject: objects controlled by someone else are ignored;
ours that still match the selector stay ours, ours that stopped matching are released
(unless we are being deleted); orphans that match are adopted (unless we or they are being
deleted, or they live in another namespace). Adoption and release are strategic-merge
patches carrying the object's uid, so a recreated object of the same name is not touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from controllers.common import objects

Obj = dict[str, Any]


def controller_ref(owner: Obj, *, api_version: str, kind: str) -> dict[str, Any]:
    """metav1.NewControllerRef: an ownerReference with controller and blockOwnerDeletion set."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": objects.name(owner),
        "uid": objects.uid(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: Obj) -> dict[str, Any] | None:
    """The ownerReference with controller=true, if any (metav1.GetControllerOf)."""
    for ref in objects.metadata(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    ref = controller_of(obj)
    return ref is not None and bool(ref.get("uid")) and ref.get("uid") == objects.uid(owner)


def adopt_patch(obj: Obj, owner_ref: dict[str, Any]) -> dict[str, Any]:
    """ownerRefControllerPatch: add the controller reference, guarded by the object's uid."""
    return {"metadata": {"ownerReferences": [dict(owner_ref)], "uid": objects.uid(obj)}}


def release_patch(obj: Obj, owner: Obj) -> dict[str, Any]:
    """deleteOwnerRefStrategicMergePatch: drop the owner's reference, guarded by the uid."""
    return {"metadata": {"uid": objects.uid(obj),
                         "ownerReferences": [{"$patch": "delete", "uid": objects.uid(owner)}]}}


@dataclass
class Claim:
    """The outcome of claiming: what we own now, and the patches that make it so."""

    owned: list[Obj] = field(default_factory=list)
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)


def claim(owner: Obj, candidates: Iterable[Obj], match: Callable[[Obj], bool]) -> Claim:
    """Classify `candidates` for `owner` as ClaimObject does; adopted objects count as owned."""
    result = Claim()
    owner_deleting = objects.being_deleted(owner)
    for obj in candidates:
        ref = controller_of(obj)
        if ref is not None:
            if ref.get("uid") != objects.uid(owner):
                continue
            if match(obj):
                result.owned.append(obj)
            elif not owner_deleting:
                result.release.append(obj)
            continue
        if owner_deleting or not match(obj) or objects.being_deleted(obj):
            continue
        if objects.namespace(owner) and objects.namespace(owner) != objects.namespace(obj):
            continue
        result.adopt.append(obj)
        result.owned.append(obj)
    return result
