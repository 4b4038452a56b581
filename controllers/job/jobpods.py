"""What the Job controller reads from and writes into its pods.

- The `batch.kubernetes.io/job-tracking` finalizer: every pod is created with it, and it
  is removed only once the pod's outcome is recorded in the Job status, so a pod removed
  by anyone (pod GC, a user) is still counted.
- Indexed Jobs: the completion index lives in the `batch.kubernetes.io/job-completion-index`
  annotation and label; the pod's hostname is `<job>-<index>`, its generateName
  `<job>-<index>-`, and every container gets JOB_COMPLETION_INDEX from the annotation.
- Failed: phase Failed, or (unless podReplacementPolicy is Failed) being deleted without
  having succeeded (isPodFailed): a pod deleted before finishing counts as a failure.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from controllers.common import objects

Obj = dict[str, Any]
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
INDEX_LABEL = INDEX_ANNOTATION
INDEX_ENV = "JOB_COMPLETION_INDEX"
UNKNOWN_INDEX = -1


def has_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (objects.metadata(pod).get("finalizers") or [])


def phase(pod: Obj) -> str:
    return str(objects.status(pod).get("phase") or "")


def is_terminal(pod: Obj) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    return not is_terminal(pod) and not objects.being_deleted(pod)


def is_terminating(pod: Obj) -> bool:
    """controller.CountTerminatingPods: being deleted and not yet terminal."""
    return objects.being_deleted(pod) and not is_terminal(pod)


def only_replace_failed(job: Obj) -> bool:
    return objects.spec(job).get("podReplacementPolicy") == "Failed"


def is_failed(pod: Obj, job: Obj) -> bool:
    if phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return objects.being_deleted(pod) and phase(pod) != "Succeeded"


def is_indexed(job: Obj) -> bool:
    return objects.spec(job).get("completionMode") == "Indexed"


def completion_index(pod: Obj) -> int:
    """The pod's completion index, UNKNOWN_INDEX when missing or malformed."""
    value = objects.annotations(pod).get(INDEX_ANNOTATION)
    if value is None:
        value = objects.labels(pod).get(INDEX_LABEL)
    try:
        index = int(str(value))
    except (TypeError, ValueError):
        return UNKNOWN_INDEX
    return index if index >= 0 else UNKNOWN_INDEX


def valid_index(pod: Obj, job: Obj) -> bool:
    index = completion_index(pod)
    return index != UNKNOWN_INDEX and index < int(objects.spec(job).get("completions") or 0)


def finished_time(pod: Obj, now: datetime) -> datetime:
    """getFinishedTime: the latest container finishedAt, else the deletion time, else now."""
    status = objects.status(pod)
    latest: datetime | None = None
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        finished = objects.parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is not None and (latest is None or finished > latest):
            latest = finished
    if latest is not None:
        return latest
    return objects.parse_time(objects.metadata(pod).get("deletionTimestamp")) or now


def pod_template(job: Obj, index: int = UNKNOWN_INDEX, annotations: dict[str, str] | None = None) -> tuple[Obj, str]:
    """The template to create one pod from, and its generateName (`annotations`: the
    per-index failure counts)."""
    template = copy.deepcopy(objects.spec(job).get("template") or {})
    meta = template.setdefault("metadata", {})
    finalizers = list(meta.get("finalizers") or [])
    if TRACKING_FINALIZER not in finalizers:
        finalizers.append(TRACKING_FINALIZER)
    meta["finalizers"] = finalizers
    name = objects.name(job)
    if index == UNKNOWN_INDEX:
        return template, f"{name}-"
    meta.setdefault("annotations", {})[INDEX_ANNOTATION] = str(index)
    meta["annotations"].update(annotations or {})
    meta.setdefault("labels", {})[INDEX_LABEL] = str(index)
    spec = template.setdefault("spec", {})
    spec["hostname"] = f"{name}-{index}"
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            _add_index_env(container)
    return template, f"{name}-{index}-"


def _add_index_env(container: Obj) -> None:
    env = container.setdefault("env", [])
    if any(e.get("name") == INDEX_ENV for e in env):
        return
    # PodIndexLabel (GA in 1.32): the env var reads the index label, not the annotation.
    env.append({"name": INDEX_ENV, "valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.labels['{INDEX_LABEL}']"}}})


def remove_finalizer_patch() -> Obj:
    """removeTrackingFinalizerPatch (strategic merge)."""
    return {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}
