"""volumeMounts -> Mount objects (the volume part of the kubelet's makeMounts).

- `subPathExpr` is expanded with the container's environment; a reference to an unset
  or empty variable fails (`missing value for A, B`).
- a subPath must be relative and without `..` (the kubelet's messages); a missing one is
  created as a directory with the volume directory's mode, walking from the volume root
  so that no symlink inside the volume can lead the creation outside it; the mount then
  uses the subPath's resolved real path, which must lie inside the volume (the kubelet
  bind-mounts an fd it opened the same careful way, so later symlink swaps don't count).
- configMap, secret, downwardAPI and projected volumes are always mounted read-only, and
  a claim with `readOnly: true` too; otherwise `readOnly` of the volumeMount decides.
- `mountPropagation` is accepted and ignored: the runtimes make private bind mounts.

Errors raise envvars.ConfigError: the container fails with CreateContainerConfigError.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubelet.envvars import ConfigError, expand
from kubelet.runtime.base import Mount
from kubelet.volumes.hostpath import no_backsteps

Obj = dict[str, Any]
READ_ONLY_KINDS = ("configMap", "secret", "downwardAPI", "projected")


def expand_subpath_expr(expr: str, env: Mapping[str, str]) -> str:
    """ExpandContainerVolumeMounts."""
    missing: set[str] = set()

    def mapping(name: str) -> str:
        value = env.get(name, "")
        if not value:
            missing.add(name)
        return value

    expanded = expand(expr, mapping)
    if missing:
        raise ConfigError(f"missing value for {', '.join(sorted(missing))}")
    return expanded


def _inside(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def _safe_make_dir(volume: Path, sub_path: str) -> None:
    """Create the missing components of sub_path below volume, refusing to leave it."""
    base = os.path.realpath(volume)
    mode = os.stat(base).st_mode & 0o7777
    current = base
    for part in [p for p in sub_path.split("/") if p not in ("", ".")]:
        candidate = os.path.join(current, part)
        if os.path.lexists(candidate):
            current = os.path.realpath(candidate)
            if not _inside(current, base):
                raise OSError(f"{candidate} is outside of {base}")
            continue
        os.mkdir(candidate, mode)
        os.chmod(candidate, mode)
        current = candidate


def resolve_subpath(volume: Path, sub_path: str, mount_name: str, container_name: str) -> str:
    if sub_path.startswith("/"):
        raise ConfigError(f"error SubPath `{sub_path}` must not be an absolute path")
    backsteps = no_backsteps(sub_path)
    if backsteps:
        raise ConfigError(f"unable to provision SubPath `{sub_path}`: {backsteps}")
    target = os.path.join(volume, sub_path)
    if not os.path.lexists(target):
        try:
            _safe_make_dir(volume, sub_path)
        except OSError:
            raise ConfigError(f'failed to create subPath directory for volumeMount "{mount_name}" of container '
                              f'"{container_name}"') from None
    real, base = os.path.realpath(target), os.path.realpath(volume)
    if not _inside(real, base) or not os.path.exists(real):
        raise ConfigError(f'failed to prepare subPath for volumeMount "{mount_name}" of container "{container_name}"')
    return real


def _forced_read_only(volume: Obj | None) -> bool:
    if volume is None:
        return False
    if any(kind in volume for kind in READ_ONLY_KINDS):
        return True
    return bool((volume.get("persistentVolumeClaim") or {}).get("readOnly"))


def make_mounts(pod: Obj, container: Obj, paths: Mapping[str, Path], env: Mapping[str, str] | None = None) -> list[Mount]:
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    name = container.get("name") or ""
    mounts = []
    for volume_mount in container.get("volumeMounts") or []:
        vol_name = volume_mount.get("name") or ""
        if vol_name not in paths:
            raise ConfigError(f'cannot find volume "{vol_name}" to mount into container "{name}"')
        host_path = str(paths[vol_name])
        sub_path = volume_mount.get("subPath") or ""
        if volume_mount.get("subPathExpr"):
            sub_path = expand_subpath_expr(volume_mount["subPathExpr"], env or {})
        if sub_path:
            host_path = resolve_subpath(paths[vol_name], sub_path, vol_name, name)
        container_path = volume_mount.get("mountPath") or ""
        if not container_path.startswith("/"):
            container_path = "/" + container_path
        read_only = bool(volume_mount.get("readOnly")) or _forced_read_only(volumes.get(vol_name))
        mounts.append(Mount(host_path=host_path, container_path=container_path, read_only=read_only))
    return mounts
