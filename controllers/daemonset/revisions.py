"""A DaemonSet's ControllerRevisions, as pkg/controller/daemon/update.go builds them.

DaemonSets do not name revisions the way StatefulSets do (pkg/controller/history): the
name is `<ds>-<hash>` where the hash is controller.ComputeHash of spec.template with
status.collisionCount (the pod-template-hash algorithm, common/hashing.py), and the
revision carries that hash as its `controller-revision-hash` label, which every pod
created from it carries too. The revision's `data` is getPatch(ds): the strategic-merge
patch `{"spec": {"template": {<template>, "$patch": "replace"}}}` that `kubectl rollout
undo` applies to the DaemonSet to bring that template back. A revision is the current
one when its data equals the patch of the DaemonSet as it is now (Match).

Annotations of the DaemonSet are copied onto a new revision (so `kubernetes.io/change-cause`
shows in `kubectl rollout history`). The ordering and numbering helpers are the shared
ones from controllers/history.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from controllers.common import objects, ownership
from controllers.common.hashing import compute_hash
from controllers.history import sort_revisions

Obj = dict[str, Any]

HASH_LABEL = "controller-revision-hash"  # apps.DefaultDaemonSetUniqueLabelKey
API_VERSION = "apps/v1"
KIND = "DaemonSet"


def _sorted_keys(value: Any) -> Any:
    """A copy with every map's keys in sorted order, as Go's json.Marshal writes a map."""
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def revision_data(ds: Obj) -> Obj:
    """getPatch: the patch restoring the DaemonSet's current template.

    Kubernetes marshals it from a map, so its keys come out sorted (`$patch` first). The API
    server keeps the order it is given, so the stored bytes are the ones kubectl computes
    for the same template; kubectl compares them byte for byte (`rollout undo` says
    "skipped rollback" when the target revision is the current template).
    """
    template = copy.deepcopy(objects.spec(ds).get("template") or {})
    template["$patch"] = "replace"
    return _sorted_keys({"spec": {"template": template}})


def matches(ds: Obj, revision: Obj) -> bool:
    """Match: the revision holds exactly the DaemonSet's current template."""
    return objects.drop_empty(revision.get("data")) == objects.drop_empty(revision_data(ds))


def collision_count(ds: Obj) -> int | None:
    value = objects.status(ds).get("collisionCount")
    return None if value is None else int(value)


def template_hash(ds: Obj) -> str:
    """controller.ComputeHash(&ds.Spec.Template, ds.Status.CollisionCount)."""
    return compute_hash(objects.spec(ds).get("template") or {}, collision_count(ds))


def snapshot(ds: Obj, revision: int) -> Obj:
    """The ControllerRevision body dsc.snapshot creates for the current template."""
    hash_value = template_hash(ds)
    template_labels = objects.labels(objects.spec(ds).get("template"))
    metadata: Obj = {
        "name": f"{objects.name(ds)}-{hash_value}",
        "namespace": objects.namespace(ds),
        "labels": {**template_labels, HASH_LABEL: hash_value},
        "ownerReferences": [ownership.controller_ref(ds, api_version=API_VERSION, kind=KIND)],
    }
    if objects.annotations(ds):
        metadata["annotations"] = dict(objects.annotations(ds))
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": metadata,
            "data": revision_data(ds), "revision": int(revision)}


def revision_hash_label(revision: Obj) -> str:
    return objects.labels(revision).get(HASH_LABEL) or ""


def max_revision(revisions: Iterable[Obj]) -> int:
    return max((int(r.get("revision") or 0) for r in revisions), default=0)


@dataclass
class HistoryPlan:
    """constructHistory split in what it found and what it must write.

    `current`: the revision matching the template (None: `snapshot(ds, next_number)` must
    be created); `old`: every other revision; `duplicates`: further revisions matching the
    template, to delete after relabelling their pods to `current`'s hash (dedupCurHistories);
    `label_missing`: revisions without the hash label (it is set to their name);
    `renumber`: whether `current` needs `next_number` as its revision.
    """

    current: Obj | None
    old: list[Obj]
    next_number: int
    duplicates: list[Obj] = field(default_factory=list)
    label_missing: list[Obj] = field(default_factory=list)
    renumber: bool = False


def plan_history(ds: Obj, revisions: Sequence[Obj]) -> HistoryPlan:
    """Separate the current revision from the old ones (constructHistory, pure part)."""
    current_matches, old = [], []
    for revision in revisions:
        (current_matches if matches(ds, revision) else old).append(revision)
    next_number = max_revision(old) + 1
    missing = [r for r in revisions if HASH_LABEL not in objects.labels(r)]
    if not current_matches:
        return HistoryPlan(None, old, next_number, label_missing=missing)
    # dedupCurHistories keeps the one with the highest revision number.
    ordered = sort_revisions(current_matches)
    keep = ordered[-1]
    return HistoryPlan(keep, old, next_number, duplicates=ordered[:-1], label_missing=missing,
                       renumber=int(keep.get("revision") or 0) < next_number)


def revisions_to_delete(ds: Obj, old: Sequence[Obj], live_hashes: set[str]) -> list[Obj]:
    """cleanupHistory: the oldest revisions beyond revisionHistoryLimit no live pod uses."""
    limit = objects.spec(ds).get("revisionHistoryLimit")
    to_kill = len(old) - (10 if limit is None else int(limit))
    doomed: list[Obj] = []
    for revision in sort_revisions(old):
        if to_kill <= 0:
            break
        if revision_hash_label(revision) in live_hashes:
            continue
        doomed.append(revision)
        to_kill -= 1
    return doomed
