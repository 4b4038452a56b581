"""The volume manager: makes a pod's volumes exist on the node before its containers
start, keeps the API-backed ones current, and removes them with the pod.

Where each volume lives (`<root>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>/`, the
kubelet's own layout):

- emptyDir (`empty-dir`): a directory, mode 0777. `medium: Memory` is a tmpfs sized as the
  kubelet sizes it (the smallest of node allocatable memory, the pod's memory limit and
  `sizeLimit`) when this process may mount (root); otherwise a plain directory, and
  `sizeLimit` is not enforced (the kubelet enforces a disk sizeLimit by eviction, which
  this kubelet does not do either).
- configMap (`configmap`), secret (`secret`), downwardAPI (`downward-api`), projected
  (`projected`): files written by the atomic writer (`atomic.py`), secret and projected
  on a tmpfs when mounting is possible, as the kubelet keeps secrets off the disk.
  A serviceAccountToken projection needs the `token_source` the kubelet was given.
- hostPath: the node path itself after its type check (`hostpath.py`).
- persistentVolumeClaim / ephemeral: the bound PV's hostPath or local path (`claims.py`).

`setup` is idempotent (the pod worker calls it on every sync): nothing is rewritten or
remounted when already right. `refresh` re-reads the ConfigMaps, Secrets and pod fields
behind already set-up volumes and rewrites what changed (the kubelet's periodic remount);
its failures are returned, the old files stay. `teardown` unmounts and deletes the pod's
volume directories; hostPath and claim directories are left alone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kubelet.envvars import ObjectSource
from kubelet.runtime.base import Mount
from kubelet.volumes import atomic, claims, hostpath, tmpfs
from kubelet.volumes.payload import (
    DEFAULT_MODE,
    SetupError,
    TokenCache,
    TokenSource,
    configmap_payload,
    downward_payload,
    projected_payload,
    secret_payload,
)
from kubelet.volumes.subpath import make_mounts
from minikube_py.api.quantity import parse_quantity

Obj = dict[str, Any]
PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
               "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
               "projected": "kubernetes.io~projected"}
CONTENT_KINDS = ("configMap", "secret", "downwardAPI", "projected")
MEMORY_BACKED = ("secret", "projected")


class VolumeError(Exception):
    """A volume could not be set up. `message` is the FailedMount event's text,
    `error` the plugin's own error."""

    reason = "FailedMount"

    def __init__(self, volume: str, error: str, *, message: str | None = None) -> None:
        self.volume, self.error = volume, error
        self.message = message or f'MountVolume.SetUp failed for volume "{volume}" : {error}'
        super().__init__(self.message)


def volume_kind(volume: Obj) -> str | None:
    known = (*PLUGIN_DIRS, "hostPath", "persistentVolumeClaim", "ephemeral")
    return next((kind for kind in known if isinstance(volume.get(kind), dict)), None)


def _memory(value: Any) -> int | None:
    if value is None:
        return None
    amount = parse_quantity(value).int_value()
    return amount if amount > 0 else None


def pod_memory_limit(pod: Obj) -> int | None:
    """The pod cgroup's memory limit: set only when every app container has one."""
    spec = pod.get("spec") or {}
    limits = [_memory(((c.get("resources") or {}).get("limits") or {}).get("memory")) for c in spec.get("containers") or []]
    if not limits or any(limit is None for limit in limits):
        return None
    total = sum(limit for limit in limits if limit)
    for init in spec.get("initContainers") or []:
        total = max(total, _memory(((init.get("resources") or {}).get("limits") or {}).get("memory")) or 0)
    return total


