"""Pods a kubelet cannot start yet because a ConfigMap or Secret they need is missing.

A real kubelet does not run a container whose environment or volumes name a missing
object (unless the reference is `optional: true`); the pod stays Pending and says why:

- a configMap/secret volume (or a projected source) whose object is missing: the
  volume cannot be mounted, no sandbox is made; containers wait in ContainerCreating,
  Warning FailedMount `MountVolume.SetUp failed for volume "v" : configmap "x" not found`;
- env/envFrom naming a missing object or key: the sandbox exists (the pod has its IP),
  the container waits in CreateContainerConfigError with the error as message, Warning
  Failed `Error: secret "x" not found` or `Error: couldn't find key k in Secret ns/x`.

The kubelet keeps retrying; once the object appears the pod starts as usual. This module
finds the first such problem (`find`) and builds the Pending status that shows it
(`pending_status`); the pod driver retries every RETRY_SECONDS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubelet.fake import containers
from kubelet.fake.config import rfc3339
from minikube_py.client import CONFIGMAPS, SECRETS, ApiClient, ApiError

Obj = dict[str, Any]
CONTAINER_CREATING = "ContainerCreating"
CONFIG_ERROR = "CreateContainerConfigError"
BLOCKED_REASONS = (CONTAINER_CREATING, CONFIG_ERROR)
RETRY_SECONDS = 10.0  # about the kubelet's pod resync; its events repeat at this pace
_KINDS = {"configMap": (CONFIGMAPS, "configmap", "ConfigMap"), "secret": (SECRETS, "secret", "Secret")}


@dataclass(frozen=True)
class Blocked:
    """Why a pod cannot start: the waiting reason, its message, and the Warning event."""

    reason: str  # ContainerCreating (a volume) or CreateContainerConfigError (the environment)
    message: str  # the container's waiting message ('' for ContainerCreating)
    event_reason: str  # FailedMount or Failed
    event_message: str
    container: str | None = None  # the container whose environment failed


class _Objects:
    """GETs of the ConfigMaps and Secrets of one namespace, each fetched once per check."""

    def __init__(self, client: ApiClient, namespace: str) -> None:
        self.client, self.namespace = client, namespace
        self.cache: dict[tuple[str, str], Obj | None] = {}

    async def get(self, kind: str, name: str) -> Obj | None:
        key = (kind, name)
        if key not in self.cache:
            try:
                self.cache[key] = await self.client.get(_KINDS[kind][0], name, self.namespace)
            except ApiError as exc:
                if not exc.is_not_found():
                    raise
                self.cache[key] = None
        return self.cache[key]


def _has_key(obj: Obj, key: str) -> bool:
    return key in (obj.get("data") or {}) or key in (obj.get("binaryData") or {}) or key in (obj.get("stringData") or {})


def _volume_sources(volume: Obj) -> list[tuple[str, Obj]]:
    """(kind, reference) of the configMap/secret objects a volume needs."""
    found: list[tuple[str, Obj]] = []
    if isinstance(volume.get("configMap"), dict):
        found.append(("configMap", volume["configMap"]))
    if isinstance(volume.get("secret"), dict):
        ref = volume["secret"]
        found.append(("secret", {"name": ref.get("secretName"), "optional": ref.get("optional")}))
    for source in (volume.get("projected") or {}).get("sources") or []:
        for kind in _KINDS:
            if isinstance(source.get(kind), dict):
                found.append((kind, source[kind]))
    return found


async def _missing_volume(objects: _Objects, spec: Obj) -> Blocked | None:
    for volume in spec.get("volumes") or []:
        for kind, ref in _volume_sources(volume):
            name = ref.get("name")
            if not name or ref.get("optional") or await objects.get(kind, name) is not None:
                continue
            error = f'{_KINDS[kind][1]} "{name}" not found'
            return Blocked(CONTAINER_CREATING, "", "FailedMount",
                           f'MountVolume.SetUp failed for volume "{volume.get("name")}" : {error}')
    return None


def _env_references(container: Obj) -> list[tuple[str, Obj, str | None]]:
    """(kind, reference, key) in the kubelet's order: envFrom first, then env."""
    refs: list[tuple[str, Obj, str | None]] = []
    for source in container.get("envFrom") or []:
        for kind in _KINDS:
            if isinstance(source.get(f"{kind}Ref"), dict):
                refs.append((kind, source[f"{kind}Ref"], None))
    for var in container.get("env") or []:
        value_from = var.get("valueFrom") or {}
        for kind in _KINDS:
            ref = value_from.get(f"{kind}KeyRef")
            if isinstance(ref, dict):
                refs.append((kind, ref, ref.get("key")))
    return refs


async def _env_error(objects: _Objects, container: Obj) -> str | None:
    for kind, ref, key in _env_references(container):
        name = ref.get("name")
        if not name:
            continue
        obj = await objects.get(kind, name)
        if obj is None:
            if not ref.get("optional"):
                return f'{_KINDS[kind][1]} "{name}" not found'
        elif key is not None and not _has_key(obj, key) and not ref.get("optional"):
            return f"couldn't find key {key} in {_KINDS[kind][2]} {objects.namespace}/{name}"
    return None


