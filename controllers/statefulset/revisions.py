"""A StatefulSet's ControllerRevisions: what is snapshotted and how it is restored.

The revision's data is a strategic-merge patch replacing spec.template
(`{"spec": {"template": {..., "$patch": "replace"}}}`, getPatch); applying it to the set
(ApplyRevision, and `kubectl rollout undo`) gives back that template. The revision also
carries the template's labels plus the hash label, and a copy of the set's annotations
(so `kubernetes.io/change-cause` shows in `kubectl rollout history`).
"""

from __future__ import annotations

import copy
from typing import Any

from controllers.common import objects
from controllers.history import new_revision
from controllers.statefulset.identity import API_VERSION, KIND

Obj = dict[str, Any]


def patch_of(sts: Obj) -> Obj:
    """getPatch: the template, marked to replace the whole template when applied."""
    template = copy.deepcopy(objects.spec(sts).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_for(sts: Obj, number: int, collision_count: int) -> Obj:
    """newRevision: the ControllerRevision body for the set's current template."""
    labels = (objects.spec(sts).get("template") or {}).get("metadata", {}).get("labels") or {}
    return new_revision(sts, patch_of(sts), number, collision_count, dict(labels), api_version=API_VERSION,
                        kind=KIND, annotations=dict(objects.annotations(sts)))


def apply_revision(sts: Obj, revision: Obj) -> Obj:
    """ApplyRevision: a copy of the set with the revision's template."""
    restored = copy.deepcopy(sts)
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    restored.setdefault("spec", {})["template"] = template
    return restored