class VolumeManager:
    def __init__(self, root: Path, source: ObjectSource, *, token_source: TokenSource | None = None,
                 node_allocatable: Mapping[str, Any] | None = None, use_tmpfs: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root, self.source = Path(root), source
        self.node_allocatable = node_allocatable
        self.use_tmpfs = tmpfs.can_mount() if use_tmpfs is None else use_tmpfs
        self.tokens = TokenCache(token_source, clock)
        self._mounted: set[Path] = set()  # tmpfs mounts made or seen: mountinfo is read once per target
        self._locks: dict[Path, asyncio.Lock] = {}  # one writer per volume: setup and refresh may race

    # -- paths ---------------------------------------------------------------------------
    def pod_volumes_dir(self, pod_uid: str) -> Path:
        return self.root / "pods" / pod_uid / "volumes"

    def volume_dir(self, pod_uid: str, kind: str, name: str) -> Path:
        return self.pod_volumes_dir(pod_uid) / PLUGIN_DIRS[kind] / name

    # -- setup ---------------------------------------------------------------------------
    async def setup(self, pod: Obj) -> dict[str, Path]:
        """Set up every volume of the pod; volume name -> host path. Raises the first
        VolumeError (in spec order) after trying them all; `.errors` on it lists all."""
        paths: dict[str, Path] = {}
        errors: list[VolumeError] = []
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            try:
                paths[volume["name"]] = await self._setup_one(pod, volume)
            except VolumeError as exc:
                errors.append(exc)
        if errors:
            errors[0].errors = errors  # type: ignore[attr-defined]
            raise errors[0]
        return paths

    async def _setup_one(self, pod: Obj, volume: Obj) -> Path:
        name = volume["name"]
        try:
            return await self._setup_kind(pod, volume, volume_kind(volume))
        except claims.ProcessingError as exc:
            raise VolumeError(name, exc.message, message=(
                f"Unable to attach or mount volumes: unmounted volumes=[{name}], unattached volumes=[], "
                f"failed to process volumes=[{name}]: {exc.message}")) from None
        except SetupError as exc:
            raise VolumeError(name, exc.message) from None
        except (OSError, atomic.PayloadError) as exc:
            raise VolumeError(name, str(exc)) from None

    async def _setup_kind(self, pod: Obj, volume: Obj, kind: str | None) -> Path:
        if kind is None:
            raise claims.ProcessingError(
                f'failed to get Plugin from volumeSpec for volume "{volume["name"]}" err=no volume plugin matched')
        if kind == "hostPath":
            return hostpath.setup(volume["hostPath"])
        if kind in ("persistentVolumeClaim", "ephemeral"):
            return (await claims.resolve(volume, pod, self.source))[1]
        target = self.volume_dir(pod["metadata"]["uid"], kind, volume["name"])
        if kind == "emptyDir":
            medium = volume["emptyDir"].get("medium") or ""
            if medium not in ("", "Memory"):
                raise SetupError(f"emptyDir medium {medium} is not supported by this kubelet")
            self._make_dir(target, memory=medium == "Memory", pod=pod, size_limit=volume["emptyDir"].get("sizeLimit"))
            return target
        self._make_dir(target, memory=kind in MEMORY_BACKED, pod=pod, size_limit=None)
        await self._write(target, pod, volume, kind)
        return target

    async def _write(self, target: Path, pod: Obj, volume: Obj, kind: str) -> None:
        """Fetch and write under the volume's lock, so an older payload never lands last."""
        async with self._locks.setdefault(target, asyncio.Lock()):
            atomic.write(target, await self._payload(pod, volume, kind))

    def _make_dir(self, target: Path, *, memory: bool, pod: Obj, size_limit: Any) -> None:
        target.mkdir(parents=True, exist_ok=True)
        if memory and self.use_tmpfs and target not in self._mounted:
            if not tmpfs.is_mount_point(target):
                tmpfs.mount_tmpfs(target, self._tmpfs_size(pod, size_limit))
            self._mounted.add(target)
        if target.stat().st_mode & 0o7777 != 0o777:
            os.chmod(target, 0o777)

    def _tmpfs_size(self, pod: Obj, size_limit: Any) -> int | None:
        """calculateEmptyDirMemorySize: allocatable, lowered to the pod's limit, lowered to sizeLimit."""
        size = _memory((self.node_allocatable or {}).get("memory"))
        for bound in (pod_memory_limit(pod), _memory(size_limit)):
            if bound is not None and (size is None or bound <= size):
                size = bound
        return size

    async def _payload(self, pod: Obj, volume: Obj, kind: str) -> dict[str, atomic.FileProjection]:
        spec, namespace = volume[kind], pod["metadata"].get("namespace") or "default"
        default_mode = int(spec.get("defaultMode") if spec.get("defaultMode") is not None else DEFAULT_MODE)
        if kind == "configMap":
            return await configmap_payload(spec, namespace, self.source, default_mode)
        if kind == "secret":
            return await secret_payload(spec, namespace, self.source, default_mode)
        if kind == "downwardAPI":
            return downward_payload(spec.get("items") or [], pod, default_mode, self.node_allocatable)
        return await projected_payload(volume, pod, self.source, self.tokens, self.node_allocatable)

    # -- refresh, mounts, teardown ---------------------------------------------------------
    async def refresh(self, pod: Obj) -> list[VolumeError]:
        """Rewrite the set-up configMap/secret/downwardAPI/projected volumes whose source
        changed. Returns the failures (the volume keeps its previous files)."""
        failures: list[VolumeError] = []
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            kind = volume_kind(volume)
            if kind not in CONTENT_KINDS:
                continue
            target = self.volume_dir(pod["metadata"]["uid"], kind, volume["name"])
            if not (target / atomic.DATA_DIR).is_symlink():
                continue  # never set up: setup's business
            try:
                await self._write(target, pod, volume, kind)
            except SetupError as exc:
                failures.append(VolumeError(volume["name"], exc.message))
            except (OSError, atomic.PayloadError) as exc:
                failures.append(VolumeError(volume["name"], str(exc)))
        return failures

    def mounts(self, pod: Obj, container: Obj, paths: Mapping[str, Path],
               env: Mapping[str, str] | None = None) -> list[Mount]:
        """The container's volumeMounts as Mounts (see subpath.py); raises ConfigError."""
        return make_mounts(pod, container, paths, env)

    async def teardown(self, pod_uid: str) -> None:
        """Unmount and remove everything under the pod's volumes directory."""
        self.tokens.forget(pod_uid)
        target = self.pod_volumes_dir(pod_uid)
        for path in [p for p in (*self._mounted, *self._locks) if target in p.parents]:
            self._mounted.discard(path)
            self._locks.pop(path, None)
        if not target.exists():
            return
        if tmpfs.mounts_under(target):
            tmpfs.unmount_all(target)
        shutil.rmtree(target)
