"""Container statuses of fake pods, shaped like a 1.32 kubelet's on containerd.

Every image "runs": nothing is pulled, so `image` is the reference normalized the way
containerd reports it (nginx -> docker.io/library/nginx:latest) and `imageID` a digest
derived from the name. Container IDs are `fake://<64 hex>`, derived from the pod uid
and container name, so a restarted fake node computes the same IDs again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from kubelet.fake.config import rfc3339

Obj = dict[str, Any]
DEFAULT_REGISTRY = "docker.io"


def normalize_image(image: str) -> str:
    """A Docker reference in containerd's full form: registry/repository:tag (or @digest)."""
    name = image.strip()
    first, sep, _ = name.partition("/")
    if not sep:
        name = f"{DEFAULT_REGISTRY}/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"{DEFAULT_REGISTRY}/{name}"
    last = name.rsplit("/", 1)[-1]
    if "@" not in last and ":" not in last:
        name += ":latest"
    return name


def _repository(reference: str) -> str:
    """A normalized reference without its tag and digest."""
    head, _, last = reference.split("@", 1)[0].rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}"


def image_id(image: str) -> str:
    """repository@sha256:<digest>; a digest given in the reference is kept, otherwise
    one is made up from the name."""
    normalized = normalize_image(image)
    _, at, digest = normalized.partition("@")
    if at:
        return f"{_repository(normalized)}@{digest}"
    return f"{_repository(normalized)}@sha256:{hashlib.sha256(normalized.encode()).hexdigest()}"


def image_size(image: str) -> int:
    """The bytes a pull of `image` reports: made up from its digest (5 to 100 MB) so that
    one image always has one size."""
    digest = image_id(image).rpartition(":")[2]
    return 5_000_000 + int(digest[:8], 16) % 95_000_000 if len(digest) >= 8 else 5_000_000


def pull_events(container: Obj) -> list[tuple[str, str]]:
    """(reason, message) of the kubelet's image manager for one container start: policy
    Always pulls (Pulling, then Pulled with the pull time and size; fake pulls take no
    time), IfNotPresent and Never find the image already present (a fake node has them all)."""
    image = container.get("image", "")
    if container.get("imagePullPolicy") != "Always":
        return [("Pulled", f'Container image "{image}" already present on machine')]
    return [("Pulling", f'Pulling image "{image}"'),
            ("Pulled", f'Successfully pulled image "{image}" in 0s (0s including waiting). '
                       f"Image size: {image_size(image)} bytes.")]


def container_id(pod_uid: str, name: str) -> str:
    return "fake://" + hashlib.sha256(f"{pod_uid}/{name}".encode()).hexdigest()


def is_sidecar(container: Obj) -> bool:
    """An init container with restartPolicy Always keeps running beside the others."""
    return container.get("restartPolicy") == "Always"


def _volume_mounts(container: Obj) -> list[Obj]:
    mounts = []
    for mount in container.get("volumeMounts") or []:
        entry: Obj = {"name": mount.get("name"), "mountPath": mount.get("mountPath")}
        if mount.get("readOnly"):
            entry["readOnly"] = True
            entry["recursiveReadOnly"] = "Disabled"
        mounts.append(entry)
    return mounts


def _base(pod_uid: str, container: Obj) -> Obj:
    image = str(container.get("image") or "")
    status: Obj = {
        "name": container["name"],
        "image": normalize_image(image),
        "imageID": image_id(image),
        "containerID": container_id(pod_uid, container["name"]),
        "restartCount": 0,
        "lastState": {},
    }
    mounts = _volume_mounts(container)
    if mounts:
        status["volumeMounts"] = mounts
    return status


def running(pod_uid: str, container: Obj, started: datetime, *, ready: bool) -> Obj:
    return {**_base(pod_uid, container), "ready": ready, "started": True,
            "state": {"running": {"startedAt": rfc3339(started)}}}


def terminated(pod_uid: str, container: Obj, started: datetime, finished: datetime, exit_code: int, *,
               ready: bool = False) -> Obj:
    """A container that exited: reason Completed for exit code 0, Error otherwise."""
    base = _base(pod_uid, container)
    state = {"containerID": base["containerID"], "exitCode": exit_code, "finishedAt": rfc3339(finished),
             "reason": "Completed" if exit_code == 0 else "Error", "startedAt": rfc3339(started)}
    return {**base, "ready": ready, "started": False, "state": {"terminated": state}}


def init_statuses(pod_uid: str, spec: Obj, started: datetime, *, ready: dict[str, bool],
                  finished: datetime | None = None, exit_code: int = 0) -> list[Obj]:
    """Init containers: regular ones ran to completion before the pod started (a
    completed init container counts as ready); sidecars run like regular containers
    and, when the pod finishes, stop with it."""
    result = []
    for container in spec.get("initContainers") or []:
        if not is_sidecar(container):
            result.append(terminated(pod_uid, container, started, started, 0, ready=True))
        elif finished is not None:
            result.append(terminated(pod_uid, container, started, finished, exit_code))
        else:
            result.append(running(pod_uid, container, started, ready=ready.get(container["name"], True)))
    return result


def app_statuses(pod_uid: str, spec: Obj, started: datetime, *, ready: dict[str, bool],
                 finished: datetime | None = None, exit_code: int = 0) -> list[Obj]:
    """Regular containers: running, or terminated at `finished` with `exit_code`."""
    if finished is not None:
        return [terminated(pod_uid, c, started, finished, exit_code) for c in spec.get("containers") or []]
    return [running(pod_uid, c, started, ready=ready.get(c["name"], True)) for c in spec.get("containers") or []]