async def find(client: ApiClient, pod: Obj) -> Blocked | None:
    """The first reason this pod cannot start now, or None."""
    spec = pod.get("spec") or {}
    if not any(_volume_sources(v) for v in spec.get("volumes") or []) and not any(
            _env_references(c) for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]):
        return None  # the common case costs no API call
    objects = _Objects(client, (pod.get("metadata") or {}).get("namespace") or "default")
    blocked = await _missing_volume(objects, spec)
    if blocked is not None:
        return blocked
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        error = await _env_error(objects, container)
        if error is not None:
            return Blocked(CONFIG_ERROR, error, "Failed", f"Error: {error}", container=container.get("name"))
    return None


# -- the Pending status -------------------------------------------------------------------


def _waiting(container: Obj, reason: str, message: str = "") -> Obj:
    state: Obj = {"reason": reason}
    if message:
        state["message"] = message
    return {"name": container["name"], "image": containers.normalize_image(str(container.get("image") or "")),
            "imageID": "", "lastState": {}, "ready": False, "restartCount": 0, "started": False,
            "state": {"waiting": state}}


def _condition(ctype: str, status: str, reason: str | None = None, message: str | None = None) -> Obj:
    condition: Obj = {"type": ctype, "status": status}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _conditions(pod: Obj, blocked: Blocked, names: list[str], uninitialized: list[str], now: datetime) -> list[Obj]:
    previous = (pod.get("status") or {}).get("conditions") or []
    kubelet_types = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
    others = [c for c in previous if c.get("type") not in kubelet_types]
    unready = "containers with unready status: [" + " ".join(names) + "]"
    ours = [
        _condition("PodReadyToStartContainers", "False" if blocked.reason == CONTAINER_CREATING else "True"),
        _condition("Initialized", "False", "ContainersNotInitialized",
                   "containers with incomplete status: [" + " ".join(uninitialized) + "]") if uninitialized
        else _condition("Initialized", "True"),
        _condition("Ready", "False", "ContainersNotReady", unready),
        _condition("ContainersReady", "False", "ContainersNotReady", unready),
        _condition("PodScheduled", "True"),
    ]
    before = {c.get("type"): c for c in previous}
    for condition in ours:
        old = before.get(condition["type"]) or {}
        same = old.get("status") == condition["status"] and old.get("lastTransitionTime")
        condition["lastTransitionTime"] = old["lastTransitionTime"] if same else rfc3339(now)
    return others + ours


def _container_statuses(pod: Obj, blocked: Blocked, now: datetime) -> tuple[list[Obj], list[Obj]]:
    """(init, app) statuses. Init containers run one by one before the app containers: an
    environment error in an app container comes after they all completed; an error in an
    init container, or a volume that cannot be mounted, holds everything after it in
    PodInitializing (without init containers: ContainerCreating)."""
    spec = pod.get("spec") or {}
    init_specs, app_specs = spec.get("initContainers") or [], spec.get("containers") or []
    uid = str((pod.get("metadata") or {}).get("uid") or "")
    waiting_before_start = "PodInitializing" if init_specs else CONTAINER_CREATING
    app_names = {c.get("name") for c in app_specs}
    if blocked.reason == CONFIG_ERROR and blocked.container in app_names:
        inits = [containers.terminated(uid, c, now, now, 0, ready=True) for c in init_specs]
        apps = [_waiting(c, CONFIG_ERROR, blocked.message) if c.get("name") == blocked.container
                else _waiting(c, CONTAINER_CREATING) for c in app_specs]
        return inits, apps
    inits = [_waiting(c, CONFIG_ERROR, blocked.message) if c.get("name") == blocked.container
             else _waiting(c, "PodInitializing") for c in init_specs]
    return inits, [_waiting(c, waiting_before_start) for c in app_specs]


def pending_status(pod: Obj, blocked: Blocked, now: datetime, *, host_ip: str, pod_ip: str | None) -> Obj:
    """Phase Pending with the containers waiting (see `_container_statuses`); `pod_ip`
    is None when no sandbox could be made (a volume)."""
    spec = pod.get("spec") or {}
    inits, apps = _container_statuses(pod, blocked, now)
    uninitialized = [s["name"] for s in inits if "waiting" in s["state"]]
    status: Obj = {
        "phase": "Pending",
        "conditions": _conditions(pod, blocked, [c["name"] for c in spec.get("containers") or []], uninitialized,
                                  now),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": (pod.get("status") or {}).get("startTime") or rfc3339(now),
        "containerStatuses": apps,
    }
    if pod_ip is not None:
        status["podIP"], status["podIPs"] = pod_ip, [{"ip": pod_ip}]
    if inits:
        status["initContainerStatuses"] = inits
    return status


def is_blocked(pod: Obj) -> bool:
    """Does the pod's status say it waits for a ConfigMap or Secret (not started yet)?"""
    status = pod.get("status") or {}
    waiting = [((s.get("state") or {}).get("waiting") or {}).get("reason")
               for s in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]]
    return status.get("phase") == "Pending" and any(r in BLOCKED_REASONS for r in waiting)
